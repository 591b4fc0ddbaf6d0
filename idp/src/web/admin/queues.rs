//! The reviewers' queues besides appeals: representative and phone changes
//! (C5), kin-binding reports, feedback (G3); the FAQ editor; enterprises
//! by credit code. Each decision is one `domain::staff` call: role checked,
//! decided once, audited, the citizen told where the manual says.
use super::{Console, refused};
use crate::domain::delegation::kin::Notices;
use crate::domain::staff::{content, reviews};
use crate::kit::extract::{CsrfForm, PageError};
use crate::server::AppState;
use crate::with_csrf;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

type PageResult = Result<Response, PageError>;

#[derive(Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
pub struct QueueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}
with_csrf!(QueueForm);

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------- changes (C5)

async fn changes_page(state: &AppState, c: &Console, jar: CookieJar, status: &str, done: Option<&str>) -> PageResult {
    let rows = reviews::changes(&state.store, &c.staff, status).await.map_err(refused)?;
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let at = fmt_time(r.created_at);
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["at"] = at.into();
            v
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "rows": rows, "status": status, "done": done.map(|k| state.pages.text(c.locale, k)) }),
    );
    Ok(c.render(state, jar, "admin_changes.html", ctx))
}

/// `/admin/changes`: representative and phone change requests.
pub async fn changes(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    changes_page(&state, &c, jar, &q.status, None).await
}

pub async fn change_decide(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    let approve = match f.action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(PageError::bad_request("error_bad_form")),
    };
    let key = if approve { "sms_enterprise_change_approved" } else { "sms_enterprise_change_rejected" };
    let template = state.pages.text(&state.config.default_locale, key);
    let now = state.clock.now();
    reviews::decide_change(&state.store, &state.sms_codes, &c.staff, &id, approve, &f.reason, &template, now)
        .await
        .map_err(refused)?;
    let done = if approve { "admin_done_approved" } else { "admin_done_rejected" };
    changes_page(&state, &c, jar, "pending", Some(done)).await
}

// ---------------------------------------------------------------- kin reports

async fn kin_page(state: &AppState, c: &Console, jar: CookieJar, status: &str, done: Option<&str>) -> PageResult {
    let rows = reviews::kin_reports(&state.store, &c.staff, status).await.map_err(refused)?;
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let at = fmt_time(r.created_at);
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["at"] = at.into();
            v
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "rows": rows, "status": status, "done": done.map(|k| state.pages.text(c.locale, k)) }),
    );
    Ok(c.render(state, jar, "admin_kin_reports.html", ctx))
}

/// `/admin/kin-reports`: reports of malicious kin bindings.
pub async fn kin_reports(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    kin_page(&state, &c, jar, &q.status, None).await
}

pub async fn kin_report_decide(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    let remove = match f.action.as_str() {
        "remove" => true,
        "dismiss" => false,
        _ => return Err(PageError::bad_request("error_bad_form")),
    };
    let text = |key: &str| state.pages.text(&state.config.default_locale, key);
    let notices = Notices { sms: state.sms_codes.gateway(), text: &text };
    reviews::decide_kin_report(&state.store, &notices, &c.staff, &id, remove, state.clock.now())
        .await
        .map_err(refused)?;
    let done = if remove { "admin_done_kin_removed" } else { "admin_done_kin_dismissed" };
    kin_page(&state, &c, jar, "pending", Some(done)).await
}

// ---------------------------------------------------------------- feedback

async fn feedback_page(state: &AppState, c: &Console, jar: CookieJar, status: &str, done: Option<&str>) -> PageResult {
    let rows = content::queue(&state.store, &c.staff, status).await.map_err(refused)?;
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let at = fmt_time(r.created_at);
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["at"] = at.into();
            v
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "rows": rows, "status": status, "done": done.map(|k| state.pages.text(c.locale, k)) }),
    );
    Ok(c.render(state, jar, "admin_feedback.html", ctx))
}

/// `/admin/feedback`: citizens' feedback and error reports.
pub async fn feedback(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    feedback_page(&state, &c, jar, &q.status, None).await
}

pub async fn feedback_answer(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    content::answer(&state.store, &c.staff, &id, &f.reason, state.clock.now()).await.map_err(refused)?;
    feedback_page(&state, &c, jar, "pending", Some("admin_done_answered")).await
}

// ---------------------------------------------------------------- FAQ editor

async fn faq_page(state: &AppState, c: &Console, jar: CookieJar, done: Option<&str>) -> PageResult {
    c.staff.require(crate::domain::staff::Permission::ManageContent).map_err(refused)?;
    let sections = content::faq(&state.store, "").await?;
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "sections": sections, "done": done.map(|k| state.pages.text(c.locale, k)) }),
    );
    Ok(c.render(state, jar, "admin_faq.html", ctx))
}

/// `/admin/faq`: categories and questions, each editable in place.
pub async fn faq(State(state): State<AppState>, c: Console, jar: CookieJar) -> PageResult {
    faq_page(&state, &c, jar, None).await
}

#[derive(Deserialize)]
pub struct FaqForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    /// The category or question edited / deleted (empty: a new one).
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    question: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    position: String,
}
with_csrf!(FaqForm);

pub async fn faq_submit(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    CsrfForm(f): CsrfForm<FaqForm>,
) -> PageResult {
    let now = state.clock.now();
    let id = Some(f.id.trim()).filter(|i| !i.is_empty());
    let position = f.position.trim().parse::<i64>().unwrap_or(0);
    let db = &state.store;
    let done = match f.action.as_str() {
        "save_category" => {
            content::save_category(db, &c.staff, id, &f.name, position, now).await.map_err(refused)?;
            "admin_done_saved"
        }
        "delete_category" => {
            content::delete_category(db, &c.staff, id.unwrap_or_default(), now).await.map_err(refused)?;
            "admin_done_deleted"
        }
        "save_item" => {
            let q = content::Question {
                category_id: f.category.trim(),
                question: &f.question,
                answer: &f.answer,
                position,
            };
            content::save_item(db, &c.staff, id, &q, now).await.map_err(refused)?;
            "admin_done_saved"
        }
        "delete_item" => {
            content::delete_item(db, &c.staff, id.unwrap_or_default(), now).await.map_err(refused)?;
            "admin_done_deleted"
        }
        _ => return Err(PageError::bad_request("error_bad_form")),
    };
    faq_page(&state, &c, jar, Some(done)).await
}

// ---------------------------------------------------------------- enterprises

#[derive(Deserialize)]
pub struct UsccQuery {
    #[serde(default)]
    uscc: String,
}

/// `/admin/enterprises?uscc=…`: an enterprise by credit code, with its
/// representative and agents (masked).
pub async fn enterprises(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<UsccQuery>,
) -> PageResult {
    let searched = !q.uscc.trim().is_empty();
    let (found, error) = if searched {
        match reviews::enterprise(&state.store, &c.staff, &q.uscc).await {
            Ok(e) => (e, None),
            Err(crate::domain::staff::StaffError::Invalid(key)) => (None, Some(state.pages.text(c.locale, key))),
            Err(e) => return Err(refused(e)),
        }
    } else {
        c.staff.require(crate::domain::staff::Permission::ViewPeople).map_err(refused)?;
        (None, None)
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut ctx = tera::Context::new();
    ctx.insert("adm", &serde_json::json!({ "uscc": q.uscc, "searched": searched, "e": found, "error": error }));
    Ok(c.render_status(&state, jar, status, "admin_enterprises.html", &mut ctx))
}
