//! `/par` (RFC 9126): an authenticated client pushes its authorization
//! request and receives a single-use `request_uri` (`domain::tokens::par`).
use super::error::{ApiError, no_store};
use super::form;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Parameters that authenticate the client, not part of the request.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match push(&state, &headers, &body).await {
        Ok(r) => no_store(r),
        Err(e) => e.into_response(),
    }
}

async fn push(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let params = form::parse_body(headers, body)?;
    form::no_duplicates(&params)?;
    let creds = super::mtls::credentials(state, headers, &params)?;
    let client = super::authenticate_client(state, &creds, "/par").await?;
    let request: Vec<(String, String)> =
        params.into_iter().filter(|(k, _)| !CREDENTIALS.contains(&k.as_str())).collect();
    // RFC 9449 §10.1: a DPoP proof here binds the code to its key.
    let jkt = super::dpop::par_proof(state, headers).await?;
    let ttl = state.config.protocol.par_ttl;
    let uri = crate::domain::tokens::par::push(
        &state.store,
        &client,
        request,
        jkt.as_deref(),
        &state.config.issuer,
        ttl,
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "request_uri": uri, "expires_in": ttl }))).into_response())
}
