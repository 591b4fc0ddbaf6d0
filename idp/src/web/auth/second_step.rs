//! The second step of a two-step sign-in (issue 19). When the core's
//! `sign_in::finish` answers that the sign-in needs a second step
//! (`domain::authn::second_step::needed`, decided there for every entry),
//! [`hold`] holds the sign-in and the browser goes to the second-factor page
//! (`/mfa/totp?hold=…` or `/mfa/passkey?hold=…`). Those pages hand a
//! request carrying `hold` to the functions here, which verify the factor
//! for the held account and finish the sign-in through `complete` again.
use crate::domain::assurance::Factor;
use crate::domain::authn::factors::Verdict;
use crate::domain::authn::passkeys::Ceremony;
use crate::domain::authn::second_step::{self, Held};
use crate::kit::cookies;
use crate::kit::extract::PageError;
use crate::kit::pages::{error_page, page, unavailable};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::web::auth::login::{Acting, SignedIn, complete, load_request};
use crate::web::auth::mfa::{begun_json, browser_of, passkey_failure};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

/// The core said the sign-in needs its second step: the sign-in is held
/// for this browser and the browser goes to the second-factor page.
pub async fn hold(state: &AppState, jar: CookieJar, req_id: &str, who: &SignedIn<'_>) -> Result<Response, PageError> {
    let (jar, browser) = cookies::browser(state, jar);
    let held = Held {
        user_id: who.user_id.to_string(),
        method: who.method,
        extra: who.extra.to_vec(),
        remember: who.remember,
        then: who.then.clone(),
        acting: who.acting.as_ref().map(|a| (a.enterprise_id.clone(), a.delegation_id.clone())),
        req: req_id.to_string(),
    };
    let now = state.clock.now();
    let id = match second_step::hold(&state.store, &held, &cookies::browser_hash(&browser), now).await {
        Ok(id) => id,
        Err(e) => return Err(PageError::unavailable(e)),
    };
    let app = match state.totp.enrolled(who.user_id).await {
        Ok(v) => v,
        Err(e) => return Err(PageError::unavailable(e)),
    };
    let path = if app || !state.passkeys.available() { "/mfa/totp" } else { "/mfa/passkey" };
    Ok((jar, see_other(&format!("{}{path}?hold={id}", state.config.issuer))).into_response())
}

async fn load(state: &AppState, jar: &CookieJar, locale: &str, hold: &str) -> Result<Held, Response> {
    match second_step::held(&state.store, hold, &browser_of(state, jar), state.clock.now()).await {
        Ok(Some(h)) => Ok(h),
        Ok(None) => Err(expired(state, locale)),
        Err(e) => Err(unavailable(state, locale, e)),
    }
}

fn expired(state: &AppState, locale: &str) -> Response {
    error_page(state, StatusCode::BAD_REQUEST, locale, "second_step_expired")
}

/// The second-factor page for a held sign-in.
pub async fn show(state: &AppState, jar: CookieJar, locale: &str, hold: &str, template: &str) -> Response {
    let h = match load(state, &jar, locale, hold).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    render(state, jar, StatusCode::OK, locale, template, &h, hold, None).await
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    template: &str,
    h: &Held,
    hold: &str,
    error: Option<&str>,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("req", "");
    ctx.insert("hold", hold);
    ctx.insert("second_step", &true);
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("error", &error.map(|k| state.pages.text(locale, k)));
    let keys = state.passkeys.count(&h.user_id).await.unwrap_or(0);
    let app = state.totp.enrolled(&h.user_id).await.unwrap_or(false);
    ctx.insert("passkeys_available", &(state.passkeys.available() && keys > 0));
    ctx.insert("has_app", &app);
    // The app the held sign-in is for, when it came from an authorization request.
    let brand = crate::web::auth::brand::of_request(state, &jar, &h.req, locale).await;
    crate::web::auth::brand::insert(&mut ctx, brand.as_ref());
    let res = (jar, page(state, status, template, locale, ctx)).into_response();
    crate::web::auth::brand::with_csp(res, brand.as_ref())
}

/// An app code or a recovery code for the held sign-in.
pub async fn totp_submit(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    hold: &str,
    csrf: &str,
    code: &str,
    ip: &str,
) -> Response {
    let h = match load(state, &jar, locale, hold).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let tpl = "mfa_totp.html";
    if !cookies::csrf_ok(state, &jar, csrf) {
        return render(state, jar, StatusCode::FORBIDDEN, locale, tpl, &h, hold, Some("error_csrf")).await;
    }
    let u = match state.users.find(&h.user_id).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return expired(state, locale),
        Err(e) => return unavailable(state, locale, e),
    };
    let now = state.clock.now();
    let code = code.trim();
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
        Err(e) => return unavailable(state, locale, e),
    };
    if let Some(key) = key {
        let status = if key == "mfa_locked" { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNAUTHORIZED };
        return render(state, jar, status, locale, tpl, &h, hold, Some(key)).await;
    }
    let factor = if app_code { Factor::Totp } else { Factor::RecoveryCode };
    finish(state, jar, locale, hold, factor, ip).await
}

/// Passkey ceremony for the held account (JSON for the page script).
pub async fn passkey_begin(state: &AppState, jar: CookieJar, locale: &str, hold: &str) -> Response {
    let h = match load(state, &jar, locale, hold).await {
        Ok(h) => h,
        Err(_) => {
            return crate::web::auth::mfa::json_error(state, StatusCode::BAD_REQUEST, locale, "second_step_expired");
        }
    };
    let browser = browser_of(state, &jar);
    let begun = state
        .passkeys
        .start_authentication(Ceremony::StepUp, Some(&h.user_id), &h.user_id, &browser, state.clock.now())
        .await;
    begun_json(state, locale, begun)
}

/// The authenticator's answer for the held sign-in.
#[allow(clippy::too_many_arguments)]
pub async fn passkey_submit(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    hold: &str,
    csrf: &str,
    ceremony: &str,
    credential: &str,
    ip: &str,
) -> Response {
    let h = match load(state, &jar, locale, hold).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let tpl = "mfa_passkey.html";
    if !cookies::csrf_ok(state, &jar, csrf) {
        return render(state, jar, StatusCode::FORBIDDEN, locale, tpl, &h, hold, Some("error_csrf")).await;
    }
    let browser = browser_of(state, &jar);
    let now = state.clock.now();
    match state.passkeys.finish_authentication(Ceremony::StepUp, ceremony, &browser, credential, now).await {
        Ok((user_id, _)) if user_id == h.user_id => finish(state, jar, locale, hold, Factor::Passkey, ip).await,
        Ok(_) => render(state, jar, StatusCode::UNAUTHORIZED, locale, tpl, &h, hold, Some("passkey_failed")).await,
        Err(e) => {
            let (status, key) = passkey_failure(&e);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return unavailable(state, locale, e);
            }
            render(state, jar, status, locale, tpl, &h, hold, Some(key)).await
        }
    }
}

/// The second factor is verified: the hold is consumed (once) and the
/// sign-in completes with both factors.
async fn finish(state: &AppState, jar: CookieJar, locale: &str, hold: &str, factor: Factor, ip: &str) -> Response {
    let now = state.clock.now();
    let h = match second_step::take(&state.store, hold, &browser_of(state, &jar), now).await {
        Ok(Some(h)) => h,
        Ok(None) => return expired(state, locale),
        Err(e) => return unavailable(state, locale, e),
    };
    let req = match load_request(state, &jar, &h.req).await {
        Ok(r) => r,
        Err(e) => return unavailable(state, locale, e),
    };
    if !h.req.is_empty() && req.is_none() {
        return error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired");
    }
    let mut extra = h.extra.clone();
    extra.push(factor);
    let mut who = SignedIn::new(&h.user_id, h.method).remember(h.remember).with_factors(&extra).from_ip(ip);
    if let Some(then) = h.then.clone() {
        who = who.then(then);
    }
    if let Some((enterprise_id, delegation_id)) = h.acting.clone() {
        who = who.acting(Acting { enterprise_id, delegation_id });
    }
    complete(state, jar, locale, &h.req, req, who).await
}
