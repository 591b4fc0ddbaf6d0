//! The face check from the mobile app (`POST /api/identity/face`, Bearer
//! access token with the admin-granted `scan_login` scope) — the app user's
//! own, or with `ticket` the person a gate names, standing in front of the
//! phone (a relative, E2; an agent registering, C2:
//! `face_gate::gate_face_check`) — the browser's "done in the app, continue" step, the
//! in-person assertion page, the operators' counter verification
//! (`/admin/in-person`, L4). What happens to an account that lost its
//! identity in a takeover is the core's (`domain::identity::displaced`).
use crate::domain::assurance;
use crate::domain::assurance::face_gate::{self, GateFace};
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::clients::app_access::{self, AppAccessError};
use crate::domain::clients::scopes::SCAN_LOGIN;
use crate::domain::identity::documents::{Document, DocumentForm};
use crate::domain::identity::{self, BindOutcome, Binder, CounterClerk};
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::oidc::flow::see_other;
use crate::ports::verifier::FaceSample;
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::account::identity::{View, finish, render, result_key, today};
use crate::web::auth::sms_form::{self, Notice};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct FaceRequest {
    #[serde(default)]
    face: String,
    /// A gate's scan ticket: the face is the person's the gate names — a
    /// relative (E2, through the guardian's app) or an agent registering
    /// (C2, through the app holding the ticket).
    #[serde(default)]
    ticket: Option<String>,
}

fn api_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (status, Json(json!({"error": code, "error_description": description}))).into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = axum::http::HeaderValue::from_str(&format!("Bearer realm=\"idp\", error=\"{code}\""))
    {
        res.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, v);
    }
    res
}

/// `POST /api/identity/face` `{"face": "<base64 image>"}` from the app, with
/// the signed-in person's access token. Raises to L3 (or completes a
/// takeover); the sample is passed to the verifier and dropped.
pub async fn api_face(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // RFC 9449: a DPoP-bound token needs its proof here too.
    let token = match crate::oidc::dpop::resource_token(&state, &headers, "POST", "/api/identity/face").await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let Some(token) = token else {
        return api_error(StatusCode::UNAUTHORIZED, "invalid_token", "a Bearer access token is required");
    };
    // The face check runs in the person's name: only the app an
    // administrator permitted `scan_login` may ask for it, exactly as the
    // scan API (`domain::clients::app_access`), never any app holding a user token.
    let now = state.clock.now();
    let app = match app_access::person_app(&state.store, &state.tokens, &state.users, token, SCAN_LOGIN, now).await {
        Ok(app) => app,
        Err(e @ AppAccessError::InvalidToken) => {
            return api_error(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string());
        }
        Err(e @ AppAccessError::InsufficientScope(_)) => {
            return api_error(StatusCode::FORBIDDEN, "insufficient_scope", &e.to_string());
        }
        Err(AppAccessError::Db(_)) => {
            return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later");
        }
    };
    let sub = app.user_id.as_str();
    let req: FaceRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => return api_error(StatusCode::BAD_REQUEST, "invalid_request", "expected {\"face\": base64}"),
    };
    let Some(sample) = FaceSample::from_base64(&req.face) else {
        return api_error(StatusCode::BAD_REQUEST, "invalid_request", "face: base64 image of at most 2 MB");
    };
    if let Some(ticket) = &req.ticket {
        return gate_face(&state, sub, ticket, &sample, now).await;
    }
    let u = match state.users.find(sub).await {
        Ok(Some(u)) => u,
        Ok(None) => return api_error(StatusCode::UNAUTHORIZED, "invalid_token", "no such account"),
        Err(_) => return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
    };
    let ip = sms_form::ip_of(addr);
    let binder = Binder { user: &u, keep_sid: None, ip: Some(&ip), now };
    let r = identity::raise_by_face(&state.store, &state.verifier, &state, &binder, &sample, today(&state)).await;
    drop(sample);
    let r = match r {
        Ok(r) => r,
        Err(_) => return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
    };
    let en = |r: &BindOutcome| state.pages.text("en", result_key(r));
    match r {
        BindOutcome::Done { level, .. } => Json(json!({"result": "pass", "level": level})).into_response(),
        BindOutcome::Refused(o) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"result": o.as_str(), "message": en(&r)}))).into_response()
        }
        BindOutcome::Unavailable => api_error(StatusCode::SERVICE_UNAVAILABLE, "verifier_unavailable", &en(&r)),
        BindOutcome::FaceNotRequired => Json(json!({"result": "not_required", "message": en(&r)})).into_response(),
        other => api_error(StatusCode::CONFLICT, "not_applicable", &en(&other)),
    }
}

/// The face of the person the gate behind `ticket` names, through this
/// app: `{"result": "pass", "for": "relative" | "agent"}` or the refusal.
async fn gate_face(state: &AppState, sub: &str, ticket: &str, sample: &FaceSample, now: i64) -> Response {
    let r = face_gate::gate_face_check(&state.store, &state.verifier, sub, ticket, sample, today(state), now).await;
    let en = |key: &str| state.pages.text("en", key);
    match r {
        Ok(GateFace::Pass(whose)) => Json(json!({"result": "pass", "for": whose})).into_response(),
        Ok(GateFace::NotYours) => {
            api_error(StatusCode::FORBIDDEN, "account_mismatch", "no gate of this app behind the ticket")
        }
        Ok(GateFace::NotRequired) => {
            Json(json!({"result": "not_required", "message": en("identity_face_not_required")})).into_response()
        }
        Ok(GateFace::Refused(o)) => {
            let r = BindOutcome::Refused(o);
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"result": o.as_str(), "message": en(result_key(&r))})))
                .into_response()
        }
        Ok(GateFace::Unavailable) => api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "verifier_unavailable",
            &en(result_key(&BindOutcome::Unavailable)),
        ),
        Err(_) => api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
    }
}

/// The browser's "continue" on the face page: the face check is bound to
/// this browser by a scan ticket (D2) — the app reads the ticket, runs the
/// check through `POST /api/identity/face` and confirms; the session then
/// gains a fresh face factor and the request resumes.
pub(crate) async fn face_continue(state: &AppState, req: &str) -> Response {
    see_other(&format!("{}/scan/face?req={req}", state.config.issuer))
}

/// `/identity/in-person`: a signed assertion from a chip reader or CA (B4).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn in_person(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    _session: &SessionInfo,
    u: &user::Model,
    req: &str,
    assertion: &str,
    ip: &str,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let binder = Binder { user: u, keep_sid: None, ip: Some(ip), now };
    let r = identity::bind_in_person(&state.store, &state.verifier, state, &binder, assertion, today(state))
        .await
        .map_err(PageError::unavailable)?;
    Ok(match r {
        BindOutcome::Done { level, .. } => finish(state, jar, locale, u, req, level).await,
        other => {
            let notice = Some(Notice::Error(state.pages.text(locale, result_key(&other))));
            let status = if other == BindOutcome::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            let v = View { view: "in_person", req, notice, ..Default::default() };
            render(state, jar, status, locale, u, v).await
        }
    })
}

#[derive(Deserialize, Default)]
pub struct CounterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    place: String,
    #[serde(flatten)]
    doc: DocumentForm,
}

crate::with_csrf!(CounterForm);

/// The assurance level of the operator's own session.
async fn session_level(state: &AppState, session: &SessionInfo, u: &user::Model) -> u8 {
    let proofing = assurance::proofing_level(&state.store, &u.id).await.unwrap_or(1);
    assurance::level(proofing, &session.factors, state.clock.now(), &state.config.assurance)
}

/// Only operators whose own session is at L4 record counter verifications.
async fn operator_gate(state: &AppState, me: SignedIn) -> Result<user::Model, PageError> {
    if !identity::is_operator(&state.store, &me.user.id).await? {
        return Err(PageError::forbidden("identity_admin_not_operator"));
    }
    if session_level(state, &me.session, &me.user).await < 4 {
        return Err(PageError::forbidden("identity_admin_need_l4"));
    }
    Ok(me.user)
}

pub async fn admin_show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    me: SignedIn,
) -> Result<Response, PageError> {
    let u = operator_gate(&state, me).await?;
    Ok(render(&state, jar, StatusCode::OK, locale, &u, View { view: "admin", ..Default::default() }).await)
}

pub async fn admin_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<CounterForm>,
) -> Result<Response, PageError> {
    let op = operator_gate(&state, me).await?;
    let form = json!({"account": f.account, "place": f.place, "doc_type": f.doc.doc_type, "name": f.doc.name,
        "number": f.doc.number, "valid_from": f.doc.valid_from, "valid_to": f.doc.valid_to, "long_term": f.doc.long_term.is_some()});
    let fail = |key: &str| Some(Notice::Error(state.pages.text(locale, key)));
    let Some(target) = state.users.find_by_login(&f.account).await? else {
        let v = View { view: "admin", notice: fail("identity_admin_no_account"), form, ..Default::default() };
        return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &op, v).await);
    };
    let place = f.place.trim();
    if place.is_empty() || place.chars().count() > 100 {
        let v = View { view: "admin", notice: fail("identity_admin_place"), form, ..Default::default() };
        return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &op, v).await);
    }
    let doc = match Document::parse(&f.doc, today(&state)) {
        Ok(d) => d,
        Err(e) => {
            let v = View { view: "admin", notice: fail(e.key()), form, ..Default::default() };
            return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &op, v).await);
        }
    };
    let now = state.clock.now();
    let ip = sms_form::ip_of(addr);
    let binder = Binder { user: &target, keep_sid: None, ip: Some(&ip), now };
    let clerk = CounterClerk::Operator(&op.id);
    let r = identity::record_counter(&state.store, &state, clerk, &binder, &doc, place)
        .await
        .map_err(PageError::unavailable)?;
    Ok(match r {
        BindOutcome::Done { .. } => {
            let notice = Some(Notice::Info(state.pages.text(locale, "identity_admin_recorded")));
            render(&state, jar, StatusCode::OK, locale, &op, View { view: "admin", notice, ..Default::default() }).await
        }
        other => {
            let v = View { view: "admin", notice: fail(result_key(&other)), form, ..Default::default() };
            render(&state, jar, StatusCode::CONFLICT, locale, &op, v).await
        }
    })
}
