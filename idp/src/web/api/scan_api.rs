//! The citizen app's scan API (D1, D2). The app is an ordinary public OIDC
//! client of this provider; its access token must carry the `scan_login`
//! scope, which only an administrator can permit (`idp client allow-scope
//! CLIENT scan_login`), and the permission is re-checked on every call so
//! revoking it takes effect at once.
//!
//! `GET  /api/scan/tickets/{id}`          read: marks it scanned by this device
//! `POST /api/scan/tickets/{id}/confirm`  `{"face_verified": true}` optional
//! `POST /api/scan/tickets/{id}/deny`
//! `GET  /api/scan/requests`              requests waiting for this person
//!                                        without a QR code (CIBA), each
//!                                        described as a read ticket
//!
//! Errors are RFC 6750 / RFC 6749-style JSON: `invalid_token` 401,
//! `insufficient_scope` 403, `invalid_ticket` 404, `expired_ticket` 410,
//! `ticket_unavailable` 409 (another device, already decided or used),
//! `account_mismatch` 403, `person_mismatch` 403 (a face gate waiting for
//! another person's real-name identity), `invalid_request` 400,
//! `temporarily_unavailable` 503.
//!
//! A ticket of a face gate (first enterprise sign-in, agent registration,
//! agent approval, kin binding) carries `detail.action` and what it is
//! about (masked), and is confirmed like a face ticket: the verifier's
//! pass first, then `{"face_verified": true}`.
use crate::domain::authn::scan::{self, AppCaller, Decision, ScanError, ScanTicket};
use crate::domain::clients::app_access::{self, AppAccessError};
use crate::domain::clients::scopes::SCAN_LOGIN;
use crate::net::Location;
use crate::oidc::userinfo::bearer_error;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

fn api_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (status, Json(json!({ "error": code, "error_description": description }))).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!("scan api: {e}");
    api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later")
}

fn scan_error(e: ScanError) -> Response {
    let description = e.to_string();
    match e {
        ScanError::NotFound => api_error(StatusCode::NOT_FOUND, "invalid_ticket", &description),
        ScanError::Expired => api_error(StatusCode::GONE, "expired_ticket", &description),
        ScanError::Taken => api_error(StatusCode::CONFLICT, "ticket_unavailable", &description),
        ScanError::WrongAccount => api_error(StatusCode::FORBIDDEN, "account_mismatch", &description),
        ScanError::FaceResultMissing => api_error(StatusCode::BAD_REQUEST, "invalid_request", &description),
        ScanError::WrongPerson => api_error(StatusCode::FORBIDDEN, "person_mismatch", &description),
        ScanError::FaceCheckRequired => api_error(
            StatusCode::CONFLICT,
            "face_check_required",
            "no face check passed recently: run POST /api/identity/face first",
        ),
        ScanError::Db(e) => unavailable(e),
    }
}

/// The signed-in app behind the bearer token, or the RFC 6750 answer
/// (`domain::clients::app_access`, shared with the face API).
async fn caller(state: &AppState, headers: &HeaderMap, method: &str, path: &str) -> Result<AppCaller, Response> {
    // RFC 9449: a DPoP-bound token needs its proof here too.
    let Some(token) = crate::oidc::dpop::resource_token(state, headers, method, path).await? else {
        let mut res = StatusCode::UNAUTHORIZED.into_response();
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"idp\""));
        return Err(res);
    };
    let now = state.clock.now();
    match app_access::person_app(&state.store, &state.tokens, &state.users, token, SCAN_LOGIN, now).await {
        Ok(app) => Ok(app),
        Err(e @ AppAccessError::InvalidToken) => {
            Err(bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string()))
        }
        Err(e @ AppAccessError::InsufficientScope(_)) => {
            Err(bearer_error(StatusCode::FORBIDDEN, "insufficient_scope", &e.to_string()))
        }
        Err(AppAccessError::Db(e)) => Err(unavailable(e)),
    }
}

/// What the app shows before the person decides: which site is asking,
/// from which browser (address, rough location), when, and what for.
async fn describe(state: &AppState, headers: &HeaderMap, t: &ScanTicket) -> Value {
    let client = match &t.client_id {
        Some(id) => state.clients.find(id).await.ok().flatten().map(|c| json!({ "id": c.client_id, "name": c.name })),
        None => None,
    };
    json!({
        "ticket": t.id,
        "purpose": t.purpose.as_str(),
        "status": t.phase(state.clock.now()).as_str(),
        "issuer": state.config.issuer,
        "client": client,
        "browser": browser_of(state, headers, &t.browser_ip),
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "detail": t.detail.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
        "face_required": t.needs_face(),
        "requested": requested(state, headers, t),
    })
}

/// The data a CIBA request asks for, in the app's language: one line per
/// scope, so the person sees what the app will receive before approving.
fn requested(state: &AppState, headers: &HeaderMap, t: &ScanTicket) -> Value {
    let detail = t.detail.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok());
    let Some(scopes) = detail.as_ref().and_then(|d| d.get("scope")).and_then(Value::as_array) else {
        return Value::Null;
    };
    let locale = crate::web::cookies::locale(state, headers, None);
    let lines: Vec<Value> = scopes
        .iter()
        .filter_map(Value::as_str)
        .map(|s| json!({ "scope": s, "text": state.pages.text(locale, &format!("scope_{s}")) }))
        .collect();
    Value::Array(lines)
}

/// The waiting browser's address and where it roughly is, in the app's
/// language (its `Accept-Language`), with a machine-readable kind.
fn browser_of(state: &AppState, headers: &HeaderMap, ip: &str) -> Value {
    let locale = crate::web::cookies::locale(state, headers, None);
    let place = state.regions.locate(ip);
    let location = match &place {
        Location::Local => state.pages.text(locale, "scan_location_local"),
        Location::Unknown => state.pages.text(locale, "scan_location_unknown"),
        Location::Region(name) | Location::Network(name) => name.clone(),
    };
    json!({ "ip": ip, "location": location, "location_kind": place.kind() })
}

fn ok_json(v: Value) -> Response {
    let mut res = Json(v).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn read(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let app = match caller(&state, &headers, "GET", &format!("/api/scan/tickets/{id}")).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    match scan::scan(&state.store, &id, &app, state.clock.now()).await {
        Ok(t) => {
            state.scan_waiters.wake(&t.id);
            ok_json(describe(&state, &headers, &t).await)
        }
        Err(e) => scan_error(e),
    }
}

#[derive(Deserialize, Default)]
struct ConfirmBody {
    /// The app's face check result (the app runs the verifier, D2).
    #[serde(default)]
    face_verified: Option<bool>,
}

pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let app = match caller(&state, &headers, "POST", &format!("/api/scan/tickets/{id}/confirm")).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let parsed: ConfirmBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConfirmBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(_) => return api_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be a JSON object"),
        }
    };
    // A face result counts only when the verifier recorded a pass moments
    // ago (`POST /api/identity/face`): `scan::decide` looks it up.
    decide(&state, &id, &app, Decision::Confirm { face_passed: parsed.face_verified }).await
}

pub async fn deny(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let app = match caller(&state, &headers, "POST", &format!("/api/scan/tickets/{id}/deny")).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    decide(&state, &id, &app, Decision::Deny).await
}

/// `GET /api/scan/requests`: what waits for this person in the app
/// without a QR code (CIBA requests of relying apps), newest first.
pub async fn waiting(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let app = match caller(&state, &headers, "GET", "/api/scan/requests").await {
        Ok(a) => a,
        Err(res) => return res,
    };
    match scan::waiting_for(&state.store, &app.user_id, state.clock.now()).await {
        Ok(tickets) => {
            let mut out = Vec::with_capacity(tickets.len());
            for t in &tickets {
                out.push(describe(&state, &headers, t).await);
            }
            ok_json(json!({ "requests": out }))
        }
        Err(e) => unavailable(e),
    }
}

async fn decide(state: &AppState, id: &str, app: &AppCaller, decision: Decision) -> Response {
    match scan::decide(&state.store, id, app, decision, state.clock.now()).await {
        Ok(t) => {
            state.scan_waiters.wake(&t.id);
            if t.purpose == scan::Purpose::Backchannel {
                crate::oidc::ciba::ticket_decided(state, &t.id).await;
            }
            ok_json(json!({ "ticket": t.id, "status": t.phase(state.clock.now()).as_str() }))
        }
        Err(e) => scan_error(e),
    }
}
