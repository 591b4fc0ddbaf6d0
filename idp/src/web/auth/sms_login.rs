//! SMS-code sign-in (A3): phone + graphic captcha + SMS code.
use crate::domain::assurance::Factor;
use crate::domain::authn::sign_in::{self, SmsOutcome};
use crate::kit::extract::{CsrfForm, PageError};
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
pub struct SmsQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize, Default)]
pub struct SmsForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    remember: Option<String>,
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    f: &SmsForm,
    sent: Option<Sent>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("req", &f.req);
    ctx.insert("phone", &f.phone);
    ctx.insert("sms_code", &f.sms_code);
    ctx.insert("remember", &f.remember.is_some());
    ctx.insert("send_action", "/login/sms/send");
    let notice = sent.map(|s| s.into_ctx(&mut ctx));
    let brand = crate::web::auth::brand::of_request(state, &jar, &f.req, locale).await;
    crate::web::auth::brand::insert(&mut ctx, brand.as_ref());
    let res = sms_form::form_page(state, jar, status, "sms_login.html", locale, ctx, notice, true).await;
    crate::web::auth::brand::with_csp(res, brand.as_ref())
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<SmsQuery>,
) -> Result<Response, PageError> {
    let (req, locale) = live_request_id(&state, &jar, &headers, q.req).await?;
    Ok(render(&state, jar, StatusCode::OK, locale, &SmsForm { req, ..Default::default() }, None).await)
}

crate::with_csrf!(SmsForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<SmsForm>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let ip = sms_form::ip_of(addr);
    let (status, key) = match sign_in::sms_sign_in(&state.sms_codes, &state.users, &f.phone, &f.sms_code).await? {
        SmsOutcome::Verified(user) => {
            let who = SignedIn::new(&user.id, Factor::Sms).remember(f.remember.is_some()).from_ip(&ip);
            return finish(&state, jar, &f.req, req, who).await;
        }
        SmsOutcome::BadPhone => (StatusCode::BAD_REQUEST, "register_phone_rule"),
        SmsOutcome::CodeWrong => (StatusCode::UNAUTHORIZED, "sms_code_wrong"),
        SmsOutcome::NoAccount => (StatusCode::UNAUTHORIZED, "sms_login_no_account"),
    };
    Ok(render(&state, jar, status, locale, &f, Some(Sent::refused(&state, locale, key))).await)
}

/// `POST /login/sms/send`: the "获取短信验证码" button; the typed phone
/// stays in the form.
pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<SmsForm>,
) -> Result<Response, PageError> {
    let (_, locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let ip = sms_form::ip_of(addr);
    let code_req = CodeRequest::new(SmsPurpose::Login, &f.phone, &ip, &f.captcha_id, &f.captcha);
    let sent =
        sms_form::send_code_detailed(&state, locale, code_req.account_must_exist(Some(true)), Delivery::Send).await;
    Ok(render(&state, jar, sent.status(), locale, &f, Some(sent)).await)
}
