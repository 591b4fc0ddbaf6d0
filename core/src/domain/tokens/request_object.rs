//! JWT-secured authorization requests (RFC 9101): a request object signed
//! by a key the client registered (`jwks`). Unsigned objects (`alg=none`)
//! are refused. The object's parameters win over those beside it (RFC
//! 9101 §6.3); a FAPI 2.0 client's request is the object alone.
use crate::crypto::jws;
use crate::domain::clients::Client;
use crate::domain::error::OAuthError;
use serde_json::Value;

/// The algorithms a request object may be signed with.
pub const ALGS: &[&str] = &["ES256", "PS256", "RS256"];

/// Claims that describe the JWT itself, not the authorization request.
const JWT_CLAIMS: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "jti"];

/// Verifies `object` for `client` and returns the request parameters it
/// carries, merged over `outer` (minus `request`).
pub fn verify(
    object: &str,
    client: &Client,
    outer: &[(String, String)],
    issuer: &str,
    now: i64,
) -> Result<Vec<(String, String)>, OAuthError> {
    let bad = |d: &str| OAuthError::new("invalid_request_object", d);
    let parsed = jws::parse(object).ok_or_else(|| bad("the request object is not a signed JWT"))?;
    if !ALGS.contains(&parsed.header.alg.as_str()) {
        return Err(bad("the request object must be signed (ES256, PS256 or RS256); alg none is refused"));
    }
    if !client.verify_jws(&parsed) {
        return Err(bad("the request object is not signed by a key the client registered"));
    }
    let Value::Object(claims) = &parsed.payload else {
        return Err(bad("the request object is not a JSON object"));
    };
    if claims.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err(bad("the request object's client_id must be the client's"));
    }
    if let Some(iss) = claims.get("iss")
        && iss.as_str() != Some(client.client_id.as_str())
    {
        return Err(bad("the request object's iss must be the client_id"));
    }
    let aud_ok = match claims.get("aud") {
        None => !client.is_fapi2(),
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        Some(_) => false,
    };
    if !aud_ok {
        return Err(bad("the request object's aud must be the issuer"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    if exp.is_some_and(|e| e <= now) {
        return Err(bad("the request object has expired"));
    }
    if nbf.is_some_and(|n| n > now + 5) {
        return Err(bad("the request object is not yet valid"));
    }
    // FAPI 2.0 Message Signing §5.3.2: exp and nbf, at most 60 minutes apart.
    if client.is_fapi2() {
        match (exp, nbf) {
            (Some(e), Some(n)) if e - n <= 3600 && n >= now - 3600 => {}
            _ => return Err(bad("the request object needs nbf and exp at most 60 minutes apart")),
        }
    }
    let mut out: Vec<(String, String)> = if client.is_fapi2() {
        Vec::new()
    } else {
        outer.iter().filter(|(k, _)| k != "request" && !claims.contains_key(k)).cloned().collect()
    };
    for (k, v) in claims {
        if JWT_CLAIMS.contains(&k.as_str()) {
            continue;
        }
        if matches!(k.as_str(), "request" | "request_uri") {
            return Err(bad("a request object must not contain request or request_uri"));
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}
