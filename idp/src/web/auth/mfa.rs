//! Strong factors at sign-in: an authenticator-app or recovery
//! code and a passkey as the step-up second factor (`/mfa/totp`,
//! `/mfa/passkey`), and passwordless sign-in with a passkey
//! (`/login/passkey`). Passkey ceremonies are two requests: `…/begin`
//! answers the options as JSON (fetched by `static/webauthn.js`), and the
//! authenticator's answer comes back as an ordinary form POST, so the
//! response can be the usual 303 to the app.
use crate::domain::assurance::Factor;
use crate::domain::authn::passkeys::{Begun, Ceremony, PasskeyError};
use crate::domain::authn::return_path::ReturnPath;
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::authn::step_up::{self, Check, PasskeyProof, Refused};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::server::AppState;
use crate::web::auth::login::{SignedIn, finish, pending_for_page};
use crate::web::auth::step_up::load_signed_in;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct ReqQuery {
    #[serde(default)]
    req: String,
    /// A sign-in held for its second step (`web::auth::second_step`).
    #[serde(default)]
    hold: String,
    /// Where a step-up outside an authorization request goes back to (a
    /// [`ReturnPath`], e.g. the console); else the personal centre.
    #[serde(default)]
    next: String,
}

#[derive(Deserialize, Default)]
pub struct MfaForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    remember: Option<String>,
    /// A sign-in held for its second step (`web::auth::second_step`).
    #[serde(default)]
    hold: String,
    #[serde(default)]
    next: String,
}

/// Where a step-up page goes when it is done: back into the authorization
/// request `req`, else to `next` when it is a [`ReturnPath`], else the
/// personal centre.
#[derive(Clone, Copy)]
struct Back<'a> {
    req: &'a str,
    next: &'a str,
}

impl ReqQuery {
    fn back(&self) -> Back<'_> {
        Back { req: &self.req, next: &self.next }
    }
}

impl MfaForm {
    fn back(&self) -> Back<'_> {
        Back { req: &self.req, next: &self.next }
    }
}

/// The browser's binding hash (empty when it has no browser cookie yet).
pub fn browser_of(state: &AppState, jar: &CookieJar) -> String {
    cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default()
}

/// A JSON error for the `…/begin` endpoints, localised for the page's script.
pub fn json_error(state: &AppState, status: StatusCode, locale: &str, key: &str) -> Response {
    (status, Json(json!({ "error": state.pages.text(locale, key) }))).into_response()
}

/// The answer of a `…/begin` endpoint: the ceremony's options, or the
/// localised reason it could not start.
pub fn begun_json(state: &AppState, locale: &str, begun: Result<Begun, PasskeyError>) -> Response {
    match begun {
        Ok(b) => Json(json!({ "ceremony": b.ceremony, "options": b.options })).into_response(),
        Err(e) => {
            let (status, key) = passkey_failure(&e);
            json_error(state, status, locale, key)
        }
    }
}

/// Locale key and status for a failed passkey ceremony.
pub fn passkey_failure(e: &PasskeyError) -> (StatusCode, &'static str) {
    match e {
        PasskeyError::Unavailable => (StatusCode::NOT_FOUND, "passkey_unavailable"),
        PasskeyError::NoCeremony => (StatusCode::BAD_REQUEST, "passkey_expired"),
        PasskeyError::Duplicate => (StatusCode::CONFLICT, "passkey_duplicate"),
        PasskeyError::PossibleClone { .. } => (StatusCode::UNAUTHORIZED, "passkey_clone"),
        PasskeyError::Rejected(_) => (StatusCode::UNAUTHORIZED, "passkey_failed"),
        PasskeyError::Store(_) | PasskeyError::Internal(_) => (StatusCode::SERVICE_UNAVAILABLE, "error_unavailable"),
    }
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    template: &str,
    to: Back<'_>,
    error: Option<String>,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("req", to.req);
    ctx.insert("next", &ReturnPath::parse(to.next).as_ref().map(ReturnPath::as_str));
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("error", &error);
    ctx.insert("passkeys_available", &state.passkeys.available());
    (jar, page(state, status, template, locale, ctx)).into_response()
}

/// A step-up page for the signed-in person (else sign-in first).
async fn show(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    to: Back<'_>,
    template: &str,
) -> Result<Response, PageError> {
    let (_, _, locale) = load_signed_in(state, &jar, headers, to.req).await?;
    Ok(render(state, jar, StatusCode::OK, locale, template, to, None).await)
}

pub async fn totp_show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, PageError> {
    if !q.hold.is_empty() {
        let locale = cookies::locale(&state, &headers, None);
        return Ok(crate::web::auth::second_step::show(&state, jar, locale, &q.hold, "mfa_totp.html").await);
    }
    show(&state, jar, &headers, q.back(), "mfa_totp.html").await
}

crate::with_csrf!(MfaForm);

/// A six-digit code is from the app; anything longer is a recovery code.
pub async fn totp_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<MfaForm>,
) -> Result<Response, PageError> {
    if !f.hold.is_empty() {
        let (locale, ip) = (cookies::locale(&state, &headers, None), cookies::client_ip(Some(addr)));
        return Ok(
            crate::web::auth::second_step::totp_submit(&state, jar, locale, &f.hold, &f.csrf, &f.code, &ip).await
        );
    }
    let (session, u, locale) = load_signed_in(&state, &jar, &headers, &f.req).await?;
    let ip = cookies::client_ip(Some(addr));
    let (status, key) = match step_up::app_code(&state.totp, &state.store, &u, &f.code, &ip, state.clock.now()).await? {
        Check::Verified(factor) => return step_up_done(&state, jar, f.back(), &session, factor).await,
        Check::Wrong(key) => (StatusCode::UNAUTHORIZED, key),
        Check::Locked(_) => (StatusCode::TOO_MANY_REQUESTS, "mfa_locked"),
    };
    let msg = Some(state.pages.text(locale, key));
    Ok(render(&state, jar, status, locale, "mfa_totp.html", f.back(), msg).await)
}

pub async fn passkey_show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, PageError> {
    if !q.hold.is_empty() {
        let locale = cookies::locale(&state, &headers, None);
        return Ok(crate::web::auth::second_step::show(&state, jar, locale, &q.hold, "mfa_passkey.html").await);
    }
    show(&state, jar, &headers, q.back(), "mfa_passkey.html").await
}

pub async fn passkey_begin(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return Ok(json_error(&state, StatusCode::FORBIDDEN, locale, "error_csrf"));
    }
    if !f.hold.is_empty() {
        return Ok(crate::web::auth::second_step::passkey_begin(&state, jar, locale, &f.hold).await);
    }
    let Some(session) = current_session(&state, &jar).await? else {
        return Ok(json_error(&state, StatusCode::UNAUTHORIZED, locale, "mfa_sign_in_first"));
    };
    let user_id = session.user_id;
    let browser = browser_of(&state, &jar);
    let now = state.clock.now();
    let begun = state.passkeys.start_authentication(Ceremony::StepUp, Some(&user_id), &user_id, &browser, now).await;
    Ok(begun_json(&state, locale, begun))
}

pub async fn passkey_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<MfaForm>,
) -> Result<Response, PageError> {
    if !f.hold.is_empty() {
        let (locale, ip) = (cookies::locale(&state, &headers, None), cookies::client_ip(Some(addr)));
        let (hold, ceremony, credential) = (&f.hold, &f.ceremony, &f.credential);
        return Ok(crate::web::auth::second_step::passkey_submit(
            &state, jar, locale, hold, &f.csrf, ceremony, credential, &ip,
        )
        .await);
    }
    let (session, u, locale) = load_signed_in(&state, &jar, &headers, &f.req).await?;
    let ip = cookies::client_ip(Some(addr));
    let browser = browser_of(&state, &jar);
    let proof = PasskeyProof {
        ceremony: &f.ceremony,
        browser: &browser,
        credential: &f.credential,
        ip: &ip,
        now: state.clock.now(),
    };
    match step_up::passkey(&state.passkeys, &state.store, &u.id, proof).await? {
        Ok(factor) => step_up_done(&state, jar, f.back(), &session, factor).await,
        Err(Refused::OtherAccount) => Err(PageError::Refused(StatusCode::UNAUTHORIZED, "passkey_failed")),
        Err(Refused::Passkey(e)) => {
            let (status, key) = passkey_failure(&e);
            let msg = Some(state.pages.text(locale, key));
            Ok(render(&state, jar, status, locale, "mfa_passkey.html", f.back(), msg).await)
        }
    }
}

/// Records the factor on the current session and goes on: back to the
/// authorization request (whose level is computed again), to the page that
/// asked (`next`, e.g. the console), or to the personal centre.
async fn step_up_done(
    state: &AppState,
    jar: CookieJar,
    to: Back<'_>,
    session: &SessionInfo,
    factor: Factor,
) -> Result<Response, PageError> {
    // The session gets a new id with its new level.
    match crate::web::auth::step_up::record_factor(state, jar, session, factor).await? {
        Some(jar) => Ok(crate::web::auth::step_up::finish_to(state, jar, to.req, ReturnPath::parse(to.next).as_ref())),
        // The session ended meanwhile (signed out elsewhere): sign in again.
        None => Err(PageError::Refused(StatusCode::UNAUTHORIZED, "mfa_sign_in_first")),
    }
}

/// Passwordless sign-in, step 1: the person names the account, or leaves
/// it empty and lets the authenticator name it (discoverable passkey).
pub async fn login_begin(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return Ok(json_error(&state, StatusCode::FORBIDDEN, locale, "error_csrf"));
    }
    let login = f.username.trim();
    if login.len() > 64 {
        return Ok(json_error(&state, StatusCode::BAD_REQUEST, locale, "passkey_username_needed"));
    }
    let browser = browser_of(&state, &jar);
    let begun = if login.is_empty() {
        state.passkeys.start_discoverable(&browser, state.clock.now()).await
    } else {
        let user = state.users.find_by_login(login).await?.filter(|u| !u.disabled);
        let user_id = user.as_ref().map(|u| u.id.as_str());
        state.passkeys.start_authentication(Ceremony::Login, user_id, login, &browser, state.clock.now()).await
    };
    Ok(begun_json(&state, locale, begun))
}

/// Passwordless sign-in, step 2: the assertion signs the person in.
pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<MfaForm>,
) -> Result<Response, PageError> {
    let (req, _locale) = pending_for_page(&state, &jar, &headers, &f.req).await?;
    let ip = cookies::client_ip(Some(addr));
    let browser = browser_of(&state, &jar);
    let proof = PasskeyProof {
        ceremony: &f.ceremony,
        browser: &browser,
        credential: &f.credential,
        ip: &ip,
        now: state.clock.now(),
    };
    match step_up::passkey_sign_in(&state.passkeys, &state.users, &state.store, proof).await? {
        Ok(user_id) => {
            let who = SignedIn::new(&user_id, Factor::Passkey).remember(f.remember.is_some()).from_ip(&ip);
            finish(&state, jar, &f.req, req, who).await
        }
        Err(Refused::OtherAccount) => Err(PageError::Refused(StatusCode::UNAUTHORIZED, "passkey_failed")),
        Err(Refused::Passkey(e)) => {
            let (status, key) = passkey_failure(&e);
            Err(PageError::Refused(status, key))
        }
    }
}
