//! The portal frame (issue 19): who is signed in, shown in every page's
//! header with the menu, the language switch and sign-out. A middleware
//! looks the session up once per page request and keeps the viewer in a
//! task-local for the length of the request, so [`crate::kit::pages`]
//! renders the frame for every page without each handler passing it.
use crate::kit::cookies;
use crate::server::AppState;
use axum::extract::{Query, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

/// The signed-in person (or enterprise) as the header shows them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Viewer {
    /// The real name when verified, else the account name.
    pub name: Option<String>,
    /// The enterprise the session acts for (C1), by name.
    pub enterprise: Option<String>,
    /// The path of this request, for the language switch and the active
    /// menu entry.
    pub path: String,
    /// `path`, URL-encoded for the language switch's `back`.
    pub back: String,
}

tokio::task_local! {
    static VIEWER: Viewer;
}

/// The viewer of the request being served (an empty one outside a request).
pub fn viewer() -> Viewer {
    VIEWER.try_with(Clone::clone).unwrap_or_default()
}

/// `/authorize` renders a page only when the request is bad: the hot path
/// (a signed-in browser, `prompt=none`) redirects, so the viewer is looked
/// up only for its error pages ([`with_viewer`]), not on every request.
const LAZY: &[&str] = &["/authorize"];

/// Paths that never render a page: no session lookup for them.
fn no_page(path: &str) -> bool {
    const PREFIXES: &[&str] =
        &["/static/", "/.well-known/", "/api/", "/token", "/jwks", "/userinfo", "/introspect", "/revoke"];
    const EXACT: &[&str] = &["/health", "/healthz", "/readyz", "/metrics", "/scan/events", "/scan/status"];
    PREFIXES.iter().any(|p| path.starts_with(p)) || EXACT.contains(&path) || path.ends_with("/begin")
}

async fn look_up(state: &AppState, headers: &HeaderMap, path: &str) -> Viewer {
    let path = cookies::safe_local_path(path).unwrap_or("/").to_string();
    let back = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    let mut v = Viewer { path, back, ..Viewer::default() };
    let jar = CookieJar::from_headers(headers);
    let Ok(Some(s)) = cookies::current_session(state, &jar).await else { return v };
    if let Ok(Err(a)) = crate::domain::delegation::acting::personal(&state.store, s.clone()).await {
        v.enterprise = crate::domain::delegation::enterprises::find(&state.store, &a.enterprise_id)
            .await
            .ok()
            .flatten()
            .map(|e| e.name);
    }
    if let Ok(Some(u)) = state.users.find(&s.user_id).await {
        // The real name masked as on every shared screen (a health code is
        // shown to others); the account name is the person's own choice.
        v.name = Some(match u.name.filter(|n| !n.is_empty()) {
            Some(n) => crate::domain::delegation::kin::mask_name(&n),
            None => u.username,
        });
    }
    v
}

/// Middleware: the viewer for the length of the request.
pub async fn frame(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if no_page(&path) {
        return next.run(req).await;
    }
    // The query comes back with a language switch only when it is plain
    // ids (`req`, `flow`, `hold`): never a URL someone put in a link.
    let plain = |q: &str| q.chars().all(|c| c.is_ascii_alphanumeric() || "=&-_.".contains(c));
    let full = match req.uri().query() {
        Some(q) if plain(q) => format!("{path}?{q}"),
        _ => path,
    };
    if LAZY.contains(&req.uri().path()) {
        let back = url::form_urlencoded::byte_serialize(full.as_bytes()).collect();
        return VIEWER.scope(Viewer { path: full, back, ..Viewer::default() }, next.run(req)).await;
    }
    let v = look_up(&state, req.headers(), &full).await;
    VIEWER.scope(v, next.run(req)).await
}

/// A page of a path the middleware leaves lazy ([`LAZY`]): the viewer is
/// looked up now, for this page only.
pub async fn with_viewer(state: &AppState, headers: &HeaderMap, render: impl FnOnce() -> Response) -> Response {
    let v = look_up(state, headers, &viewer().path).await;
    VIEWER.sync_scope(v, render)
}

#[derive(Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    to: String,
    #[serde(default)]
    back: String,
}

/// The language switch: remembers the choice for a year and goes back.
pub async fn switch_language(State(state): State<AppState>, jar: CookieJar, Query(q): Query<LangQuery>) -> Response {
    let chosen =
        crate::i18n::negotiate(Some(&q.to), None, None, &state.config.default_locale, &state.config.i18n.locales);
    let back = cookies::safe_local_path(&q.back).unwrap_or("/");
    let mut c = axum_extra::extract::cookie::Cookie::new(cookies::LANG, chosen.to_string());
    c.set_path("/");
    c.set_same_site(axum_extra::extract::cookie::SameSite::Lax);
    c.set_secure(state.config.secure_cookies());
    c.set_max_age(cookie::time::Duration::days(365));
    (jar.add(c), crate::oidc::flow::see_other(&format!("{}{back}", state.config.issuer))).into_response()
}
