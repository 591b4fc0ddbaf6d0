//! Registration (A1): username, phone + graphic captcha + SMS code,
//! password twice, agreement; signed in afterwards and returned to the app
//! that asked, when there is one.
use crate::domain::assurance::Factor;
use crate::domain::identity::accounts::{self, Created, RegistrationForm};
use crate::kit::pages::{page, unavailable};
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
    action: String,
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
    notice: Option<Notice>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("req", &f.req);
    ctx.insert("username", &f.username);
    ctx.insert("phone", &f.phone);
    ctx.insert("agree", &f.agree.is_some());
    sms_form::form_page(state, jar, status, "register.html", locale, ctx, notice, true).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<RegisterQuery>,
) -> Response {
    let (req, locale) = match live_request_id(&state, &jar, &headers, q.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    render(&state, jar, StatusCode::OK, locale, &RegisterForm { req, ..Default::default() }, None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    let (req, locale) = match pending_for_page(&state, &jar, &headers, &f.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let text = |key: &str| state.pages.text(locale, key);
    let ip = sms_form::ip_of(addr);
    let code_req = CodeRequest::new(SmsPurpose::Register, &f.phone, &ip, &f.captcha_id, &f.captcha);
    let code_req = code_req.account_must_exist(Some(false));
    if let Some((status, notice)) = sms_form::csrf_or_send(&state, &jar, locale, &f.csrf, &f.action, code_req).await {
        return render(&state, jar, status, locale, &f, Some(notice)).await;
    }
    let form = RegistrationForm {
        username: f.username.clone(),
        phone: f.phone.clone(),
        password: f.password.clone(),
        password2: f.password2.clone(),
        agreed: f.agree.is_some(),
    };
    let (username, phone) = match accounts::validate(&form) {
        Ok(v) => v,
        Err(e) => {
            return render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, Some(Notice::Error(text(e.message))))
                .await;
        }
    };
    match state.sms_codes.verify(phone.as_str(), SmsPurpose::Register, &f.sms_code).await {
        Ok(true) => {}
        Ok(false) => {
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                locale,
                &f,
                Some(Notice::Error(text("sms_code_wrong"))),
            )
            .await;
        }
        Err(e) => return unavailable(&state, locale, e),
    }
    let now = state.clock.now();
    let created =
        match accounts::create_citizen(&state.store, &state.passwords, &username, &phone, &f.password, now).await {
            Ok(Created::Ok(u)) => u,
            Ok(Created::Taken(key)) => {
                return render(&state, jar, StatusCode::CONFLICT, locale, &f, Some(Notice::Error(text(key)))).await;
            }
            Err(e) => return unavailable(&state, locale, e),
        };
    if let Err(e) =
        accounts::audit(&state.store, Some(&created.sub), "register", "phone verified by SMS", Some(&ip), now).await
    {
        return unavailable(&state, locale, e);
    }
    // Registration reached from the upstream link page links the new account (A3).
    let jar = crate::web::auth::upstream::link_after_registration(&state, jar, &created.sub, &ip).await;
    // A1: the real-name step is offered now and may be skipped ("暂不认证").
    let who = SignedIn::new(&created.sub, Factor::Sms).from_ip(&ip).then(format!("/register/real-name?req={}", f.req));
    complete(&state, jar, locale, &f.req, req, who).await
}

/// After registering: verify your identity now, or skip and go on to the
/// app (or the personal centre).
pub async fn real_name_offer(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<RegisterQuery>,
) -> Response {
    let (req, locale) = match pending_for_page(&state, &jar, &headers, &q.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let req_id = if req.is_some() { q.req.as_str() } else { "" };
    let skip = if req_id.is_empty() { "/account".to_string() } else { format!("/authorize/resume?req={req_id}") };
    let mut ctx = tera::Context::new();
    ctx.insert("verify_href", &format!("/identity/verify?req={req_id}"));
    ctx.insert("skip_href", &skip);
    page(&state, StatusCode::OK, "register_real_name.html", locale, ctx)
}
