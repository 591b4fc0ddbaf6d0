//! `/oauth/register` (RFC 7591) and `/oauth/register/{client_id}` (RFC
//! 7592): JSON in, JSON out; the initial access token or the registration
//! access token comes as a Bearer token. Every rule is
//! `domain::clients::registration`.
use super::error::no_store;
use crate::domain::DomainError;
use crate::domain::clients::registration::{self, Registered};
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn body_json(body: &[u8]) -> Result<Value, DomainError> {
    serde_json::from_slice(body).map_err(|_| {
        DomainError::OAuth(crate::domain::OAuthError::new(
            "invalid_client_metadata",
            "the request body must be a JSON object of client metadata",
        ))
    })
}

/// RFC 7591 §3.2.2 errors; a missing or wrong token is a Bearer challenge
/// (RFC 6750 §3), a storage failure 503.
fn error(e: &DomainError) -> Response {
    let (status, code, description) = match e {
        DomainError::OAuth(o) => {
            let status = match o.code {
                "invalid_token" => StatusCode::UNAUTHORIZED,
                "access_denied" => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            (status, o.code, o.description.as_str())
        }
        DomainError::Store(err) => {
            tracing::error!("registration: storage error: {err}");
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "storage is unavailable, retry later")
        }
        DomainError::Internal(err) => {
            tracing::error!("registration: {err:#}");
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
        }
    };
    let mut res = (status, Json(json!({ "error": code, "error_description": description }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!("Bearer realm=\"idp\", error=\"{code}\"");
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    no_store(res)
}

fn answer(state: &AppState, status: StatusCode, r: Result<Registered, DomainError>) -> Response {
    match r {
        Ok(reg) => no_store((status, Json(reg.response(&state.config.issuer))).into_response()),
        Err(e) => error(&e),
    }
}

fn token(headers: &HeaderMap) -> Option<&str> {
    super::userinfo::bearer_token(headers)
}

/// POST: registers a client with an initial access token.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let metadata = match body_json(&body) {
        Ok(v) => v,
        Err(e) => return error(&e),
    };
    let policy = &state.config.protocol.registration;
    let r = registration::register(&state.clients, policy, token(&headers), &metadata).await;
    answer(&state, StatusCode::CREATED, r)
}

/// GET: the registration as it stands.
pub async fn read(State(state): State<AppState>, Path(client_id): Path<String>, headers: HeaderMap) -> Response {
    let r = registration::read(&state.clients, &client_id, token(&headers)).await;
    answer(&state, StatusCode::OK, r)
}

/// PUT: replaces the registration.
pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metadata = match body_json(&body) {
        Ok(v) => v,
        Err(e) => return error(&e),
    };
    let policy = &state.config.protocol.registration;
    let r = registration::update(&state.clients, policy, &client_id, token(&headers), &metadata).await;
    answer(&state, StatusCode::OK, r)
}

/// DELETE: the client deletes itself (204).
pub async fn delete(State(state): State<AppState>, Path(client_id): Path<String>, headers: HeaderMap) -> Response {
    match registration::delete(&state.clients, &client_id, token(&headers)).await {
        Ok(()) => no_store(StatusCode::NO_CONTENT.into_response()),
        Err(e) => error(&e),
    }
}
