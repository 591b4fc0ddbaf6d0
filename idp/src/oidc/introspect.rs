//! `/introspect` (RFC 7662), for authenticated confidential clients. A
//! client sees its own refresh tokens; access tokens are shown to any
//! confidential client (resource servers are clients too).
use super::error::{ApiError, no_store};
use super::form;
use crate::domain::OAuthError;
use crate::domain::tokens::grants;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match introspect(&state, &headers, &body).await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn introspect(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let params = form::parse_body(headers, body)?;
    form::no_duplicates(&params)?;
    let creds = form::credentials(headers, &params)?;
    let client = state.clients.authenticate(&creds, &state.endpoint("/introspect"), &state.config.issuer).await?;
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("public clients cannot introspect").into());
    }
    let token = form::one(&params, "token")?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.clock.now();
    if let Some(mut claims) = state.tokens.check_access_token(&state.store, token, now).await? {
        claims.insert("active".into(), Value::Bool(true));
        // RFC 9449 §6.2: a bound token says so and keeps its `cnf`.
        let token_type = if claims.contains_key("cnf") { "DPoP" } else { "Bearer" };
        claims.insert("token_type".into(), token_type.into());
        claims.remove("gid");
        return Ok(Value::Object(claims));
    }
    if let Some((row, g)) = grants::refresh_lookup(&state.store, &state.hasher, token).await?
        && g.client_id == client.client_id
        && row.used_at.is_none()
        && row.expires_at > now
        && grants::active_grant(&state.store, &g.id, now).await?.is_some()
    {
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": g.client_id,
            "sub": crate::domain::tokens::subjects::of_grant(&g),
            "scope": g.scope,
            "exp": row.expires_at,
            "iat": g.created_at,
            "iss": state.config.issuer,
        }));
    }
    Ok(json!({ "active": false }))
}
