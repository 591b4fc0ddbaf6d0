//! `/device_authorization` (RFC 8628 §3.1–3.2) and the device-code grant
//! at `/token` (§3.4–3.5); the citizen's page is `web::auth::device`.
use super::error::{ApiError, no_store};
use super::form;
use crate::domain::OAuthError;
use crate::domain::clients::Client;
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::tokens::device;
use crate::domain::tokens::grants::{self, NewGrant};
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// How long a device code lives, and the first polling interval.
const TTL: i64 = 600;
const INTERVAL: i64 = 5;

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match start(&state, &headers, &body).await {
        Ok(r) => no_store(r),
        Err(e) => e.into_response(),
    }
}

async fn start(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let params = form::parse_body(headers, body)?;
    form::no_duplicates(&params)?;
    let creds = super::mtls::credentials(state, headers, &params)?;
    let client = super::authenticate_client(state, &creds, "/device_authorization").await?;
    if !client.allows_grant(device::GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client("this client may not use the device grant").into());
    }
    let scope = form::one(&params, "scope")?.map(ScopeSet::parse).unwrap_or_else(|| ScopeSet::parse("openid"));
    if !scope.is_subset_of(&client.scopes()) {
        return Err(OAuthError::invalid_scope("a requested scope is not allowed for this client").into());
    }
    let now = state.clock.now();
    let s =
        device::start(&state.store, &state.hasher, &client.client_id, &scope.to_string_joined(), TTL, INTERVAL, now)
            .await?;
    let uri = state.endpoint("/device");
    Ok(Json(json!({
        "device_code": s.device_code,
        "user_code": s.user_code,
        "verification_uri": uri,
        "verification_uri_complete": format!("{uri}?user_code={}", s.user_code),
        "expires_in": s.expires_in,
        "interval": s.interval,
    }))
    .into_response())
}

/// The device's poll: the grant the citizen approved, made once.
pub async fn redeem(state: &AppState, client: &Client, params: &form::Params) -> Result<grants_model::Model, ApiError> {
    let code =
        form::one(params, "device_code")?.ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    let now = state.clock.now();
    let row = device::poll(&state.store, &state.hasher, code, &client.client_id, now).await?;
    let g = grants::create_direct(
        &state.store,
        NewGrant {
            client_id: client.client_id.clone(),
            user_id: row.user_id.unwrap_or_default(),
            sid: row.sid.clone(),
            scope: row.scope,
            claims: None,
            nonce: None,
            auth_time: row.auth_time.unwrap_or(now),
            acr: row.acr.unwrap_or_default(),
            amr: row.amr.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default(),
            enterprise_id: None,
            delegation_id: None,
            sector: client.pairwise_sector().map(str::to_string),
        },
        state.config.tokens.refresh_token_ttl,
        now,
    )
    .await?;
    if let Some(sid) = &row.sid {
        state.session_clients.record(&state.store, sid, &client.client_id).await?;
    }
    Ok(g)
}

use crate::store::entities::grant as grants_model;
