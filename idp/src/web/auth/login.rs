//! The sign-in page (A3: password with username, phone or ID number).
use crate::domain::assurance::Factor;
use crate::domain::tokens::authorize::AuthRequest;
use crate::domain::{authn::pending, authn::sessions, authn::throttle};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::pages::{error_page, page, unavailable};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use axum::Form;
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
    let client_name = match v.req {
        Some(r) => state.clients.find(&r.client_id).await.ok().flatten().map(|c| c.name),
        None => None,
    };
    ctx.insert("client_name", &client_name);
    ctx.insert("need_captcha", &v.captcha);
    ctx.insert("upstreams", &crate::web::auth::upstream::buttons(state, locale));
    ctx.insert("passkeys_available", &state.passkeys.available());
    if v.captcha {
        crate::web::auth::sms_form::captcha_ctx(state, &mut ctx).await;
    }
    (jar, page(state, status, "login.html", locale, ctx)).into_response()
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
    let req = match load_request(state, jar, req_id).await {
        Ok(r) => r,
        Err(e) => return Err(unavailable(state, "zh-CN", e)),
    };
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
        _ => Err(error_page(state, StatusCode::SERVICE_UNAVAILABLE, locale, "error_unavailable")),
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
    let req = match load_request(state, jar, &req_id).await {
        Ok(r) => r,
        Err(e) => return Err(unavailable(state, "zh-CN", e)),
    };
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
) -> Response {
    let (req, locale) = match pending_for_page(&state, &jar, &headers, &q.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let hint = req.as_ref().and_then(|r| r.login_hint.clone()).unwrap_or_default();
    render(
        &state,
        jar,
        StatusCode::OK,
        locale,
        View { req_id: &q.req, req: req.as_ref(), username: &hint, error: None, captcha: false },
    )
    .await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (req, locale) = match pending_for_page(&state, &jar, &headers, &f.req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let ip = cookies::client_ip(Some(addr));
    let now = state.clock.now();
    // One counter per account however its identifier is spelled (A3).
    let key = match throttle::citizen_key(&state.users, &f.username).await {
        Ok(k) => k,
        Err(e) => return unavailable(&state, locale, e),
    };
    let risky = match throttle::failures(&state.store, &key, &ip, now).await {
        Ok((account, by_ip)) => throttle::risky(account, by_ip),
        Err(e) => return unavailable(&state, locale, e),
    };
    let view = |error: String, captcha: bool| View {
        req_id: &f.req,
        req: req.as_ref(),
        username: &f.username,
        error: Some(error),
        captcha,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        let msg = state.pages.text(locale, "error_csrf");
        return render(&state, jar, StatusCode::FORBIDDEN, locale, view(msg, risky)).await;
    }
    if f.username.trim().is_empty() || f.password.is_empty() {
        let msg = state.pages.text(locale, "login_missing_fields");
        return render(&state, jar, StatusCode::BAD_REQUEST, locale, view(msg, risky)).await;
    }
    let reservation =
        match throttle::reserve(&state.store, &state.config.login_throttle, &key, &ip, state.clock.now()).await {
            Ok(throttle::Verdict::Proceed(r)) => r,
            Ok(throttle::Verdict::Locked(secs)) => {
                let minutes = (secs + 59) / 60;
                let msg = state.pages.text(locale, "login_locked").replace("{minutes}", &minutes.to_string());
                return render(&state, jar, StatusCode::TOO_MANY_REQUESTS, locale, view(msg, true)).await;
            }
            Err(e) => return unavailable(&state, locale, e),
        };
    // A3: once sign-in looks risky a graphic captcha is required. It is
    // checked after the attempt is counted and before the password, so a
    // missing or wrong captcha is a failed attempt too.
    if risky {
        match state.captcha.check(&f.captcha_id, &f.captcha).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = throttle::failed(&state.store, reservation, &ip, now).await {
                    return unavailable(&state, locale, e);
                }
                let msg = state.pages.text(locale, "captcha_wrong");
                return render(&state, jar, StatusCode::BAD_REQUEST, locale, view(msg, true)).await;
            }
            Err(e) => return unavailable(&state, locale, e),
        }
    }
    let checked = match state
        .users
        .check_password(&f.username, &f.password)
        .await
        .inspect_err(|e| tracing::error!("password check: {e}"))
    {
        Ok(c) => c,
        Err(e) => return unavailable(&state, locale, e),
    };
    let suspended = matches!(checked, crate::domain::identity::users::PasswordCheck::Suspended);
    let user = checked.user();
    let Some(user) = user else {
        if let Err(e) = throttle::failed(&state.store, reservation, &ip, now).await {
            return unavailable(&state, locale, e);
        }
        let msg = state.pages.text(locale, if suspended { "login_suspended" } else { "login_failed" });
        // This failure may be the one that makes the next try risky.
        let next_risky =
            throttle::failures(&state.store, &key, &ip, now).await.map(|(a, i)| throttle::risky(a, i)).unwrap_or(true);
        return render(&state, jar, StatusCode::UNAUTHORIZED, locale, view(msg, next_risky)).await;
    };
    if let Err(e) = throttle::succeeded(&state.store, reservation).await {
        return unavailable(&state, locale, e);
    }
    complete(
        &state,
        jar,
        locale,
        &f.req,
        req,
        SignedIn::new(&user.id, Factor::Password).remember(f.remember.is_some()).from_ip(&ip),
    )
    .await
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

/// Which enterprise a sign-in acts for (C1): as representative when
/// `delegation_id` is none, else as that agent.
pub struct Acting {
    pub enterprise_id: String,
    pub delegation_id: Option<String>,
}

/// The one place every sign-in ends: a fresh session cookie (whatever
/// method was used) with its factors and acting, the authorization request
/// marked as signed in and continued — or home when there is none.
pub async fn complete(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    req_id: &str,
    req: Option<AuthRequest>,
    who: SignedIn<'_>,
) -> Response {
    // Two-step sign-in (issue 19): no session before the second step.
    let jar = match crate::web::auth::second_step::gate(state, jar, locale, req_id, &who).await {
        Ok(jar) => jar,
        Err(second_step) => return second_step,
    };
    let SignedIn { user_id, method, remember, extra, then, acting, ip } = who;
    let result = async {
        let existing = current_session(state, &jar).await?;
        let now = state.clock.now();
        let sign_in = sessions::SignIn { user_id, factor: method, remember, now };
        let mut established =
            sessions::establish(&state.store, existing.as_ref(), sign_in, &state.config.session).await?;
        for factor in extra {
            if let Some(next) = sessions::add_factor(&state.store, &established.1, *factor, now).await? {
                established = next;
            }
        }
        match &acting {
            Some(a) => {
                crate::domain::delegation::acting::set(
                    &state.store,
                    &established.1.sid,
                    &a.enterprise_id,
                    a.delegation_id.as_deref(),
                )
                .await?
            }
            None => crate::domain::delegation::acting::clear(&state.store, &established.1.sid).await?,
        }
        let acting_label = acting.as_ref().map(|a| match &a.delegation_id {
            Some(d) => format!("delegation:{d}"),
            None => format!("enterprise:{}", a.enterprise_id),
        });
        let done = sessions::Completed { session: &established.1, method, acting: acting_label.as_deref(), ip, now };
        sessions::signed_in(&state.store, done, &state.config.assurance).await?;
        Ok::<_, crate::store::DbErr>(established)
    }
    .await;
    let (cookie, _) = match result {
        Ok(v) => v,
        Err(e) => return unavailable(state, locale, e),
    };
    crate::web::api::metrics::sign_in(&format!("{method:?}").to_lowercase(), "success");
    if let Some(mut r) = req {
        r.login_done = true;
        if let Err(e) = pending::update(&state.store, req_id, &r).await {
            return unavailable(state, locale, e);
        }
    }
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
    (jar, see_other(&next)).into_response()
}
