//! What every page handler extracts before it calls the core, and the one
//! error type pages return. A handler reads: extract → one core call →
//! render; the refusals (nobody signed in, an enterprise session on a
//! personal page, a stale form, the database away) are answered here, the
//! same way on every page.
use crate::domain::DomainError;
use crate::domain::authn::sessions::SessionInfo;
use crate::kit::cookies;
use crate::kit::pages::error_page;
use crate::server::AppState;
use crate::store::entities::user;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::de::DeserializeOwned;

/// The language of the page: the `lang` cookie, then `Accept-Language`,
/// then the configured default.
#[derive(Clone, Copy, Debug)]
pub struct Locale(pub &'static str);

impl FromRequestParts<AppState> for Locale {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Locale(cookies::locale(state, &parts.headers, None)))
    }
}

/// Why a page could not be shown. It becomes the themed error page in the
/// visitor's language (see [`render_errors`]), or a ready response such as
/// the redirect to sign-in.
#[derive(Debug)]
pub enum PageError {
    /// The database or another dependency failed: logged, shown as "try
    /// again later" (503), never as a success.
    Unavailable,
    /// A refusal with a status and the locale key of its message.
    Refused(StatusCode, &'static str),
    /// A complete answer (a redirect to sign-in, a page with links).
    Respond(Response),
}

impl PageError {
    /// Logs what failed (the visitor only learns "try again later").
    pub fn unavailable(err: impl std::fmt::Display) -> Self {
        tracing::error!("request failed: {err}");
        PageError::Unavailable
    }

    pub fn bad_request(key: &'static str) -> Self {
        PageError::Refused(StatusCode::BAD_REQUEST, key)
    }

    pub fn forbidden(key: &'static str) -> Self {
        PageError::Refused(StatusCode::FORBIDDEN, key)
    }

    pub fn not_found() -> Self {
        PageError::Refused(StatusCode::NOT_FOUND, "error_not_found")
    }
}

impl From<crate::store::DbErr> for PageError {
    fn from(e: crate::store::DbErr) -> Self {
        PageError::unavailable(e)
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        PageError::unavailable(e)
    }
}

impl From<crate::domain::delegation::enterprises::EnterpriseError> for PageError {
    fn from(e: crate::domain::delegation::enterprises::EnterpriseError) -> Self {
        match e {
            crate::domain::delegation::enterprises::EnterpriseError::Invalid(key) => PageError::bad_request(key),
            other => PageError::unavailable(other),
        }
    }
}

/// A console use case's refusal: the console's error page with its status.
impl From<crate::domain::staff::StaffError> for PageError {
    fn from(e: crate::domain::staff::StaffError) -> Self {
        use crate::domain::staff::StaffError;
        match e {
            StaffError::Forbidden => PageError::forbidden("admin_forbidden"),
            StaffError::NotFound => PageError::not_found(),
            StaffError::Invalid(key) => PageError::bad_request(key),
            StaffError::Db(e) => e.into(),
            StaffError::Domain(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        PageError::unavailable(e)
    }
}

impl From<Response> for PageError {
    fn from(r: Response) -> Self {
        PageError::Respond(r)
    }
}

/// Marks a response whose body [`render_errors`] fills with the themed page.
#[derive(Clone, Copy)]
struct ErrorKey(&'static str);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, key) = match self {
            PageError::Respond(r) => return r,
            PageError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "error_unavailable"),
            PageError::Refused(status, key) => (status, key),
        };
        let mut res = status.into_response();
        res.extensions_mut().insert(ErrorKey(key));
        res
    }
}

/// Middleware: renders every [`PageError`] as the themed error page in the
/// language of the request, with its way back (the error template links
/// home and to sign-in).
pub async fn render_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let locale = cookies::locale(&state, req.headers(), None);
    let res = next.run(req).await;
    match res.extensions().get::<ErrorKey>().copied() {
        Some(ErrorKey(key)) => error_page(&state, res.status(), locale, key),
        None => res,
    }
}

/// The router's fallback: an unknown address gets the themed "not found"
/// page, never the browser's own empty one.
pub async fn not_found() -> PageError {
    PageError::not_found()
}

/// A person signed in with their own session (C1: never one acting for an
/// enterprise) whose account is not suspended. Without one the browser is
/// sent to sign in and brought back to the page it asked for.
pub struct SignedIn {
    pub session: SessionInfo,
    pub user: user::Model,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let locale = cookies::locale(state, &parts.headers, None);
        let back = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/account");
        let back = if parts.method == axum::http::Method::GET { back } else { parts.uri.path() };
        let Some(session) = crate::kit::personal::session(state, &jar, locale).await? else {
            return Err(PageError::Respond(cookies::sign_in_then(state, jar, back)));
        };
        match state.users.find(&session.user_id).await.map_err(PageError::unavailable)? {
            Some(user) if !user.disabled => Ok(SignedIn { session, user }),
            _ => Err(PageError::Respond(cookies::sign_in_then(state, jar, back))),
        }
    }
}

/// A form that carries the page's CSRF token (a field named `csrf`).
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// A posted form whose CSRF token matches this browser's. A stale or forged
/// form is refused (403, "reload the page") before the handler runs.
pub struct CsrfForm<T>(pub T);

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + WithCsrf + Send,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(req.headers());
        let axum::Form(form) =
            axum::Form::<T>::from_request(req, state).await.map_err(|_| PageError::bad_request("error_bad_form"))?;
        if !cookies::csrf_ok(state, &jar, form.csrf()) {
            return Err(PageError::forbidden("error_csrf"));
        }
        Ok(CsrfForm(form))
    }
}

/// Implements [`WithCsrf`] for forms whose token field is `csrf`.
#[macro_export]
macro_rules! with_csrf {
    ($($t:ty),+ $(,)?) => {
        $(impl $crate::kit::extract::WithCsrf for $t {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}

/// The legal representative signed in for his enterprise (C3: the agents
/// page and its actions). Without a session the browser goes to the
/// enterprise sign-in; a session acting otherwise is refused (403).
pub struct EnterpriseSession {
    pub session: SessionInfo,
    pub enterprise: crate::store::entities::enterprise::Model,
}

impl FromRequestParts<AppState> for EnterpriseSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(session) = cookies::current_session(state, &jar).await? else {
            return Err(PageError::Respond(crate::oidc::flow::see_other(&state.endpoint("/login/enterprise"))));
        };
        match crate::domain::delegation::enterprises::represented_in_session(&state.store, &session).await? {
            Some(enterprise) => Ok(EnterpriseSession { session, enterprise }),
            None => Err(PageError::forbidden("agents_not_representative")),
        }
    }
}
