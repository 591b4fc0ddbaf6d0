//! The relying-party side of identity brokering (A3): this provider signs
//! people in at an upstream OpenID Provider with the `openidconnect` crate,
//! as `demo.rs` does against ourselves — discovery, authorization code with
//! PKCE (S256) and a nonce, then an ID token verified against the upstream
//! JWKS (signature ES256/RS256, `iss`, `aud`, `exp`, `nonce`).
//!
//! WeChat, Alipay and Baidu do not speak OpenID Connect: `kind` selects
//! their own protocols (modules `wechat`, `alipay`, `baidu`) behind the
//! same `begin` / `finish`.
pub mod alipay;
pub mod baidu;
pub mod wechat;

use crate::config::UpstreamConfig;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

/// Why an upstream sign-in failed. The message goes to the log, never to
/// the page (it may carry upstream details).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream discovery failed: {0}")]
    Discovery(String),
    #[error("upstream token request failed: {0}")]
    Token(String),
    #[error("upstream ID token rejected: {0}")]
    IdToken(String),
    #[error("upstream userinfo failed: {0}")]
    UserInfo(String),
    /// The code was invalid, used or expired (the person may start again).
    #[error("upstream code invalid or expired: {0}")]
    CodeExpired(String),
    /// A signature did not verify (ours at the vendor, or the vendor's here).
    #[error("upstream signature check failed: {0}")]
    Signature(String),
    /// Any other vendor error code.
    #[error("upstream vendor error: {0}")]
    Vendor(String),
}

impl UpstreamError {
    /// The locale key of the page that says what happened.
    pub fn page_key(&self) -> &'static str {
        match self {
            UpstreamError::CodeExpired(_) => "upstream_code_expired",
            UpstreamError::Signature(_) => "upstream_bad_signature",
            UpstreamError::Vendor(_) => "upstream_vendor_error",
            _ => "upstream_failed",
        }
    }
}

/// Fresh `state` (and unused nonce/verifier, which the flow table keeps) for
/// a vendor without OpenID Connect.
fn fresh() -> Authorization {
    Authorization {
        url: String::new(),
        state: crate::crypto::random_token(24),
        nonce: crate::crypto::random_token(16),
        verifier: crate::crypto::random_token(32),
    }
}

/// The vendor's API base (`api_url` overrides it, e.g. for a proxy).
fn api_base(up: &UpstreamConfig, default: &str) -> String {
    up.api_url.clone().unwrap_or_else(|| default.to_string()).trim_end_matches('/').to_string()
}

fn authorize_base(up: &UpstreamConfig, default: &str) -> String {
    up.authorize_url.clone().unwrap_or_else(|| default.to_string())
}

/// Where to send the browser, and what to keep server-side for the callback.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// The upstream account, as its verified ID token (and userinfo) tell.
#[derive(Debug, Clone)]
pub struct UpstreamIdentity {
    pub issuer: String,
    pub subject: String,
    /// The phone number only when the upstream says it is verified.
    pub verified_phone: Option<String>,
    /// When the person last authenticated there, and when the ID token was
    /// issued — both by the upstream's clock (re-verification freshness).
    pub auth_time: Option<i64>,
    pub issued_at: i64,
}

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

async fn discover(http: &reqwest::Client, up: &UpstreamConfig, redirect_uri: &str) -> Result<Client, UpstreamError> {
    let fail = |e: &dyn std::fmt::Display| UpstreamError::Discovery(e.to_string());
    let issuer = IssuerUrl::new(up.issuer.clone()).map_err(|e| fail(&e))?;
    // The crate checks that the document's `issuer` is exactly this one.
    let meta = CoreProviderMetadata::discover_async(issuer, http).await.map_err(|e| fail(&e))?;
    Ok(CoreClient::from_provider_metadata(
        meta,
        ClientId::new(up.client_id.clone()),
        Some(ClientSecret::new(up.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(|e| fail(&e))?))
}

/// Builds the upstream authorization URL with fresh state, nonce and PKCE.
/// `reauthenticate` asks the upstream for a new sign-in now (`prompt=login`,
/// `max_age=0`, which also makes `auth_time` mandatory — OIDC Core §3.1.2.1).
pub async fn begin(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    redirect_uri: &str,
    ui_locales: Option<&str>,
    reauthenticate: bool,
) -> Result<Authorization, UpstreamError> {
    match up.kind.as_str() {
        "wechat" => return wechat::begin(up, redirect_uri),
        "alipay" => return alipay::begin(up, redirect_uri),
        "baidu" => return baidu::begin(up, redirect_uri),
        _ => {}
    }
    let client = discover(http, up, redirect_uri).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge);
    for scope in up.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if let Some(locales) = ui_locales {
        request = request.add_extra_param("ui_locales", locales.to_string());
    }
    if reauthenticate {
        request = request.add_prompt(CoreAuthPrompt::Login).set_max_age(std::time::Duration::ZERO);
    }
    let (url, state, nonce) = request.url();
    Ok(Authorization {
        url: url.to_string(),
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
    })
}

/// Mini-program login (A1): the in-app login code redeemed at the vendor
/// (`jscode2session`, `alipay.system.oauth.token`, Baidu
/// `jscode2sessionkey`); with a WeChat `phone_code`, the phone number read
/// through the mini-program phone API (verified by WeChat).
pub async fn mini_program(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    code: &str,
    phone_code: Option<&str>,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    match up.kind.as_str() {
        "wechat" => {
            let mut id = wechat::mini_program(http, up, code, now).await?;
            if let Some(pc) = phone_code.filter(|c| !c.is_empty()) {
                id.verified_phone = Some(wechat::phone_number(http, up, pc).await?);
            }
            Ok(id)
        }
        "alipay" => alipay::finish(http, up, code, now).await,
        "baidu" => baidu::smart_program(http, up, code, now).await,
        _ => Err(UpstreamError::Vendor(format!("kind `{}` has no mini-program login", up.kind))),
    }
}

/// Redeems the code and verifies the ID token (its expiry at `now`, our
/// clock). Userinfo is asked only when the phone matters (`want_phone`)
/// and the ID token did not carry it.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    http: &reqwest::Client,
    up: &UpstreamConfig,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
    nonce: &str,
    want_phone: bool,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    match up.kind.as_str() {
        "wechat" => return wechat::finish(http, up, code, now).await,
        "alipay" => return alipay::finish(http, up, code, now).await,
        "baidu" => return baidu::finish(http, up, redirect_uri, code, now).await,
        _ => {}
    }
    let client = discover(http, up, redirect_uri).await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| UpstreamError::Token(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(http)
        .await
        .map_err(|e| UpstreamError::Token(format!("{e:?}")))?;
    let id_token = token.id_token().ok_or_else(|| UpstreamError::IdToken("no ID token in the response".into()))?;
    let id_verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
        .set_time_fn(move || chrono::DateTime::from_timestamp(now, 0).unwrap_or_default());
    let claims = id_token
        .claims(&id_verifier, &Nonce::new(nonce.to_string()))
        .map_err(|e| UpstreamError::IdToken(e.to_string()))?;
    let subject = claims.subject().clone();
    let mut verified_phone = match (claims.phone_number(), claims.phone_number_verified()) {
        (Some(p), Some(true)) => Some(p.as_str().to_string()),
        _ => None,
    };
    if want_phone && verified_phone.is_none() {
        let request = client
            .user_info(token.access_token().clone(), Some(subject.clone()))
            .map_err(|e| UpstreamError::UserInfo(e.to_string()))?;
        // The crate checks that userinfo's `sub` is the ID token's (OIDC Core §5.3.2).
        let info: CoreUserInfoClaims =
            request.request_async(http).await.map_err(|e| UpstreamError::UserInfo(format!("{e:?}")))?;
        if let (Some(p), Some(true)) = (info.phone_number(), info.phone_number_verified()) {
            verified_phone = Some(p.as_str().to_string());
        }
    }
    Ok(UpstreamIdentity {
        issuer: claims.issuer().as_str().to_string(),
        subject: subject.as_str().to_string(),
        verified_phone,
        auth_time: claims.auth_time().map(|t| t.timestamp()),
        issued_at: claims.issue_time().timestamp(),
    })
}
