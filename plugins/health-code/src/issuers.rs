//! Third-party code issuers (E5: codes issued by another
//! platform are accepted by our scanners). An administrator registers an
//! issuer by name with its ES256 public key (JWK or PEM); a scanned payload
//! whose `iss` names a registered issuer is verified with that key by the
//! host and answered in the same verified-status shape, marked with the
//! issuer.
//!
//! The other platform's code is a compact JWS, `alg` ES256, whose payload
//! carries `iss` (the registered name), `exp`, `colour`
//! (green|yellow|red), `name` and optionally `code_type`.
use crate::status::Colour;
use idp_plugin_sdk::{Host, Map, Value, json};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Issuer {
    pub name: String,
    /// The public key as registered: a JWK object or a PEM string.
    pub key: Value,
    pub registered_at: i64,
}

/// Names are plain (no `:` or `/`), so the provider's own payloads — whose
/// `iss` is a URL — can never be taken for a third party's.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 60 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `{"name", "jwk": {…}}` or `{"name", "pem": "-----BEGIN PUBLIC KEY-----…"}`.
/// Registering a name again replaces its key (the issuer rotated it).
pub fn register(host: &Host, body: &Value) -> Result<Result<Issuer, String>, String> {
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    if !valid_name(name) {
        return Ok(Err("name must be 1-60 characters of [A-Za-z0-9._-]".into()));
    }
    let key = match (body.get("jwk"), body.get("pem")) {
        (Some(jwk @ Value::Object(_)), None) => public_only(jwk),
        (None, Some(Value::String(pem))) if pem.len() <= 4096 => Value::String(pem.clone()),
        _ => return Ok(Err("give the issuer's public key as `jwk` (object) or `pem` (string)".into())),
    };
    // The host parses the key: not an EC P-256 public key is refused here.
    if let Err(e) = host.verify_with_key("", &key) {
        return Ok(Err(e));
    }
    let issuer = Issuer { name: name.into(), key, registered_at: host.now() };
    host.kv_put(&format!("issuer/{name}"), &serde_json::to_string(&issuer).map_err(|e| e.to_string())?, None)?;
    Ok(Ok(issuer))
}

/// The public members of a JWK only: a private `d` pasted by mistake is
/// never stored.
fn public_only(jwk: &Value) -> Value {
    let keep = ["kty", "crv", "x", "y", "kid", "alg", "use"];
    let m: Map<String, Value> = jwk
        .as_object()
        .map(|o| o.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Value::Object(m)
}

pub fn list(host: &Host) -> Result<Vec<Issuer>, String> {
    Ok(host.kv_list("issuer/")?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
}

fn find(host: &Host, name: &str) -> Result<Option<Issuer>, String> {
    if !valid_name(name) {
        return Ok(None);
    }
    Ok(host.kv_get(&format!("issuer/{name}"))?.and_then(|raw| serde_json::from_str(&raw).ok()))
}

/// The `iss` a compact JWS claims, read before any check — only to pick
/// the key that then decides.
pub fn claimed_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = crate::util::b64url_decode(payload)?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss").and_then(Value::as_str).map(String::from)
}

/// A third party's code checked: `Ok(answer)` in the scan API's shape, or
/// `Err(reason)` — `unknown_issuer`, `invalid` or `expired`. `None` when
/// the payload names no plain issuer (then it is not a third party's).
pub fn verify(host: &Host, token: &str) -> Result<Option<Result<Value, &'static str>>, String> {
    let Some(name) = claimed_issuer(token).filter(|n| valid_name(n)) else {
        return Ok(None);
    };
    let Some(issuer) = find(host, &name)? else {
        return Ok(Some(Err("unknown_issuer")));
    };
    let claims = match host.verify_with_key(token, &issuer.key)? {
        idp_plugin_sdk::Verified::Valid(c) => c,
        idp_plugin_sdk::Verified::Expired => return Ok(Some(Err("expired"))),
        idp_plugin_sdk::Verified::Invalid => return Ok(Some(Err("invalid"))),
    };
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    let Some(colour) = Colour::parse(s("colour")) else {
        return Ok(Some(Err("invalid")));
    };
    if claims.get("iss").and_then(Value::as_str) != Some(name.as_str()) {
        return Ok(Some(Err("invalid")));
    }
    let until = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
    let code_type = if s("code_type").is_empty() { "personal" } else { s("code_type") };
    Ok(Some(Ok(json!({
        "valid": true,
        "colour": colour,
        "name": crate::util::mask_name(s("name")),
        "code_type": code_type.chars().take(40).collect::<String>(),
        "offline": false,
        "valid_until": until,
        "valid_until_text": crate::util::datetime(until),
        "issuer": issuer.name,
    }))))
}

pub fn to_json(i: &Issuer) -> Value {
    let kind = if i.key.is_string() { "pem" } else { "jwk" };
    json!({ "name": i.name, "key_format": kind, "key": i.key, "registered_at": i.registered_at })
}
