//! Baidu OAuth 2.0 web sign-in: `oauth/2.0/authorize` → `oauth/2.0/token`
//! → `rest/2.0/passport/users/getInfo`. The subject is Baidu's `unionid`
//! when given (one per person across the developer's apps), else `openid`.
use super::{Authorization, UpstreamError, UpstreamIdentity, api_base, authorize_base, fresh};
use crate::config::UpstreamConfig;
use crate::net::Traced;

pub const AUTHORIZE: &str = "https://openapi.baidu.com/oauth/2.0/authorize";
pub const API: &str = "https://openapi.baidu.com";
pub const ISSUER: &str = "https://openapi.baidu.com";

pub fn begin(up: &UpstreamConfig, redirect_uri: &str) -> Result<Authorization, UpstreamError> {
    let auth = fresh();
    let scope = up.scopes.iter().find(|s| !matches!(s.as_str(), "openid" | "profile" | "phone" | "email"));
    let mut url =
        url::Url::parse(&authorize_base(up, AUTHORIZE)).map_err(|e| UpstreamError::Discovery(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &up.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope.map_or("basic", String::as_str))
        .append_pair("state", &auth.state)
        .append_pair("display", "page");
    Ok(Authorization { url: url.to_string(), ..auth })
}

pub async fn finish(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    redirect_uri: &str,
    code: &str,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let api = api_base(up, API);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", &up.client_id),
        ("client_secret", &up.client_secret),
        ("redirect_uri", redirect_uri),
    ];
    let res = http.post(format!("{api}/oauth/2.0/token")).form(&form).traced().send().await;
    let token: serde_json::Value = res
        .map_err(|e| UpstreamError::Token(e.to_string()))?
        .json()
        .await
        .map_err(|e| UpstreamError::Token(e.to_string()))?;
    match token["error"].as_str() {
        None => {}
        // RFC 6749 §5.2: an invalid, expired or used code.
        Some("invalid_grant") => {
            return Err(UpstreamError::CodeExpired(format!("baidu: {}", token["error_description"])));
        }
        Some(e) => return Err(UpstreamError::Vendor(format!("baidu {e}: {}", token["error_description"]))),
    }
    let Some(access) = token["access_token"].as_str() else {
        return Err(UpstreamError::Token("no access_token".into()));
    };
    let res = http
        .get(format!("{api}/rest/2.0/passport/users/getInfo"))
        .query(&[("access_token", access)])
        .traced()
        .send()
        .await;
    let info: serde_json::Value = res
        .map_err(|e| UpstreamError::UserInfo(e.to_string()))?
        .json()
        .await
        .map_err(|e| UpstreamError::UserInfo(e.to_string()))?;
    if let Some(code) = info["error_code"].as_i64() {
        return Err(UpstreamError::Vendor(format!("baidu error_code {code}: {}", info["error_msg"])));
    }
    let (issuer, subject) = match (info["unionid"].as_str().filter(|s| !s.is_empty()), info["openid"].as_str()) {
        (Some(u), _) => (ISSUER.to_string(), u.to_string()),
        (None, Some(o)) if !o.is_empty() => (format!("{ISSUER}/{}", up.client_id), o.to_string()),
        _ => return Err(UpstreamError::UserInfo("baidu gave neither unionid nor openid".into())),
    };
    Ok(UpstreamIdentity { issuer, subject, verified_phone: None, auth_time: None, issued_at: now })
}

/// Smart-program login API (`spapi.baidu.com`).
pub const SMART_API: &str = "https://spapi.baidu.com";

/// Smart-program login: the `swan.getLoginCode` code redeemed at
/// `oauth/jscode2sessionkey` with the App Key and App Secret (`sk`). Its
/// `openid` is namespaced by the smart program.
pub async fn smart_program(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    code: &str,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let api = api_base(up, SMART_API);
    let form = [("code", code), ("client_id", up.client_id.as_str()), ("sk", up.client_secret.as_str())];
    let res = http.post(format!("{api}/oauth/jscode2sessionkey")).form(&form).traced().send().await;
    let v: serde_json::Value = res
        .map_err(|e| UpstreamError::Token(e.to_string()))?
        .json()
        .await
        .map_err(|e| UpstreamError::Token(e.to_string()))?;
    match v["error"].as_str() {
        None => {}
        Some("invalid_grant") => return Err(UpstreamError::CodeExpired(format!("baidu: {}", v["error_description"]))),
        Some(e) => return Err(UpstreamError::Vendor(format!("baidu {e}: {}", v["error_description"]))),
    }
    match v["openid"].as_str().filter(|o| !o.is_empty()) {
        Some(o) => Ok(UpstreamIdentity {
            issuer: format!("{ISSUER}/{}", up.client_id),
            subject: o.to_string(),
            verified_phone: None,
            auth_time: None,
            issued_at: now,
        }),
        None => Err(UpstreamError::UserInfo("baidu gave no openid".into())),
    }
}
