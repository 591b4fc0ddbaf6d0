//! Forgot password (A4, 002 §1.2.5), four steps: account (+ captcha) →
//! verify (real-name users: ID number + SMS; others: SMS) → new password
//! twice → done. Afterwards every session and refresh token of the account
//! is revoked and the old channel gets a notice.
use crate::domain::authn::flows::{mask_account, mask_fully, mask_phone};
use crate::domain::authn::reset;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError};
use crate::oidc::flow::see_other;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::sms_form::{self, Sent};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct ForgotQuery {
    #[serde(default)]
    req: String,
    #[serde(default)]
    flow: String,
    /// Set by step 1's redirect when the first code went out.
    #[serde(default)]
    sent: String,
}

#[derive(Deserialize, Default)]
pub struct ForgotForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

struct View<'a> {
    step: i64,
    form: &'a ForgotForm,
    account_masked: String,
    phone_masked: String,
    id_masked: Option<String>,
    sent: Option<Sent>,
    /// The "resend" part (captcha) is open.
    resend: bool,
}

async fn render(state: &AppState, jar: CookieJar, status: StatusCode, locale: &str, v: View<'_>) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("step", &v.step);
    ctx.insert("req", &v.form.req);
    ctx.insert("flow", &v.form.flow);
    ctx.insert("account", &v.form.account);
    ctx.insert("account_masked", &v.account_masked);
    ctx.insert("phone_masked", &v.phone_masked);
    ctx.insert("id_masked", &v.id_masked);
    ctx.insert("id_number", &v.form.id_number);
    ctx.insert("sms_code", &v.form.sms_code);
    ctx.insert("resend", &v.resend);
    ctx.insert("send_action", "/forgot/send");
    let notice = v.sent.map(|s| s.into_ctx(&mut ctx));
    sms_form::form_page(state, jar, status, "forgot.html", locale, ctx, notice, v.step <= 2).await
}

fn browser_hash(state: &AppState, jar: &CookieJar) -> String {
    cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default()
}

fn blank(step: i64, form: &ForgotForm) -> View<'_> {
    View {
        step,
        form,
        account_masked: String::new(),
        phone_masked: String::new(),
        id_masked: None,
        sent: None,
        resend: false,
    }
}

/// Step 1, `/forgot`: name the account.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    Query(q): Query<ForgotQuery>,
) -> Response {
    let form = ForgotForm { req: q.req, flow: q.flow, ..Default::default() };
    render(&state, jar, StatusCode::OK, locale, blank(1, &form)).await
}

/// Step 2, `/forgot/verify`: the SMS code (and ID number).
pub async fn show_verify(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    Query(q): Query<ForgotQuery>,
) -> Result<Response, PageError> {
    show_step(&state, jar, locale, q, 2).await
}

/// Step 3, `/forgot/password`: the new password.
pub async fn show_password(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    Query(q): Query<ForgotQuery>,
) -> Result<Response, PageError> {
    show_step(&state, jar, locale, q, 3).await
}

/// Step 4, `/forgot/done`.
pub async fn show_done(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    Query(q): Query<ForgotQuery>,
) -> Result<Response, PageError> {
    show_step(&state, jar, locale, q, 4).await
}

/// A step page: the flow must be at exactly the step of the page (no
/// skipping ahead).
async fn show_step(
    state: &AppState,
    jar: CookieJar,
    Locale(locale): Locale,
    q: ForgotQuery,
    step: i64,
) -> Result<Response, PageError> {
    let browser = browser_hash(state, &jar);
    let found = reset::at_step(&state.store, &state.users, &q.flow, &browser, step - 1, state.clock.now()).await?;
    let (at, user) = found.ok_or(PageError::bad_request("forgot_expired"))?;
    let form = ForgotForm { req: at.req.clone().unwrap_or_default(), flow: q.flow, ..Default::default() };
    let mut view = step_view(step, &form, &user);
    if step == 2 && q.sent == "1" {
        let info = sms_form::Notice::Info(state.pages.text(locale, "sms_sent"));
        view.sent = Some(Sent { notice: info, field: None, wait: sms_form::RESEND_WAIT });
    }
    Ok(render(state, jar, StatusCode::OK, locale, view).await)
}

crate::with_csrf!(ForgotForm);

/// `POST /forgot`, step 1: the account and the flow's one captcha; the
/// first code goes out at once (the captcha just solved precedes it, A7).
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    CsrfForm(f): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let ip = sms_form::ip_of(addr);
    let browser = browser_hash(&state, &jar);
    let deps = (&state.store, &state.users, &state.captcha);
    let captcha = (f.captcha_id.as_str(), f.captcha.as_str());
    let id = match reset::start(deps, &f.account, captcha, &browser, &f.req, now).await? {
        reset::Started::Flow(id) => id,
        reset::Started::Refused(key) => {
            let mut v = blank(1, &f);
            v.sent = Some(Sent::refused(&state, locale, key));
            return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, v).await);
        }
    };
    let expired = || PageError::bad_request("forgot_expired");
    let (_, user) = reset::at_step(&state.store, &state.users, &id, &browser, 1, now).await?.ok_or_else(expired)?;
    let phone = user.phone.clone().unwrap_or_default();
    let code_req = sms_form::CodeRequest::new(SmsPurpose::ResetPassword, &phone, &ip, "", "").captcha_passed();
    let sent = sms_form::send_code_detailed(&state, locale, code_req, sms_form::Delivery::Send).await;
    if sent.status().is_success() {
        return Ok(see_other(&format!("{}/forgot/verify?flow={id}&sent=1", state.config.issuer)));
    }
    // Not sent (limits): step 2 says why; "resend" stays offered.
    let form = ForgotForm { flow: id, ..f };
    let view = View { sent: Some(sent), ..step_view(2, &form, &user) };
    Ok(render(&state, jar, StatusCode::TOO_MANY_REQUESTS, locale, view).await)
}

fn step_view<'a>(step: i64, form: &'a ForgotForm, user: &crate::store::entities::user::Model) -> View<'a> {
    View {
        step,
        form,
        account_masked: mask_account(&user.username),
        phone_masked: user.phone.as_deref().map(mask_phone).unwrap_or_default(),
        id_masked: user.id_number.as_deref().map(mask_fully),
        sent: None,
        resend: false,
    }
}

/// `POST /forgot/send`, step 2: "resend", behind a fresh captcha (A7).
pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    CsrfForm(f): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    let browser = browser_hash(&state, &jar);
    let expired = || PageError::bad_request("forgot_expired");
    let now = state.clock.now();
    let (_, user) = reset::at_step(&state.store, &state.users, &f.flow, &browser, 1, now).await?.ok_or_else(expired)?;
    let ip = sms_form::ip_of(addr);
    let phone = user.phone.clone().unwrap_or_default();
    let code_req = sms_form::CodeRequest::new(SmsPurpose::ResetPassword, &phone, &ip, &f.captcha_id, &f.captcha);
    let sent = sms_form::send_code_detailed(&state, locale, code_req, sms_form::Delivery::Send).await;
    let status = sent.status();
    let view = View { sent: Some(sent), resend: true, ..step_view(2, &f, &user) };
    Ok(render(&state, jar, status, locale, view).await)
}

/// `POST /forgot/verify`, step 2: the SMS code (and ID number).
pub async fn verify(
    state: State<AppState>,
    jar: CookieJar,
    locale: Locale,
    CsrfForm(f): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    advance(state, jar, locale, f, 1, None).await
}

/// `POST /forgot/password`, step 3: the new password twice.
pub async fn password(
    state: State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    CsrfForm(f): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    advance(state, jar, locale, f, 2, Some(sms_form::ip_of(addr))).await
}

async fn advance(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    f: ForgotForm,
    step: i64,
    ip: Option<String>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let browser = browser_hash(&state, &jar);
    let expired = || PageError::bad_request("forgot_expired");
    let (flow, user) =
        reset::at_step(&state.store, &state.users, &f.flow, &browser, step, now).await?.ok_or_else(expired)?;
    let (outcome, next) = match ip {
        None => {
            let proof = (f.id_number.as_str(), f.sms_code.as_str());
            (reset::verify(&state.store, &state.sms_codes, &flow, &user, proof, now).await?, "password")
        }
        Some(ip) => {
            let notice_text = state.pages.text(&state.config.default_locale, "sms_password_changed");
            let p = reset::NewPassword { password: &f.password, password2: &f.password2, ip: &ip, notice_text, now };
            let deps = (&state.store, &state.users, &state.sms_codes);
            (reset::set_password(deps, &flow, user.clone(), p).await?, "done")
        }
    };
    match outcome {
        reset::Step::Advanced => Ok(see_other(&format!("{}/forgot/{next}?flow={}", state.config.issuer, flow.id))),
        reset::Step::Refused(key) => {
            let view = View { sent: Some(Sent::refused(&state, locale, key)), ..step_view(step + 1, &f, &user) };
            Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, view).await)
        }
        reset::Step::Expired => Err(expired()),
    }
}
