//! Real-name pages (002 §1.3): `/identity` (levels and the bound
//! identity), `/identity/verify` (L2 bind or 换绑 rebind), `/identity/bank-card`
//! (L3), `/identity/face` (L3 via the app), `/identity/in-person` (L4 by a
//! signed chip-reader assertion) and `/identity/unbind` (解绑). Binding,
//! rebinding, bank card and unbinding first re-verify by phone + SMS +
//! captcha, as the manual's "验证身份" step. Handlers parse, make one domain
//! call, and explain the result.
use crate::domain::authn::flows::{self, mask_phone};
use crate::domain::identity::documents::{
    self, ALL_TYPES, Document, DocumentForm, DocumentNumber, DocumentType, PersonName,
};
use crate::domain::identity::users::PhoneNumber;
use crate::domain::identity::{self, BindOutcome, Binder};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::oidc::flow::see_other;
use crate::ports::sms::SmsPurpose;
use crate::ports::verifier::{BankCardCheck, BankCardNumber, Outcome};
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

const VERIFY_FLOW: &str = "identity_verify";
const CARD_FLOW: &str = "identity_card";

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    req: String,
}

#[derive(Deserialize, Default)]
pub struct IdentityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    req: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(flatten)]
    doc: DocumentForm,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    bank_phone: String,
}

/// `/identity/face` and `/identity/in-person`: the pending request and, in
/// person, the reader's signed assertion.
#[derive(Deserialize, Default)]
pub struct AppStepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    req: String,
    #[serde(default)]
    assertion: String,
}

/// `/identity/unbind`: `action=send_code` sends the SMS code, `unbind`
/// unbinds.
#[derive(Deserialize, Default)]
pub struct UnbindForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    confirm: Option<String>,
}

crate::with_csrf!(IdentityForm, AppStepForm, UnbindForm);

/// What one page render needs besides the account.
#[derive(Default)]
pub(crate) struct View<'a> {
    pub view: &'a str,
    pub flow: &'a str,
    pub req: &'a str,
    pub notice: Option<Notice>,
    pub form: Value,
    pub result_level: u8,
}

pub(crate) async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    u: &user::Model,
    v: View<'_>,
) -> Response {
    let now = state.clock.now();
    let today = today(state);
    let bound = identity::current(&state.store, &u.id).await.ok().flatten();
    let takeover = identity::pending_takeover(&state.store, &u.id, today, now).await.ok().flatten();
    let text = |k: &str| state.pages.text(locale, k);
    let summary = bound.as_ref().map(|b| {
        json!({
            "doc_label": text(&format!("doc_{}", b.doc_type)),
            "name_masked": documents::mask_name(&b.name),
            "number_masked": documents::mask_number(&b.doc_number),
            "valid_from": b.valid_from,
            "valid_to": b.valid_to.clone().unwrap_or_else(|| text("identity_long_term")),
            "level": b.level,
            "method": text(&format!("identity_method_{}", b.method)),
        })
    });
    let face_required = match (&takeover, &bound) {
        (Some((_, d)), _) => identity::face_required(d, today),
        (None, Some(b)) => identity::document_of(b, today).is_none_or(|d| identity::face_required(&d, today)),
        _ => true,
    };
    let types: Vec<Value> =
        ALL_TYPES.iter().map(|t| json!({"value": t.as_str(), "label": text(&t.label_key())})).collect();
    let mut ctx = tera::Context::new();
    ctx.insert("view", v.view);
    ctx.insert("flow", v.flow);
    ctx.insert("req", v.req);
    ctx.insert("phone_masked", &u.phone.as_deref().map(mask_phone).unwrap_or_default());
    ctx.insert("identity", &summary);
    ctx.insert("level", &u.proofing_level.clamp(1, 4));
    ctx.insert("result_level", &v.result_level);
    ctx.insert("takeover", &takeover.is_some());
    ctx.insert("face_required", &face_required);
    ctx.insert("operator", &identity::is_operator(&state.store, &u.id).await.unwrap_or(false));
    ctx.insert("doc_types", &types);
    ctx.insert("doc", &if v.form.is_null() { json!({}) } else { v.form });
    let captcha = v.view == "sms" || v.view == "unbind" || v.view == "takeover_card";
    sms_form::form_page(state, jar, status, "identity.html", locale, ctx, v.notice, captcha).await
}

pub(crate) fn today(state: &AppState) -> chrono::NaiveDate {
    // Document dates are Beijing dates (UTC+8).
    chrono::DateTime::from_timestamp(state.clock.now() + 8 * 3600, 0).map(|d| d.date_naive()).unwrap_or_default()
}

fn doc_form_json(d: &DocumentForm) -> Value {
    json!({
        "doc_type": d.doc_type, "name": d.name, "number": d.number,
        "valid_from": d.valid_from, "valid_to": d.valid_to, "long_term": d.long_term.is_some(),
    })
}

/// The locale key explaining a result that did not bind.
pub(crate) fn result_key(r: &BindOutcome) -> &'static str {
    match r {
        BindOutcome::Refused(Outcome::Mismatch) => "identity_mismatch",
        BindOutcome::Refused(Outcome::RareCharacter) => "identity_rare_character",
        BindOutcome::Refused(Outcome::Expired) => "identity_authority_expired",
        BindOutcome::Refused(Outcome::Deceased) => "identity_deceased",
        BindOutcome::Refused(Outcome::FaceMismatch) => "identity_face_mismatch",
        BindOutcome::Refused(Outcome::LivenessFailed) => "identity_liveness_failed",
        BindOutcome::Refused(Outcome::CreditCard) => "identity_credit_card",
        BindOutcome::Refused(Outcome::BadAssertion) => "identity_bad_assertion",
        BindOutcome::Refused(Outcome::Pass) | BindOutcome::Done { .. } => "identity_done",
        BindOutcome::Unavailable => "identity_unavailable",
        BindOutcome::Taken { .. } => "identity_taken",
        BindOutcome::TakenMeanwhile => "identity_taken_meanwhile",
        BindOutcome::NoIdentity => "identity_need_l2",
        BindOutcome::FaceNotRequired => "identity_face_not_required",
        BindOutcome::NotYourIdentity => "identity_card_not_yours",
        BindOutcome::Replayed => "identity_assertion_replayed",
        BindOutcome::DocumentExpired => "identity_err_expired",
    }
}

async fn show_view(
    state: &AppState,
    jar: CookieJar,
    locale: Locale,
    u: &user::Model,
    view: &str,
    q: &PageQuery,
) -> Response {
    let v = View { view, flow: &q.flow, req: &q.req, ..Default::default() };
    render(state, jar, StatusCode::OK, locale.0, u, v).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    show_view(&state, jar, locale, &me.user, "home", &q).await
}

pub async fn face_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    show_view(&state, jar, locale, &me.user, "face", &q).await
}

pub async fn in_person_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    show_view(&state, jar, locale, &me.user, "in_person", &q).await
}

pub async fn unbind_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    show_view(&state, jar, locale, &me.user, "unbind", &q).await
}

/// The SMS step, or with a live flow of this browser the document form.
pub async fn verify_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let view = second_step(&state, &jar, VERIFY_FLOW, &q.flow, &me.user, "document").await?;
    Ok(show_view(&state, jar, locale, &me.user, view, &q).await)
}

/// The SMS step, or with a live flow of this browser the bank card form.
pub async fn bank_card_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let view = second_step(&state, &jar, CARD_FLOW, &q.flow, &me.user, "bank_card").await?;
    Ok(show_view(&state, jar, locale, &me.user, view, &q).await)
}

async fn second_step(
    state: &AppState,
    jar: &CookieJar,
    kind: &str,
    flow: &str,
    u: &user::Model,
    view: &'static str,
) -> Result<&'static str, PageError> {
    if flow.is_empty() {
        return Ok("sms");
    }
    if open_flow(state, jar, kind, flow, u).await? { Ok(view) } else { Err(PageError::bad_request("forgot_expired")) }
}

async fn open_flow(
    state: &AppState,
    jar: &CookieJar,
    kind: &str,
    id: &str,
    u: &user::Model,
) -> Result<bool, crate::store::DbErr> {
    let browser = cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default();
    let found = flows::at_step(&state.store, id, kind, &browser, 1, state.clock.now()).await?;
    Ok(found.is_some_and(|f| f.user_id == u.id))
}

/// B3 in the app: continues with the pending face check.
pub async fn face_submit(
    State(state): State<AppState>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<AppStepForm>,
) -> Result<Response, PageError> {
    me.user.phone.clone().ok_or_else(no_phone)?;
    Ok(crate::web::api::face::face_continue(&state, &f.req).await)
}

/// Every identity change re-verifies by, or reports to, the phone.
fn no_phone() -> PageError {
    PageError::bad_request("identity_need_phone")
}

/// B4: a signed chip-reader or CA assertion.
pub async fn in_person_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<AppStepForm>,
) -> Result<Response, PageError> {
    me.user.phone.clone().ok_or_else(no_phone)?;
    let ip = sms_form::ip_of(addr);
    crate::web::api::face::in_person(&state, jar, locale, &me.session, &me.user, &f.req, &f.assertion, &ip).await
}

/// 解绑 (002 §1.3.3.2): SMS re-verification, then the identity goes, the
/// account drops to L1, every session ends and the browser signs in again.
pub async fn unbind_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    CsrfForm(f): CsrfForm<UnbindForm>,
) -> Result<Response, PageError> {
    let ip = sms_form::ip_of(addr);
    let phone = u.phone.clone().ok_or_else(no_phone)?;
    let err = |key: &str| Some(Notice::Error(state.pages.text(locale, key)));
    match f.action.as_str() {
        "send_code" => {
            let req = CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(&state, locale, req).await;
            let status = notice.status();
            let v = View { view: "unbind", notice: Some(notice), ..Default::default() };
            Ok(render(&state, jar, status, locale, &u, v).await)
        }
        "unbind" => {
            if f.confirm.is_none() {
                let v = View { view: "unbind", notice: err("identity_unbind_confirm_required"), ..Default::default() };
                return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &u, v).await);
            }
            if !state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await? {
                let v = View { view: "unbind", notice: err("sms_code_wrong"), ..Default::default() };
                return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &u, v).await);
            }
            let binder = Binder { user: &u, keep_sid: None, ip: Some(&ip), now: state.clock.now() };
            if !identity::unbind_identity(&state.store, &state, &binder).await? {
                return Ok(see_other(&format!("{}/identity", state.config.issuer)));
            }
            let jar = jar.remove(cookies::build(&state, cookies::SESSION, String::new(), None));
            Ok((jar, see_other(&format!("{}/login", state.config.issuer))).into_response())
        }
        _ => Err(PageError::bad_request("forgot_expired")),
    }
}

pub async fn verify_submit(
    State(state): State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    uri: Uri,
    CsrfForm(f): CsrfForm<IdentityForm>,
) -> Result<Response, PageError> {
    two_steps(&state, addr, jar, locale, me, uri.path(), VERIFY_FLOW, f).await
}

pub async fn bank_card_submit(
    State(state): State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    uri: Uri,
    CsrfForm(f): CsrfForm<IdentityForm>,
) -> Result<Response, PageError> {
    two_steps(&state, addr, jar, locale, me, uri.path(), CARD_FLOW, f).await
}

/// L2 bind / rebind (`VERIFY_FLOW`) and L3 by bank card (`CARD_FLOW`): an
/// SMS code opens a browser-bound flow, whose second step is one core call.
#[allow(clippy::too_many_arguments)]
async fn two_steps(
    state: &AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { session, user: u }: SignedIn,
    path: &str,
    kind: &str,
    f: IdentityForm,
) -> Result<Response, PageError> {
    let text = |key: &str| state.pages.text(locale, key);
    let err = |key: &str| Some(Notice::Error(text(key)));
    let ip = sms_form::ip_of(addr);
    let now = state.clock.now();
    let phone = u.phone.clone().ok_or_else(no_phone)?;
    match f.action.as_str() {
        "send_code" => {
            let req = CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(state, locale, req).await;
            let status = notice.status();
            let v = View { view: "sms", req: &f.req, notice: Some(notice), ..Default::default() };
            return Ok(render(state, jar, status, locale, &u, v).await);
        }
        "verify_sms" => {
            if !state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await? {
                let v = View { view: "sms", req: &f.req, notice: err("sms_code_wrong"), ..Default::default() };
                return Ok(render(state, jar, StatusCode::BAD_REQUEST, locale, &u, v).await);
            }
            let browser =
                cookies::get(state, &jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default();
            let id = flows::start(&state.store, kind, &u.id, &browser, Some(&f.req), now).await?;
            let req = url::form_urlencoded::byte_serialize(f.req.as_bytes()).collect::<String>();
            return Ok(see_other(&format!("{}{path}?flow={id}&req={req}", state.config.issuer)));
        }
        _ => {}
    }
    // Second step: the flow must be live, this account's, in this browser.
    if !open_flow(state, &jar, kind, &f.flow, &u).await? {
        return Err(PageError::bad_request("forgot_expired"));
    }
    let today = today(state);
    let (view, result, form) = if kind == VERIFY_FLOW {
        let form = doc_form_json(&f.doc);
        let doc = match Document::parse(&f.doc, today) {
            Ok(d) => d,
            Err(e) => {
                let v = View {
                    view: "document",
                    flow: &f.flow,
                    req: &f.req,
                    notice: err(e.key()),
                    form,
                    ..Default::default()
                };
                return Ok(render(state, jar, StatusCode::BAD_REQUEST, locale, &u, v).await);
            }
        };
        let binder = Binder { user: &u, keep_sid: Some(&session.sid), ip: Some(&ip), now };
        ("document", identity::bind_identity(&state.store, &state.verifier, state, &binder, &doc).await?, form)
    } else {
        let form = json!({"name": f.doc.name, "number": f.doc.number, "card_number": f.card_number, "bank_phone": f.bank_phone});
        let parsed = (
            PersonName::parse(&f.doc.name).map_err(|e| e.key()),
            DocumentNumber::parse(DocumentType::ResidentId, &f.doc.number).map_err(|e| e.key()),
            BankCardNumber::parse(&f.card_number).ok_or("identity_err_card"),
            PhoneNumber::parse(&f.bank_phone).map_err(|_| "register_phone_rule"),
        );
        let card = match parsed {
            (Ok(name), Ok(id_number), Ok(card), Ok(phone)) => BankCardCheck { name, id_number, card, phone },
            (a, b, c, d) => {
                let key =
                    [a.err(), b.err(), c.err(), d.err()].into_iter().flatten().next().unwrap_or("error_unavailable");
                let v = View {
                    view: "bank_card",
                    flow: &f.flow,
                    req: &f.req,
                    notice: err(key),
                    form,
                    ..Default::default()
                };
                return Ok(render(state, jar, StatusCode::BAD_REQUEST, locale, &u, v).await);
            }
        };
        let binder = Binder { user: &u, keep_sid: Some(&session.sid), ip: Some(&ip), now };
        ("bank_card", identity::raise_by_bank_card(&state.store, &state.verifier, state, &binder, &card).await?, form)
    };
    Ok(match result {
        BindOutcome::Done { level, .. } => {
            flows::advance(&state.store, &f.flow, 1, now).await?;
            finish(state, jar, locale, &u, &f.req, level).await
        }
        BindOutcome::Taken { .. } => {
            let v = View { view: "taken", req: &f.req, ..Default::default() };
            render(state, jar, StatusCode::CONFLICT, locale, &u, v).await
        }
        other => {
            let status = if other == BindOutcome::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            let v =
                View { view, flow: &f.flow, req: &f.req, notice: err(result_key(&other)), form, ..Default::default() };
            render(state, jar, status, locale, &u, v).await
        }
    })
}

/// Success: back to the relying app's pending request when there is one
/// (B6 step-up), else the "done" page.
pub(crate) async fn finish(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    u: &user::Model,
    req: &str,
    level: u8,
) -> Response {
    if !req.is_empty() {
        return crate::web::auth::step_up::finish(state, jar, req, locale).await;
    }
    let v = View { view: "done", result_level: level, ..Default::default() };
    render(state, jar, StatusCode::OK, locale, u, v).await
}
