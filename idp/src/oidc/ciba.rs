//! `/bc-authorize` (CIBA Core §7), the CIBA grant at `/token` (§10.1) and
//! the ping-mode notification (§10.2). The rules are in
//! `domain::tokens::ciba`; the citizen app decides through the scan API
//! (`web::api::scan_api`), which calls [`ticket_decided`].
use super::error::{ApiError, no_store};
use super::form;
use crate::domain::OAuthError;
use crate::domain::clients::Client;
use crate::domain::tokens::ciba::{AuthRequest, Settings};
use crate::server::AppState;
use crate::store::entities::grant;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::net::SocketAddr;

fn settings(state: &AppState) -> Settings<'_> {
    Settings {
        acr_prefix: &state.config.acr_prefix,
        assurance: &state.config.assurance,
        refresh_token_ttl: state.config.tokens.refresh_token_ttl,
    }
}

pub async fn handler(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match start(&state, addr, &headers, &body).await {
        Ok(r) => no_store(r),
        Err(e) => e.into_response(),
    }
}

async fn start(state: &AppState, addr: SocketAddr, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let params = form::parse_body(headers, body)?;
    form::no_duplicates(&params)?;
    let creds = super::mtls::credentials(state, headers, &params)?;
    let client = super::authenticate_client(state, &creds, "/bc-authorize").await?;
    if form::one(&params, "request")?.is_some() {
        return Err(OAuthError::invalid_request("signed authentication requests are not supported").into());
    }
    let get = |name: &str| form::one(&params, name);
    let ip = crate::kit::cookies::client_ip(Some(addr));
    let req = AuthRequest {
        scope: get("scope")?,
        login_hint: get("login_hint")?,
        id_token_hint: get("id_token_hint")?,
        login_hint_token: get("login_hint_token")?,
        binding_message: get("binding_message")?,
        acr_values: get("acr_values")?,
        requested_expiry: get("requested_expiry")?,
        client_notification_token: get("client_notification_token")?,
        requester_ip: &ip,
    };
    let now = state.clock.now();
    let s = state.ciba.start(&state.tokens, &state.users, &client, req, settings(state), now).await?;
    Ok(Json(json!({ "auth_req_id": s.auth_req_id, "expires_in": s.expires_in, "interval": s.interval }))
        .into_response())
}

/// The client's token request: the grant the person approved, made once.
pub async fn redeem(state: &AppState, client: &Client, params: &form::Params) -> Result<grant::Model, ApiError> {
    let id = form::one(params, "auth_req_id")?.ok_or_else(|| OAuthError::invalid_request("auth_req_id is required"))?;
    Ok(state.ciba.redeem(client, id, settings(state), state.clock.now()).await?)
}

/// The citizen app decided the ticket `ticket_id`: in ping mode, tell the
/// client at its notification endpoint (CIBA Core §10.2), best effort and
/// retried in the background; the client then takes the tokens at `/token`.
pub async fn ticket_decided(state: &AppState, ticket_id: &str) {
    let ping = match state.ciba.decided(ticket_id, state.clock.now()).await {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("ciba ping: {e}");
            return;
        }
    };
    let http = state.http.clone();
    tokio::spawn(async move {
        let body = json!({ "auth_req_id": ping.auth_req_id });
        for attempt in 0..3u64 {
            let sent = http.post(&ping.endpoint).bearer_auth(&ping.token).json(&body).send().await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!("ciba ping to {}: HTTP {}", ping.endpoint, r.status()),
                Err(e) => tracing::warn!("ciba ping to {}: {e}", ping.endpoint),
            }
            tokio::time::sleep(std::time::Duration::from_millis(500 * (attempt + 1))).await;
        }
    });
}
