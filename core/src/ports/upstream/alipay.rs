//! Alipay sign-in through the open-API gateway: the browser authorises at
//! `publicAppAuthorize.htm` and comes back with an `auth_code`, redeemed by
//! `alipay.system.oauth.token`, then `alipay.user.info.share`. Every request
//! is signed RSA2 (SHA256withRSA) with the app private key over its sorted
//! `key=value` parameters; every answer is verified with Alipay's public key
//! over the exact text of its `…_response` (or `error_response`) member, as
//! Alipay documents. The subject is Alipay's `user_id` (one per person),
//! else the app's `open_id`.
use super::{Authorization, UpstreamError, UpstreamIdentity, api_base, authorize_base, fresh};
use crate::config::UpstreamConfig;
use crate::net::Traced;
use base64::Engine;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

pub const AUTHORIZE: &str = "https://openauth.alipay.com/oauth2/publicAppAuthorize.htm";
pub const GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
pub const ISSUER: &str = "https://openapi.alipay.com";

fn der(text: &str) -> Option<Vec<u8>> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    base64::engine::general_purpose::STANDARD.decode(body.split_whitespace().collect::<String>()).ok()
}

/// The app private key: PEM or bare base64, PKCS#8 or PKCS#1 (Alipay's key
/// tool writes either).
pub fn private_key(text: &str) -> Result<RsaPrivateKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let der = der(text).ok_or("not base64/PEM")?;
    RsaPrivateKey::from_pkcs8_der(&der)
        .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
        .map_err(|e| format!("not an RSA private key: {e}"))
}

/// Alipay's public key: PEM or bare base64 (SubjectPublicKeyInfo).
pub fn public_key(text: &str) -> Result<RsaPublicKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let der = der(text).ok_or("not base64/PEM")?;
    RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| RsaPublicKey::from_pkcs1_der(&der))
        .map_err(|e| format!("not an RSA public key: {e}"))
}

/// The request's signing content: parameters other than `sign` with a
/// value, sorted by name, `k=v` joined by `&`, values not encoded.
pub fn sign_content(params: &[(String, String)]) -> String {
    let mut p: Vec<_> = params.iter().filter(|(k, v)| k != "sign" && !v.is_empty()).collect();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn rsa2_sign(key: &RsaPrivateKey, content: &str) -> String {
    let sig = SigningKey::<Sha256>::new(key.clone()).sign(content.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sig.to_vec())
}

pub fn rsa2_verify(key: &RsaPublicKey, content: &str, sign: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(sign) else { return false };
    let Ok(sig) = Signature::try_from(bytes.as_slice()) else { return false };
    VerifyingKey::<Sha256>::new(key.clone()).verify(content.as_bytes(), &sig).is_ok()
}

/// The exact text of the JSON object member `name` in `body` (Alipay signs
/// these bytes, so re-serialising would not do).
pub fn raw_member<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\"");
    let at = body.find(&key)? + key.len();
    let rest = &body[at..];
    let start = at + rest.find(|c: char| c != ':' && !c.is_whitespace())?;
    let bytes = body.as_bytes();
    if bytes[start] != b'{' {
        return None;
    }
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes[start..].iter().enumerate() {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&body[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Beijing time, as the gateway's `timestamp` wants it.
fn timestamp(now: i64) -> String {
    chrono::DateTime::from_timestamp(now + 8 * 3600, 0).unwrap_or_default().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn scope(up: &UpstreamConfig) -> &str {
    up.scopes.iter().map(String::as_str).find(|s| s.starts_with("auth_")).unwrap_or("auth_user")
}

pub fn begin(up: &UpstreamConfig, redirect_uri: &str) -> Result<Authorization, UpstreamError> {
    let auth = fresh();
    let mut url =
        url::Url::parse(&authorize_base(up, AUTHORIZE)).map_err(|e| UpstreamError::Discovery(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("app_id", &up.client_id)
        .append_pair("scope", scope(up))
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", &auth.state);
    Ok(Authorization { url: url.to_string(), ..auth })
}

/// One signed call; the verified `…_response` object.
async fn call(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    method: &str,
    biz: &[(&str, &str)],
    now: i64,
) -> Result<serde_json::Value, UpstreamError> {
    let key = private_key(&up.client_secret).map_err(UpstreamError::Signature)?;
    let alipay = public_key(up.alipay_public_key.as_deref().unwrap_or_default()).map_err(UpstreamError::Signature)?;
    let mut params: Vec<(String, String)> = [
        ("app_id", up.client_id.as_str()),
        ("method", method),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
    ]
    .iter()
    .chain(biz.iter())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.push(("timestamp".into(), timestamp(now)));
    let sign = rsa2_sign(&key, &sign_content(&params));
    params.push(("sign".into(), sign));
    let gateway = api_base(up, GATEWAY);
    let res =
        http.post(&gateway).form(&params).traced().send().await.map_err(|e| UpstreamError::Token(e.to_string()))?;
    let body = res.text().await.map_err(|e| UpstreamError::Token(e.to_string()))?;
    let node = format!("{}_response", method.replace('.', "_"));
    let parsed: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| UpstreamError::Token(format!("alipay answer is not JSON: {e}")))?;
    let (name, raw) = match raw_member(&body, &node) {
        Some(raw) => (node.as_str(), raw),
        None => (
            "error_response",
            raw_member(&body, "error_response").ok_or_else(|| UpstreamError::Token("no response member".into()))?,
        ),
    };
    // Unsigned answers come only for some gateway-level errors; anything
    // that carries a result must be signed by Alipay.
    let verified = parsed["sign"].as_str().is_some_and(|s| rsa2_verify(&alipay, raw, s));
    if !verified {
        return Err(UpstreamError::Signature(format!("alipay {method}: the answer's signature does not verify")));
    }
    let v = parsed[name].clone();
    let code = v["code"].as_str().unwrap_or("10000");
    if name == "error_response" || code != "10000" {
        let sub = v["sub_code"].as_str().unwrap_or(code);
        return Err(match sub {
            "isv.code-invalid" | "isv.code-expired" | "isv.auth-code-invalid" | "isv.refresh-token-invalid" => {
                UpstreamError::CodeExpired(format!("alipay {sub}"))
            }
            "isv.invalid-signature" | "isv.missing-signature" => UpstreamError::Signature(format!("alipay {sub}")),
            _ => UpstreamError::Vendor(format!("alipay {sub}: {}", v["sub_msg"])),
        });
    }
    Ok(v)
}

fn identity(up: &UpstreamConfig, v: &serde_json::Value, now: i64) -> Result<UpstreamIdentity, UpstreamError> {
    let (issuer, subject) = match (v["user_id"].as_str().filter(|s| !s.is_empty()), v["open_id"].as_str()) {
        (Some(u), _) => (ISSUER.to_string(), u.to_string()),
        (None, Some(o)) if !o.is_empty() => (format!("{ISSUER}/{}", up.client_id), o.to_string()),
        _ => return Err(UpstreamError::UserInfo("alipay gave neither user_id nor open_id".into())),
    };
    Ok(UpstreamIdentity { issuer, subject, verified_phone: None, auth_time: None, issued_at: now })
}

/// Redeems an `auth_code` (web, app or mini-program — the same call).
pub async fn finish(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    code: &str,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let token =
        call(http, up, "alipay.system.oauth.token", &[("grant_type", "authorization_code"), ("code", code)], now)
            .await?;
    let Some(access) = token["access_token"].as_str() else {
        return Err(UpstreamError::Token("no access_token".into()));
    };
    if scope(up) == "auth_base" {
        return identity(up, &token, now);
    }
    let info = call(http, up, "alipay.user.info.share", &[("auth_token", access)], now).await?;
    let id = identity(up, &info, now)?;
    // The profile must be the token's person.
    if identity(up, &token, now)?.subject != id.subject {
        return Err(UpstreamError::UserInfo("alipay user.info.share names another user".into()));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_content_is_sorted_without_sign_or_empty_values() {
        let p: Vec<(String, String)> =
            [("method", "m"), ("app_id", "1"), ("sign", "x"), ("biz", ""), ("charset", "utf-8")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(sign_content(&p), "app_id=1&charset=utf-8&method=m");
    }

    #[test]
    fn raw_member_keeps_the_signed_bytes() {
        let body = r#"{"alipay_system_oauth_token_response":{"user_id":"2088","s":"a}\"{"} ,"sign":"abc"}"#;
        assert_eq!(raw_member(body, "alipay_system_oauth_token_response"), Some(r#"{"user_id":"2088","s":"a}\"{"}"#));
        assert_eq!(raw_member(body, "error_response"), None);
    }

    #[test]
    fn timestamp_is_beijing_time() {
        assert_eq!(timestamp(0), "1970-01-01 08:00:00");
    }
}
