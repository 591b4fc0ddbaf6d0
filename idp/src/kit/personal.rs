//! The entry check of every personal page (C1): the signed-in person's own
//! session, never one made from an enterprise credential. The rule itself
//! is `domain::delegation::acting::personal`; this renders its refusal.
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::delegation::acting::{self, ForEnterprise};
use crate::kit::cookies::current_session;
use crate::kit::pages::{page, unavailable};
use crate::server::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;

/// `Ok(None)`: nobody is signed in (each page decides where to send him).
/// `Err`: the page to show instead — storage trouble, or the session acts
/// for an enterprise.
pub async fn session(state: &AppState, jar: &CookieJar, locale: &str) -> Result<Option<SessionInfo>, Response> {
    let s = match current_session(state, jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => return Err(unavailable(state, locale, e)),
    };
    match acting::personal(&state.store, s).await {
        Ok(Ok(s)) => Ok(Some(s)),
        Ok(Err(a)) => Err(enterprise_session_page(state, locale, &a)),
        Err(e) => Err(unavailable(state, locale, e)),
    }
}

/// Personal pages need a personal sign-in: the citizen sign-in (which ends
/// the acting), or back to the enterprise pages.
pub fn enterprise_session_page(state: &AppState, locale: &str, a: &ForEnterprise) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("message", &state.pages.text(locale, "personal_needs_personal_sign_in"));
    let back = if a.delegation_id.is_some() { "/enterprise/agent/password" } else { "/enterprise/agents" };
    ctx.insert(
        "links",
        &serde_json::json!([
            { "id": "personal-sign-in", "href": "/login", "text": state.pages.text(locale, "personal_sign_in_link") },
            { "id": "enterprise-back", "href": back, "text": state.pages.text(locale, "personal_enterprise_back") },
        ]),
    );
    page(state, StatusCode::FORBIDDEN, "error.html", locale, ctx)
}
