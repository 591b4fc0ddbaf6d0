//! Personal centre "安全设置 / Security": the account's strong
//! factors — authenticator app (TOTP), passkeys, recovery codes — listed,
//! added and removed. Like every sensitive change in the personal centre
//! (A5), changing factors first re-verifies the person by SMS code on the
//! account's phone (+ graphic captcha); that opens a browser-bound flow of
//! 15 minutes in which the changes can be made. An account without a phone
//! re-verifies with its password, app code or passkey instead
//! (`domain::authn::reverify`). Every change is audited and announced by SMS on
//! the phone.
use crate::domain::authn::factors::{self, Change, Enrolment, FactorRef, Reverified};
use crate::domain::authn::flows::{self, mask_phone};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::oidc::flow::see_other;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::mfa::{begun_json, browser_of, json_error, passkey_failure};
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

const FLOW: &str = crate::domain::authn::reverify::FLOW;
pub(crate) const PATH: &str = "/account/security";

#[derive(Deserialize, Default)]
pub struct SecurityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    passkey: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    password: String,
    /// Re-verification without a phone: `password`, `totp` or `passkey`.
    #[serde(default)]
    method: String,
}

crate::with_csrf!(SecurityForm);

#[derive(Deserialize, Default)]
pub struct FlowQuery {
    #[serde(default)]
    flow: String,
}

/// What the page shows besides the list.
enum Extra {
    None,
    /// A TOTP enrolment waiting for its first code.
    Enrol(Enrolment),
    /// Fresh recovery codes, shown this once.
    Codes(Vec<String>),
}

/// The core's proof of a re-verification in this browser by this user,
/// which every factor change asks for.
async fn verified(
    state: &AppState,
    jar: &CookieJar,
    flow: &str,
    u: &user::Model,
) -> Result<Option<Reverified>, crate::store::DbErr> {
    factors::reverified(&state.store, flow, &browser_of(state, jar), &u.id, state.clock.now()).await
}

fn when(ts: Option<i64>, locale: &str) -> Option<String> {
    ts.map(|t| crate::kit::human::datetime(t, locale))
}

/// The otpauth URL as a QR code (SVG in a data: URL, allowed by the CSP).
fn qr_data_url(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
            format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg))
        }
        Err(e) => {
            tracing::error!("qr: {e}");
            String::new()
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    u: &user::Model,
    flow: &str,
    notice: Option<Notice>,
    extra: Extra,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("flow", flow);
    ctx.insert("phone_masked", &u.phone.as_deref().map(mask_phone).unwrap_or_default());
    ctx.insert("has_phone", &u.phone.is_some());
    ctx.insert("has_password", &crate::domain::identity::users::has_password(u));
    ctx.insert("passkeys_available", &state.passkeys.available());
    if u.phone.is_none() && flow.is_empty() {
        ctx.insert("reverify_upstreams", &crate::web::auth::upstream_reverify::choices(state, &u.id, locale).await);
        ctx.insert("return_to", PATH);
    }
    let listing = async {
        let totp = state.totp.summary(&u.id).await?;
        let keys = state.passkeys.list(&u.id).await?;
        let left = state.totp.remaining_recovery_codes(&u.id).await?;
        let second = crate::domain::authn::second_step::switched_on(&state.store, &u.id).await?;
        ctx.insert("second_step_on", &second);
        Ok::<_, crate::store::DbErr>((totp, keys, left))
    }
    .await;
    let (totp, keys, left) = match listing {
        Ok(v) => v,
        Err(e) => return PageError::unavailable(e).into_response(),
    };
    ctx.insert(
        "totp",
        &totp.map(|(created, used)| json!({ "created": when(Some(created), locale), "last_used": when(used, locale) })),
    );
    let keys: Vec<_> = keys
        .into_iter()
        .map(|k| json!({ "id": k.id, "name": k.name, "created": when(Some(k.created_at), locale), "last_used": when(k.last_used_at, locale) }))
        .collect();
    ctx.insert("has_factor", &(totp.is_some() || !keys.is_empty()));
    ctx.insert("passkeys", &keys);
    ctx.insert("recovery_left", &left);
    let (view, secret, qr, codes) = match extra {
        Extra::None => ("home", String::new(), String::new(), Vec::new()),
        Extra::Enrol(e) => ("totp", e.secret, qr_data_url(&e.url), Vec::new()),
        Extra::Codes(c) => ("codes", String::new(), String::new(), c),
    };
    ctx.insert("view", view);
    ctx.insert("totp_secret", &secret);
    ctx.insert("totp_qr", &qr);
    ctx.insert("codes_text", &codes.join(" "));
    ctx.insert("codes_href", &format!("data:text/plain;charset=utf-8,{}", codes.join("%0D%0A")));
    ctx.insert("codes", &codes);
    sms_form::form_page(state, jar, status, "security.html", locale, ctx, notice, flow.is_empty()).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    Query(q): Query<FlowQuery>,
) -> Result<Response, PageError> {
    let flow = if verified(&state, &jar, &q.flow, &u).await?.is_some() { q.flow.as_str() } else { "" };
    Ok(render(&state, jar, StatusCode::OK, locale, &u, flow, None, Extra::None).await)
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    CsrfForm(f): CsrfForm<SecurityForm>,
) -> Result<Response, PageError> {
    let text = |key: &str| state.pages.text(locale, key);
    let bad = |key: &str| Some(Notice::Error(text(key)));
    let ip = sms_form::ip_of(addr);
    let now = state.clock.now();
    let phone = u.phone.clone().unwrap_or_default();
    match f.action.as_str() {
        "send_code" => {
            let req = CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(&state, locale, req).await;
            let status = notice.status();
            return Ok(render(&state, jar, status, locale, &u, "", Some(notice), Extra::None).await);
        }
        "verify" => {
            return Ok(
                if state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await? && !phone.is_empty() {
                    reverified(&state, locale, &u.id, &browser_of(&state, &jar), PATH, now).await
                } else {
                    render(&state, jar, StatusCode::BAD_REQUEST, locale, &u, "", bad("sms_code_wrong"), Extra::None)
                        .await
                },
            );
        }
        "reverify" => return reverify(&state, jar, locale, &u, &f, &ip, now).await,
        _ => {}
    }
    // Everything else changes factors: only inside a re-verified flow.
    let Some(proof) = verified(&state, &jar, &f.flow, &u).await? else {
        let status = StatusCode::FORBIDDEN;
        return Ok(render(&state, jar, status, locale, &u, "", bad("security_reverify"), Extra::None).await);
    };
    let flow = f.flow.as_str();
    let back = || see_other(&format!("{}{PATH}?flow={flow}", state.config.issuer));
    let change = || Change { proof: &proof, user: &u, ip: &ip, now };
    Ok(match f.action.as_str() {
        "totp_start" => match state.totp.start(&u.id, &u.username, now).await? {
            Some(e) => render(&state, jar, StatusCode::OK, locale, &u, flow, None, Extra::Enrol(e)).await,
            None => render(&state, jar, StatusCode::CONFLICT, locale, &u, flow, bad("totp_already"), Extra::None).await,
        },
        "totp_confirm" => match factors::enrol_app(&state.store, &state.totp, &state, change(), &f.code).await? {
            Some(codes) => {
                let notice = Some(Notice::Info(text("totp_enrolled")));
                render(&state, jar, StatusCode::OK, locale, &u, flow, notice, Extra::Codes(codes)).await
            }
            None => match state.totp.pending(&u.id, &u.username).await? {
                Some(e) => {
                    let (status, notice) = (StatusCode::BAD_REQUEST, bad("mfa_code_wrong"));
                    render(&state, jar, status, locale, &u, flow, notice, Extra::Enrol(e)).await
                }
                None => back(),
            },
        },
        "recovery_new" => {
            match factors::renew_recovery_codes(&state.store, &state.totp, &state.passkeys, &state, change()).await? {
                Some(codes) => render(&state, jar, StatusCode::OK, locale, &u, flow, None, Extra::Codes(codes)).await,
                None => back(),
            }
        }
        "second_step_on" | "second_step_off" => {
            let on = f.action == "second_step_on";
            crate::domain::authn::second_step::set(&state.store, &proof, &u.id, on, &ip, now).await?;
            back()
        }
        "remove_totp" | "remove_passkey" => {
            let which = if f.action == "remove_totp" { FactorRef::App } else { FactorRef::Passkey(&f.passkey) };
            factors::remove_factor(&state.store, &state, change(), which).await?;
            back()
        }
        _ => back(),
    })
}

/// The person re-verified (SMS, password, app code, passkey or a fresh
/// upstream sign-in): opens the browser-bound flow in which factors can be
/// changed and returns to the page that asked, a local `/account` path.
pub(crate) async fn reverified(
    state: &AppState,
    _locale: &str,
    user_id: &str,
    browser: &str,
    return_to: &str,
    now: i64,
) -> Response {
    match flows::start(&state.store, FLOW, user_id, browser, None, now).await {
        Ok(id) => {
            let sep = if return_to.contains('?') { '&' } else { '?' };
            see_other(&format!("{}{return_to}{sep}flow={id}", state.config.issuer))
        }
        Err(e) => PageError::unavailable(e).into_response(),
    }
}

/// Re-verification of an account without a phone: its password, an app
/// code or one of its passkeys opens the same flow an SMS code would.
async fn reverify(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    u: &user::Model,
    f: &SecurityForm,
    ip: &str,
    now: i64,
) -> Result<Response, PageError> {
    use crate::domain::authn::reverify::{self, Outcome, Proof, Verifiers};
    let proof = match f.method.as_str() {
        "password" => Proof::Password(&f.password),
        "totp" => Proof::AppCode(&f.code),
        _ => Proof::Passkey { ceremony: &f.ceremony, credential: &f.credential },
    };
    let v = Verifiers {
        db: &state.store,
        throttle: &state.config.login_throttle,
        users: &state.users,
        totp: &state.totp,
        passkeys: &state.passkeys,
    };
    let browser = browser_of(state, &jar);
    let (status, key) = match reverify::without_phone(&v, u, proof, &browser, ip, now).await? {
        Outcome::Verified => return Ok(reverified(state, locale, &u.id, &browser, PATH, now).await),
        Outcome::Wrong => (StatusCode::BAD_REQUEST, "security_reverify_wrong"),
        Outcome::Locked(_) => (StatusCode::TOO_MANY_REQUESTS, "mfa_locked"),
        Outcome::UseSms => (StatusCode::BAD_REQUEST, "security_reverify"),
    };
    let notice = Some(Notice::Error(state.pages.text(locale, key)));
    Ok(render(state, jar, status, locale, u, "", notice, Extra::None).await)
}

/// Passkey registration, step 1 (JSON for `navigator.credentials.create`).
/// Answers in JSON: without a session 401, with a stale form 403.
pub async fn passkey_begin(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    me: Result<SignedIn, PageError>,
    axum::Form(f): axum::Form<SecurityForm>,
) -> Result<Response, PageError> {
    let Ok(SignedIn { user: u, .. }) = me else {
        return Ok(json_error(&state, StatusCode::UNAUTHORIZED, locale, "mfa_sign_in_first"));
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return Ok(json_error(&state, StatusCode::FORBIDDEN, locale, "error_csrf"));
    }
    if verified(&state, &jar, &f.flow, &u).await?.is_none() {
        return Ok(json_error(&state, StatusCode::FORBIDDEN, locale, "security_reverify"));
    }
    let display = u.name.clone().unwrap_or_else(|| u.username.clone());
    let browser = browser_of(&state, &jar);
    let begun = state.passkeys.start_registration(&u.id, &u.username, &display, &browser, state.clock.now()).await;
    Ok(begun_json(&state, locale, begun))
}

/// Passkey registration, step 2: the authenticator's answer as a form POST.
pub async fn passkey_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    CsrfForm(f): CsrfForm<SecurityForm>,
) -> Result<Response, PageError> {
    let text = |key: &str| state.pages.text(locale, key);
    let Some(proof) = verified(&state, &jar, &f.flow, &u).await? else {
        let n = Some(Notice::Error(text("security_reverify")));
        return Ok(render(&state, jar, StatusCode::FORBIDDEN, locale, &u, "", n, Extra::None).await);
    };
    let now = state.clock.now();
    let ip = sms_form::ip_of(addr);
    let browser = browser_of(&state, &jar);
    let change = Change { proof: &proof, user: &u, ip: &ip, now };
    let enrolled = factors::enrol_passkey(
        &state.store,
        &state.passkeys,
        &state,
        change,
        &f.ceremony,
        &browser,
        &f.name,
        &f.credential,
    )
    .await;
    match enrolled {
        Ok(_) => Ok(see_other(&format!("{}{PATH}?flow={}", state.config.issuer, f.flow))),
        Err(e) => {
            let (status, key) = passkey_failure(&e);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return Err(PageError::unavailable(e));
            }
            Ok(render(&state, jar, status, locale, &u, &f.flow, Some(Notice::Error(text(key))), Extra::None).await)
        }
    }
}
