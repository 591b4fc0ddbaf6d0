//! Enterprise pages (C1, C3, C5): sign-in as legal representative or agent,
//! the face-check gate that first sign-ins and approvals wait in, the
//! representative's agent management, and representative change requests.
pub mod agent_password;
pub mod agent_register;
pub mod agent_reset;
pub mod register;
pub mod rep_password;
use crate::domain::assurance::Factor;
use crate::domain::assurance::face_gate::{self, GatePayload, LoginGate};
use crate::domain::delegation::agent_password as agent_passwords;
use crate::domain::delegation::enterprises::{
    self, EnterpriseAttempt, EnterpriseOutcome, EnterpriseServices, EnterpriseSignIn, Role,
};
use crate::domain::delegation::{self, Party};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, EnterpriseSession, Locale, PageError};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::store::entities::enterprise;
use crate::web::auth::login::{SignedIn, pending_for_page};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct ReqQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    uscc: String,
    /// `representative` (default) or `agent`.
    #[serde(default)]
    role: String,
    /// The agent's own account (phone, ID number or username).
    #[serde(default)]
    agent: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
}

/// A page with `v` as its view model and the browser's CSRF token.
pub(crate) fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    name: &str,
    locale: &str,
    v: Value,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("v", &v);
    (jar, page(state, status, name, locale, ctx)).into_response()
}

/// The page of a view model built for it, or the "unavailable" page when
/// it could not be built.
pub(crate) fn view_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    name: &str,
    locale: &str,
    view: Result<Value, impl std::fmt::Display>,
) -> Response {
    match view {
        Ok(v) => render(state, jar, status, name, locale, v),
        Err(e) => PageError::unavailable(e).into_response(),
    }
}

/// A view model's `info` / `error` pair: `(true, m)` informs, `(false, m)`
/// warns.
pub(crate) fn notice_pair(notice: Option<(bool, String)>) -> (Option<String>, Option<String>) {
    match notice {
        Some((true, m)) => (Some(m), None),
        Some((false, m)) => (None, Some(m)),
        None => (None, None),
    }
}

/// Opens a face-check gate for `id_number`, bound to this browser, and
/// sends the person to `/face` (which continues with the payload's step).
pub(crate) async fn to_face_check(
    state: &AppState,
    jar: CookieJar,
    _locale: &str,
    payload: &GatePayload,
    id_number: &str,
    now: i64,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    match face_gate::open(&state.store, payload, &cookies::browser_hash(&browser), id_number, now).await {
        Ok(gate) => (jar, see_other(&state.endpoint(&format!("/face?gate={gate}")))).into_response(),
        Err(e) => PageError::unavailable(e).into_response(),
    }
}

pub async fn login_show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Response {
    let (_, locale) = match pending_for_page(&state, &jar, &headers, &q.req).await {
        Ok(v) => v,
        Err(p) => return p,
    };
    let v = json!({ "req": q.req, "uscc": "", "role": "representative", "agent": "", "error": null });
    login_page(&state, jar, StatusCode::OK, locale, v, false).await
}

/// The sign-in page; with `captcha` a fresh graphic captcha (A3: sign-in
/// has become risky for this credit code, person or address).
async fn login_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    mut v: Value,
    captcha: bool,
) -> Response {
    if captcha {
        let mut ctx = tera::Context::new();
        crate::web::auth::sms_form::captcha_ctx(state, &mut ctx).await;
        v["captcha"] = json!({ "id": ctx.get("captcha_id"), "image": ctx.get("captcha_image") });
    }
    render(state, jar, status, "enterprise_login.html", locale, v)
}

pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let role = if f.role == "agent" { Role::Agent } else { Role::Representative };
    let view = |key: &str| {
        json!({ "req": f.req, "uscc": f.uscc, "role": role.as_str(), "agent": f.agent,
            "error": state.pages.text(locale, key) })
    };
    // A stale form shows the sign-in page again (with the typed fields),
    // not the bare error page.
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return Ok(login_page(&state, jar, StatusCode::FORBIDDEN, locale, view("error_csrf"), false).await);
    }
    let ip = cookies::client_ip(Some(addr));
    let now = state.clock.now();
    let services = EnterpriseServices {
        store: &state.store,
        users: &state.users,
        passwords: &state.passwords,
        captcha: &state.captcha,
        throttle: &state.config.login_throttle,
    };
    let attempt = EnterpriseAttempt {
        uscc: &f.uscc,
        role,
        agent: &f.agent,
        password: &f.password,
        captcha_id: &f.captcha_id,
        captcha_answer: &f.captcha,
        ip: &ip,
        now,
    };
    let (status, key, captcha) = match enterprises::enterprise_sign_in(services, attempt).await? {
        EnterpriseOutcome::Signed(signed) => {
            return Ok(match signed.face_of.clone() {
                // C1: the first sign-in of either person waits for a face check.
                Some(id_number) => {
                    let payload = sign_in_payload(&signed, &f.req);
                    to_face_check(&state, jar, locale, &payload, &id_number, now).await
                }
                None => finish_sign_in(&state, jar, locale, &f.req, req, &signed, Factor::Password).await,
            });
        }
        EnterpriseOutcome::Invalid(key) => (StatusCode::BAD_REQUEST, key, false),
        EnterpriseOutcome::Locked => (StatusCode::TOO_MANY_REQUESTS, "enterprise_locked", true),
        EnterpriseOutcome::CaptchaWrong => (StatusCode::BAD_REQUEST, "captcha_wrong", true),
        // One answer for every refusal (`enterprises::SIGN_IN_REFUSED`).
        EnterpriseOutcome::Refused { risky } => (StatusCode::UNAUTHORIZED, enterprises::SIGN_IN_REFUSED, risky),
    };
    Ok(login_page(&state, jar, status, locale, view(key), captcha).await)
}

fn sign_in_payload(s: &EnterpriseSignIn, req: &str) -> GatePayload {
    GatePayload::EnterpriseLogin(LoginGate {
        enterprise: s.enterprise.id.clone(),
        user: s.user_id.clone(),
        role: s.role.as_str().into(),
        delegation: s.delegation_id.clone(),
        req: req.into(),
    })
}

/// Signs the person in (a fresh session) and records the enterprise the
/// session acts for; then the authorization request continues.
async fn finish_sign_in(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    req_id: &str,
    req: Option<crate::domain::tokens::authorize::AuthRequest>,
    s: &EnterpriseSignIn,
    factor: Factor,
) -> Response {
    let acting = crate::web::auth::login::Acting {
        enterprise_id: s.enterprise.id.clone(),
        delegation_id: s.delegation_id.clone(),
    };
    let mut who = SignedIn::new(&s.user_id, factor).acting(acting);
    // Without an app waiting, an enterprise session lands on its enterprise
    // page: the personal centre is not open to it (C1).
    if req_id.is_empty() {
        who = who.then(if s.role == Role::Agent { "/enterprise/agent/password" } else { "/enterprise/agents" }.into());
    }
    crate::web::auth::login::complete(state, jar, locale, req_id, req, who).await
}

#[derive(Deserialize, Default)]
pub struct GateQuery {
    #[serde(default)]
    gate: String,
    /// Show this (still live) scan ticket again (the no-JS path).
    #[serde(default)]
    t: String,
}

/// The waiting page of a face gate: a scan ticket's QR for the app of the
/// person the gate waits for (it shows what is asked, approvals included);
/// the page follows the ticket and continues by itself once the app
/// confirmed (`/scan/complete` → `continue_gate`).
pub async fn face_show(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    Query(q): Query<GateQuery>,
) -> Result<Response, PageError> {
    let expired = || PageError::bad_request("error_request_expired");
    let browser = cookies::get(&state, &jar, cookies::BROWSER).ok_or_else(expired)?;
    let bh = cookies::browser_hash(&browser);
    let gate = face_gate::find(&state.store, &q.gate, &bh, state.clock.now()).await?.ok_or_else(expired)?;
    gate_page(&state, jar, addr, &browser, &gate, &q.t, locale, StatusCode::OK, None).await
}

#[allow(clippy::too_many_arguments)]
async fn gate_page(
    state: &AppState,
    jar: CookieJar,
    addr: SocketAddr,
    browser: &str,
    gate: &crate::store::entities::face_gate::Model,
    reuse: &str,
    locale: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    // Already opened by the app (the page was reloaded before it went on):
    // no new code, only the "continue" button (POST /face).
    let (scan, detail) = if gate.confirmed_at.is_some() {
        (Value::Null, Value::Null)
    } else {
        crate::web::auth::scan::gate_qr(state, browser, addr, gate, reuse, locale)
            .await
            .map_err(PageError::unavailable)?
    };
    let v = json!({ "gate": gate.id, "purpose": gate.purpose, "confirmed": gate.confirmed_at.is_some(),
        "id_masked": crate::domain::authn::flows::mask_id_number(&gate.id_number), "detail": detail, "error": error });
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &cookies::csrf_token(state, browser));
    ctx.insert("v", &v);
    ctx.insert("scan", &scan);
    let mut res = page(state, status, "face_gate.html", locale, ctx);
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok((jar, res).into_response())
}

#[derive(Deserialize, Default)]
pub struct GateForm {
    #[serde(default)]
    gate: String,
    #[serde(default)]
    csrf: String,
}

crate::with_csrf!(GateForm);

/// `POST /face`: continues the step that waited for the face check, once
/// the app opened the gate; before that, the same page with a notice.
pub async fn face_continue(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    CsrfForm(f): CsrfForm<GateForm>,
) -> Result<Response, PageError> {
    let expired = || PageError::bad_request("error_request_expired");
    let browser = cookies::get(&state, &jar, cookies::BROWSER).ok_or_else(expired)?;
    let bh = cookies::browser_hash(&browser);
    let gate = face_gate::find(&state.store, &f.gate, &bh, state.clock.now()).await?.ok_or_else(expired)?;
    if gate.confirmed_at.is_none() {
        let error = Some(state.pages.text(locale, "face_not_done"));
        return gate_page(&state, jar, addr, &browser, &gate, "", locale, StatusCode::CONFLICT, error).await;
    }
    Ok(continue_gate(&state, jar, locale, &f.gate, &bh).await)
}

/// Takes the gate this browser waited in — once, and only after the app
/// opened it — and finishes the step behind it.
pub(crate) async fn continue_gate(state: &AppState, jar: CookieJar, locale: &str, gate_id: &str, bh: &str) -> Response {
    take_gate(state, jar, locale, gate_id, bh).await.into_response()
}

async fn take_gate(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    gate_id: &str,
    bh: &str,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let expired = || PageError::bad_request("error_request_expired");
    let gate = face_gate::find(&state.store, gate_id, bh, now).await?.ok_or_else(expired)?;
    let payload = face_gate::take(&state.store, &gate.id, bh, now)
        .await?
        .ok_or(PageError::Refused(StatusCode::CONFLICT, "face_not_done"))?;
    Ok(match payload {
        GatePayload::EnterpriseLogin(p) => {
            let req = crate::web::auth::login::load_request(state, &jar, &p.req).await.ok().flatten();
            let Ok(Some(e)) = enterprises::find(&state.store, &p.enterprise).await else {
                return Err(expired());
            };
            let role = if p.role == Role::Agent.as_str() { Role::Agent } else { Role::Representative };
            let signed =
                EnterpriseSignIn { enterprise: e, user_id: p.user, role, delegation_id: p.delegation, face_of: None };
            enterprises::mark_face(&state.store, &signed, now).await?;
            finish_sign_in(state, jar, locale, &p.req, req, &signed, Factor::Face).await
        }
        GatePayload::ApproveAgent(p) => {
            let party = Party::Enterprise(&p.enterprise);
            let key = match delegation::activate(&state.store, &p.delegation, &party, None, now).await? {
                true => "agents_approved",
                false => "agents_changed_meanwhile",
            };
            see_other(&state.endpoint(&format!("/enterprise/agents?notice={key}")))
        }
        GatePayload::RegisterEnterprise(p) => register::after_face(state, jar, locale, &p, now).await?,
        other => crate::web::account::delegations::after_face(state, jar, locale, other, now).await,
    })
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn time_text(t: i64) -> String {
    chrono::DateTime::from_timestamp(t + 8 * 3600, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

async fn agents_view(
    state: &AppState,
    e: &enterprise::Model,
    locale: &str,
    notice: Option<(bool, String)>,
) -> Result<Value, String> {
    let now = state.clock.now();
    let list = delegation::agents_of(&state.store, &e.id).await.map_err(|e| e.to_string())?;
    let ids = list.iter().map(|d| d.id.clone()).collect();
    let registered = enterprises::registrations_of(&state.store, ids).await.map_err(|e| e.to_string())?;
    let mut agents = Vec::new();
    for d in list {
        // What the agent's C2 registration form gave (none for agents the
        // representative or staff added).
        let registration = registered.get(&d.id).map(|r| {
            json!({
                "region": r.region,
                "doc_type": state.pages.text(locale, &format!("doc_{}", r.doc_type)),
                "valid_from": r.valid_from,
                "valid_to": r.valid_to.clone().unwrap_or_else(|| state.pages.text(locale, "kin_long_term")),
                "gender": state.pages.text(locale, &format!("agent_register_{}", r.gender)),
                "ethnicity": r.ethnicity,
                "phone": r.phone,
                "rep_phone": r.rep_phone,
            })
        });
        let u = state.users.find(&d.grantee_user_id).await.map_err(|e| e.to_string())?;
        let st = delegation::effective_state(&d, now).as_str();
        agents.push(json!({
            "id": d.id,
            "name": u.as_ref().and_then(|u| u.name.clone()).unwrap_or_default(),
            "id_masked": u.as_ref().and_then(|u| u.id_number.as_deref()).map(crate::domain::authn::flows::mask_id_number).unwrap_or_default(),
            "state": st,
            "state_text": state.pages.text(locale, &format!("delegation_state_{st}")),
            "reason": d.reason,
            "must_reset": d.agent_password_hash.as_deref() == Some(agent_passwords::MUST_RESET),
            "modified": time_text(d.modified_at),
            "registration": registration,
        }));
    }
    let (info, error) = notice_pair(notice);
    Ok(json!({ "enterprise": { "name": e.name, "uscc": e.uscc }, "agents": agents, "info": info, "error": error }))
}

pub async fn agents_show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { enterprise: e, .. }: EnterpriseSession,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let notice = (!q.notice.is_empty() && q.notice.starts_with("agents_")).then_some((true, q.notice.as_str()));
    agents_page(&state, jar, locale, &e, notice).await
}

/// One agent on the representative's list (`approve`, `revoke`,
/// `require-password`).
#[derive(Deserialize, Default)]
pub struct AgentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

#[derive(Deserialize, Default)]
pub struct RejectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize, Default)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    /// The agent's phone or ID number (an existing account).
    #[serde(default)]
    agent: String,
}

crate::with_csrf!(AgentForm, RejectForm, AddForm, ChangeForm);

/// The agents page, with the outcome of an action when there was one:
/// `(true, key)` done, `(false, key)` refused (409).
async fn agents_page(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    e: &enterprise::Model,
    notice: Option<(bool, &str)>,
) -> Response {
    let status = if matches!(notice, Some((false, _))) { StatusCode::CONFLICT } else { StatusCode::OK };
    let view = agents_view(state, e, locale, notice.map(|(ok, key)| (ok, state.pages.text(locale, key)))).await;
    view_page(state, jar, status, "enterprise_agents.html", locale, view)
}

/// The outcome of an action on one agent that may have lost a race: `done`
/// when it changed the agent, else "changed meanwhile".
fn acted(changed: bool, done: &'static str) -> (bool, &'static str) {
    if changed { (true, done) } else { (false, "agents_changed_meanwhile") }
}

/// `POST /enterprise/agents/approve` (C3): approving needs the
/// representative's own scan and face check; the gate continues with it.
pub async fn agent_approve(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { session, enterprise: e }: EnterpriseSession,
    CsrfForm(f): CsrfForm<AgentForm>,
) -> Result<Response, PageError> {
    match enterprises::approval_gate(&state.store, &e, &f.id, &session.user_id).await? {
        Some(payload) => {
            let now = state.clock.now();
            Ok(to_face_check(&state, jar, locale, &payload, &e.representative_id_number, now).await)
        }
        None => Ok(agents_page(&state, jar, locale, &e, Some((false, "agents_changed_meanwhile"))).await),
    }
}

/// `POST /enterprise/agents/reject` (C3): a pending agent, with a reason.
pub async fn agent_reject(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { enterprise: e, .. }: EnterpriseSession,
    CsrfForm(f): CsrfForm<RejectForm>,
) -> Result<Response, PageError> {
    let outcome = if f.reason.trim().is_empty() {
        (false, "agents_reason_required")
    } else {
        let ip = cookies::client_ip(Some(addr));
        let party = Party::Enterprise(&e.id);
        let now = state.clock.now();
        acted(
            delegation::reject(&state.store, &f.id, &party, f.reason.trim(), Some(&ip), now).await?,
            "agents_rejected",
        )
    };
    Ok(agents_page(&state, jar, locale, &e, Some(outcome)).await)
}

/// `POST /enterprise/agents/revoke` (C3): the agent's sessions and tokens
/// for the enterprise end at once; their apps are told.
pub async fn agent_revoke(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { enterprise: e, .. }: EnterpriseSession,
    CsrfForm(f): CsrfForm<AgentForm>,
) -> Result<Response, PageError> {
    let (ip, party, now) = (cookies::client_ip(Some(addr)), Party::Enterprise(&e.id), state.clock.now());
    let revoked = delegation::revoke_and_notify(&state.store, &state, &f.id, &party, Some(&ip), now).await?;
    Ok(agents_page(&state, jar, locale, &e, Some(acted(revoked, "agents_revoked"))).await)
}

/// `POST /enterprise/agents/require-password` (C2): the agent must set a
/// new password through the SMS reset.
pub async fn agent_require_password(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { enterprise: e, .. }: EnterpriseSession,
    CsrfForm(f): CsrfForm<AgentForm>,
) -> Result<Response, PageError> {
    let (ip, now) = (cookies::client_ip(Some(addr)), state.clock.now());
    let cleared = agent_passwords::require_reset(&state.store, &state, &e.id, &f.id, Some(&ip), now).await?;
    Ok(agents_page(&state, jar, locale, &e, Some(acted(cleared, "agents_password_cleared"))).await)
}

/// `POST /enterprise/agents/add` (C3): an existing account becomes a
/// pending agent.
pub async fn agent_add(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { enterprise: e, .. }: EnterpriseSession,
    CsrfForm(f): CsrfForm<AddForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let outcome = match enterprises::add_agent_by_login(&state.store, &state.users, &e.id, &f.agent, now).await? {
        Ok(_) => (true, "agents_added"),
        Err(key) => (false, key),
    };
    Ok(agents_page(&state, jar, locale, &e, Some(outcome)).await)
}

#[derive(Deserialize, Default)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    uscc: String,
    /// `phone` or `representative`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    phone: String,
}

pub async fn change_show(State(state): State<AppState>, jar: CookieJar, Locale(locale): Locale) -> Response {
    let v = json!({ "kind": "phone", "filed": null, "error": null });
    render(&state, jar, StatusCode::OK, "enterprise_change.html", locale, v)
}

/// C5: a phone change whose representative does not match the record is
/// refused with "法人信息不匹配" — the representative changed, so a
/// representative change request goes to staff instead.
pub async fn change_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    CsrfForm(f): CsrfForm<ChangeForm>,
) -> Result<Response, PageError> {
    let fail = |jar, status, key: &str| {
        let v = json!({ "kind": f.kind, "filed": null, "error": state.pages.text(locale, key) });
        render(&state, jar, status, "enterprise_change.html", locale, v)
    };
    let uscc = match crate::domain::delegation::uscc::Uscc::parse(&f.uscc) {
        Ok(u) => u,
        Err(e) => return Ok(fail(jar, StatusCode::BAD_REQUEST, e.message_key())),
    };
    let (Ok(id), Ok(phone)) = (
        crate::domain::identity::documents::DocumentNumber::parse_any(None, &f.id_number),
        crate::domain::identity::users::PhoneNumber::parse(&f.phone),
    ) else {
        return Ok(fail(jar, StatusCode::BAD_REQUEST, "enterprise_change_fields"));
    };
    let Some(e) = enterprises::find_by_uscc(&state.store, uscc.as_str()).await? else {
        return Ok(fail(jar, StatusCode::BAD_REQUEST, "enterprise_unknown"));
    };
    let kind = if f.kind == "representative" { "representative" } else { "phone" };
    if kind == "phone" && !enterprises::representative_matches(&e, &f.name, id.as_str()) {
        return Ok(fail(jar, StatusCode::CONFLICT, "enterprise_representative_mismatch"));
    }
    let now = state.clock.now();
    let filed = enterprises::file_change(&state.store, &e.id, kind, &f.name, id.as_str(), phone.as_str(), now).await?;
    let v = json!({ "kind": kind, "filed": filed, "error": null });
    Ok(render(&state, jar, StatusCode::OK, "enterprise_change.html", locale, v))
}
