//! Help for citizens (G3): the FAQ with search (public), feedback and error
//! reports (纠错) sent from any page through the frame's link (the form
//! remembers the page it came from), and the answers in the personal
//! centre. The rules live in `domain::staff::content`.
use crate::domain::staff::{StaffError, content};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::kit::human;
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

type PageResult = Result<Response, PageError>;

#[derive(Deserialize)]
pub struct FaqQuery {
    #[serde(default)]
    q: String,
}

/// `/faq`: every category and its questions, or those matching `q`.
pub async fn faq(State(state): State<AppState>, Locale(locale): Locale, Query(q): Query<FaqQuery>) -> PageResult {
    let sections = content::faq(&state.store, &q.q).await?;
    let mut ctx = tera::Context::new();
    ctx.insert("help", &json!({ "q": q.q, "sections": sections, "searched": !q.q.trim().is_empty() }));
    Ok(page(&state, StatusCode::OK, "faq.html", locale, ctx))
}

#[derive(Deserialize)]
pub struct FeedbackQuery {
    /// The page the link was followed from.
    #[serde(default)]
    from: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize, Default)]
pub struct FeedbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    body: String,
}
crate::with_csrf!(FeedbackForm);

fn form_page(
    state: &AppState,
    jar: CookieJar,
    locale: &'static str,
    status: StatusCode,
    f: &FeedbackForm,
    error: Option<&str>,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    let kind = if content::KINDS.contains(&f.kind.as_str()) { f.kind.as_str() } else { "feedback" };
    ctx.insert(
        "help",
        &json!({ "kind": kind, "page": cookies::safe_local_path(&f.page).unwrap_or("/"), "body": f.body,
            "error": error.map(|k| state.pages.text(locale, k)), "error_key": error }),
    );
    (jar, page(state, status, "feedback.html", locale, ctx)).into_response()
}

/// `/feedback?from=/page`: the form (signed in: the answer comes to the
/// personal centre).
pub async fn feedback_show(
    State(state): State<AppState>,
    Locale(locale): Locale,
    _me: SignedIn,
    jar: CookieJar,
    Query(q): Query<FeedbackQuery>,
) -> PageResult {
    let f = FeedbackForm { kind: q.kind, page: q.from, ..FeedbackForm::default() };
    Ok(form_page(&state, jar, locale, StatusCode::OK, &f, None))
}

pub async fn feedback_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Locale(locale): Locale,
    me: SignedIn,
    jar: CookieJar,
    CsrfForm(f): CsrfForm<FeedbackForm>,
) -> PageResult {
    let ip = cookies::client_ip(Some(addr));
    let now = state.clock.now();
    match content::submit(&state.store, &me.user.id, &f.kind, &f.page, &f.body, Some(&ip), now).await {
        Ok(_) => Ok(see_other(&state.endpoint("/account/feedback?sent=1"))),
        // The typed text comes back with the message at the field.
        Err(StaffError::Invalid(key)) => Ok(form_page(&state, jar, locale, StatusCode::BAD_REQUEST, &f, Some(key))),
        Err(StaffError::Db(e)) => Err(PageError::unavailable(e)),
        Err(e) => Err(PageError::unavailable(e)),
    }
}

#[derive(Deserialize)]
pub struct MineQuery {
    #[serde(default)]
    sent: String,
}

/// `/account/feedback`: what the person sent and the answers.
pub async fn mine(
    State(state): State<AppState>,
    Locale(locale): Locale,
    me: SignedIn,
    Query(q): Query<MineQuery>,
) -> PageResult {
    let rows: Vec<_> = content::mine(&state.store, &me.user.id)
        .await?
        .into_iter()
        .map(|f| {
            json!({
                "id": f.id, "kind": f.kind, "kind_text": state.pages.text(locale, &format!("feedback_kind_{}", f.kind)),
                "page": f.page, "body": f.body, "status": f.status, "answer": f.answer,
                "at": human::datetime(f.created_at, locale),
                "answered_at": f.answered_at.map(|t| human::datetime(t, locale)),
            })
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("help", &json!({ "rows": rows, "sent": !q.sent.is_empty() }));
    Ok(page(&state, StatusCode::OK, "my_feedback.html", locale, ctx))
}
