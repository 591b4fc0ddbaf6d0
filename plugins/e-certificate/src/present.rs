//! Presenting a certificate (出示证照, F2): a short-lived JWT signed with
//! the provider's key through the host, shown as a QR code; a relying app
//! with the verify scope checks it through the plugin's API. Expired,
//! tampered and since-unbound presentations are rejected.
use crate::wallet::{self, Certificate};
use idp_plugin_sdk::{Host, Value, Verified, json};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A unique id for a presentation. Not a secret (it sits inside the
/// signed token), only distinct: the process-random hasher keys, the clock
/// and a counter.
fn presentation_id(host: &Host) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(host.now());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}{:08x}", h.finish(), COUNTER.load(Ordering::Relaxed))
}

/// Signs a presentation of `cert`; returns the token and its expiry.
pub fn present(host: &Host, sub: &str, cert: &Certificate, ttl: i64) -> Result<(String, i64), String> {
    let jti = presentation_id(host);
    let claims = json!({
        "jti": jti,
        "certificate_type": cert.kind,
        "number": cert.number,
        "holder": cert.holder,
        "issuer": cert.issuer,
        "valid_until": cert.valid_until,
    });
    let token = host.sign(&claims, ttl)?;
    // Remember whose it is, so verification can tell an unbound one.
    let record = json!({ "sub": sub, "kind": cert.kind }).to_string();
    host.kv_put(&format!("presented/{jti}"), &record, Some(ttl + 60))?;
    Ok((token, host.now() + ttl))
}

fn rejected(reason: &str) -> Value {
    json!({ "valid": false, "reason": reason })
}

/// The verifier's answer: `valid` with the certificate, or the reason.
pub fn verify(host: &Host, token: &str) -> Result<Value, String> {
    let claims = match host.verify(token)? {
        Verified::Valid(c) => c,
        Verified::Expired => return Ok(rejected("expired")),
        Verified::Invalid => return Ok(rejected("invalid")),
    };
    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or_default();
    let Some(record) = host.kv_get(&format!("presented/{jti}"))? else {
        return Ok(rejected("invalid"));
    };
    let record: Value = serde_json::from_str(&record).map_err(|e| e.to_string())?;
    let sub = record.get("sub").and_then(Value::as_str).unwrap_or_default();
    let kind = record.get("kind").and_then(Value::as_str).unwrap_or_default();
    let still_bound = wallet::find(host, sub, kind)?
        .filter(|c| Some(c.number.as_str()) == claims.get("number").and_then(Value::as_str));
    let Some(cert) = still_bound else {
        return Ok(rejected("revoked"));
    };
    Ok(json!({
        "valid": true,
        "certificate": {
            "type": cert.kind,
            "number": cert.number,
            "holder": cert.holder,
            "issuer": cert.issuer,
            "valid_from": cert.valid_from,
            "valid_until": cert.valid_until,
        },
        "expires_at": claims.get("exp"),
    }))
}

/// The token as an inline SVG QR code (inline, so the provider's CSP that
/// forbids `data:` images still allows it).
pub fn qr_svg(data: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| format!("QR: {e}"))?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).build();
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    })
}
