//! `/revoke` (RFC 7009). Answers 200 for unknown tokens (§2.2) but 503 when
//! storage fails, so a client never believes a revocation that did not happen.
use super::error::{ApiError, no_store};
use super::form;
use crate::domain::OAuthError;
use crate::domain::tokens::grants;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match revoke(&state, &headers, &body).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

async fn revoke(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let params = form::parse_body(headers, body)?;
    form::no_duplicates(&params)?;
    let creds = super::mtls::credentials(state, headers, &params)?;
    let client = super::authenticate_client(state, &creds, "/revoke").await?;
    let token = form::one(&params, "token")?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let hint = form::one(&params, "token_type_hint")?;
    if let Some(h) = hint
        && !matches!(h, "access_token" | "refresh_token")
    {
        return Err(
            OAuthError::new("unsupported_token_type", "token_type_hint must be access_token or refresh_token").into()
        );
    }
    if let Some((_, g)) = grants::refresh_lookup(&state.store, &state.hasher, token).await? {
        if g.client_id == client.client_id {
            grants::revoke_grant(&state.store, &g.id, state.clock.now()).await?;
        }
        return Ok(());
    }
    if let Some(claims) = state.tokens.verify_own(token, "at+jwt", false)
        && claims.get("client_id").and_then(Value::as_str) == Some(client.client_id.as_str())
    {
        state.tokens.revoke_access_token(&state.store, &claims).await?;
    }
    Ok(())
}
