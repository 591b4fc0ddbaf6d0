//! The everyday second factor for step-up to L3: whichever of password and
//! SMS code the session has not used yet. A session begun with a password
//! adds a code sent to the account's own phone; one begun with an SMS code
//! adds the password. Passkeys, one-time codes and face checks have their
//! own pages.
use crate::domain::assurance::Factor;
use crate::domain::authn::sessions::SessionInfo;
use crate::kit::cookies;
use crate::kit::pages::unavailable;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::sms_form::{self, Notice};
use crate::web::auth::step_up;
use axum::Form;
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
    action: String,
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

async fn load(state: &AppState, jar: &CookieJar, headers: &HeaderMap, req_id: &str) -> Result<Ctx, Response> {
    let (session, user, locale) = step_up::load_signed_in(state, jar, headers, req_id).await?;
    match missing(&session, &user) {
        Some(factor) => Ok(Ctx { session, user, factor, locale }),
        // Nothing to add here: back to the request, which decides again.
        None => Err(step_up::finish(state, jar.clone(), req_id, locale).await),
    }
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    c: &Ctx,
    req_id: &str,
    n: Option<Notice>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("req", req_id);
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
) -> Response {
    match load(&state, &jar, &headers, &q.req).await {
        Ok(c) => render(&state, jar, StatusCode::OK, &c, &q.req, None).await,
        Err(page) => page,
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<FactorForm>,
) -> Response {
    let c = match load(&state, &jar, &headers, &f.req).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let text = |key: &str| state.pages.text(c.locale, key);
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(&state, jar, StatusCode::FORBIDDEN, &c, &f.req, Some(Notice::Error(text("error_csrf")))).await;
    }
    let ip = sms_form::ip_of(addr);
    let verified = match c.factor {
        Factor::Password => check_password(&state, &c, &f.password, &ip).await,
        _ => {
            let phone = c.user.phone.clone().unwrap_or_default();
            if f.action == "send_code" {
                let code_req = sms_form::CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
                let notice = sms_form::send_code(&state, c.locale, code_req).await;
                let status = notice.status();
                return render(&state, jar, status, &c, &f.req, Some(notice)).await;
            }
            match state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await {
                Ok(true) => Ok(None),
                Ok(false) => Ok(Some((StatusCode::UNAUTHORIZED, text("sms_code_wrong")))),
                Err(e) => Err(e.into()),
            }
        }
    };
    match verified {
        Ok(None) => {}
        Ok(Some((status, msg))) => return render(&state, jar, status, &c, &f.req, Some(Notice::Error(msg))).await,
        Err(e) => return unavailable(&state, c.locale, e),
    }
    match step_up::record_factor(&state, jar.clone(), &c.session, c.factor).await {
        Ok(Some(jar)) => step_up::finish(&state, jar, &f.req, c.locale).await,
        Ok(None) => step_up::finish(&state, jar, &f.req, c.locale).await,
        Err(e) => unavailable(&state, c.locale, e),
    }
}

/// The account's password under the sign-in throttle
/// (`domain::authn::reverify::account_password`). `Ok(None)` when it is right,
/// else the message to show.
async fn check_password(
    state: &AppState,
    c: &Ctx,
    password: &str,
    ip: &str,
) -> anyhow::Result<Option<(StatusCode, String)>> {
    use crate::domain::authn::reverify::{self, Outcome};
    let text = |key: &str| state.pages.text(c.locale, key);
    let (db, throttle) = (&state.store, &state.config.login_throttle);
    Ok(match reverify::account_password(db, throttle, &state.users, &c.user, password, ip, state.clock.now()).await? {
        Outcome::Verified => None,
        Outcome::Locked(secs) => {
            let msg = text("login_locked").replace("{minutes}", &((secs + 59) / 60).to_string());
            Some((StatusCode::TOO_MANY_REQUESTS, msg))
        }
        Outcome::Wrong | Outcome::UseSms => Some((StatusCode::UNAUTHORIZED, text("step_up_password_wrong"))),
    })
}
