//! Request parameter parsing shared by the endpoints: raw pairs (so a
//! repeated parameter can be refused, RFC 6749 §3.1/§3.2) and client
//! credentials from the Authorization header and the body.
use super::error::ApiError;
use crate::domain::OAuthError;
use crate::domain::clients::PresentedCredentials;
use axum::http::{HeaderMap, header};
use base64::Engine;

pub type Params = Vec<(String, String)>;

pub fn parse_query(raw: Option<&str>) -> Params {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ctype.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

/// The single value of a parameter; a repeated one is an error.
pub fn one<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut found: Option<&str> = None;
    for (k, v) in params {
        if k == name {
            if found.is_some() {
                return Err(OAuthError::invalid_request(format!("parameter `{name}` is repeated")));
            }
            found = Some(v);
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

pub fn no_duplicates(params: &Params) -> Result<(), OAuthError> {
    let mut seen = std::collections::HashSet::new();
    for (k, _) in params {
        if !seen.insert(k.as_str()) {
            return Err(OAuthError::invalid_request(format!("parameter `{k}` is repeated")));
        }
    }
    Ok(())
}

/// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded first.
pub fn credentials(headers: &HeaderMap, params: &Params) -> Result<PresentedCredentials, ApiError> {
    let mut out = PresentedCredentials {
        client_id: one(params, "client_id")?.map(String::from),
        post_secret: one(params, "client_secret")?.map(String::from),
        ..Default::default()
    };
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let bad = || OAuthError::invalid_client("malformed Basic credentials");
        let Some(encoded) = auth.strip_prefix("Basic ").or_else(|| auth.strip_prefix("basic ")) else {
            return Err(bad().into());
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let decode =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        out.basic = Some((decode(id).ok_or_else(bad)?, decode(secret).ok_or_else(bad)?));
    }
    match (one(params, "client_assertion_type")?, one(params, "client_assertion")?) {
        (Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(a)) => {
            out.assertion = Some(a.to_string())
        }
        (None, None) => {}
        _ => {
            return Err(
                OAuthError::invalid_request("unsupported client_assertion_type or missing client_assertion").into()
            );
        }
    }
    Ok(out)
}
