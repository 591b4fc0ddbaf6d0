//! The appeal form (A8). Open to anyone — the point is that the person
//! could not register — but the contact phone is proven by SMS, because the
//! outcome is sent there, and so is a claimed phone (approval moves it).
//! The form is sent as `multipart/form-data` so it can carry evidence
//! images (JPEG/PNG, judged by their bytes in the core); a plain
//! url-encoded post (no evidence) is read too. `/appeal/status` shows an
//! appeal's state and the date its review is due, to whoever has its id
//! and the contact phone it was filed with.
use crate::domain::identity::appeals::{self, Evidence, FileError, Filed, NewAppeal};
use crate::kit::cookies;
use crate::kit::extract::{Locale, PageError};
use crate::kit::human;
use crate::kit::pages::page;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::Form;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
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
    filed: Option<Filed>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("f", f);
    ctx.insert("filed", &filed.as_ref().map(|x| x.id.clone()));
    ctx.insert("due", &filed.as_ref().map(|x| human::datetime(x.due_at, locale)));
    ctx.insert("max_evidence", &appeals::MAX_EVIDENCE);
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

/// Upper bound of the appeal form's body: the evidence files and the fields.
pub const BODY_LIMIT: usize = appeals::MAX_EVIDENCE * appeals::MAX_EVIDENCE_BYTES + 256 * 1024;

/// The form's fields and evidence files, from a multipart or a url-encoded
/// body. `Err` is the locale key of what was wrong with the upload.
async fn read_form(state: &AppState, req: Request) -> Result<(AppealForm, Vec<Evidence>), &'static str> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let Form(f) = Form::<AppealForm>::from_request(req, state).await.map_err(|_| "error_bad_form")?;
        return Ok((f, Vec::new()));
    }
    let mut m = Multipart::from_request(req, state).await.map_err(|_| "error_bad_form")?;
    let mut fields = serde_json::Map::new();
    let mut files = Vec::new();
    while let Some(field) = m.next_field().await.map_err(|_| "appeal_evidence_size")? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "evidence" {
            let bytes = field.bytes().await.map_err(|_| "appeal_evidence_size")?;
            // A file input left empty still sends an empty part.
            if !bytes.is_empty() {
                files.push(Evidence(bytes.to_vec()));
            }
        } else {
            let value = field.text().await.map_err(|_| "error_bad_form")?;
            fields.insert(name, serde_json::Value::String(value));
        }
    }
    let f = serde_json::from_value(serde_json::Value::Object(fields)).map_err(|_| "error_bad_form")?;
    Ok((f, files))
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let text = |key: &str| state.pages.text(locale, key);
    let (f, evidence) = match read_form(&state, req).await {
        Ok(x) => x,
        Err(key) => return Err(PageError::bad_request(key)),
    };
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
        evidence,
        holidays: state.config.appeal_holidays.clone(),
    };
    let now = state.clock.now();
    Ok(match appeals::file(&state.store, &state.sms_codes, new, now).await {
        Ok(filed) => render(&state, jar, StatusCode::OK, locale, &f, None, Some(filed)).await,
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

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    phone: String,
}

/// `/appeal/status?id=…&phone=…`: the appeal's state, and while it is
/// pending the date its review is due (A8: within a working day). Both the
/// id and the contact phone must match; nothing else of the appeal shows.
pub async fn status(
    State(state): State<AppState>,
    Locale(locale): Locale,
    Query(q): Query<StatusQuery>,
) -> Result<Response, PageError> {
    let mut ctx = tera::Context::new();
    ctx.insert("q_id", &q.id);
    ctx.insert("q_phone", &q.phone);
    let mut status = StatusCode::OK;
    if !q.id.is_empty() {
        match appeals::status_of(&state.store, &q.id, &q.phone).await? {
            Some((a, due)) => {
                let pending = a.status == crate::domain::review::PENDING;
                let overdue = pending && due.is_some_and(|d| d < state.clock.now());
                ctx.insert(
                    "appeal",
                    &serde_json::json!({
                        "id": a.id,
                        "status": a.status,
                        "status_text": state.pages.text(locale, &format!("appeal_status_{}", a.status)),
                        "filed": human::datetime(a.created_at, locale),
                        "due": due.map(|d| human::datetime(d, locale)),
                        "overdue": overdue,
                        "decided": a.decided_at.map(|d| human::datetime(d, locale)),
                        "reason": a.reason,
                    }),
                );
            }
            None => {
                status = StatusCode::NOT_FOUND;
                ctx.insert("error", &state.pages.text(locale, "appeal_status_unknown"));
            }
        }
    }
    Ok(page(&state, status, "appeal_status.html", locale, ctx))
}
