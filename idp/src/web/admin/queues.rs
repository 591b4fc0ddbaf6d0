//! The reviewers' queues besides appeals: representative and phone changes
//! (C5), kin-binding reports, feedback (G3); the FAQ editor; enterprises
//! by credit code. Each decision is one `domain::staff` call: role checked,
//! decided once, audited, the citizen told where the manual says.
use super::Console;
use crate::domain::delegation::kin::Notices;
use crate::domain::staff::{StaffError, content, reviews};
use crate::kit::extract::{CsrfForm, PageError};
use crate::server::AppState;
use crate::with_csrf;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::Value;

type PageResult = Result<Response, PageError>;

#[derive(Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    pub(super) status: String,
}

#[derive(Deserialize)]
pub struct QueueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) reason: String,
}
with_csrf!(QueueForm);

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// Rows for a queue template, each with its filing time as text (`at`).
fn with_time<R: Serialize>(rows: Vec<R>) -> Vec<Value> {
    rows.into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            let at = fmt_time(v["created_at"].as_i64().unwrap_or_default());
            v["at"] = at.into();
            v
        })
        .collect()
}

/// Which of the form's two `action` buttons was pressed: `yes` is true,
/// `no` false, anything else a bad form.
pub(super) fn choice(action: &str, yes: &str, no: &str) -> Result<bool, Box<PageError>> {
    match action {
        a if a == yes => Ok(true),
        a if a == no => Ok(false),
        _ => Err(Box::new(PageError::bad_request("error_bad_form"))),
    }
}

/// A reviewers' queue: its page lists the requests with a status (the
/// role checked by the core), and a decision on one shows the pending
/// ones again with what was done.
#[derive(Debug, Clone, Copy)]
pub(super) enum Queue {
    Appeals,
    Changes,
    KinReports,
    Feedback,
}

impl Queue {
    fn template(self) -> &'static str {
        match self {
            Queue::Appeals => "admin_appeals.html",
            Queue::Changes => "admin_changes.html",
            Queue::KinReports => "admin_kin_reports.html",
            Queue::Feedback => "admin_feedback.html",
        }
    }

    async fn rows(self, state: &AppState, c: &Console, status: &str) -> Result<Vec<Value>, StaffError> {
        let (db, staff) = (&state.store, &c.staff);
        Ok(match self {
            Queue::Appeals => super::appeal_detail::rows_json(
                &reviews::appeals(db, staff, status, state.clock.now()).await?,
                c.locale,
            ),
            Queue::Changes => with_time(reviews::changes(db, staff, status).await?),
            Queue::KinReports => with_time(reviews::kin_reports(db, staff, status).await?),
            Queue::Feedback => with_time(content::queue(db, staff, status).await?),
        })
    }

    /// The queue's page of requests with `status`, with the notice `done`
    /// (a locale key) of what was just done.
    pub(super) async fn page(
        self,
        state: &AppState,
        c: &Console,
        jar: CookieJar,
        status: &str,
        done: Option<&str>,
    ) -> PageResult {
        let rows = self.rows(state, c, status).await?;
        let mut ctx = tera::Context::new();
        ctx.insert(
            "adm",
            &serde_json::json!({ "rows": rows, "status": status, "done": done.map(|k| state.pages.text(c.locale, k)) }),
        );
        Ok(c.render(state, jar, self.template(), ctx))
    }

    /// A decision on one request: the core `call` (role checked, decided
    /// once, audited, the citizen told), then the pending requests with
    /// the notice `done`; a refusal is the console's error page.
    pub(super) async fn decide<T>(
        self,
        state: &AppState,
        c: &Console,
        jar: CookieJar,
        call: impl Future<Output = Result<T, StaffError>>,
        done: &str,
    ) -> PageResult {
        call.await?;
        self.page(state, c, jar, "pending", Some(done)).await
    }
}

// ---------------------------------------------------------------- changes (C5)

/// `/admin/changes`: representative and phone change requests.
pub async fn changes(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    Queue::Changes.page(&state, &c, jar, &q.status, None).await
}

pub async fn change_decide(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    let approve = choice(&f.action, "approve", "reject").map_err(|e| *e)?;
    let key = if approve { "sms_enterprise_change_approved" } else { "sms_enterprise_change_rejected" };
    let template = state.pages.text(&state.config.default_locale, key);
    let (db, sms, now) = (&state.store, &state.sms_codes, state.clock.now());
    let call = reviews::decide_change(db, sms, &c.staff, &id, approve, &f.reason, &template, now);
    let done = if approve { "admin_done_approved" } else { "admin_done_rejected" };
    Queue::Changes.decide(&state, &c, jar, call, done).await
}

// ---------------------------------------------------------------- kin reports

/// `/admin/kin-reports`: reports of malicious kin bindings.
pub async fn kin_reports(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    Queue::KinReports.page(&state, &c, jar, &q.status, None).await
}

pub async fn kin_report_decide(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    let remove = choice(&f.action, "remove", "dismiss").map_err(|e| *e)?;
    let text = |key: &str| state.pages.text(&state.config.default_locale, key);
    let notices = Notices { sms: state.sms_codes.gateway(), text: &text };
    let call = reviews::decide_kin_report(&state.store, &notices, &c.staff, &id, remove, state.clock.now());
    let done = if remove { "admin_done_kin_removed" } else { "admin_done_kin_dismissed" };
    Queue::KinReports.decide(&state, &c, jar, call, done).await
}

// ---------------------------------------------------------------- feedback

/// `/admin/feedback`: citizens' feedback and error reports.
pub async fn feedback(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    Queue::Feedback.page(&state, &c, jar, &q.status, None).await
}

pub async fn feedback_answer(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    let call = content::answer(&state.store, &c.staff, &id, &f.reason, state.clock.now());
    Queue::Feedback.decide(&state, &c, jar, call, "admin_done_answered").await
}

// ---------------------------------------------------------------- FAQ editor

async fn faq_page(state: &AppState, c: &Console, jar: CookieJar, done: Option<&str>) -> PageResult {
    c.staff.require(crate::domain::staff::Permission::ManageContent)?;
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
            content::save_category(db, &c.staff, id, &f.name, position, now).await?;
            "admin_done_saved"
        }
        "delete_category" => {
            content::delete_category(db, &c.staff, id.unwrap_or_default(), now).await?;
            "admin_done_deleted"
        }
        "save_item" => {
            let q = content::Question {
                category_id: f.category.trim(),
                question: &f.question,
                answer: &f.answer,
                position,
            };
            content::save_item(db, &c.staff, id, &q, now).await?;
            "admin_done_saved"
        }
        "delete_item" => {
            content::delete_item(db, &c.staff, id.unwrap_or_default(), now).await?;
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
            Err(e) => return Err(e.into()),
        }
    } else {
        c.staff.require(crate::domain::staff::Permission::ViewPeople)?;
        (None, None)
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut ctx = tera::Context::new();
    ctx.insert("adm", &serde_json::json!({ "uscc": q.uscc, "searched": searched, "e": found, "error": error }));
    Ok(c.render_status(&state, jar, status, "admin_enterprises.html", &mut ctx))
}
