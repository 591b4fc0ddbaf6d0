//! `prompt=select_account`: continue as the signed-in person or sign in as
//! someone else.
use crate::domain::authn::pending;
use crate::kit::cookies;
use crate::kit::pages::{error_page, page, unavailable};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::web::auth::login::signed_in_request;
use axum::Form;
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
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let (req, session, browser) = match signed_in_request(&state, &jar, locale, &q.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let locale = cookies::locale(&state, &headers, req.ui_locales.as_deref());
    let user = state.users.find(&session.user_id).await.ok().flatten();
    let mut ctx = tera::Context::new();
    ctx.insert("req", &q.req);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    ctx.insert("username", &user.map(|u| u.username).unwrap_or_default());
    page(&state, StatusCode::OK, "select_account.html", locale, ctx)
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<SelectForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return error_page(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    let Some(browser) = cookies::get(&state, &jar, cookies::BROWSER) else {
        return error_page(&state, StatusCode::BAD_REQUEST, locale, "error_request_expired");
    };
    let mut req = match pending::load(&state.store, &f.req, &cookies::browser_hash(&browser), state.clock.now()).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(&state, StatusCode::BAD_REQUEST, locale, "error_request_expired");
        }
        Err(e) => return unavailable(&state, locale, e),
    };
    req.account_chosen = true;
    if pending::update(&state.store, &f.req, &req).await.is_err() {
        return error_page(&state, StatusCode::SERVICE_UNAVAILABLE, locale, "error_unavailable");
    }
    let path = if f.choice == "switch" { "/login" } else { "/authorize/resume" };
    see_other(&format!("{}{}?req={}", state.config.issuer, path, f.req))
}
