//! The everyday second factor for step-up to L3: whichever of password and
//! SMS code the session has not used yet. A session begun with a password
//! adds a code sent to the account's own phone; one begun with an SMS code
//! adds the password. Passkeys, one-time codes and face checks have their
//! own pages.
use crate::domain::assurance::Factor;
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::authn::step_up::{self, Check, Everyday};
use crate::kit::extract::{CsrfForm, PageError};
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::sms_form::{self, Delivery, Notice, Sent};
use crate::web::auth::step_up as step_up_page;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct FactorQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize, Default)]
pub struct FactorForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
}

/// Which factor this session can add here, if any.
pub fn missing(session: &SessionInfo, user: &user::Model) -> Option<Factor> {
    let used = |f: Factor| session.factors.iter().any(|e| e.factor == f);
    if !used(Factor::Password) && user.password_hash.starts_with("$argon2") {
        Some(Factor::Password)
    } else if !used(Factor::Sms) && user.phone.is_some() {
        Some(Factor::Sms)
    } else {
        None
    }
}

struct Ctx {
    session: SessionInfo,
    user: user::Model,
    factor: Factor,
    locale: &'static str,
}

async fn load(state: &AppState, jar: &CookieJar, headers: &HeaderMap, req_id: &str) -> Result<Ctx, PageError> {
    let (session, user, locale) = step_up_page::load_signed_in(state, jar, headers, req_id).await?;
    match missing(&session, &user) {
        Some(factor) => Ok(Ctx { session, user, factor, locale }),
        // Nothing to add here: back to the request, which decides again.
        None => Err(step_up_page::finish(state, jar.clone(), req_id, locale).await.into()),
    }
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    c: &Ctx,
    req_id: &str,
    sent: Option<Sent>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("req", req_id);
    ctx.insert("send_action", "/step-up/factor/send");
    let n = sent.map(|s| s.into_ctx(&mut ctx));
    ctx.insert("kind", if c.factor == Factor::Password { "password" } else { "sms" });
    ctx.insert(
        "phone_masked",
        &c.user.phone.as_deref().map(crate::domain::authn::flows::mask_phone).unwrap_or_default(),
    );
    let captcha = c.factor == Factor::Sms;
    sms_form::form_page(state, jar, status, "step_up_factor.html", c.locale, ctx, n, captcha).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FactorQuery>,
) -> Result<Response, PageError> {
    let c = load(&state, &jar, &headers, &q.req).await?;
    Ok(render(&state, jar, StatusCode::OK, &c, &q.req, None).await)
}

crate::with_csrf!(FactorForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<FactorForm>,
) -> Result<Response, PageError> {
    let c = load(&state, &jar, &headers, &f.req).await?;
    let ip = sms_form::ip_of(addr);
    let deps = Everyday {
        store: &state.store,
        throttle: &state.config.login_throttle,
        users: &state.users,
        sms: &state.sms_codes,
    };
    let now = state.clock.now();
    let text = |key: &str| state.pages.text(c.locale, key);
    let (status, msg, key) =
        match step_up::everyday(deps, &c.user, c.factor, &f.password, &f.sms_code, &ip, now).await? {
            Check::Verified(factor) => {
                // The session ended meanwhile: the request decides again.
                let jar = step_up_page::record_factor(&state, jar.clone(), &c.session, factor).await?.unwrap_or(jar);
                return Ok(step_up_page::finish(&state, jar, &f.req, c.locale).await);
            }
            Check::Wrong(key) => (StatusCode::UNAUTHORIZED, text(key), Some(key)),
            Check::Locked(minutes) => {
                (StatusCode::TOO_MANY_REQUESTS, text("login_locked").replace("{minutes}", &minutes.to_string()), None)
            }
        };
    let mut sent = Sent::message(Notice::Error(msg));
    sent.field = key.and_then(sms_form::field_of);
    Ok(render(&state, jar, status, &c, &f.req, Some(sent)).await)
}

/// `POST /step-up/factor/send`: a code to the account's own phone.
pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<FactorForm>,
) -> Result<Response, PageError> {
    let c = load(&state, &jar, &headers, &f.req).await?;
    if c.factor != Factor::Sms {
        return Ok(render(&state, jar, StatusCode::BAD_REQUEST, &c, &f.req, None).await);
    }
    let ip = sms_form::ip_of(addr);
    let phone = c.user.phone.clone().unwrap_or_default();
    let code_req = sms_form::CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
    let sent = sms_form::send_code_detailed(&state, c.locale, code_req, Delivery::Send).await;
    Ok(render(&state, jar, sent.status(), &c, &f.req, Some(sent)).await)
}
