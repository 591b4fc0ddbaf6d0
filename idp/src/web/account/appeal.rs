//! The appeal form (A8). Open to anyone — the point is that the person
//! could not register — but the contact phone is proven by SMS, because the
//! outcome is sent there, and so is a claimed phone (approval moves it).
use crate::domain::identity::appeals::{self, FileError, NewAppeal};
use crate::kit::cookies;
use crate::kit::extract::PageError;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Deserialize, Serialize, Default)]
pub struct AppealForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    claimed_value: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    claimed_sms_code: String,
    #[serde(default)]
    details: String,
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    f: &AppealForm,
    notice: Option<Notice>,
    filed: Option<String>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("f", f);
    ctx.insert("filed", &filed);
    let captcha = filed.is_none();
    sms_form::form_page(state, jar, status, "appeal.html", locale, ctx, notice, captcha).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<AppealForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let f = AppealForm { kind: q.kind, claimed_value: q.claimed_value, ..Default::default() };
    render(&state, jar, StatusCode::OK, locale, &f, None, None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<AppealForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let text = |key: &str| state.pages.text(locale, key);
    let ip = sms_form::ip_of(addr);
    let code_req = CodeRequest::new(SmsPurpose::Verify, &f.phone, &ip, &f.captcha_id, &f.captcha);
    if let Some((status, notice)) = sms_form::csrf_or_send(&state, &jar, locale, &f.csrf, &f.action, code_req).await {
        return Ok(render(&state, jar, status, locale, &f, Some(notice), None).await);
    }
    // A phone appeal proves the claimed phone too (A8): its own code.
    if f.action == "send_claimed_code" {
        let code_req = CodeRequest::new(SmsPurpose::Verify, &f.claimed_value, &ip, &f.captcha_id, &f.captcha);
        let notice = sms_form::send_code(&state, locale, code_req).await;
        return Ok(render(&state, jar, notice.status(), locale, &f, Some(notice), None).await);
    }
    // Only a personal session makes its account the appellant (C1): an
    // enterprise session files like anyone signed out.
    let appellant = crate::kit::personal::session(&state, &jar, locale).await.ok().flatten().map(|s| s.user_id);
    let new = NewAppeal {
        kind: f.kind.clone(),
        claimed_value: f.claimed_value.clone(),
        name: f.name.clone(),
        id_number: f.id_number.clone(),
        contact_phone: f.phone.clone(),
        details: f.details.clone(),
        appellant_user_id: appellant,
        contact_code: f.sms_code.clone(),
        claimed_code: f.claimed_sms_code.clone(),
        ip: Some(ip.clone()),
    };
    let now = state.clock.now();
    Ok(match appeals::file(&state.store, &state.sms_codes, new, now).await {
        Ok(id) => render(&state, jar, StatusCode::OK, locale, &f, None, Some(id)).await,
        Err(FileError::Field(key)) => {
            render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, Some(Notice::Error(text(key))), None).await
        }
        Err(FileError::TooFrequent) => {
            render(
                &state,
                jar,
                StatusCode::TOO_MANY_REQUESTS,
                locale,
                &f,
                Some(Notice::Error(text("appeal_too_frequent"))),
                None,
            )
            .await
        }
        Err(FileError::Store(e)) => return Err(PageError::unavailable(e)),
    })
}
