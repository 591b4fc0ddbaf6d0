//! SMS-code sign-in (A3): phone + graphic captcha + SMS code.
use super::cookies;
use super::login::{SignedIn, complete, load_request, pending_for_page};
use super::pages::{page, unavailable};
use super::sms_form::{self, CodeRequest, Notice};
use crate::domain::assurance::Factor;
use crate::domain::users::PhoneNumber;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("req", &f.req);
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("phone", &f.phone);
    sms_form::insert_notice(&mut ctx, notice);
    sms_form::captcha_ctx(state, &mut ctx).await;
    (jar, page(state, status, "sms_login.html", locale, ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<SmsQuery>,
) -> Response {
    let req = match load_request(&state, &jar, &q.req).await {
        Ok(r) => r,
        Err(e) => return unavailable(&state, "zh-CN", e),
    };
    let locale = cookies::locale(&state, &headers, req.as_ref().and_then(|r| r.ui_locales.as_deref()));
    let form = SmsForm { req: if req.is_some() { q.req } else { String::new() }, ..Default::default() };
    render(&state, jar, StatusCode::OK, locale, &form, None).await
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
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(&state, jar, StatusCode::FORBIDDEN, locale, &f, Some(Notice::Error(text("error_csrf")))).await;
    }
    let ip = sms_form::ip_of(addr);
    if f.action == "send_code" {
        let code_req = CodeRequest {
            phone: &f.phone,
            captcha_id: &f.captcha_id,
            captcha_answer: &f.captcha,
            purpose: SmsPurpose::Login,
            ip: &ip,
            account_must_exist: Some(true),
        };
        let notice = sms_form::send_code(&state, locale, code_req).await;
        let status = notice.status();
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
    complete(&state, jar, locale, &f.req, req, SignedIn::new(&user.id, Factor::Sms).remember(f.remember.is_some()))
        .await
}
