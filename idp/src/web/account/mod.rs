//! Personal centre (A5) and account deletion (A6). Every page needs a
//! signed-in session; every sensitive change re-verifies by phone + SMS
//! code + graphic captcha, is audited, and notifies the old channel.
pub mod appeal;
pub mod apps;
pub mod delegations;
pub mod devices;
pub mod history;
pub mod identity;
pub mod security;
use crate::domain::assurance::Factor;
use crate::domain::authn::flows::{self, mask_account, mask_phone};
use crate::domain::authn::reverify::{self, Outcome};
use crate::domain::authn::sessions::{self, SessionInfo};
use crate::domain::identity::accounts::{self, check_citizen_password};
use crate::domain::identity::profile::{self, ETHNIC_GROUPS, ProfileEdit};
use crate::domain::identity::users::PhoneNumber;
use crate::kit::cookies;
use crate::kit::pages::{error_page, page, unavailable};
use crate::oidc::flow::see_other;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    gender: String,
    #[serde(default)]
    ethnicity: String,
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    new_phone: String,
    #[serde(default)]
    email: String,
}

#[derive(Deserialize, Default)]
pub struct FlowQuery {
    #[serde(default)]
    flow: String,
}

const PHONE_FLOW: &str = "change_phone";
const EMAIL_FLOW: &str = "bind_email";

/// The signed-in account, or a redirect to the sign-in page.
async fn require_user(state: &AppState, jar: &CookieJar, locale: &str) -> Result<(SessionInfo, user::Model), Response> {
    // C1: the person's own session, not one acting for an enterprise.
    let session = match crate::kit::personal::session(state, jar, locale).await? {
        Some(s) => s,
        None => return Err(cookies::sign_in_then(state, jar.clone(), "/account")),
    };
    match state.users.find(&session.user_id).await {
        Ok(Some(u)) if !u.disabled => Ok((session, u)),
        Ok(_) => Err(see_other(&format!("{}/login", state.config.issuer))),
        Err(e) => Err(unavailable(state, locale, e.to_string())),
    }
}

fn view_of(uri: &Uri) -> &'static str {
    match uri.path() {
        "/account/profile" => "profile",
        "/account/password" => "password",
        "/account/delete" => "delete",
        "/account/phone" => "phone",
        "/account/email" => "email",
        _ => "home",
    }
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    view: &str,
    u: &user::Model,
    notice: Option<Notice>,
) -> Response {
    render_with(state, jar, status, locale, view, u, notice, ("", "")).await
}

/// `phone_step` carries (flow id, new phone) on the second step of a phone change.
#[allow(clippy::too_many_arguments)]
async fn render_with(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    view: &str,
    u: &user::Model,
    notice: Option<Notice>,
    phone_step: (&str, &str),
) -> Response {
    let profile: serde_json::Map<String, Value> =
        u.profile.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let field = |k: &str| profile.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut ctx = tera::Context::new();
    ctx.insert("view", view);
    ctx.insert("username_masked", &mask_account(&u.username));
    ctx.insert("phone_masked", &u.phone.as_deref().map(mask_phone).unwrap_or_default());
    ctx.insert("email", &u.email);
    ctx.insert("name", &u.name);
    ctx.insert("nickname", &field("nickname"));
    ctx.insert("gender", &field("gender"));
    ctx.insert("ethnicity", &field("ethnicity"));
    ctx.insert("ethnic_groups", &ETHNIC_GROUPS[..]);
    ctx.insert("flow", phone_step.0);
    ctx.insert("new_phone", phone_step.1);
    ctx.insert("upstream_links", &crate::web::auth::upstream::linked(state, &u.id, locale).await);
    let captcha = matches!(view, "password" | "delete" | "phone" | "email");
    sms_form::form_page(state, jar, status, "account.html", locale, ctx, notice, captcha).await
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<FlowQuery>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let (_, u) = match require_user(&state, &jar, locale).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let view = view_of(&uri);
    if matches!(view, "phone" | "email") && !q.flow.is_empty() {
        // Second step only after the old phone was verified in this browser.
        let kind = if view == "phone" { PHONE_FLOW } else { EMAIL_FLOW };
        return match open_flow(&state, &jar, kind, &q.flow, &u).await {
            Ok(true) => render_with(&state, jar, StatusCode::OK, locale, view, &u, None, (&q.flow, "")).await,
            Ok(false) => error_page(&state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
            Err(e) => unavailable(&state, locale, e),
        };
    }
    render(&state, jar, StatusCode::OK, locale, view, &u, None).await
}

async fn open_flow(
    state: &AppState,
    jar: &CookieJar,
    kind: &str,
    id: &str,
    u: &user::Model,
) -> Result<bool, crate::store::DbErr> {
    let browser = cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default();
    let found = flows::at_step(&state.store, id, kind, &browser, 1, state.clock.now()).await?;
    Ok(found.is_some_and(|f| f.user_id == u.id))
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<AccountForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let text = |key: &str| state.pages.text(locale, key);
    let view = view_of(&uri);
    let (session, u) = match require_user(&state, &jar, locale).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return render(&state, jar, StatusCode::FORBIDDEN, locale, view, &u, Some(Notice::Error(text("error_csrf"))))
            .await;
    }
    let ip = sms_form::ip_of(addr);
    let now = state.clock.now();
    let phone = u.phone.clone().unwrap_or_default();
    let bad = |key: &str| Some(Notice::Error(text(key)));
    if view == "phone" {
        return change_phone(&state, jar, locale, &f, u, &ip, now).await;
    }
    if view == "email" {
        return bind_email(&state, jar, locale, &f, u, &ip, now).await;
    }
    if f.action == "send_code" {
        let code_req = CodeRequest::new(SmsPurpose::Verify, &phone, &ip, &f.captcha_id, &f.captcha);
        let notice = sms_form::send_code(&state, locale, code_req).await;
        let status = notice.status();
        return render(&state, jar, status, locale, view, &u, Some(notice)).await;
    }
    match view {
        "profile" => {
            let edit =
                ProfileEdit { nickname: f.nickname.clone(), gender: f.gender.clone(), ethnicity: f.ethnicity.clone() };
            let user_id = u.id.clone();
            match profile::update(&state.store, u, &edit, now).await {
                Ok(Ok(())) => {
                    if let Err(e) =
                        accounts::audit(&state.store, Some(&user_id), "profile_update", "details", Some(&ip), now).await
                    {
                        return unavailable(&state, locale, e);
                    }
                    see_other(&format!("{}/account", state.config.issuer))
                }
                Ok(Err(key)) => {
                    let u = state.users.find(&user_id).await.ok().flatten();
                    match u {
                        Some(u) => render(&state, jar, StatusCode::BAD_REQUEST, locale, view, &u, bad(key)).await,
                        None => see_other(&format!("{}/login", state.config.issuer)),
                    }
                }
                Err(e) => unavailable(&state, locale, e),
            }
        }
        "password" => {
            // A5: SMS re-verification, the old password, the new one twice.
            if let Err(key) = check_citizen_password(&f.password) {
                let key = match key {
                    "password_length" => "register_password_length",
                    "password_chars" => "register_password_chars",
                    _ => "register_password_kinds",
                };
                return render(&state, jar, StatusCode::BAD_REQUEST, locale, view, &u, bad(key)).await;
            }
            if f.password != f.password2 {
                return render(
                    &state,
                    jar,
                    StatusCode::BAD_REQUEST,
                    locale,
                    view,
                    &u,
                    bad("register_password_mismatch"),
                )
                .await;
            }
            // The old password is a sign-in secret: guesses here count in the
            // account's sign-in throttle, like every other password check.
            let throttle = &state.config.login_throttle;
            let now = state.clock.now();
            match reverify::account_password(&state.store, throttle, &state.users, &u, &f.old_password, &ip, now).await
            {
                Ok(Outcome::Verified) => {}
                Ok(Outcome::Locked(secs)) => {
                    let msg = state
                        .pages
                        .text(locale, "account_password_locked")
                        .replace("{minutes}", &((secs + 59) / 60).to_string());
                    let notice = Some(Notice::Error(msg));
                    return render(&state, jar, StatusCode::TOO_MANY_REQUESTS, locale, view, &u, notice).await;
                }
                Ok(_) => {
                    return render(
                        &state,
                        jar,
                        StatusCode::BAD_REQUEST,
                        locale,
                        view,
                        &u,
                        bad("account_old_password_wrong"),
                    )
                    .await;
                }
                Err(e) => return unavailable(&state, locale, e),
            }
            match state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await {
                Ok(true) => {}
                Ok(false) => {
                    return render(&state, jar, StatusCode::BAD_REQUEST, locale, view, &u, bad("sms_code_wrong")).await;
                }
                Err(e) => return unavailable(&state, locale, e),
            }
            let user_id = u.id.clone();
            if let Err(e) = state.users.replace_password(u, &f.password).await {
                return unavailable(&state, locale, e);
            }
            if let Err(e) =
                accounts::audit(&state.store, Some(&user_id), "change_password", "SMS + old password", Some(&ip), now)
                    .await
            {
                return unavailable(&state, locale, e);
            }
            notify(&state, &phone, "sms_password_changed", now).await;
            // Other sessions ended with the change; this browser signs in afresh.
            // It just presented an SMS code and the old password.
            let sign_in = sessions::SignIn { user_id: &user_id, factor: Factor::Sms, remember: false, now };
            let established = match sessions::establish(&state.store, None, sign_in, &state.config.session).await {
                Ok((cookie, s)) => sessions::add_factor(&state.store, &s, Factor::Password, now)
                    .await
                    .map(|added| added.unwrap_or((cookie, s))),
                Err(e) => Err(e),
            };
            match established {
                Ok((cookie, s)) => {
                    let done =
                        sessions::Completed { session: &s, method: Factor::Password, acting: None, ip: Some(&ip), now };
                    if let Err(e) = sessions::signed_in(&state.store, done, &state.config.assurance).await {
                        tracing::error!("audit of the sign-in after a password change: {e}");
                    }
                    let jar = jar.add(cookies::build(&state, cookies::SESSION, cookie, None));
                    (jar, see_other(&format!("{}/account", state.config.issuer))).into_response()
                }
                Err(e) => unavailable(&state, locale, e),
            }
        }
        "delete" => {
            if f.confirm.is_none() {
                return render(&state, jar, StatusCode::BAD_REQUEST, locale, view, &u, bad("delete_confirm_required"))
                    .await;
            }
            match state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await {
                Ok(true) => {}
                Ok(false) => {
                    return render(&state, jar, StatusCode::BAD_REQUEST, locale, view, &u, bad("sms_code_wrong")).await;
                }
                Err(e) => return unavailable(&state, locale, e),
            }
            if let Err(e) = accounts::delete_account(&state.store, &state, &u, &session.sid, &ip, now).await {
                return unavailable(&state, locale, e);
            }
            let jar = jar.remove(cookies::build(&state, cookies::SESSION, String::new(), None));
            let mut ctx = tera::Context::new();
            ctx.insert("view", "deleted");
            (jar, page(&state, StatusCode::OK, "account.html", locale, ctx)).into_response()
        }
        _ => see_other(&format!("{}/account", state.config.issuer)),
    }
}

pub(crate) async fn notify(state: &AppState, phone: &str, key: &str, now: i64) {
    let text = state.pages.text(&state.config.default_locale, key);
    let msg = SmsMessage { phone: phone.into(), purpose: SmsPurpose::Notice, params: serde_json::json!({}), text };
    if let Err(e) = state.sms_codes.gateway().send(&msg, now).await {
        tracing::warn!("notice not sent: {e}");
    }
}

/// The delivery behind the core's phone-notice port: the message text is
/// the locale's, in the deployment's default language.
impl crate::ports::notify::PhoneNotifier for AppState {
    async fn notify_phone(&self, phone: &str, key: &str, now: i64) {
        notify(self, phone, key, now).await;
    }
}

/// The first step of a phone change or e-mail binding (A5): the SMS code
/// sent to the account's current phone opens a flow bound to this browser,
/// and the page moves on to its second step.
#[allow(clippy::too_many_arguments)]
async fn open_with_current_phone(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    f: &AccountForm,
    u: &user::Model,
    kind: &str,
    view: &str,
    step2: (&str, &str),
    now: i64,
) -> Response {
    let phone = u.phone.as_deref().unwrap_or_default();
    match state.sms_codes.verify(phone, SmsPurpose::Verify, &f.sms_code).await {
        Ok(true) => {
            let browser =
                cookies::get(state, &jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default();
            match flows::start(&state.store, kind, &u.id, &browser, None, now).await {
                Ok(id) => see_other(&format!("{}/account/{view}?flow={id}", state.config.issuer)),
                Err(e) => unavailable(state, locale, e),
            }
        }
        Ok(false) => {
            let notice = Some(Notice::Error(state.pages.text(locale, "sms_code_wrong")));
            render_with(state, jar, StatusCode::BAD_REQUEST, locale, view, u, notice, step2).await
        }
        Err(e) => unavailable(state, locale, e),
    }
}

/// A5 phone change: an SMS code on the old phone opens a browser-bound
/// flow; an SMS code on the new phone (which must be free) completes it.
async fn change_phone(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    f: &AccountForm,
    u: user::Model,
    ip: &str,
    now: i64,
) -> Response {
    let text = |key: &str| state.pages.text(locale, key);
    let old_phone = u.phone.clone().unwrap_or_default();
    let step2 = (f.flow.as_str(), f.new_phone.as_str());
    let in_flow = !f.flow.is_empty();
    if in_flow {
        match open_flow(state, &jar, PHONE_FLOW, &f.flow, &u).await {
            Ok(true) => {}
            Ok(false) => return error_page(state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
            Err(e) => return unavailable(state, locale, e),
        }
    }
    let bad = |key: &str| Some(Notice::Error(text(key)));
    match f.action.as_str() {
        "send_code" => {
            let (phone, must_exist) =
                if in_flow { (f.new_phone.as_str(), Some(false)) } else { (old_phone.as_str(), None) };
            let code_req = CodeRequest::new(SmsPurpose::Verify, phone, ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(state, locale, code_req.account_must_exist(must_exist)).await;
            let status = notice.status();
            render_with(state, jar, status, locale, "phone", &u, Some(notice), step2).await
        }
        "verify_old" => open_with_current_phone(state, jar, locale, f, &u, PHONE_FLOW, "phone", step2, now).await,
        "verify_new" if in_flow => {
            let Ok(new_phone) = PhoneNumber::parse(&f.new_phone) else {
                return render_with(
                    state,
                    jar,
                    StatusCode::BAD_REQUEST,
                    locale,
                    "phone",
                    &u,
                    bad("register_phone_rule"),
                    step2,
                )
                .await;
            };
            match state.sms_codes.verify(new_phone.as_str(), SmsPurpose::Verify, &f.sms_code).await {
                Ok(true) => {}
                Ok(false) => {
                    return render_with(
                        state,
                        jar,
                        StatusCode::BAD_REQUEST,
                        locale,
                        "phone",
                        &u,
                        bad("sms_code_wrong"),
                        step2,
                    )
                    .await;
                }
                Err(e) => return unavailable(state, locale, e),
            }
            match flows::advance(&state.store, &f.flow, 1, now).await {
                Ok(true) => {}
                Ok(false) => return error_page(state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
                Err(e) => return unavailable(state, locale, e),
            }
            let user_id = u.id.clone();
            match profile::change_phone(&state.store, u, &new_phone, now).await {
                Ok(true) => {}
                Ok(false) => {
                    let u = state.users.find(&user_id).await.ok().flatten();
                    return match u {
                        Some(u) => {
                            render(state, jar, StatusCode::CONFLICT, locale, "phone", &u, bad("register_phone_taken"))
                                .await
                        }
                        None => see_other(&format!("{}/login", state.config.issuer)),
                    };
                }
                Err(e) => return unavailable(state, locale, e),
            }
            let detail = format!("to {}", mask_phone(new_phone.as_str()));
            if let Err(e) = accounts::audit(&state.store, Some(&user_id), "change_phone", &detail, Some(ip), now).await
            {
                return unavailable(state, locale, e);
            }
            notify(state, &old_phone, "sms_phone_changed", now).await;
            see_other(&format!("{}/account", state.config.issuer))
        }
        _ => see_other(&format!("{}/account", state.config.issuer)),
    }
}

/// A5 e-mail binding: an SMS code on the account's phone opens the flow;
/// a code mailed to the new address proves it and binds it.
async fn bind_email(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    f: &AccountForm,
    u: user::Model,
    ip: &str,
    now: i64,
) -> Response {
    let text = |key: &str| state.pages.text(locale, key);
    let phone = u.phone.clone().unwrap_or_default();
    let step2 = (f.flow.as_str(), f.email.as_str());
    let in_flow = !f.flow.is_empty();
    if in_flow {
        match open_flow(state, &jar, EMAIL_FLOW, &f.flow, &u).await {
            Ok(true) => {}
            Ok(false) => return error_page(state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
            Err(e) => return unavailable(state, locale, e),
        }
    }
    let bad = |key: &str| Some(Notice::Error(text(key)));
    let email = f.email.trim().to_ascii_lowercase();
    match f.action.as_str() {
        "send_code" if !in_flow => {
            let req = CodeRequest::new(SmsPurpose::Verify, &phone, ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(state, locale, req).await;
            let status = notice.status();
            render_with(state, jar, status, locale, "email", &u, Some(notice), step2).await
        }
        "verify_old" => open_with_current_phone(state, jar, locale, f, &u, EMAIL_FLOW, "email", step2, now).await,
        "send_mail" if in_flow => {
            if !crate::ports::mail::valid_address(&email) {
                return render_with(state, jar, StatusCode::BAD_REQUEST, locale, "email", &u, bad("email_rule"), step2)
                    .await;
            }
            let code = match state.sms_codes.issue(&email, "bind_email", ip).await {
                Ok(c) => c,
                Err(crate::domain::authn::sms_codes::SendError::TooFrequent(secs)) => {
                    let n =
                        Notice::Error(text("sms_too_frequent").replace("{minutes}", &((secs + 59) / 60).to_string()));
                    return render_with(state, jar, StatusCode::BAD_REQUEST, locale, "email", &u, Some(n), step2).await;
                }
                Err(e) => return unavailable(state, locale, e),
            };
            let body = text("mail_code_body").replace("{code}", &code).replace("{minutes}", "5");
            if let Err(e) = state.mail.send(&email, &text("mail_code_subject"), &body, "bind_email", now).await {
                tracing::error!("mail: {e:#}");
                return render_with(
                    state,
                    jar,
                    StatusCode::BAD_GATEWAY,
                    locale,
                    "email",
                    &u,
                    bad("mail_failed"),
                    step2,
                )
                .await;
            }
            render_with(state, jar, StatusCode::OK, locale, "email", &u, Some(Notice::Info(text("mail_sent"))), step2)
                .await
        }
        "verify_mail" if in_flow => {
            match state.sms_codes.verify_for(&email, "bind_email", &f.sms_code).await {
                Ok(true) => {}
                Ok(false) => {
                    return render_with(
                        state,
                        jar,
                        StatusCode::BAD_REQUEST,
                        locale,
                        "email",
                        &u,
                        bad("mail_code_wrong"),
                        step2,
                    )
                    .await;
                }
                Err(e) => return unavailable(state, locale, e),
            }
            match flows::advance(&state.store, &f.flow, 1, now).await {
                Ok(true) => {}
                Ok(false) => return error_page(state, StatusCode::BAD_REQUEST, locale, "forgot_expired"),
                Err(e) => return unavailable(state, locale, e),
            }
            let user_id = u.id.clone();
            if let Err(e) = profile::bind_email(&state.store, u, &email, now).await {
                return unavailable(state, locale, e);
            }
            if let Err(e) =
                accounts::audit(&state.store, Some(&user_id), "bind_email", "mail code verified", Some(ip), now).await
            {
                return unavailable(state, locale, e);
            }
            notify(state, &phone, "sms_email_bound", now).await;
            see_other(&format!("{}/account", state.config.issuer))
        }
        _ => see_other(&format!("{}/account", state.config.issuer)),
    }
}
