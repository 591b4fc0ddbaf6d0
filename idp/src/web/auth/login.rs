//! The sign-in page (A3: password with username, phone or ID number).
use crate::domain::assurance::Factor;
use crate::domain::authn::sign_in::{self, PasswordOutcome};
use crate::domain::tokens::authorize::AuthRequest;
use crate::domain::{authn::pending, authn::sessions};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::{error_page, page};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    remember: Option<String>,
}

struct View<'a> {
    req_id: &'a str,
    req: Option<&'a AuthRequest>,
    username: &'a str,
    error: Option<String>,
    /// Show a graphic captcha (sign-in has become risky).
    captcha: bool,
}

async fn render(state: &AppState, jar: CookieJar, status: StatusCode, locale: &str, v: View<'_>) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("req", v.req_id);
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("username", v.username);
    ctx.insert("error", &v.error);
    let brand = crate::web::auth::brand::of_client(state, v.req.map(|r| r.client_id.as_str()), locale).await;
    crate::web::auth::brand::insert(&mut ctx, brand.as_ref());
    ctx.insert("need_captcha", &v.captcha);
    ctx.insert("upstreams", &crate::web::auth::upstream::buttons(state, locale));
    ctx.insert("passkeys_available", &state.passkeys.available());
    if v.captcha {
        crate::web::auth::sms_form::captcha_ctx(state, &mut ctx).await;
    }
    let res = (jar, page(state, status, "login.html", locale, ctx)).into_response();
    crate::web::auth::brand::with_csp(res, brand.as_ref())
}

/// The pending authorization request a sign-in form belongs to (if any) and
/// the page language. An id naming no live request of this browser gets the
/// "request expired" page rather than a form that cannot finish.
pub async fn pending_for_page(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    req_id: &str,
) -> Result<(Option<AuthRequest>, &'static str), Response> {
    let req = load_request(state, jar, req_id).await.map_err(|e| PageError::unavailable(e).into_response())?;
    let locale = cookies::locale(state, headers, req.as_ref().and_then(|r| r.ui_locales.as_deref()));
    if !req_id.is_empty() && req.is_none() {
        return Err(error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired"));
    }
    Ok((req, locale))
}

/// The pending request `req_id` of this browser, its signed-in session and
/// the browser id (for the CSRF token), for the pages after sign-in
/// (consent, account choice); an error page when either is gone.
pub async fn signed_in_request(
    state: &AppState,
    jar: &CookieJar,
    locale: &str,
    req_id: &str,
) -> Result<(AuthRequest, sessions::SessionInfo, String), Response> {
    let Some(browser) = cookies::get(state, jar, cookies::BROWSER) else {
        return Err(error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired"));
    };
    match (
        pending::load(&state.store, req_id, &cookies::browser_hash(&browser), state.clock.now()).await,
        current_session(state, jar).await,
    ) {
        (Ok(Some(r)), Ok(Some(s))) => Ok((r, s, browser)),
        (Ok(_), Ok(_)) => Err(error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired")),
        (Err(e), _) | (_, Err(e)) => Err(PageError::unavailable(e).into_response()),
    }
}

/// For the first render of a sign-in form: the request id to carry on
/// (empty when it names no live request of this browser, so the form
/// still works on its own) and the page language.
pub async fn live_request_id(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    req_id: String,
) -> Result<(String, &'static str), Response> {
    let req = load_request(state, jar, &req_id).await.map_err(|e| PageError::unavailable(e).into_response())?;
    let locale = cookies::locale(state, headers, req.as_ref().and_then(|r| r.ui_locales.as_deref()));
    Ok((if req.is_some() { req_id } else { String::new() }, locale))
}

pub async fn load_request(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
) -> Result<Option<AuthRequest>, crate::store::DbErr> {
    if id.is_empty() {
        return Ok(None);
    }
    let Some(browser) = cookies::get(state, jar, cookies::BROWSER) else {
        return Ok(None);
    };
    pending::load(&state.store, id, &cookies::browser_hash(&browser), state.clock.now()).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &q.req).await?;
    let hint = req.as_ref().and_then(|r| r.login_hint.clone()).unwrap_or_default();
    let view = View { req_id: &q.req, req: req.as_ref(), username: &hint, error: None, captcha: false };
    Ok(render(&state, jar, StatusCode::OK, locale, view).await)
}

crate::with_csrf!(LoginForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let ip = cookies::client_ip(Some(addr));
    let services = sign_in::PasswordServices {
        store: &state.store,
        users: &state.users,
        captcha: &state.captcha,
        throttle: &state.config.login_throttle,
    };
    let attempt = sign_in::PasswordAttempt {
        identifier: &f.username,
        password: &f.password,
        captcha_id: &f.captcha_id,
        captcha_answer: &f.captcha,
        ip: &ip,
        now: state.clock.now(),
    };
    let text = |key: &str| state.pages.text(locale, key);
    let (status, msg, captcha) = match sign_in::password_sign_in(services, attempt).await? {
        PasswordOutcome::Verified(user) => {
            let who = SignedIn::new(&user.id, Factor::Password).remember(f.remember.is_some()).from_ip(&ip);
            return finish(&state, jar, &f.req, req, who).await;
        }
        PasswordOutcome::MissingFields { risky } => (StatusCode::BAD_REQUEST, text("login_missing_fields"), risky),
        PasswordOutcome::Locked { minutes } => {
            (StatusCode::TOO_MANY_REQUESTS, text("login_locked").replace("{minutes}", &minutes.to_string()), true)
        }
        PasswordOutcome::CaptchaWrong => (StatusCode::BAD_REQUEST, text("captcha_wrong"), true),
        PasswordOutcome::Failed { risky } => (StatusCode::UNAUTHORIZED, text("login_failed"), risky),
        PasswordOutcome::Suspended { risky } => (StatusCode::UNAUTHORIZED, text("login_suspended"), risky),
    };
    let view = View { req_id: &f.req, req: req.as_ref(), username: &f.username, error: Some(msg), captcha };
    Ok(render(&state, jar, status, locale, view).await)
}

/// Who signed in, with which factor, and what else the sign-in carries.
pub struct SignedIn<'a> {
    pub user_id: &'a str,
    pub method: Factor,
    /// Keep the device signed in for 30 days (A3).
    pub remember: bool,
    /// Further factors verified in the same step (a face check in the app).
    pub extra: &'a [Factor],
    /// A local page to show first (the offer to verify one's identity right
    /// after registering); that page continues the request itself.
    pub then: Option<String>,
    /// What the session acts for (C1); `None` — a citizen sign-in — ends any
    /// acting the session did before.
    pub acting: Option<Acting>,
    /// The client IP, for the audit trail.
    pub ip: Option<&'a str>,
}

impl<'a> SignedIn<'a> {
    pub fn new(user_id: &'a str, method: Factor) -> Self {
        SignedIn { user_id, method, remember: false, extra: &[], then: None, acting: None, ip: None }
    }
    pub fn from_ip(self, ip: &'a str) -> Self {
        SignedIn { ip: Some(ip), ..self }
    }
    pub fn remember(self, remember: bool) -> Self {
        SignedIn { remember, ..self }
    }
    pub fn with_factors(self, extra: &'a [Factor]) -> Self {
        SignedIn { extra, ..self }
    }
    pub fn then(self, path: String) -> Self {
        SignedIn { then: Some(path), ..self }
    }
    pub fn acting(self, acting: Acting) -> Self {
        SignedIn { acting: Some(acting), ..self }
    }
}

pub use crate::domain::authn::sign_in::Acting;

/// The one place every sign-in ends, for callers that answer with a plain
/// response: see [`finish`].
pub async fn complete(
    state: &AppState,
    jar: CookieJar,
    _locale: &str,
    req_id: &str,
    req: Option<AuthRequest>,
    who: SignedIn<'_>,
) -> Response {
    finish(state, jar, req_id, req, who).await.into_response()
}

/// The one place every sign-in ends: the core makes the session (whatever
/// method was used) with its factors, acting and audit record, and marks
/// the authorization request signed in; the page sets the fresh cookie and
/// continues the request — or goes home when there is none.
pub async fn finish(
    state: &AppState,
    jar: CookieJar,
    req_id: &str,
    req: Option<AuthRequest>,
    who: SignedIn<'_>,
) -> Result<Response, PageError> {
    let existing = current_session(state, &jar).await?;
    let SignedIn { user_id, method, remember, extra, ip, .. } = who;
    let proved =
        sign_in::Proved { user_id, method, remember, extra, acting: who.acting.as_ref(), ip, now: state.clock.now() };
    let cfg = sign_in::FinishConfig { session: &state.config.session, assurance: &state.config.assurance };
    let request = req.map(|r| (req_id, r));
    let cookie = match sign_in::finish(&state.store, cfg, existing.as_ref(), proved, request).await? {
        sign_in::Finished::Session(cookie, _) => cookie,
        // Two-step sign-in (issue 19): no session before the second step.
        sign_in::Finished::SecondStepNeeded => {
            return crate::web::auth::second_step::hold(state, jar, req_id, &who).await;
        }
    };
    let then = who.then;
    // A remembered device keeps a persistent cookie; otherwise it ends with the browser.
    let max_age = remember.then_some(sessions::REMEMBER_SECONDS);
    let jar = jar.add(cookies::build(state, cookies::SESSION, cookie, max_age));
    let back_to = cookies::get(state, &jar, cookies::NEXT);
    let jar = jar.remove(cookies::build(state, cookies::NEXT, String::new(), None));
    let next = if let Some(path) = then {
        format!("{}{}", state.config.issuer, path)
    } else if req_id.is_empty() {
        let path = back_to.as_deref().and_then(cookies::safe_local_path).unwrap_or("/account");
        format!("{}{}", state.config.issuer, path)
    } else {
        format!("{}/authorize/resume?req={}", state.config.issuer, req_id)
    };
    Ok((jar, see_other(&next)).into_response())
}
