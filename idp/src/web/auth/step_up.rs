//! Step-up (B6): the page that tells a signed-in user exactly what stands
//! between them and the level a relying app asked for — verify identity,
//! use a further factor, do a face check — and links to each way of doing
//! it. Every such page ends by calling [`finish`], which sends the browser
//! back into the authorization request; the request then decides again.
use crate::domain::assurance::{self, Factor, Gap};
use crate::domain::authn::pending;
use crate::domain::authn::return_path::ReturnPath;
use crate::domain::authn::sessions::{self, SessionInfo};
use crate::domain::authn::step_up;
use crate::domain::tokens::authorize::{AuthRequest, Standing};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::store::entities::user;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct StepUpQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize)]
pub struct SkipForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
}

/// One way to close the gap: a link to the page doing it.
#[derive(Serialize)]
struct Way {
    /// Locale key of the link text.
    label: &'static str,
    href: String,
}

/// The ways offered for a gap to `target`. Proofing comes first: a face
/// check done for proofing also counts as a fresh factor, so it may close
/// both at once.
fn ways(
    gap: Gap,
    target: u8,
    req_id: &str,
    cfg: &assurance::AssuranceConfig,
    everyday: Option<Factor>,
) -> (Vec<Way>, Vec<Way>) {
    let link = |label, path: &str| Way { label, href: format!("{path}?req={req_id}") };
    let proofing = match gap.proofing {
        Some(2) => vec![link("step_up_way_verify", "/identity/verify")],
        Some(3) => vec![
            link("step_up_way_verify", "/identity/verify"),
            link("step_up_way_face", "/identity/face"),
            link("step_up_way_bank_card", "/identity/bank-card"),
        ],
        Some(_) if cfg.in_person_online => vec![link("step_up_way_in_person", "/identity/in-person")],
        _ => Vec::new(),
    };
    let factors = if !gap.authentication || gap.proofing.is_some() {
        Vec::new()
    } else if target >= 4 {
        vec![link("step_up_way_passkey", "/mfa/passkey"), link("step_up_way_face", "/scan/face")]
    } else {
        let everyday = match everyday {
            Some(Factor::Password) => Some(link("step_up_way_password", "/step-up/factor")),
            Some(Factor::Sms) => Some(link("step_up_way_sms", "/step-up/factor")),
            _ => None,
        };
        everyday
            .into_iter()
            .chain([
                link("step_up_way_totp", "/mfa/totp"),
                link("step_up_way_passkey", "/mfa/passkey"),
                link("step_up_way_face", "/scan/face"),
            ])
            .collect()
    };
    (proofing, factors)
}

/// The request and session of this browser, or the page to show instead.
pub async fn load(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    req_id: &str,
) -> Result<(AuthRequest, SessionInfo, &'static str), PageError> {
    let expired = || PageError::bad_request("error_request_expired");
    let browser = cookies::get(state, jar, cookies::BROWSER).ok_or_else(expired)?;
    let loaded = pending::load(&state.store, req_id, &cookies::browser_hash(&browser), state.clock.now()).await?;
    let req = loaded.ok_or_else(expired)?;
    let locale = cookies::locale(state, headers, req.ui_locales.as_deref());
    match current_session(state, jar).await? {
        Some(s) => Ok((req, s, locale)),
        // Signed out meanwhile: the request starts over at sign-in.
        None => Err(see_other(&format!("{}/login?req={req_id}", state.config.issuer)).into()),
    }
}

/// The prologue of every factor page (`/mfa/*`, `/step-up/factor`): the
/// signed-in session and its account, and the locale — or the page to
/// show instead. With a `req` it is [`load`]'s; with none the person steps
/// up from the personal centre (where [`finish`] returns), so only a
/// session is needed.
pub async fn load_signed_in(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    req_id: &str,
) -> Result<(SessionInfo, user::Model, &'static str), PageError> {
    let sign_in_first = || PageError::Refused(StatusCode::UNAUTHORIZED, "mfa_sign_in_first");
    let (session, locale) = if req_id.is_empty() {
        let locale = cookies::locale(state, headers, None);
        // From the personal centre: the person's own session only (C1).
        let session = crate::kit::personal::session(state, jar, locale).await?.ok_or_else(sign_in_first)?;
        (session, locale)
    } else {
        let (_req, session, locale) = load(state, jar, headers, req_id).await?;
        (session, locale)
    };
    match state.users.find(&session.user_id).await? {
        Some(u) if !u.disabled => Ok((session, u, locale)),
        _ => Err(sign_in_first()),
    }
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<StepUpQuery>,
) -> Result<Response, PageError> {
    let (req, session, locale) = load(&state, &jar, &headers, &q.req).await?;
    let client = state.clients.find(&req.client_id).await?.ok_or(PageError::bad_request("error_unknown_client"))?;
    let proofing = assurance::proofing_level(&state.store, &session.user_id).await?;
    let cfg = &state.config.assurance;
    let standing = Standing { proofing, factors: &session.factors, now: state.clock.now(), cfg };
    let levels = req.level_request(&state.config.acr_prefix, client.min_level);
    let level = standing.level();
    let required = levels.required.filter(|&t| t > level);
    let Some(target) = required.or(levels.voluntary.filter(|&t| t > level)) else {
        // Nothing (left) to do here: let the request move on.
        return Ok(finish(&state, jar, &q.req, locale).await);
    };
    let gap = assurance::gap(target, proofing, &session.factors, standing.now, cfg);
    let user = state.users.find(&session.user_id).await?;
    let everyday = user.and_then(|u| crate::web::auth::step_up_factor::missing(&session, &u));
    let (proofing_ways, factor_ways) = ways(gap, target, &q.req, cfg, everyday);
    let (jar, browser) = cookies::browser(&state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("req", &q.req);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    ctx.insert("client_name", &client.name);
    ctx.insert("current_level", &level.to_string());
    ctx.insert("target_level", &target.to_string());
    ctx.insert("proofing_ways", &proofing_ways);
    ctx.insert("factor_ways", &factor_ways);
    ctx.insert("can_skip", &required.is_none());
    Ok((jar, page(&state, StatusCode::OK, "step_up.html", locale, ctx)).into_response())
}

crate::with_csrf!(SkipForm);

/// "Continue without": only for a level asked for voluntarily.
pub async fn skip(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<SkipForm>,
) -> Result<Response, PageError> {
    let (req, _session, locale) = load(&state, &jar, &headers, &f.req).await?;
    // The request decides again: a required level still leads back here.
    crate::domain::tokens::authorize::decline_step_up(&state.store, &f.req, req).await?;
    Ok(finish(&state, jar, &f.req, locale).await)
}

/// Adds a verified factor to this browser's session and puts the session's
/// new cookie into the jar. `Ok(None)`: the session ended meanwhile.
pub async fn record_factor(
    state: &AppState,
    jar: CookieJar,
    session: &SessionInfo,
    factor: Factor,
) -> Result<Option<CookieJar>, crate::domain::DomainError> {
    let Some((cookie, info)) = step_up::record(&state.store, session, factor, state.clock.now()).await? else {
        return Ok(None);
    };
    let max_age = info.remember.then_some(sessions::REMEMBER_SECONDS);
    Ok(Some(jar.add(cookies::build(state, cookies::SESSION, cookie, max_age))))
}

/// Where a page that raised the level (identity verified, factor used) goes
/// next: back into the authorization request `req_id`, or to the personal
/// centre when the step was taken outside one.
pub async fn finish(state: &AppState, jar: CookieJar, req_id: &str, _locale: &str) -> Response {
    finish_to(state, jar, req_id, None)
}

/// [`finish`], but outside an authorization request back to `next` (a
/// parsed local path, e.g. the plugin page that asked for a face check)
/// instead of the account page.
pub fn finish_to(state: &AppState, jar: CookieJar, req_id: &str, next: Option<&ReturnPath>) -> Response {
    let next = match (req_id.is_empty(), next) {
        (false, _) => format!("{}/authorize/resume?req={req_id}", state.config.issuer),
        (true, Some(path)) => format!("{}{}", state.config.issuer, path.as_str()),
        (true, None) => format!("{}/account", state.config.issuer),
    };
    (jar, see_other(&next)).into_response()
}
