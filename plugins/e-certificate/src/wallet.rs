//! The user's bound certificates, kept in the provider's database through
//! the host's key-value store: one ordered list per subject (F1, F2 — the
//! order is the user's, so reordering is persisted).
use idp_plugin_sdk::Host;
use serde::{Deserialize, Serialize};

/// Certificate types the plugin knows; names come from the locale files.
pub const TYPES: &[&str] = &["resident_id", "social_security", "driving_licence"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Certificate {
    /// One of [`TYPES`]; a user binds at most one certificate per type.
    pub kind: String,
    pub number: String,
    pub holder: String,
    pub issuer: String,
    pub valid_from: String,
    pub valid_until: String,
    pub bound_at: i64,
}

fn key(sub: &str) -> String {
    format!("certs/{sub}")
}

pub fn list(host: &Host, sub: &str) -> Result<Vec<Certificate>, String> {
    match host.kv_get(&key(sub))? {
        Some(raw) => serde_json::from_str(&raw).map_err(|e| format!("stored list is corrupt: {e}")),
        None => Ok(Vec::new()),
    }
}

fn save(host: &Host, sub: &str, certs: &[Certificate]) -> Result<(), String> {
    if certs.is_empty() {
        host.kv_delete(&key(sub)).map(|_| ())
    } else {
        let raw = serde_json::to_string(certs).map_err(|e| e.to_string())?;
        host.kv_put(&key(sub), &raw, None)
    }
}

pub fn find(host: &Host, sub: &str, kind: &str) -> Result<Option<Certificate>, String> {
    Ok(list(host, sub)?.into_iter().find(|c| c.kind == kind))
}

/// Appends; false when a certificate of that type is already bound.
pub fn bind(host: &Host, sub: &str, cert: Certificate) -> Result<bool, String> {
    let mut certs = list(host, sub)?;
    if certs.iter().any(|c| c.kind == cert.kind) {
        return Ok(false);
    }
    certs.push(cert);
    save(host, sub, &certs)?;
    Ok(true)
}

pub fn unbind(host: &Host, sub: &str, kind: &str) -> Result<bool, String> {
    let mut certs = list(host, sub)?;
    let before = certs.len();
    certs.retain(|c| c.kind != kind);
    if certs.len() == before {
        return Ok(false);
    }
    save(host, sub, &certs)?;
    Ok(true)
}

/// Applies positions chosen on the sort page (1 = first). Certificates
/// without a position keep their relative order after the placed ones.
pub fn reorder(host: &Host, sub: &str, positions: &[(String, i64)]) -> Result<(), String> {
    let mut certs = list(host, sub)?;
    let pos = |kind: &str| positions.iter().find(|(k, _)| k == kind).map(|(_, p)| *p).unwrap_or(i64::MAX);
    // A stable sort keeps ties in their previous order.
    certs.sort_by_key(|c| pos(&c.kind));
    save(host, sub, &certs)
}

/// Shows only the ends of a number (list views, claims need the whole).
pub fn masked(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 7 {
        return number.to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn masks_the_middle() {
        assert_eq!(masked("11010519491231002X"), "110***********002X");
        assert_eq!(masked("A123"), "A123");
    }
}
