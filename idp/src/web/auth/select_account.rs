//! `prompt=select_account`: continue as the signed-in person or sign in as
//! someone else.
use crate::domain::tokens::authorize::choose_account;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::web::auth::login::signed_in_request;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SelectQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize)]
pub struct SelectForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    choice: String,
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<SelectQuery>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let (req, session, browser) = signed_in_request(&state, &jar, locale, &q.req).await?;
    let locale = cookies::locale(&state, &headers, req.ui_locales.as_deref());
    let user = state.users.find(&session.user_id).await.ok().flatten();
    let mut ctx = tera::Context::new();
    ctx.insert("req", &q.req);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    ctx.insert("username", &user.map(|u| u.username).unwrap_or_default());
    Ok(page(&state, StatusCode::OK, "select_account.html", locale, ctx))
}

crate::with_csrf!(SelectForm);

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(f): CsrfForm<SelectForm>,
) -> Result<Response, PageError> {
    let browser = cookies::get(&state, &jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b));
    let chosen = match browser {
        Some(b) => choose_account(&state.store, &f.req, &b, state.clock.now()).await?,
        None => false,
    };
    if !chosen {
        return Err(PageError::bad_request("error_request_expired"));
    }
    let path = if f.choice == "switch" { "/login" } else { "/authorize/resume" };
    Ok(see_other(&format!("{}{}?req={}", state.config.issuer, path, f.req)))
}
