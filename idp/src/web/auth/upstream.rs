//! Third-party login (A3 identity brokering): the button on the sign-in
//! page, the upstream callback, and the page that links an upstream account
//! to a local one. Decisions live in `domain::authn::brokering`, the OpenID
//! relying-party work in `ports::upstream`.
use crate::config::UpstreamConfig;
use crate::domain::assurance::Factor;
use crate::domain::authn::brokering::{
    self, LinkTicket, NewStart, PasswordLink, Purpose, Resolution, Started, Verified,
};
use crate::domain::authn::pending;
use crate::domain::authn::sign_in::{self, PasswordOutcome};
use crate::domain::tokens::authorize::AuthRequest;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::ports::upstream::UpstreamIdentity;
use crate::server::AppState;
use crate::web::auth::login::{SignedIn, finish, load_request};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Holds a link ticket while the person registers a new account, so the
/// registration can make the link (browser-bound like the ticket itself).
const LINK_COOKIE: &str = "idp_upstream_link";

/// One fixed redirect URI per upstream, registered there.
pub fn callback_uri(state: &AppState, name: &str) -> String {
    state.endpoint(&format!("/login/upstream/{name}/callback"))
}

#[derive(Serialize)]
pub struct UpstreamButton {
    name: String,
    label: String,
}

/// The buttons for the sign-in page ("使用 X 登录").
pub fn buttons(state: &AppState, locale: &str) -> Vec<UpstreamButton> {
    let template = state.pages.text(locale, "upstream_login_with");
    state
        .config
        .upstreams
        .iter()
        .map(|(name, up)| UpstreamButton {
            name: name.clone(),
            label: template.replace("{name}", up.display_name(locale)),
        })
        .collect()
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    req: String,
}

pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, PageError> {
    let req = load_request(&state, &jar, &q.req).await?;
    let locale = cookies::locale(&state, &headers, req.as_ref().and_then(|r| r.ui_locales.as_deref()));
    let Some(up) = state.config.upstreams.get(&name) else {
        return Err(PageError::Refused(StatusCode::NOT_FOUND, "upstream_unknown"));
    };
    if !q.req.is_empty() && req.is_none() {
        return Err(PageError::bad_request("error_request_expired"));
    }
    let ui_locales = req.as_ref().and_then(|r| r.ui_locales.as_deref()).or(Some(locale));
    let purpose = Purpose::SignIn { req: req.as_ref().map(|_| q.req.clone()) };
    redirect(&state, jar, (&name, up), ui_locales, purpose).await
}

/// Starts an authorization at the upstream for `purpose` — a fresh state,
/// nonce and PKCE verifier kept server-side, bound to this browser — and
/// sends the browser there. A re-verification asks for a new sign-in.
pub(crate) async fn redirect(
    state: &AppState,
    jar: CookieJar,
    (name, up): (&str, &UpstreamConfig),
    ui_locales: Option<&str>,
    purpose: Purpose,
) -> Result<Response, PageError> {
    let (jar, browser) = cookies::browser(state, jar);
    let reauthenticate = matches!(purpose, Purpose::Reverify(_));
    let began =
        crate::ports::upstream::begin(&state.http, up, &callback_uri(state, name), ui_locales, reauthenticate).await;
    let auth = match began {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("upstream {name}: {e}");
            return Err(PageError::Refused(StatusCode::BAD_GATEWAY, "upstream_unavailable"));
        }
    };
    let saved = NewStart {
        upstream: name,
        browser_hash: &cookies::browser_hash(&browser),
        purpose,
        state: &auth.state,
        nonce: &auth.nonce,
        verifier: &auth.verifier,
    };
    brokering::save_start(&state.store, saved, state.clock.now()).await?;
    Ok((jar, see_other(&auth.url)).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    /// Alipay names it `auth_code`.
    #[serde(alias = "auth_code")]
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// The pending authorization request a flow was started for, if any; an
/// expired one is an error (the app's request is gone).
async fn request_of(
    state: &AppState,
    req_id: Option<&str>,
    browser_hash: &str,
) -> Result<Result<Option<AuthRequest>, ()>, crate::store::DbErr> {
    match req_id {
        None => Ok(Ok(None)),
        Some(id) => Ok(pending::load(&state.store, id, browser_hash, state.clock.now()).await?.map(Some).ok_or(())),
    }
}

/// An upstream's answer at the callback, with the authorization it ends.
pub(crate) struct Answer<'a> {
    pub name: &'a str,
    pub up: &'a UpstreamConfig,
    pub cb: &'a CallbackQuery,
    pub started: &'a Started,
}

/// The answer checked as OpenID asks and its code redeemed: the verified
/// upstream identity, or the error page to show. Sign-in and
/// re-verification accept exactly the same answers.
pub(crate) async fn verified_answer(
    state: &AppState,
    a: Answer<'_>,
    want_phone: bool,
) -> Result<UpstreamIdentity, PageError> {
    let (name, cb) = (a.name, a.cb);
    if let Some(error) = &cb.error {
        tracing::info!("upstream {name} answered error={error}");
        let key = if error == "access_denied" { "upstream_denied" } else { "upstream_failed" };
        return Err(PageError::bad_request(key));
    }
    // RFC 9207: a response naming another issuer is a mix-up attempt.
    if cb.iss.as_deref().is_some_and(|iss| iss != a.up.issuer) {
        tracing::warn!("upstream {name}: iss {:?} is not {}", cb.iss, a.up.issuer);
        return Err(PageError::bad_request("upstream_failed"));
    }
    let Some(code) = cb.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(PageError::bad_request("upstream_failed"));
    };
    let (verifier, nonce) = (&a.started.verifier, &a.started.nonce);
    let redirect_uri = callback_uri(state, name);
    let now = state.clock.now();
    crate::ports::upstream::finish(&state.http, a.up, &redirect_uri, code, verifier, nonce, want_phone, now)
        .await
        .map_err(|e| {
            tracing::warn!("upstream {name}: {e}");
            PageError::Refused(StatusCode::BAD_GATEWAY, e.page_key())
        })
}

pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(cb): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let Some(up) = state.config.upstreams.get(&name) else {
        return Err(PageError::Refused(StatusCode::NOT_FOUND, "upstream_unknown"));
    };
    let now = state.clock.now();
    // The state must be one this browser was given for this upstream, and
    // it is used up here whatever happens next (single use).
    let invalid = || PageError::bad_request("upstream_state_invalid");
    let browser = cookies::get(&state, &jar, cookies::BROWSER).ok_or_else(invalid)?;
    let browser_hash = cookies::browser_hash(&browser);
    let cb_state = cb.state.as_deref().unwrap_or("");
    let started =
        brokering::take_start(&state.store, &name, &browser_hash, cb_state, now).await?.ok_or_else(invalid)?;
    let req_id = match &started.purpose {
        Purpose::SignIn { req } => req.clone(),
        // Never signs in, links or registers: only re-verifies.
        Purpose::Reverify(r) => {
            let answer = Answer { name: &name, up, cb: &cb, started: &started };
            return crate::web::auth::upstream_reverify::finish(&state, jar, locale, answer, r, &browser_hash).await;
        }
    };
    let req = request_of(&state, req_id.as_deref(), &browser_hash)
        .await?
        .map_err(|()| PageError::bad_request("error_request_expired"))?;
    // Read whenever asked for, so that only `trust_phone` (in the domain
    // rules) decides whether a verified phone may link.
    let want_phone = up.scopes.iter().any(|s| s == "phone");
    let answer = Answer { name: &name, up, cb: &cb, started: &started };
    let identity = verified_answer(&state, answer, want_phone).await?;
    let verified = Verified {
        upstream: &name,
        issuer: &identity.issuer,
        subject: &identity.subject,
        verified_phone: identity.verified_phone.as_deref(),
        trust_phone: up.trust_phone,
        auto_register: up.auto_register,
    };
    let ip = cookies::client_ip(Some(addr));
    let req_id = req_id.unwrap_or_default();
    match brokering::resolve(&state.store, verified, &browser_hash, Some(&req_id), &ip, now).await? {
        Resolution::Linked(user_id) | Resolution::PhoneLinked(user_id) | Resolution::Registered(user_id) => {
            let who = SignedIn::new(&user_id, Factor::Federated).from_ip(&ip);
            finish(&state, jar, &req_id, req, who).await
        }
        Resolution::Unlinked { ticket } => Ok(see_other(&state.endpoint(&format!("/login/link?ticket={ticket}")))),
        Resolution::Disabled => Err(PageError::forbidden("upstream_account_disabled")),
    }
}

#[derive(Deserialize)]
pub struct TicketQuery {
    #[serde(default)]
    ticket: String,
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    ticket: String,
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
}

/// The ticket if it is live and this browser's, with its request and locale.
async fn ticket_of(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    id: &str,
) -> Result<(LinkTicket, Option<AuthRequest>, &'static str), PageError> {
    let expired = || PageError::bad_request("upstream_link_expired");
    let browser = cookies::get(state, jar, cookies::BROWSER).ok_or_else(expired)?;
    let hash = cookies::browser_hash(&browser);
    let ticket = brokering::load_ticket(&state.store, id, &hash, state.clock.now()).await?.ok_or_else(expired)?;
    let req = request_of(state, ticket.req.as_deref(), &hash)
        .await?
        .map_err(|()| PageError::bad_request("error_request_expired"))?;
    let locale = cookies::locale(state, headers, req.as_ref().and_then(|r| r.ui_locales.as_deref()));
    Ok((ticket, req, locale))
}

struct LinkView<'a> {
    ticket: &'a LinkTicket,
    username: &'a str,
    error: Option<String>,
    captcha: bool,
}

async fn render_link(state: &AppState, jar: CookieJar, status: StatusCode, locale: &str, v: LinkView<'_>) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    let display =
        state.config.upstreams.get(&v.ticket.upstream).map(|u| u.display_name(locale).to_string()).unwrap_or_default();
    let mut ctx = tera::Context::new();
    ctx.insert("ticket", &v.ticket.id);
    ctx.insert("req", v.ticket.req.as_deref().unwrap_or(""));
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    ctx.insert("upstream_name", &display);
    ctx.insert("username", v.username);
    ctx.insert("error", &v.error);
    ctx.insert("need_captcha", &v.captcha);
    if v.captcha {
        crate::web::auth::sms_form::captcha_ctx(state, &mut ctx).await;
    }
    (jar, page(state, status, "upstream_link.html", locale, ctx)).into_response()
}

pub async fn link_show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<TicketQuery>,
) -> Result<Response, PageError> {
    let (ticket, _, locale) = ticket_of(&state, &jar, &headers, &q.ticket).await?;
    let view = LinkView { ticket: &ticket, username: "", error: None, captcha: false };
    Ok(render_link(&state, jar, StatusCode::OK, locale, view).await)
}

crate::with_csrf!(LinkForm);

/// Links by the local password, with the same throttle and captcha as the
/// sign-in page (a link page must not be a cheaper password oracle).
pub async fn link_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<LinkForm>,
) -> Result<Response, PageError> {
    let (ticket, req, locale) = ticket_of(&state, &jar, &headers, &f.ticket).await?;
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
    let (status, msg, captcha) = match brokering::link_by_password(services, attempt, &ticket).await? {
        PasswordLink::Linked(user) => {
            // The person proved the local password here: that is the sign-in method.
            let req_id = ticket.req.clone().unwrap_or_default();
            return finish(&state, jar, &req_id, req, SignedIn::new(&user.id, Factor::Password).from_ip(&ip)).await;
        }
        PasswordLink::Conflict => return Err(PageError::Refused(StatusCode::CONFLICT, "upstream_link_conflict")),
        PasswordLink::Expired => return Err(PageError::bad_request("upstream_link_expired")),
        PasswordLink::NotVerified(outcome) => match outcome {
            PasswordOutcome::MissingFields { risky } => (StatusCode::BAD_REQUEST, text("login_missing_fields"), risky),
            PasswordOutcome::Locked { minutes } => {
                (StatusCode::TOO_MANY_REQUESTS, text("login_locked").replace("{minutes}", &minutes.to_string()), true)
            }
            PasswordOutcome::CaptchaWrong => (StatusCode::BAD_REQUEST, text("captcha_wrong"), true),
            PasswordOutcome::Failed { risky } => (StatusCode::UNAUTHORIZED, text("login_failed"), risky),
            PasswordOutcome::Suspended { risky } => (StatusCode::UNAUTHORIZED, text("login_suspended"), risky),
            PasswordOutcome::Verified(_) => return Err(PageError::Unavailable),
        },
    };
    let view = LinkView { ticket: &ticket, username: &f.username, error: Some(msg), captcha };
    Ok(render_link(&state, jar, status, locale, view).await)
}

/// "Register a new account": remembers the ticket in a cookie so the
/// registration links the new account, then goes to the registration page.
pub async fn link_register(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<TicketQuery>,
) -> Result<Response, PageError> {
    let (ticket, _, _) = ticket_of(&state, &jar, &headers, &q.ticket).await?;
    let jar = jar.add(cookies::build(&state, LINK_COOKIE, ticket.id.clone(), Some(15 * 60)));
    let req = ticket.req.as_deref().unwrap_or("");
    Ok((jar, see_other(&state.endpoint(&format!("/register?req={req}")))).into_response())
}

/// Called by registration once the account exists: links the upstream
/// account whose ticket this browser holds. A failure here leaves the new
/// account unlinked (the person can link later), never half-made.
pub async fn link_after_registration(state: &AppState, jar: CookieJar, user_id: &str, ip: &str) -> CookieJar {
    let Some(id) = cookies::get(state, &jar, LINK_COOKIE) else { return jar };
    let jar = jar.remove(cookies::build(state, LINK_COOKIE, String::new(), None));
    let Some(browser) = cookies::get(state, &jar, cookies::BROWSER) else { return jar };
    let now = state.clock.now();
    let result = async {
        match brokering::load_ticket(&state.store, &id, &cookies::browser_hash(&browser), now).await? {
            Some(ticket) => brokering::redeem_ticket(&state.store, &ticket, user_id, "registration", ip, now).await,
            None => Ok(None),
        }
    }
    .await;
    if let Err(e) = result {
        tracing::warn!("link after registration failed: {e}");
    }
    jar
}

#[derive(Serialize)]
pub struct LinkedUpstream {
    id: String,
    label: String,
}

/// The account's linked upstream accounts for the personal centre (A5).
pub async fn linked(state: &AppState, user_id: &str, locale: &str) -> Vec<LinkedUpstream> {
    match brokering::links_for_user(&state.store, user_id).await {
        Ok(links) => links
            .into_iter()
            .map(|l| LinkedUpstream {
                label: state
                    .config
                    .upstreams
                    .get(&l.upstream)
                    .map_or(l.upstream.clone(), |u| u.display_name(locale).into()),
                id: l.id,
            })
            .collect(),
        Err(e) => {
            tracing::warn!("linked upstreams: {e}");
            Vec::new()
        }
    }
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    link: String,
}

crate::with_csrf!(UnlinkForm);

/// Removes a link from the personal centre (signed in, CSRF-checked, audited).
pub async fn unlink(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<UnlinkForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    // C1: a personal-centre change, for the person's own session only.
    let Some(session) = crate::kit::personal::session(&state, &jar, locale).await? else {
        return Ok(see_other(&state.endpoint("/login")));
    };
    let ip = cookies::client_ip(Some(addr));
    if !brokering::unlink(&state.store, &session.user_id, &f.link, &ip, state.clock.now()).await? {
        return Err(PageError::Refused(StatusCode::NOT_FOUND, "error_bad_form"));
    }
    Ok(see_other(&state.endpoint("/account")))
}
