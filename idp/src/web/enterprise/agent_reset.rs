//! "Forgot password" for an agent's enterprise login (C2):
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
use crate::kit::cookies;
use crate::kit::pages::unavailable;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::sms_form::{self, CodeRequest, Delivery, Notice};
use crate::web::enterprise::notify_ended;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
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
    ctx.insert("v", &json!({ "uscc": f.uscc, "phone": f.phone, "done": done }));
    sms_form::form_page(state, jar, status, "agent_reset.html", locale, ctx, notice, !done).await
}

pub async fn show(State(state): State<AppState>, jar: CookieJar, headers: HeaderMap) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    render(&state, jar, StatusCode::OK, locale, &ResetForm::default(), false, None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let text = |k: &str| state.pages.text(locale, k);
    let bad = |k: &str| Some(Notice::Error(text(k)));
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(&state, jar, StatusCode::FORBIDDEN, locale, &f, false, bad("error_csrf")).await;
    }
    let uscc = match Uscc::parse(&f.uscc) {
        Ok(u) => u,
        Err(e) => return render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad(e.message_key())).await,
    };
    let Ok(phone) = PhoneNumber::parse(&f.phone) else {
        return render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad("register_phone_rule")).await;
    };
    let now = state.clock.now();
    let ip = sms_form::ip_of(addr);
    let purpose = agent_password::reset_purpose(&uscc);
    if f.action == "send_code" {
        let target = match agent_password::reset_target(&state.store, &uscc, &phone, now).await {
            Ok(t) => t,
            Err(e) => return unavailable(&state, locale, e),
        };
        let delivery = if target.is_some() { Delivery::Keyed(&purpose) } else { Delivery::CountOnly };
        let r = CodeRequest::new(SmsPurpose::ResetPassword, phone.as_str(), &ip, &f.captcha_id, &f.captcha);
        let notice = match sms_form::send_code_as(&state, locale, r, delivery).await {
            // The same words whether a code went out or not.
            Notice::Info(_) => Notice::Info(text("agent_reset_sent")),
            other => other,
        };
        return render(&state, jar, notice.status(), locale, &f, false, Some(notice)).await;
    }
    if let Err(k) = check_enterprise_password(&f.password) {
        return render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad(k)).await;
    }
    if f.password != f.password2 {
        return render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad("register_password_mismatch"))
            .await;
    }
    match state.sms_codes.verify_for(phone.as_str(), &purpose, &f.sms_code).await {
        Ok(true) => {}
        Ok(false) => {
            return render(&state, jar, StatusCode::BAD_REQUEST, locale, &f, false, bad("sms_code_wrong")).await;
        }
        Err(e) => return unavailable(&state, locale, e),
    }
    // The code proved the phone; only now may the answer depend on the agent.
    let d = match agent_password::reset_target(&state.store, &uscc, &phone, now).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return render(&state, jar, StatusCode::CONFLICT, locale, &f, false, bad("enterprise_not_agent")).await;
        }
        Err(e) => return unavailable(&state, locale, e),
    };
    let ended = match agent_password::reset(
        &state.store,
        &state.passwords,
        &d,
        &f.password,
        Actor::User(&d.grantee_user_id),
        Some(&ip),
        now,
    )
    .await
    {
        Ok(Some(ended)) => ended,
        Ok(None) => {
            let n = bad("agents_changed_meanwhile");
            return render(&state, jar, StatusCode::CONFLICT, locale, &f, false, n).await;
        }
        Err(e) => return unavailable(&state, locale, e),
    };
    notify_ended(&state, ended).await;
    crate::web::account::notify(&state, phone.as_str(), "sms_agent_password_changed", now).await;
    render(&state, jar, StatusCode::OK, locale, &f, true, Some(Notice::Info(text("agent_reset_done")))).await
}
