//! SMS-code sign-in (A3): phone + graphic captcha + SMS code.
use crate::domain::assurance::Factor;
use crate::domain::identity::users::PhoneNumber;
use crate::kit::pages::unavailable;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::login::{SignedIn, complete, live_request_id, pending_for_page};
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::Form;
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
    action: String,
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
    notice: Option<Notice>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("req", &f.req);
    ctx.insert("phone", &f.phone);
    sms_form::form_page(state, jar, status, "sms_login.html", locale, ctx, notice, true).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<SmsQuery>,
) -> Response {
    let (req, locale) = match live_request_id(&state, &jar, &headers, q.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    render(&state, jar, StatusCode::OK, locale, &SmsForm { req, ..Default::default() }, None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<SmsForm>,
) -> Response {
    let (req, locale) = match pending_for_page(&state, &jar, &headers, &f.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let text = |key: &str| state.pages.text(locale, key);
    let ip = sms_form::ip_of(addr);
    let code_req = CodeRequest::new(SmsPurpose::Login, &f.phone, &ip, &f.captcha_id, &f.captcha);
    let code_req = code_req.account_must_exist(Some(true));
    if let Some((status, notice)) = sms_form::csrf_or_send(&state, &jar, locale, &f.csrf, &f.action, code_req).await {
        return render(&state, jar, status, locale, &f, Some(notice)).await;
    }
    let Ok(phone) = PhoneNumber::parse(&f.phone) else {
        return render(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            locale,
            &f,
            Some(Notice::Error(text("register_phone_rule"))),
        )
        .await;
    };
    match state.sms_codes.verify(phone.as_str(), SmsPurpose::Login, &f.sms_code).await {
        Ok(true) => {}
        Ok(false) => {
            return render(
                &state,
                jar,
                StatusCode::UNAUTHORIZED,
                locale,
                &f,
                Some(Notice::Error(text("sms_code_wrong"))),
            )
            .await;
        }
        Err(e) => return unavailable(&state, locale, e),
    }
    let user = match state.users.find_by_login(phone.as_str()).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => {
            return render(
                &state,
                jar,
                StatusCode::UNAUTHORIZED,
                locale,
                &f,
                Some(Notice::Error(text("sms_login_no_account"))),
            )
            .await;
        }
        Err(e) => return unavailable(&state, locale, e),
    };
    complete(
        &state,
        jar,
        locale,
        &f.req,
        req,
        SignedIn::new(&user.id, Factor::Sms).remember(f.remember.is_some()).from_ip(&ip),
    )
    .await
}
