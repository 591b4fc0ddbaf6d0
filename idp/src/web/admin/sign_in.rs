//! Signing in to the console as an OIDC client of this provider: the
//! callback, the console's step-up page (a fresh authenticator-app code for
//! sensitive actions) and signing out of the console.
use super::{CONSOLE_COOKIE, FLOW_COOKIE};
use crate::domain::assurance::Factor;
use crate::domain::authn::factors::Verdict;
use crate::domain::staff::console_sign_in::{self, CLIENT_ID, Flow, IdTokenCheck, Refusal};
use crate::domain::staff::{self, Staff};
use crate::domain::tokens::grants;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, PageError, SignedIn};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::with_csrf;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::SameSite;
use serde::Deserialize;
use std::net::SocketAddr;

type PageResult = Result<Response, PageError>;

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A refused console sign-in as a page (the flow cookie already dropped).
fn refusal(state: &AppState, jar: CookieJar, r: Refusal) -> PageError {
    match r {
        Refusal::Mismatch => PageError::bad_request("admin_sign_in_expired"),
        Refusal::NotL3 => PageError::forbidden("admin_needs_l3"),
        Refusal::NotStaff => PageError::forbidden("admin_not_staff"),
        // L3 without a passkey or authenticator app: the console's step-up
        // page asks for a code, then the sign-in starts again.
        Refusal::NoStrongFactor => {
            PageError::Respond((jar, see_other(&state.endpoint("/admin/step-up"))).into_response())
        }
    }
}

/// `/admin/callback`: the provider's answer to the console's authorization
/// request. Checks `state` against the flow cookie, redeems the code (PKCE)
/// through the core, verifies the ID token (signature, expiry, issuer,
/// audience, nonce, acr, auth_time, amr) and opens the console session.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Query(q): Query<CallbackQuery>,
) -> PageResult {
    use subtle::ConstantTimeEq;
    let flow_name = cookies::name(&state, FLOW_COOKIE);
    let flow = jar.get(&flow_name).and_then(|c| Flow::from_cookie(c.value()));
    let jar = jar.remove(cookies::build(&state, FLOW_COOKIE, String::new(), None));
    let Some(flow) = flow else {
        return Err(PageError::bad_request("admin_sign_in_expired"));
    };
    let state_ok = q.state.as_deref().is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
    if !state_ok {
        return Err(PageError::bad_request("admin_sign_in_expired"));
    }
    if let Some(error) = q.error.as_deref() {
        return Err(match error {
            "unmet_authentication_requirements" => PageError::forbidden("admin_needs_l3"),
            _ => PageError::forbidden("admin_sign_in_refused"),
        });
    }
    let code = q.code.as_deref().ok_or(PageError::bad_request("admin_sign_in_expired"))?;
    let now = state.clock.now();
    let redirect_uri = state.endpoint(console_sign_in::CALLBACK);
    let g = grants::redeem_code(
        &state.store,
        &state.hasher,
        code,
        CLIENT_ID,
        Some(&redirect_uri),
        Some(&flow.verifier),
        None,
        now,
    )
    .await
    .map_err(|_| PageError::bad_request("admin_sign_in_expired"))?;
    let client = state.clients.find(CLIENT_ID).await?.ok_or(PageError::Unavailable)?;
    let tokens = crate::oidc::token::respond_for_grant(&state, &client, &g, true, Default::default()).await;
    // The console keeps no tokens: it needed the ID token only.
    grants::revoke_grant(&state.store, &g.id, now).await?;
    let tokens = tokens.map_err(|_| PageError::forbidden("admin_sign_in_refused"))?;
    let claims = tokens
        .id_token
        .as_deref()
        .and_then(|t| state.tokens.verify_own(t, "JWT", false))
        .ok_or(PageError::bad_request("admin_sign_in_expired"))?;
    let max_age = state.config.assurance.l3_max_age;
    let check = IdTokenCheck {
        issuer: &state.config.issuer,
        nonce: &flow.nonce,
        acr_prefix: &state.config.acr_prefix,
        max_age,
        now,
    };
    if let Err(r) = console_sign_in::check_id_token(&claims, &check) {
        return Err(refusal(&state, jar, r));
    }
    let sid = claims.get("sid").and_then(|v| v.as_str()).unwrap_or_default();
    let ip = cookies::client_ip(Some(addr));
    let (cookie, _) = match console_sign_in::open(&state.store, &g.user_id, sid, Some(&ip), max_age, now).await? {
        Ok(opened) => opened,
        Err(r) => return Err(refusal(&state, jar, r)),
    };
    let mut c = cookies::build(&state, CONSOLE_COOKIE, cookie, Some(console_sign_in::SESSION_SECONDS));
    c.set_same_site(SameSite::Strict);
    Ok((jar.add(c), see_other(&state.endpoint(&flow.next))).into_response())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}
with_csrf!(LogoutForm);

/// Signs out of the console: the console session ends (audited) and its
/// cookie goes. The provider's SSO session is the citizen's own business.
pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    CsrfForm(_): CsrfForm<LogoutForm>,
) -> PageResult {
    if let Some(c) = cookies::get(&state, &jar, CONSOLE_COOKIE) {
        let ip = cookies::client_ip(Some(addr));
        console_sign_in::close(&state.store, &c, Some(&ip), state.clock.now()).await?;
    }
    let jar = jar.remove(cookies::build(&state, CONSOLE_COOKIE, String::new(), None));
    Ok((jar, see_other(&state.endpoint("/"))).into_response())
}

// ---------------------------------------------------------------- step-up

#[derive(Deserialize)]
pub struct StepUpQuery {
    #[serde(default)]
    fresh: String,
}

#[derive(Deserialize)]
pub struct StepUpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}
with_csrf!(StepUpForm);

/// The staff account behind a signed-in session (no level check: this is
/// where the level is raised).
async fn staff_signed_in(state: &AppState, s: &SignedIn) -> Result<Staff, PageError> {
    staff::load(&state.store, &s.user.id).await?.ok_or(PageError::forbidden("admin_not_staff"))
}

fn step_up_page(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    status: StatusCode,
    fresh: bool,
    error: Option<&str>,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert(
        "adm",
        &serde_json::json!({
            "fresh": fresh,
            "error": error.map(|k| state.pages.text(locale, k)),
            "passkeys": state.passkeys.available(),
        }),
    );
    (jar, page(state, status, "admin_step_up.html", locale, ctx)).into_response()
}

pub async fn step_up_show(
    State(state): State<AppState>,
    s: SignedIn,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<StepUpQuery>,
) -> PageResult {
    staff_signed_in(&state, &s).await?;
    let locale = cookies::locale(&state, &headers, None);
    Ok(step_up_page(&state, jar, locale, StatusCode::OK, !q.fresh.is_empty(), None))
}

/// An authenticator-app code typed on the console's step-up page: the SSO
/// session records the factor (and gets a new cookie value), which makes
/// the console session's strong factor fresh, then back to the console (which
/// signs in through the provider again when there is no console session).
pub async fn step_up_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    s: SignedIn,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<StepUpForm>,
) -> PageResult {
    staff_signed_in(&state, &s).await?;
    let locale = cookies::locale(&state, &headers, None);
    let now = state.clock.now();
    let code = f.code.trim();
    let key = if code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
        match state.totp.verify(&s.user.id, &s.user.username, code, now).await? {
            Verdict::Accepted => None,
            Verdict::Wrong => Some("mfa_code_wrong"),
            Verdict::Replayed => Some("mfa_code_used"),
            Verdict::Locked => Some("mfa_locked"),
        }
    } else {
        Some("mfa_code_wrong")
    };
    if let Some(key) = key {
        return Ok(step_up_page(&state, jar, locale, StatusCode::UNAUTHORIZED, false, Some(key)));
    }
    let ip = cookies::client_ip(Some(addr));
    crate::domain::identity::accounts::audit(&state.store, Some(&s.user.id), "step_up", "console", Some(&ip), now)
        .await?;
    // The SSO session records the factor; the console session reads its
    // freshness from there (`console_sign_in::find`), as after a passkey.
    match crate::web::auth::step_up::record_factor(&state, jar, &s.session, Factor::Totp).await? {
        Some(jar) => Ok((jar, see_other(&state.endpoint("/admin"))).into_response()),
        None => Err(PageError::Respond(cookies::sign_in_then(&state, CookieJar::new(), "/admin"))),
    }
}
