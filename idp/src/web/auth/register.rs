//! Registration (A1): username, phone + graphic captcha + SMS code,
//! password twice, agreement; signed in afterwards and returned to the app
//! that asked, when there is one.
use crate::domain::assurance::Factor;
use crate::domain::authn::sign_in::{self, RegisterOutcome};
use crate::domain::identity::accounts::RegistrationForm;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::login::{SignedIn, finish, live_request_id, pending_for_page};
use crate::web::auth::sms_form::{self, CodeRequest, Delivery, Sent};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct RegisterQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize, Default)]
pub struct RegisterForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    #[serde(default)]
    agree: Option<String>,
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    f: &RegisterForm,
    sent: Option<Sent>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("req", &f.req);
    ctx.insert("username", &f.username);
    ctx.insert("phone", &f.phone);
    ctx.insert("sms_code", &f.sms_code);
    ctx.insert("agree", &f.agree.is_some());
    ctx.insert("send_action", "/register/send");
    let notice = sent.map(|s| s.into_ctx(&mut ctx));
    sms_form::form_page(state, jar, status, "register.html", locale, ctx, notice, true).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<RegisterQuery>,
) -> Result<Response, PageError> {
    let (req, locale) = live_request_id(&state, &jar, &headers, q.req).await?;
    Ok(render(&state, jar, StatusCode::OK, locale, &RegisterForm { req, ..Default::default() }, None).await)
}

crate::with_csrf!(RegisterForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<RegisterForm>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let ip = sms_form::ip_of(addr);
    let form = RegistrationForm {
        username: f.username.clone(),
        phone: f.phone.clone(),
        password: f.password.clone(),
        password2: f.password2.clone(),
        agreed: f.agree.is_some(),
    };
    let now = state.clock.now();
    let outcome = sign_in::register(&state.store, &state.passwords, &state.sms_codes, &form, &f.sms_code, &ip, now);
    let (status, key) = match outcome.await? {
        RegisterOutcome::Created(created) => {
            // Registration reached from the upstream link page links the new account (A3).
            let jar = crate::web::auth::upstream::link_after_registration(&state, jar, &created.sub, &ip).await;
            // A1: the real-name step is offered now and may be skipped ("暂不认证").
            let then = format!("/register/real-name?req={}", f.req);
            let who = SignedIn::new(&created.sub, Factor::Sms).from_ip(&ip).then(then);
            return finish(&state, jar, &f.req, req, who).await;
        }
        RegisterOutcome::Taken(key) => (StatusCode::CONFLICT, key),
        RegisterOutcome::Invalid(key) => (StatusCode::BAD_REQUEST, key),
        RegisterOutcome::CodeWrong => (StatusCode::BAD_REQUEST, "sms_code_wrong"),
    };
    Ok(render(&state, jar, status, locale, &f, Some(Sent::refused(&state, locale, key))).await)
}

/// `POST /register/send`: the "获取短信验证码" button; everything typed
/// stays in the form.
pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<RegisterForm>,
) -> Result<Response, PageError> {
    let (_, locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let ip = sms_form::ip_of(addr);
    let code_req = CodeRequest::new(SmsPurpose::Register, &f.phone, &ip, &f.captcha_id, &f.captcha);
    let code_req = code_req.account_must_exist(Some(false));
    let sent = sms_form::send_code_detailed(&state, locale, code_req, Delivery::Send).await;
    Ok(render(&state, jar, sent.status(), locale, &f, Some(sent)).await)
}

/// After registering: verify your identity now, or skip and go on to the
/// app (or the personal centre).
pub async fn real_name_offer(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<RegisterQuery>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &q.req).await?;
    let req_id = if req.is_some() { q.req.as_str() } else { "" };
    let skip = if req_id.is_empty() { "/account".to_string() } else { format!("/authorize/resume?req={req_id}") };
    let mut ctx = tera::Context::new();
    ctx.insert("verify_href", &format!("/identity/verify?req={req_id}"));
    ctx.insert("skip_href", &skip);
    Ok(page(&state, StatusCode::OK, "register_real_name.html", locale, ctx))
}
