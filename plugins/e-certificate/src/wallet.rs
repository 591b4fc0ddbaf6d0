//! The user's bound certificates, kept in the provider's database through
//! the host's key-value store: one ordered list per subject (F1, F2 — the
//! order is the user's, so reordering is persisted). A list holds at most
//! one certificate per type, so a user's pages read one bounded row; what
//! grows with the users is the set of lists, which only the admin census
//! reads, a page at a time.
use idp_plugin_sdk::{Host, Order};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// Prefix of the per-subject lists, `certs/<sub>`.
pub const PREFIX: &str = "certs/";

fn key(sub: &str) -> String {
    format!("{PREFIX}{sub}")
}

fn parse(raw: &str) -> Result<Vec<Certificate>, String> {
    serde_json::from_str(raw).map_err(|e| format!("stored list is corrupt: {e}"))
}

/// The subject's list: one row, whatever the number of users.
pub fn list(host: &Host, sub: &str) -> Result<Vec<Certificate>, String> {
    match host.kv_get(&key(sub))? {
        Some(raw) => parse(&raw),
        None => Ok(Vec::new()),
    }
}

/// Applies `change` to the subject's list and stores it only if the list
/// is still the one read (compare-and-swap), retrying on a lost race — so
/// a bind and an unbind in two tabs, or on two nodes, cannot undo each
/// other. `change` returns whether it changed anything; an emptied list
/// is stored as `[]` (a delete could not be conditional).
fn update(host: &Host, sub: &str, mut change: impl FnMut(&mut Vec<Certificate>) -> bool) -> Result<bool, String> {
    for _ in 0..8 {
        let seen = host.kv_get(&key(sub))?;
        let mut certs = match &seen {
            Some(raw) => parse(raw)?,
            None => Vec::new(),
        };
        if !change(&mut certs) {
            return Ok(false);
        }
        let raw = serde_json::to_string(&certs).map_err(|e| e.to_string())?;
        if host.kv_put_if(&key(sub), seen.as_deref(), &raw, None)? {
            return Ok(true);
        }
    }
    Err("the certificate list kept changing; try again".into())
}

pub fn find(host: &Host, sub: &str, kind: &str) -> Result<Option<Certificate>, String> {
    Ok(list(host, sub)?.into_iter().find(|c| c.kind == kind))
}

/// Appends; false when a certificate of that type is already bound.
pub fn bind(host: &Host, sub: &str, cert: Certificate) -> Result<bool, String> {
    update(host, sub, |certs| {
        if certs.iter().any(|c| c.kind == cert.kind) {
            return false;
        }
        certs.push(cert.clone());
        true
    })
}

pub fn unbind(host: &Host, sub: &str, kind: &str) -> Result<bool, String> {
    update(host, sub, |certs| {
        let before = certs.len();
        certs.retain(|c| c.kind != kind);
        certs.len() != before
    })
}

/// Applies positions chosen on the sort page (1 = first). Certificates
/// without a position keep their relative order after the placed ones.
pub fn reorder(host: &Host, sub: &str, positions: &[(String, i64)]) -> Result<(), String> {
    let pos = |kind: &str| positions.iter().find(|(k, _)| k == kind).map(|(_, p)| *p).unwrap_or(i64::MAX);
    // A stable sort keeps ties in their previous order.
    update(host, sub, |certs| {
        certs.sort_by_key(|c| pos(&c.kind));
        true
    })
    .map(|_| ())
}

/// Bound certificates by type and the number of subjects holding any,
/// over every subject's list: one `kv_page` batch at a time in key order,
/// so the count is exact past the storage listing cap of
/// 10,000 rows and no read holds more than a batch.
pub fn census(host: &Host) -> Result<(u64, BTreeMap<String, u64>), String> {
    let (mut holders, mut by_type) = (0u64, BTreeMap::new());
    let mut cursor: Option<String> = None;
    loop {
        let page = host.kv_page(PREFIX, cursor.as_deref(), Order::Asc, 500)?;
        for (_, raw) in &page.rows {
            let certs: Vec<Certificate> = serde_json::from_str(raw).unwrap_or_default();
            holders += u64::from(!certs.is_empty());
            for c in certs {
                *by_type.entry(c.kind).or_insert(0) += 1;
            }
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => return Ok((holders, by_type)),
        }
    }
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
