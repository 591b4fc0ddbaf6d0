//! Forgot password (A4, 002 §1.2.5), four steps: account (+ captcha) →
//! verify (real-name users: ID number + SMS; others: SMS) → new password
//! twice → done. Afterwards every session and refresh token of the account
//! is revoked and the old channel gets a notice.
use crate::domain::authn::flows::{self, mask_account, mask_fully, mask_phone};
use crate::domain::identity::accounts::{self, check_citizen_password};
use crate::kit::cookies;
use crate::kit::pages::{error_page, unavailable};
use crate::oidc::flow::see_other;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::server::AppState;
use crate::web::auth::sms_form::{self, Notice};
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

const KIND: &str = "reset_password";

#[derive(Deserialize, Default)]
pub struct ForgotQuery {
    #[serde(default)]
    req: String,
    #[serde(default)]
    flow: String,
}

#[derive(Deserialize, Default)]
pub struct ForgotForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

struct View<'a> {
    step: i64,
    form: &'a ForgotForm,
    account_masked: String,
    phone_masked: String,
    id_masked: Option<String>,
    notice: Option<Notice>,
}

async fn render(state: &AppState, jar: CookieJar, status: StatusCode, locale: &str, v: View<'_>) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("step", &v.step);
    ctx.insert("req", &v.form.req);
    ctx.insert("flow", &v.form.flow);
    ctx.insert("account", &v.form.account);
    ctx.insert("account_masked", &v.account_masked);
    ctx.insert("phone_masked", &v.phone_masked);
    ctx.insert("id_masked", &v.id_masked);
    sms_form::form_page(state, jar, status, "forgot.html", locale, ctx, v.notice, v.step <= 2).await
}

fn browser_hash(state: &AppState, jar: &CookieJar) -> String {
    cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default()
}

fn blank(step: i64, form: &ForgotForm) -> View<'_> {
    View { step, form, account_masked: String::new(), phone_masked: String::new(), id_masked: None, notice: None }
}

/// Step pages by URL: /forgot (1), /forgot/verify (2), /forgot/password (3), /forgot/done (4).
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<ForgotQuery>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let mut form = ForgotForm { req: q.req.clone(), flow: q.flow.clone(), ..Default::default() };
    let step = match uri.path() {
        "/forgot/verify" => 2,
        "/forgot/password" => 3,
        "/forgot/done" => 4,
        _ => 1,
    };
    if step == 1 {
        return render(&state, jar, StatusCode::OK, locale, blank(1, &form)).await;
    }
    // The flow must be at exactly the step of the page: no skipping ahead.
    let at = match flows::at_step(&state.store, &q.flow, KIND, &browser_hash(&state, &jar), step - 1, state.clock.now())
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => return error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
        Err(e) => return unavailable(&state, locale, e),
    };
    let user = match state.users.find(&at.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
        Err(e) => return unavailable(&state, locale, e),
    };
    form.req = at.req.clone().unwrap_or_default();
    let view = View {
        step,
        form: &form,
        account_masked: mask_account(&user.username),
        phone_masked: user.phone.as_deref().map(mask_phone).unwrap_or_default(),
        id_masked: user.id_number.as_deref().map(mask_fully),
        notice: None,
    };
    render(&state, jar, StatusCode::OK, locale, view).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let text = |key: &str| state.pages.text(locale, key);
    let now = state.clock.now();
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return error_page(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    let ip = sms_form::ip_of(addr);
    let browser = browser_hash(&state, &jar);
    if f.action == "account" {
        let fail = |key: &str| {
            let mut v = blank(1, &f);
            v.notice = Some(Notice::Error(text(key)));
            v
        };
        match state.captcha.check(&f.captcha_id, &f.captcha).await {
            Ok(true) => {}
            Ok(false) => return render(&state, jar, StatusCode::BAD_REQUEST, locale, fail("captcha_wrong")).await,
            Err(e) => return unavailable(&state, locale, e),
        }
        let user = match state.users.find_by_login(&f.account).await {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => return render(&state, jar, StatusCode::BAD_REQUEST, locale, fail("forgot_no_account")).await,
            Err(e) => return unavailable(&state, locale, e),
        };
        if user.phone.is_none() {
            return render(&state, jar, StatusCode::BAD_REQUEST, locale, fail("forgot_no_phone")).await;
        }
        return match flows::start(&state.store, KIND, &user.id, &browser, Some(&f.req), now).await {
            Ok(id) => see_other(&format!("{}/forgot/verify?flow={id}", state.config.issuer)),
            Err(e) => unavailable(&state, locale, e),
        };
    }
    let step = match f.action.as_str() {
        "send_code" | "verify" => 1,
        "password" => 2,
        _ => return error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
    };
    let flow = match flows::at_step(&state.store, &f.flow, KIND, &browser, step, now).await {
        Ok(Some(fl)) => fl,
        Ok(None) => return error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
        Err(e) => return unavailable(&state, locale, e),
    };
    let user = match state.users.find(&flow.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
        Err(e) => return unavailable(&state, locale, e),
    };
    let phone = user.phone.clone().unwrap_or_default();
    let view = |notice: Notice| View {
        step: step + 1,
        form: &f,
        account_masked: mask_account(&user.username),
        phone_masked: mask_phone(&phone),
        id_masked: user.id_number.as_deref().map(mask_fully),
        notice: Some(notice),
    };
    match f.action.as_str() {
        "send_code" => {
            let code_req =
                sms_form::CodeRequest::new(SmsPurpose::ResetPassword, &phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(&state, locale, code_req).await;
            let status = notice.status();
            render(&state, jar, status, locale, view(notice)).await
        }
        "verify" => {
            // Real-name users prove the document number too (002 §1.2.5),
            // together with the code: one answer for either mismatch.
            match flows::prove_reset(&state.sms_codes, &user, &f.id_number, &f.sms_code).await {
                Ok(true) => {}
                Ok(false) => {
                    let key = if user.id_number.is_some() { "forgot_verify_failed" } else { "sms_code_wrong" };
                    let n = Notice::Error(text(key));
                    return render(&state, jar, StatusCode::BAD_REQUEST, locale, view(n)).await;
                }
                Err(e) => return unavailable(&state, locale, e),
            }
            match flows::advance(&state.store, &flow.id, 1, now).await {
                Ok(true) => see_other(&format!("{}/forgot/password?flow={}", state.config.issuer, flow.id)),
                Ok(false) => error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
                Err(e) => unavailable(&state, locale, e),
            }
        }
        _ => {
            if let Err(key) = check_citizen_password(&f.password) {
                let key = match key {
                    "password_length" => "register_password_length",
                    "password_chars" => "register_password_chars",
                    _ => "register_password_kinds",
                };
                return render(&state, jar, StatusCode::BAD_REQUEST, locale, view(Notice::Error(text(key)))).await;
            }
            if f.password != f.password2 {
                let n = Notice::Error(text("register_password_mismatch"));
                return render(&state, jar, StatusCode::BAD_REQUEST, locale, view(n)).await;
            }
            match flows::advance(&state.store, &flow.id, 2, now).await {
                Ok(true) => {}
                Ok(false) => return error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
                Err(e) => return unavailable(&state, locale, e),
            }
            let user_id = user.id.clone();
            if let Err(e) = state.users.replace_password(user, &f.password).await {
                return unavailable(&state, locale, e);
            }
            if let Err(e) =
                accounts::audit(&state.store, Some(&user_id), "reset_password", "SMS verified", Some(&ip), now).await
            {
                return unavailable(&state, locale, e);
            }
            notify(&state, &phone, now).await;
            see_other(&format!("{}/forgot/done?flow={}", state.config.issuer, flow.id))
        }
    }
}

/// Tells the old channel that the password changed (best effort: the reset
/// itself already happened and must not be undone by a gateway hiccup).
async fn notify(state: &AppState, phone: &str, now: i64) {
    let text = state.pages.text(&state.config.default_locale, "sms_password_changed");
    let msg = SmsMessage { phone: phone.into(), purpose: SmsPurpose::Notice, params: serde_json::json!({}), text };
    if let Err(e) = state.sms_codes.gateway().send(&msg, now).await {
        tracing::warn!("password change notice not sent: {e}");
    }
}
