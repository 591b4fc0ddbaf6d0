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
use crate::kit::pages::unavailable;
use crate::oidc::flow::see_other;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::mfa::{begun_json, browser_of, json_error, passkey_failure};
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
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

async fn require_user(state: &AppState, jar: &CookieJar, locale: &str) -> Result<user::Model, Response> {
    // C1: the person's own session, not one acting for an enterprise.
    let session = match crate::kit::personal::session(state, jar, locale).await? {
        Some(s) => s,
        None => return Err(cookies::sign_in_then(state, jar.clone(), PATH)),
    };
    match state.users.find(&session.user_id).await {
        Ok(Some(u)) if !u.disabled => Ok(u),
        Ok(_) => Err(see_other(&format!("{}/login", state.config.issuer))),
        Err(e) => Err(unavailable(state, locale, e.to_string())),
    }
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
        Err(e) => return unavailable(state, locale, e),
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
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let u = match require_user(&state, &jar, locale).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let flow = match verified(&state, &jar, &q.flow, &u).await {
        Ok(Some(_)) => q.flow.as_str(),
        Ok(None) => "",
        Err(e) => return unavailable(&state, locale, e),
    };
    render(&state, jar, StatusCode::OK, locale, &u, flow, None, Extra::None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<SecurityForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let text = |key: &str| state.pages.text(locale, key);
    let bad = |key: &str| Some(Notice::Error(text(key)));
    let u = match require_user(&state, &jar, locale).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(&state, jar, StatusCode::FORBIDDEN, locale, &u, "", bad("error_csrf"), Extra::None).await;
    }
    let ip = sms_form::ip_of(addr);
    let now = state.clock.now();
    let phone = u.phone.clone().unwrap_or_default();
    match f.action.as_str() {
        "send_code" => {
            let req = CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(&state, locale, req).await;
            let status = notice.status();
            return render(&state, jar, status, locale, &u, "", Some(notice), Extra::None).await;
        }
        "verify" => {
            return match state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await {
                Ok(true) if !phone.is_empty() => {
                    reverified(&state, locale, &u.id, &browser_of(&state, &jar), PATH, now).await
                }
                Ok(_) => {
                    render(&state, jar, StatusCode::BAD_REQUEST, locale, &u, "", bad("sms_code_wrong"), Extra::None)
                        .await
                }
                Err(e) => unavailable(&state, locale, e),
            };
        }
        "reverify" => return reverify(&state, jar, locale, &u, &f, &ip, now).await,
        _ => {}
    }
    // Everything else changes factors: only inside a re-verified flow.
    let proof = match verified(&state, &jar, &f.flow, &u).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return render(&state, jar, StatusCode::FORBIDDEN, locale, &u, "", bad("security_reverify"), Extra::None)
                .await;
        }
        Err(e) => return unavailable(&state, locale, e),
    };
    let flow = f.flow.as_str();
    let back = || see_other(&format!("{}{PATH}?flow={flow}", state.config.issuer));
    let change = || Change { proof: &proof, user: &u, ip: &ip, now };
    match f.action.as_str() {
        "totp_start" => match state.totp.start(&u.id, &u.username, now).await {
            Ok(Some(e)) => render(&state, jar, StatusCode::OK, locale, &u, flow, None, Extra::Enrol(e)).await,
            Ok(None) => {
                render(&state, jar, StatusCode::CONFLICT, locale, &u, flow, bad("totp_already"), Extra::None).await
            }
            Err(e) => unavailable(&state, locale, e),
        },
        "totp_confirm" => match factors::enrol_app(&state.store, &state.totp, &state, change(), &f.code).await {
            Ok(Some(codes)) => {
                let notice = Some(Notice::Info(text("totp_enrolled")));
                render(&state, jar, StatusCode::OK, locale, &u, flow, notice, Extra::Codes(codes)).await
            }
            Ok(None) => match state.totp.pending(&u.id, &u.username).await {
                Ok(Some(e)) => {
                    let (status, notice) = (StatusCode::BAD_REQUEST, bad("mfa_code_wrong"));
                    render(&state, jar, status, locale, &u, flow, notice, Extra::Enrol(e)).await
                }
                Ok(None) => back(),
                Err(e) => unavailable(&state, locale, e),
            },
            Err(e) => unavailable(&state, locale, e),
        },
        "recovery_new" => {
            match factors::renew_recovery_codes(&state.store, &state.totp, &state.passkeys, &state, change()).await {
                Ok(Some(codes)) => {
                    render(&state, jar, StatusCode::OK, locale, &u, flow, None, Extra::Codes(codes)).await
                }
                Ok(None) => back(),
                Err(e) => unavailable(&state, locale, e),
            }
        }
        "second_step_on" | "second_step_off" => {
            let on = f.action == "second_step_on";
            match crate::domain::authn::second_step::set(&state.store, &proof, &u.id, on, &ip, now).await {
                Ok(_) => back(),
                Err(e) => unavailable(&state, locale, e),
            }
        }
        "remove_totp" | "remove_passkey" => {
            let which = if f.action == "remove_totp" { FactorRef::App } else { FactorRef::Passkey(&f.passkey) };
            match factors::remove_factor(&state.store, &state, change(), which).await {
                Ok(_) => back(),
                Err(e) => unavailable(&state, locale, e),
            }
        }
        _ => back(),
    }
}

/// The person re-verified (SMS, password, app code, passkey or a fresh
/// upstream sign-in): opens the browser-bound flow in which factors can be
/// changed and returns to the page that asked, a local `/account` path.
pub(crate) async fn reverified(
    state: &AppState,
    locale: &str,
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
        Err(e) => unavailable(state, locale, e),
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
) -> Response {
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
    let (status, key) = match reverify::without_phone(&v, u, proof, &browser, ip, now).await {
        Ok(Outcome::Verified) => return reverified(state, locale, &u.id, &browser, PATH, now).await,
        Ok(Outcome::Wrong) => (StatusCode::BAD_REQUEST, "security_reverify_wrong"),
        Ok(Outcome::Locked(_)) => (StatusCode::TOO_MANY_REQUESTS, "mfa_locked"),
        Ok(Outcome::UseSms) => (StatusCode::BAD_REQUEST, "security_reverify"),
        Err(e) => return unavailable(state, locale, e),
    };
    let notice = Some(Notice::Error(state.pages.text(locale, key)));
    render(state, jar, status, locale, u, "", notice, Extra::None).await
}

/// Passkey registration, step 1 (JSON for `navigator.credentials.create`).
pub async fn passkey_begin(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<SecurityForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let u = match require_user(&state, &jar, locale).await {
        Ok(u) => u,
        Err(_) => return json_error(&state, StatusCode::UNAUTHORIZED, locale, "mfa_sign_in_first"),
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return json_error(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    match verified(&state, &jar, &f.flow, &u).await {
        Ok(Some(_)) => {}
        Ok(None) => return json_error(&state, StatusCode::FORBIDDEN, locale, "security_reverify"),
        Err(e) => return unavailable(&state, locale, e),
    }
    let display = u.name.clone().unwrap_or_else(|| u.username.clone());
    let browser = browser_of(&state, &jar);
    let begun = state.passkeys.start_registration(&u.id, &u.username, &display, &browser, state.clock.now()).await;
    begun_json(&state, locale, begun)
}

/// Passkey registration, step 2: the authenticator's answer as a form POST.
pub async fn passkey_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<SecurityForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let text = |key: &str| state.pages.text(locale, key);
    let u = match require_user(&state, &jar, locale).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            locale,
            &u,
            "",
            Some(Notice::Error(text("error_csrf"))),
            Extra::None,
        )
        .await;
    }
    let proof = match verified(&state, &jar, &f.flow, &u).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let n = Some(Notice::Error(text("security_reverify")));
            return render(&state, jar, StatusCode::FORBIDDEN, locale, &u, "", n, Extra::None).await;
        }
        Err(e) => return unavailable(&state, locale, e),
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
        Ok(_) => see_other(&format!("{}{PATH}?flow={}", state.config.issuer, f.flow)),
        Err(e) => {
            let (status, key) = passkey_failure(&e);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return unavailable(&state, locale, e);
            }
            render(&state, jar, status, locale, &u, &f.flow, Some(Notice::Error(text(key))), Extra::None).await
        }
    }
}
