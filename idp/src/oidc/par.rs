//! `/par` (RFC 9126): an authenticated client pushes its authorization
//! request and receives a single-use `request_uri` (`domain::tokens::par`).
use super::error::{ApiError, no_store};
use super::form;
use crate::crypto::jws;
use crate::domain::clients::PresentedCredentials;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
    let audience = assertion_audience(state, &creds);
    let client = state.clients.authenticate(&creds, &audience, &state.config.issuer).await?;
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

/// RFC 9126 §2: a client assertion pushed here may name the issuer, the token
/// endpoint or this endpoint as its audience (libraries such as authlib sign
/// one assertion for the token endpoint and use it everywhere). The client
/// check accepts the issuer and one endpoint: this picks the token endpoint
/// when the assertion names it and not this one. Nothing is trusted from the
/// unverified JWT beyond that choice; every check still runs.
fn assertion_audience(state: &AppState, creds: &PresentedCredentials) -> String {
    let par = state.endpoint("/par");
    let token = state.endpoint("/token");
    let names = |aud: &Value, url: &str| match aud {
        Value::String(a) => a == url,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(url)),
        _ => false,
    };
    let for_token = creds
        .assertion
        .as_deref()
        .and_then(jws::parse)
        .and_then(|p| p.payload.get("aud").cloned())
        .is_some_and(|aud| names(&aud, &token) && !names(&aud, &par));
    if for_token { token } else { par }
}
