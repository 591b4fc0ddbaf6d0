//! `POST /api/miniprogram/{upstream}/login` (A1, issue 18): a mini-program
//! inside WeChat, Alipay or Baidu sends its in-app login code — and, in
//! WeChat, the phone code from `getPhoneNumber` — as JSON
//! `{"code": "...", "phone_code": "...", "scope": "openid offline_access"}`
//! and receives a token response for the upstream's `mini_program_client`
//! (a public client). Errors are OAuth-style JSON (RFC 6749 §5.2); a vendor
//! failure is `invalid_grant` (bad or used code) or `temporarily_unavailable`.
use super::error::{ApiError, no_store};
use super::token::{TokenResponse, respond_for_grant};
use crate::domain::OAuthError;
use crate::domain::authn::brokering::Verified;
use crate::domain::authn::mini_program::{self, AppLogin, Policy};
use crate::ports::upstream::UpstreamError;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    phone_code: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let result = run(&state, &name, &crate::kit::cookies::client_ip(Some(addr)), &body).await;
    crate::kit::metrics::token("mini_program", if result.is_ok() { "issued" } else { "refused" });
    match result {
        Ok(r) => no_store(Json(r).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn run(state: &AppState, name: &str, ip: &str, body: &[u8]) -> Result<TokenResponse, ApiError> {
    let unknown = || OAuthError::invalid_request("no mini-program login through this upstream");
    let up = state.config.upstreams.get(name).ok_or_else(unknown)?;
    let client_id = up.mini_program_client.as_deref().ok_or_else(unknown)?;
    let client = state.clients.find(client_id).await?.ok_or_else(|| {
        tracing::error!("upstream {name}: mini_program_client {client_id} is not a registered client");
        OAuthError::new("server_error", "the mini-program client is not registered")
    })?;
    let req: LoginBody =
        serde_json::from_slice(body).map_err(|_| OAuthError::invalid_request("the body must be a JSON object"))?;
    if req.code.is_empty() {
        return Err(OAuthError::invalid_request("code is required").into());
    }
    let now = state.clock.now();
    let identity = crate::ports::upstream::mini_program(&state.http, up, &req.code, req.phone_code.as_deref(), now)
        .await
        .map_err(|e| {
            tracing::warn!("upstream {name} mini-program: {e}");
            match e {
                UpstreamError::CodeExpired(_) => OAuthError::invalid_grant("the login code is invalid or expired"),
                UpstreamError::Signature(_) => {
                    OAuthError::new("temporarily_unavailable", "the vendor's answer failed its signature check")
                }
                _ => OAuthError::new("temporarily_unavailable", "the vendor refused or is unavailable"),
            }
        })?;
    let verified = Verified {
        upstream: name,
        issuer: &identity.issuer,
        subject: &identity.subject,
        verified_phone: identity.verified_phone.as_deref(),
        trust_phone: up.trust_phone,
        auto_register: up.auto_register,
    };
    let policy = Policy {
        assurance: &state.config.assurance,
        acr_prefix: &state.config.acr_prefix,
        grant_ttl: state.config.tokens.refresh_token_ttl,
    };
    let login = AppLogin { verified, scope: req.scope.as_deref(), ip, now };
    let g = mini_program::sign_in(&state.store, &client, policy, login).await?;
    respond_for_grant(state, &client, &g, false, Default::default()).await
}
