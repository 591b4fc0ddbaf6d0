//! WeChat sign-in: website QR code (Open Platform `connect/qrconnect`,
//! scope `snsapi_login`) or official-account H5 (`connect/oauth2/authorize`,
//! `snsapi_userinfo` / `snsapi_base`), then `sns/oauth2/access_token` and
//! `sns/userinfo`; mini-programs exchange a `wx.login` code at
//! `sns/jscode2session`. The subject is the `unionid` when WeChat gives one
//! (the same person across the website, official account and
//! mini-programs of one Open Platform account), else the app's `openid`.
use super::{Authorization, UpstreamError, UpstreamIdentity, api_base, authorize_base, fresh};
use crate::config::UpstreamConfig;
use crate::net::Traced;

pub const QRCONNECT: &str = "https://open.weixin.qq.com/connect/qrconnect";
pub const OAUTH2_AUTHORIZE: &str = "https://open.weixin.qq.com/connect/oauth2/authorize";
pub const API: &str = "https://api.weixin.qq.com";
/// The namespace of `unionid`s; an `openid` is namespaced by its app.
pub const UNIONID_ISSUER: &str = "https://open.weixin.qq.com";

fn scope(up: &UpstreamConfig) -> &str {
    up.scopes.iter().map(String::as_str).find(|s| s.starts_with("snsapi_")).unwrap_or("snsapi_login")
}

pub fn begin(up: &UpstreamConfig, redirect_uri: &str) -> Result<Authorization, UpstreamError> {
    let scope = scope(up);
    let default = if scope == "snsapi_login" { QRCONNECT } else { OAUTH2_AUTHORIZE };
    let auth = fresh();
    let mut url = url::Url::parse(&authorize_base(up, default)).map_err(|e| UpstreamError::Discovery(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("appid", &up.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", &auth.state);
    // WeChat documents the fragment as required on both pages.
    url.set_fragment(Some("wechat_redirect"));
    Ok(Authorization { url: url.to_string(), ..auth })
}

/// WeChat answers HTTP 200 with `errcode` on failure.
fn check(v: &serde_json::Value) -> Result<(), UpstreamError> {
    match v["errcode"].as_i64() {
        None | Some(0) => Ok(()),
        // Invalid, used or expired code (40029, 40163, 42003; 41008 none).
        Some(code @ (40029 | 40163 | 42003 | 41008)) => {
            Err(UpstreamError::CodeExpired(format!("wechat errcode {code}")))
        }
        Some(code) => Err(UpstreamError::Vendor(format!("wechat errcode {code}: {}", v["errmsg"]))),
    }
}

async fn get(http: &reqwest::Client, url: String) -> Result<serde_json::Value, UpstreamError> {
    let res = http.get(url).traced().send().await.map_err(|e| UpstreamError::Token(e.to_string()))?;
    let v: serde_json::Value = res.json().await.map_err(|e| UpstreamError::Token(e.to_string()))?;
    check(&v)?;
    Ok(v)
}

fn identity(
    up: &UpstreamConfig,
    unionid: Option<&str>,
    openid: Option<&str>,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let (issuer, subject) = match (unionid.filter(|u| !u.is_empty()), openid.filter(|o| !o.is_empty())) {
        (Some(u), _) => (UNIONID_ISSUER.to_string(), u.to_string()),
        (None, Some(o)) => (format!("{UNIONID_ISSUER}/{}", up.client_id), o.to_string()),
        (None, None) => return Err(UpstreamError::UserInfo("wechat gave neither unionid nor openid".into())),
    };
    Ok(UpstreamIdentity { issuer, subject, verified_phone: None, auth_time: None, issued_at: now })
}

pub async fn finish(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    code: &str,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let api = api_base(up, API);
    let mut url =
        url::Url::parse(&format!("{api}/sns/oauth2/access_token")).map_err(|e| UpstreamError::Token(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("appid", &up.client_id)
        .append_pair("secret", &up.client_secret)
        .append_pair("code", code)
        .append_pair("grant_type", "authorization_code");
    let token = get(http, url.to_string()).await?;
    let (Some(access_token), Some(openid)) = (token["access_token"].as_str(), token["openid"].as_str()) else {
        return Err(UpstreamError::Token("no access_token/openid".into()));
    };
    let mut unionid = token["unionid"].as_str().map(String::from);
    // `snsapi_base` cannot read userinfo; the others carry the unionid there.
    if unionid.is_none() && scope(up) != "snsapi_base" {
        let mut url =
            url::Url::parse(&format!("{api}/sns/userinfo")).map_err(|e| UpstreamError::UserInfo(e.to_string()))?;
        url.query_pairs_mut().append_pair("access_token", access_token).append_pair("openid", openid);
        let info = get(http, url.to_string()).await?;
        if info["openid"].as_str() != Some(openid) {
            return Err(UpstreamError::UserInfo("userinfo names another openid".into()));
        }
        unionid = info["unionid"].as_str().map(String::from);
    }
    identity(up, unionid.as_deref(), Some(openid), now)
}

/// Mini-program login: the `wx.login` code redeemed at `jscode2session`.
pub async fn mini_program(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    code: &str,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let api = api_base(up, API);
    let mut url =
        url::Url::parse(&format!("{api}/sns/jscode2session")).map_err(|e| UpstreamError::Token(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("appid", &up.client_id)
        .append_pair("secret", &up.client_secret)
        .append_pair("js_code", code)
        .append_pair("grant_type", "authorization_code");
    let v = get(http, url.to_string()).await?;
    identity(up, v["unionid"].as_str(), v["openid"].as_str(), now)
}

/// The mini-program phone API: an app access token (`cgi-bin/token`), then
/// `wxa/business/getuserphonenumber` with the phone code from
/// `getPhoneNumber`. The number is WeChat-verified; it is returned in E.164
/// form (`+86…`).
pub async fn phone_number(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    phone_code: &str,
) -> Result<String, UpstreamError> {
    let api = api_base(up, API);
    let mut url = url::Url::parse(&format!("{api}/cgi-bin/token")).map_err(|e| UpstreamError::Token(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("grant_type", "client_credential")
        .append_pair("appid", &up.client_id)
        .append_pair("secret", &up.client_secret);
    let token = get(http, url.to_string()).await?;
    let Some(access) = token["access_token"].as_str() else {
        return Err(UpstreamError::Token("no access_token".into()));
    };
    let mut url = url::Url::parse(&format!("{api}/wxa/business/getuserphonenumber"))
        .map_err(|e| UpstreamError::UserInfo(e.to_string()))?;
    url.query_pairs_mut().append_pair("access_token", access);
    let res = http.post(url).json(&serde_json::json!({ "code": phone_code })).traced().send().await;
    let v: serde_json::Value = res
        .map_err(|e| UpstreamError::UserInfo(e.to_string()))?
        .json()
        .await
        .map_err(|e| UpstreamError::UserInfo(e.to_string()))?;
    check(&v)?;
    let info = &v["phone_info"];
    match (info["countryCode"].as_str(), info["purePhoneNumber"].as_str()) {
        (Some(cc), Some(n)) if !n.is_empty() => Ok(format!("+{cc}{n}")),
        _ => Err(UpstreamError::UserInfo("wechat gave no phone_info".into())),
    }
}
