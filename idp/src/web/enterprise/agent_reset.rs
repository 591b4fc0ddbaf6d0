//! "Forgot password" for an enterprise login (C1, C2): as the legal
//! representative (`role=representative`: the code goes to the
//! representative's phone on record, `onboarding::reset_password`) or as
//! an agent (any other role, the default of older forms). For an agent's login:
//! `/login/enterprise/forgot` — credit code + the agent's phone (+ graphic
//! captcha) → an SMS code bound to that enterprise → a new password twice.
//!
//! The page answers the same whether or not the pair is an agent on record
//! (a code is sent only when it is, but the send limits count either way);
//! revoked, rejected or expired agents get no code. The code is the one of
//! `sms_codes`: single use (conditional UPDATE), 5 minutes, 5 tries.
use crate::domain::audit::Actor;
use crate::domain::delegation::agent_password;
use crate::domain::delegation::enterprises::check_enterprise_password;
use crate::domain::delegation::uscc::Uscc;
use crate::domain::identity::users::PhoneNumber;
use crate::kit::extract::{CsrfForm, Locale, PageError};
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::sms_form::{self, CodeRequest, Delivery, Notice};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    /// `send_code` or `reset`.
    #[serde(default)]
    action: String,
    /// `representative` or `agent` (default).
    #[serde(default)]
    role: String,
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

/// The form (what was typed kept, passwords never echoed) or, once done,
/// the confirmation.
async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    f: &ResetForm,
    done: bool,
    notice: Option<Notice>,
) -> Response {
    let mut ctx = tera::Context::new();
    let role = if f.role == "representative" { "representative" } else { "agent" };
    ctx.insert("v", &json!({ "uscc": f.uscc, "phone": f.phone, "done": done, "role": role }));
    sms_form::form_page(state, jar, status, "agent_reset.html", locale, ctx, notice, !done).await
}

#[derive(Deserialize, Default)]
pub struct RoleQuery {
    #[serde(default)]
    role: String,
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    axum::extract::Query(q): axum::extract::Query<RoleQuery>,
) -> Response {
    let f = ResetForm { role: q.role, ..Default::default() };
    render(&state, jar, StatusCode::OK, locale, &f, false, None).await
}

crate::with_csrf!(ResetForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    CsrfForm(f): CsrfForm<ResetForm>,
) -> Result<Response, PageError> {
    let text = |k: &str| state.pages.text(locale, k);
    let bad = |k: &str| Some(Notice::Error(text(k)));
    let uscc = match Uscc::parse(&f.uscc) {
        Ok(u) => u,
        Err(e) => {
            return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad(e.message_key())).await);
        }
    };
    let Ok(phone) = PhoneNumber::parse(&f.phone) else {
        return Ok(render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad("register_phone_rule")).await);
    };
    let now = state.clock.now();
    let ip = sms_form::ip_of(addr);
    if f.role == "representative" {
        return representative(&state, jar, locale, &f, &uscc, &phone, &ip, now).await;
    }
    let purpose = agent_password::reset_purpose(&uscc);
    if f.action == "send_code" {
        let target = agent_password::reset_target(&state.store, &uscc, &phone, now).await?;
        let delivery = if target.is_some() { Delivery::Keyed(&purpose) } else { Delivery::CountOnly };
        let r = CodeRequest::new(SmsPurpose::ResetPassword, phone.as_str(), &ip, &f.captcha_id, &f.captcha);
        let notice = match sms_form::send_code_as(&state, locale, r, delivery).await {
            // The same words whether a code went out or not.
            Notice::Info(_) => Notice::Info(text("agent_reset_sent")),
            other => other,
        };
        return Ok(render(&state, jar, notice.status(), locale, &f, false, Some(notice)).await);
    }
    let refuse = |status, key| render(&state, jar.clone(), status, locale, &f, false, bad(key));
    if let Err(k) = check_enterprise_password(&f.password) {
        return Ok(refuse(StatusCode::BAD_REQUEST, k).await);
    }
    if f.password != f.password2 {
        return Ok(refuse(StatusCode::BAD_REQUEST, "register_password_mismatch").await);
    }
    if !state.sms_codes.verify_for(phone.as_str(), &purpose, &f.sms_code).await? {
        return Ok(refuse(StatusCode::BAD_REQUEST, "sms_code_wrong").await);
    }
    // The code proved the phone; only now may the answer depend on the agent.
    let Some(d) = agent_password::reset_target(&state.store, &uscc, &phone, now).await? else {
        return Ok(refuse(StatusCode::CONFLICT, "enterprise_not_agent").await);
    };
    let by = Actor::User(&d.grantee_user_id);
    if !agent_password::reset(&state.store, &state.passwords, &state, &d, &f.password, by, Some(&ip), now).await? {
        return Ok(refuse(StatusCode::CONFLICT, "agents_changed_meanwhile").await);
    }
    let done = Some(Notice::Info(text("agent_reset_done")));
    Ok(render(&state, jar, StatusCode::OK, locale, &f, true, done).await)
}

/// The representative's reset: a code only when the phone is the
/// representative's on record for that credit code (the limits count
/// either way, the answer is the same); then a new password twice; every
/// representative session of the enterprise ends.
#[allow(clippy::too_many_arguments)]
async fn representative(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    f: &ResetForm,
    uscc: &Uscc,
    phone: &PhoneNumber,
    ip: &str,
    now: i64,
) -> Result<Response, PageError> {
    use crate::domain::delegation::onboarding;
    let text = |k: &str| state.pages.text(locale, k);
    let purpose = onboarding::reset_purpose(uscc);
    if f.action == "send_code" {
        let target = onboarding::reset_target(&state.store, uscc, phone).await?;
        let delivery = if target.is_some() { Delivery::Keyed(&purpose) } else { Delivery::CountOnly };
        let r = CodeRequest::new(SmsPurpose::ResetPassword, phone.as_str(), ip, &f.captcha_id, &f.captcha);
        let notice = match sms_form::send_code_as(state, locale, r, delivery).await {
            Notice::Info(_) => Notice::Info(text("enterprise_reset_sent")),
            other => other,
        };
        return Ok(render(state, jar, notice.status(), locale, f, false, Some(notice)).await);
    }
    let refuse =
        |status, key: &str| render(state, jar.clone(), status, locale, f, false, Some(Notice::Error(text(key))));
    if let Err(k) = check_enterprise_password(&f.password) {
        return Ok(refuse(StatusCode::BAD_REQUEST, k).await);
    }
    if f.password != f.password2 {
        return Ok(refuse(StatusCode::BAD_REQUEST, "register_password_mismatch").await);
    }
    if !state.sms_codes.verify_for(phone.as_str(), &purpose, &f.sms_code).await? {
        return Ok(refuse(StatusCode::BAD_REQUEST, "sms_code_wrong").await);
    }
    // The code proved the phone; only now may the answer depend on the record.
    let Some(e) = onboarding::reset_target(&state.store, uscc, phone).await? else {
        return Ok(refuse(StatusCode::CONFLICT, "enterprise_representative_mismatch").await);
    };
    let ip = Some(ip);
    if !onboarding::reset_password(&state.store, &state.passwords, state, &e, &f.password, ip, now).await? {
        return Ok(refuse(StatusCode::CONFLICT, "agents_changed_meanwhile").await);
    }
    let done = Some(Notice::Info(text("enterprise_reset_done")));
    Ok(render(state, jar, StatusCode::OK, locale, f, true, done).await)
}
