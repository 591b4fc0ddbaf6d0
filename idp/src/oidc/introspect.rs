//! `/introspect` (RFC 7662), for authenticated confidential clients. A
//! client sees its own refresh tokens; access tokens are shown to any
//! confidential client (resource servers are clients too).
use super::error::{ApiError, no_store};
use super::form;
use crate::crypto::jws::Alg;
use crate::domain::OAuthError;
use crate::domain::clients::Client;
use crate::domain::tokens::grants;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// RFC 9701 §4: the media type of a JWT introspection response.
const JWT_TYPE: &str = "application/token-introspection+jwt";

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match introspect(&state, &headers, &body).await {
        Ok((client, v)) => no_store(answer(&state, &headers, &client, v)),
        Err(e) => e.into_response(),
    }
}

/// JSON, or — when the client asks with `Accept` (RFC 9701 §4) or
/// registered `introspection_signed_response_alg` — a JWT signed with the
/// registered algorithm (RS256 by default, RFC 9701 §6).
fn answer(state: &AppState, headers: &HeaderMap, client: &Client, v: Value) -> Response {
    let asked = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .any(|m| m.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(JWT_TYPE)));
    let alg = client.introspection_alg.as_deref().and_then(Alg::parse);
    if !asked && alg.is_none() {
        return Json(v).into_response();
    }
    match state.tokens.introspection_jwt(&client.client_id, alg.unwrap_or(Alg::Rs256), v) {
        Ok(jwt) => ([(header::CONTENT_TYPE, JWT_TYPE)], jwt).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn introspect(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(Client, Value), ApiError> {
    let params = form::parse_body(headers, body)?;
    form::no_duplicates(&params)?;
    let creds = super::mtls::credentials(state, headers, &params)?;
    let client = super::authenticate_client(state, &creds, "/introspect").await?;
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("public clients cannot introspect").into());
    }
    let token = form::one(&params, "token")?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.clock.now();
    if let Some(mut claims) = state.tokens.check_access_token(&state.store, token, now).await? {
        claims.insert("active".into(), Value::Bool(true));
        // RFC 9449 §6.2: a bound token says so and keeps its `cnf`.
        // A certificate-bound token (RFC 8705 §3.2) stays `Bearer`.
        let token_type = if crate::domain::tokens::dpop::bound_jkt(&claims).is_some() { "DPoP" } else { "Bearer" };
        claims.insert("token_type".into(), token_type.into());
        claims.remove("gid");
        return Ok((client, Value::Object(claims)));
    }
    if let Some((row, g)) = grants::refresh_lookup(&state.store, &state.hasher, token).await?
        && g.client_id == client.client_id
        && row.used_at.is_none()
        && row.expires_at > now
        && grants::active_grant(&state.store, &g.id, now).await?.is_some()
    {
        return Ok((
            client,
            json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": g.client_id,
                "sub": crate::domain::tokens::subjects::of_grant(&g),
                "scope": g.scope,
                "exp": row.expires_at,
                "iat": g.created_at,
                "iss": state.config.issuer,
            }),
        ));
    }
    Ok((client, json!({ "active": false })))
}
