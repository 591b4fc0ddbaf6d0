//! Sign-in history (issue 19): the person's sign-ins and the changes to how
//! one signs in to the account, from the audit log, in words and local time.
use crate::domain::authn::console;
use crate::kit::extract::{Locale, PageError, SignedIn};
use crate::kit::human;
use crate::kit::pages::page;
use crate::server::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

/// How many entries the page lists.
const SHOWN: u64 = 50;

pub async fn show(State(state): State<AppState>, Locale(locale): Locale, me: SignedIn) -> Result<Response, PageError> {
    let entries = console::history(&state.store, &me.user.id, SHOWN).await?;
    let text = |key: String| state.pages.text(locale, &key);
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "action": e.action,
                "what": text(format!("history_{}", e.action)),
                "method": e.method.as_ref().map(|m| text(format!("method_{m}"))),
                "at": human::datetime(e.at, locale),
                "ip": e.ip,
            })
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("entries", &rows);
    Ok(page(&state, StatusCode::OK, "history.html", locale, ctx))
}
