//! Strong factors at sign-in: an authenticator-app or recovery
//! code and a passkey as the step-up second factor (`/mfa/totp`,
//! `/mfa/passkey`), and passwordless sign-in with a passkey
//! (`/login/passkey`). Passkey ceremonies are two requests: `…/begin`
//! answers the options as JSON (fetched by `static/webauthn.js`), and the
//! authenticator's answer comes back as an ordinary form POST, so the
//! response can be the usual 303 to the app.
use crate::domain::assurance::Factor;
use crate::domain::authn::factors::Verdict;
use crate::domain::authn::passkeys::{Begun, Ceremony, PasskeyError};
use crate::domain::authn::sessions::SessionInfo;
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::pages::{error_page, page, unavailable};
use crate::server::AppState;
use crate::web::auth::login::{SignedIn, complete, pending_for_page};
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
    req: &str,
    error: Option<String>,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("req", req);
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("error", &error);
    ctx.insert("passkeys_available", &state.passkeys.available());
    (jar, page(state, status, template, locale, ctx)).into_response()
}

/// A step-up page for the signed-in person (else sign-in first).
async fn show(state: &AppState, jar: CookieJar, headers: &HeaderMap, req: &str, template: &str) -> Response {
    match load_signed_in(state, &jar, headers, req).await {
        Ok((_, _, locale)) => render(state, jar, StatusCode::OK, locale, template, req, None).await,
        Err(page) => page,
    }
}

pub async fn totp_show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Response {
    if !q.hold.is_empty() {
        let locale = cookies::locale(&state, &headers, None);
        return crate::web::auth::second_step::show(&state, jar, locale, &q.hold, "mfa_totp.html").await;
    }
    show(&state, jar, &headers, &q.req, "mfa_totp.html").await
}

/// A six-digit code is from the app; anything longer is a recovery code.
pub async fn totp_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Response {
    if !f.hold.is_empty() {
        let (locale, ip) = (cookies::locale(&state, &headers, None), cookies::client_ip(Some(addr)));
        return crate::web::auth::second_step::totp_submit(&state, jar, locale, &f.hold, &f.csrf, &f.code, &ip).await;
    }
    let (session, u, locale) = match load_signed_in(&state, &jar, &headers, &f.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let text = |key: &str| state.pages.text(locale, key);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(&state, jar, StatusCode::FORBIDDEN, locale, "mfa_totp.html", &f.req, Some(text("error_csrf")))
            .await;
    }
    let now = state.clock.now();
    let code = f.code.trim();
    let app_code = code.len() == 6 && code.chars().all(|c| c.is_ascii_digit());
    let verdict = if app_code {
        state.totp.verify(&u.id, &u.username, code, now).await.map_err(|e| e.to_string())
    } else {
        state.totp.use_recovery_code(&u.id, code, now).await.map_err(|e| e.to_string())
    };
    let key = match verdict {
        Ok(Verdict::Accepted) => None,
        Ok(Verdict::Wrong) => Some("mfa_code_wrong"),
        Ok(Verdict::Replayed) => Some("mfa_code_used"),
        Ok(Verdict::Locked) => Some("mfa_locked"),
        Err(e) => return unavailable(&state, locale, e),
    };
    if let Some(key) = key {
        let status = if key == "mfa_locked" { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNAUTHORIZED };
        return render(&state, jar, status, locale, "mfa_totp.html", &f.req, Some(text(key))).await;
    }
    let ip = cookies::client_ip(Some(addr));
    let (factor, detail) =
        if app_code { (Factor::Totp, "authenticator app") } else { (Factor::RecoveryCode, "recovery code") };
    if let Err(e) =
        crate::domain::identity::accounts::audit(&state.store, Some(&u.id), "step_up", detail, Some(&ip), now).await
    {
        return unavailable(&state, locale, e);
    }
    step_up_done(&state, jar, locale, &f.req, &session, factor).await
}

pub async fn passkey_show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Response {
    if !q.hold.is_empty() {
        let locale = cookies::locale(&state, &headers, None);
        return crate::web::auth::second_step::show(&state, jar, locale, &q.hold, "mfa_passkey.html").await;
    }
    show(&state, jar, &headers, &q.req, "mfa_passkey.html").await
}

pub async fn passkey_begin(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return json_error(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    if !f.hold.is_empty() {
        return crate::web::auth::second_step::passkey_begin(&state, jar, locale, &f.hold).await;
    }
    let user_id = match current_session(&state, &jar).await {
        Ok(Some(s)) => s.user_id,
        Ok(None) => return json_error(&state, StatusCode::UNAUTHORIZED, locale, "mfa_sign_in_first"),
        Err(e) => return unavailable(&state, locale, e),
    };
    let browser = browser_of(&state, &jar);
    let now = state.clock.now();
    let begun = state.passkeys.start_authentication(Ceremony::StepUp, Some(&user_id), &user_id, &browser, now).await;
    begun_json(&state, locale, begun)
}

pub async fn passkey_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Response {
    if !f.hold.is_empty() {
        let (locale, ip) = (cookies::locale(&state, &headers, None), cookies::client_ip(Some(addr)));
        let (hold, ceremony, credential) = (&f.hold, &f.ceremony, &f.credential);
        return crate::web::auth::second_step::passkey_submit(
            &state, jar, locale, hold, &f.csrf, ceremony, credential, &ip,
        )
        .await;
    }
    let (session, u, locale) = match load_signed_in(&state, &jar, &headers, &f.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        let msg = state.pages.text(locale, "error_csrf");
        return render(&state, jar, StatusCode::FORBIDDEN, locale, "mfa_passkey.html", &f.req, Some(msg)).await;
    }
    let now = state.clock.now();
    let ip = cookies::client_ip(Some(addr));
    let browser = browser_of(&state, &jar);
    let outcome =
        state.passkeys.finish_authentication(Ceremony::StepUp, &f.ceremony, &browser, &f.credential, now).await;
    let name = match outcome {
        // The ceremony allowed only the signed-in user's passkeys.
        Ok((user_id, name)) if user_id == u.id => name,
        Ok(_) => return error_page(&state, StatusCode::UNAUTHORIZED, locale, "passkey_failed"),
        Err(e) => {
            return match refusal(&state, locale, e, &ip).await {
                Ok((status, key)) => {
                    let msg = Some(state.pages.text(locale, key));
                    render(&state, jar, status, locale, "mfa_passkey.html", &f.req, msg).await
                }
                Err(page) => page,
            };
        }
    };
    if let Err(e) = crate::domain::identity::accounts::audit(
        &state.store,
        Some(&u.id),
        "step_up",
        &format!("passkey {name}"),
        Some(&ip),
        now,
    )
    .await
    {
        return unavailable(&state, locale, e);
    }
    step_up_done(&state, jar, locale, &f.req, &session, Factor::Passkey).await
}

/// A signature counter that did not increase is worth an audit entry on the
/// account (someone may hold a copy of the key).
async fn audit_clone(state: &AppState, e: &PasskeyError, ip: &str) -> Result<(), crate::store::DbErr> {
    let PasskeyError::PossibleClone { user_id, passkey_id } = e else {
        return Ok(());
    };
    let id = passkey_id.as_deref().unwrap_or("?");
    tracing::warn!("passkey {id} of {user_id}: signature counter did not increase (possible clone)");
    let detail = format!("passkey {id}: signature counter did not increase");
    crate::domain::identity::accounts::audit(
        &state.store,
        Some(user_id),
        "passkey_clone_suspected",
        &detail,
        Some(ip),
        state.clock.now(),
    )
    .await
}

/// A refused ceremony, audited when it looks like a cloned authenticator:
/// the status and locale key to show, or the "unavailable" page.
async fn refusal(
    state: &AppState,
    locale: &str,
    e: PasskeyError,
    ip: &str,
) -> Result<(StatusCode, &'static str), Response> {
    let (status, key) = passkey_failure(&e);
    if let Err(err) = audit_clone(state, &e, ip).await {
        return Err(unavailable(state, locale, err));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(unavailable(state, locale, e));
    }
    Ok((status, key))
}

/// Records the factor on the current session and goes on: back to the
/// authorization request (whose level is computed again), or to the
/// personal centre.
async fn step_up_done(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    req: &str,
    session: &SessionInfo,
    factor: Factor,
) -> Response {
    // The session gets a new id with its new level.
    match crate::web::auth::step_up::record_factor(state, jar, session, factor).await {
        Ok(Some(jar)) => crate::web::auth::step_up::finish(state, jar, req, locale).await,
        // The session ended meanwhile (signed out elsewhere): sign in again.
        Ok(None) => error_page(state, StatusCode::UNAUTHORIZED, locale, "mfa_sign_in_first"),
        Err(e) => unavailable(state, locale, e),
    }
}

/// Passwordless sign-in, step 1: the person names the account, or leaves
/// it empty and lets the authenticator name it (discoverable passkey).
pub async fn login_begin(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return json_error(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    let login = f.username.trim();
    if login.len() > 64 {
        return json_error(&state, StatusCode::BAD_REQUEST, locale, "passkey_username_needed");
    }
    let browser = browser_of(&state, &jar);
    let begun = if login.is_empty() {
        state.passkeys.start_discoverable(&browser, state.clock.now()).await
    } else {
        let user = match state.users.find_by_login(login).await {
            Ok(u) => u.filter(|u| !u.disabled),
            Err(e) => return unavailable(&state, locale, e),
        };
        let user_id = user.as_ref().map(|u| u.id.as_str());
        state.passkeys.start_authentication(Ceremony::Login, user_id, login, &browser, state.clock.now()).await
    };
    begun_json(&state, locale, begun)
}

/// Passwordless sign-in, step 2: the assertion signs the person in.
pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Response {
    let (req, locale) = match pending_for_page(&state, &jar, &headers, &f.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return error_page(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    let now = state.clock.now();
    let ip = cookies::client_ip(Some(addr));
    let browser = browser_of(&state, &jar);
    let user_id = match state.passkeys.finish_login(&f.ceremony, &browser, &f.credential, now).await {
        Ok((user_id, _)) => user_id,
        Err(e) => {
            return match refusal(&state, locale, e, &ip).await {
                Ok((status, key)) => error_page(&state, status, locale, key),
                Err(page) => page,
            };
        }
    };
    match state.users.find(&user_id).await {
        Ok(Some(u)) if !u.disabled => {}
        Ok(_) => return error_page(&state, StatusCode::UNAUTHORIZED, locale, "passkey_failed"),
        Err(e) => return unavailable(&state, locale, e),
    }
    complete(
        &state,
        jar,
        locale,
        &f.req,
        req,
        SignedIn::new(&user_id, Factor::Passkey).remember(f.remember.is_some()).from_ip(&ip),
    )
    .await
}
