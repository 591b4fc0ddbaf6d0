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
use crate::web::auth::sms_form::{self, Notice};
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
    action: String,
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
    notice: Option<Notice>,
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
    sms_form::form_page(state, jar, status, "forgot.html", locale, ctx, v.notice, v.step <= 2).await
}

fn browser_hash(state: &AppState, jar: &CookieJar) -> String {
    cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default()
}

fn blank(step: i64, form: &ForgotForm) -> View<'_> {
    View { step, form, account_masked: String::new(), phone_masked: String::new(), id_masked: None, notice: None }
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
    let view = View {
        step,
        form: &form,
        account_masked: mask_account(&user.username),
        phone_masked: user.phone.as_deref().map(mask_phone).unwrap_or_default(),
        id_masked: user.id_number.as_deref().map(mask_fully),
        notice: None,
    };
    Ok(render(state, jar, StatusCode::OK, locale, view).await)
}

crate::with_csrf!(ForgotForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    CsrfForm(f): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    let text = |key: &str| state.pages.text(locale, key);
    let now = state.clock.now();
    let ip = sms_form::ip_of(addr);
    let browser = browser_hash(&state, &jar);
    if f.action == "account" {
        let deps = (&state.store, &state.users, &state.captcha);
        let captcha = (f.captcha_id.as_str(), f.captcha.as_str());
        return match reset::start(deps, &f.account, captcha, &browser, &f.req, now).await? {
            reset::Started::Flow(id) => Ok(see_other(&format!("{}/forgot/verify?flow={id}", state.config.issuer))),
            reset::Started::Refused(key) => {
                let mut v = blank(1, &f);
                v.notice = Some(Notice::Error(text(key)));
                Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, v).await)
            }
        };
    }
    let expired = || PageError::bad_request("forgot_expired");
    let step = match f.action.as_str() {
        "send_code" | "verify" => 1,
        "password" => 2,
        _ => return Err(expired()),
    };
    let (flow, user) =
        reset::at_step(&state.store, &state.users, &f.flow, &browser, step, now).await?.ok_or_else(expired)?;
    let phone = user.phone.clone().unwrap_or_default();
    let view = |notice: Notice| View {
        step: step + 1,
        form: &f,
        account_masked: mask_account(&user.username),
        phone_masked: mask_phone(&phone),
        id_masked: user.id_number.as_deref().map(mask_fully),
        notice: Some(notice),
    };
    let (outcome, next) = match f.action.as_str() {
        "send_code" => {
            let code_req =
                sms_form::CodeRequest::new(SmsPurpose::ResetPassword, &phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(&state, locale, code_req).await;
            let status = notice.status();
            return Ok(render(&state, jar, status, locale, view(notice)).await);
        }
        "verify" => {
            let proof = (f.id_number.as_str(), f.sms_code.as_str());
            (reset::verify(&state.store, &state.sms_codes, &flow, &user, proof, now).await?, "password")
        }
        _ => {
            let notice_text = state.pages.text(&state.config.default_locale, "sms_password_changed");
            let p = reset::NewPassword { password: &f.password, password2: &f.password2, ip: &ip, notice_text, now };
            let deps = (&state.store, &state.users, &state.sms_codes);
            (reset::set_password(deps, &flow, user.clone(), p).await?, "done")
        }
    };
    match outcome {
        reset::Step::Advanced => Ok(see_other(&format!("{}/forgot/{next}?flow={}", state.config.issuer, flow.id))),
        reset::Step::Refused(key) => {
            Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, view(Notice::Error(text(key)))).await)
        }
        reset::Step::Expired => Err(expired()),
    }
}
