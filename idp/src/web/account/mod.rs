//! Personal centre (A5) and account deletion (A6). Every page needs a
//! signed-in session; every sensitive change re-verifies by phone + SMS
//! code + graphic captcha and is one core use case
//! (`domain::identity::changes`, `accounts::delete_account`) that audits
//! itself and notifies the old channel. One route, one form, one handler.
pub mod appeal;
pub mod apps;
pub mod delegations;
pub mod devices;
pub mod history;
pub mod identity;
pub mod security;
pub mod takeover;
use crate::domain::authn::flows::{self, mask_account, mask_phone};
use crate::domain::identity::accounts;
use crate::domain::identity::changes::{self, Changed, PasswordChange, PasswordChanged, PasswordServices, SecondStep};
use crate::domain::identity::profile::{ETHNIC_GROUPS, ProfileEdit};
use crate::domain::identity::users::PhoneNumber;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;

/// `/account/profile`.
#[derive(Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    gender: String,
    #[serde(default)]
    ethnicity: String,
}

/// `/account/password`: `action=send_code` sends the SMS code, anything
/// else changes the password.
#[derive(Deserialize, Default)]
pub struct PasswordForm {
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
}

/// `/account/delete`: `action=send_code` sends the SMS code, anything else
/// deletes the account.
#[derive(Deserialize, Default)]
pub struct DeleteForm {
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
    confirm: Option<String>,
}

/// `/account/phone`: the step's button is `action` (`send_code`,
/// `verify_old`, `verify_new`).
#[derive(Deserialize, Default)]
pub struct PhoneForm {
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
    flow: String,
    #[serde(default)]
    new_phone: String,
}

/// `/account/email`: the step's button is `action` (`send_code`,
/// `verify_old`, `send_mail`, `verify_mail`).
#[derive(Deserialize, Default)]
pub struct EmailForm {
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
    flow: String,
    #[serde(default)]
    email: String,
}

crate::with_csrf!(ProfileForm, PasswordForm, DeleteForm, PhoneForm, EmailForm);

#[derive(Deserialize, Default)]
pub struct FlowQuery {
    #[serde(default)]
    flow: String,
}

const PHONE_FLOW: &str = "change_phone";
const EMAIL_FLOW: &str = "bind_email";

/// One view of the personal centre as the template draws it.
struct View<'a> {
    state: &'a AppState,
    jar: CookieJar,
    locale: &'static str,
    view: &'static str,
    user: &'a user::Model,
    /// (flow id, new phone or address) on the second step of a phone
    /// change or e-mail binding.
    step: (&'a str, &'a str),
}

impl<'a> View<'a> {
    fn new(state: &'a AppState, jar: CookieJar, locale: Locale, view: &'static str, user: &'a user::Model) -> Self {
        View { state, jar, locale: locale.0, view, user, step: ("", "") }
    }

    fn step(self, flow: &'a str, value: &'a str) -> Self {
        View { step: (flow, value), ..self }
    }

    async fn ok(self) -> Response {
        self.render(StatusCode::OK, None).await
    }

    /// The same view again with the message of `key`.
    async fn refuse(self, status: StatusCode, key: &str) -> Response {
        let notice = Notice::Error(self.state.pages.text(self.locale, key));
        self.render(status, Some(notice)).await
    }

    async fn notice(self, notice: Notice) -> Response {
        self.render(notice.status(), Some(notice)).await
    }

    async fn render(self, status: StatusCode, notice: Option<Notice>) -> Response {
        let (state, u, locale) = (self.state, self.user, self.locale);
        let profile: serde_json::Map<String, Value> =
            u.profile.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
        let field = |k: &str| profile.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut ctx = tera::Context::new();
        ctx.insert("view", self.view);
        ctx.insert("username_masked", &mask_account(&u.username));
        // The person's own account name, shown to them in full (issue 19).
        ctx.insert("own_username", &u.username);
        ctx.insert("phone_masked", &u.phone.as_deref().map(mask_phone).unwrap_or_default());
        ctx.insert("email", &u.email);
        ctx.insert("name", &u.name);
        ctx.insert("nickname", &field("nickname"));
        ctx.insert("gender", &field("gender"));
        ctx.insert("ethnicity", &field("ethnicity"));
        ctx.insert("ethnic_groups", &ETHNIC_GROUPS[..]);
        ctx.insert("flow", self.step.0);
        ctx.insert("new_phone", self.step.1);
        ctx.insert("upstream_links", &crate::web::auth::upstream::linked(state, &u.id, locale).await);
        let captcha = matches!(self.view, "password" | "delete" | "phone" | "email");
        sms_form::form_page(state, self.jar, status, "account.html", locale, ctx, notice, captcha).await
    }
}

fn to_account(state: &AppState) -> Response {
    see_other(&format!("{}/account", state.config.issuer))
}

fn flow_expired() -> PageError {
    PageError::bad_request("forgot_expired")
}

pub async fn home(State(state): State<AppState>, jar: CookieJar, locale: Locale, me: SignedIn) -> Response {
    View::new(&state, jar, locale, "home", &me.user).ok().await
}

pub async fn profile_show(State(state): State<AppState>, jar: CookieJar, locale: Locale, me: SignedIn) -> Response {
    View::new(&state, jar, locale, "profile", &me.user).ok().await
}

pub async fn password_show(State(state): State<AppState>, jar: CookieJar, locale: Locale, me: SignedIn) -> Response {
    View::new(&state, jar, locale, "password", &me.user).ok().await
}

pub async fn delete_show(State(state): State<AppState>, jar: CookieJar, locale: Locale, me: SignedIn) -> Response {
    View::new(&state, jar, locale, "delete", &me.user).ok().await
}

pub async fn phone_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<FlowQuery>,
) -> Result<Response, PageError> {
    second_step_show(&state, jar, locale, me, "phone", PHONE_FLOW, &q.flow).await
}

pub async fn email_show(
    State(state): State<AppState>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    Query(q): Query<FlowQuery>,
) -> Result<Response, PageError> {
    second_step_show(&state, jar, locale, me, "email", EMAIL_FLOW, &q.flow).await
}

/// The first step of a phone change or e-mail binding, or with `flow` its
/// second step — only after the old phone was verified in this browser.
async fn second_step_show(
    state: &AppState,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    view: &'static str,
    kind: &str,
    flow: &str,
) -> Result<Response, PageError> {
    if !flow.is_empty() && !open_flow(state, &jar, kind, flow, &me.user).await? {
        return Err(flow_expired());
    }
    Ok(View::new(state, jar, locale, view, &me.user).step(flow, "").ok().await)
}

async fn open_flow(
    state: &AppState,
    jar: &CookieJar,
    kind: &str,
    id: &str,
    u: &user::Model,
) -> Result<bool, crate::store::DbErr> {
    let browser = browser_hash(state, jar);
    let found = flows::at_step(&state.store, id, kind, &browser, 1, state.clock.now()).await?;
    Ok(found.is_some_and(|f| f.user_id == u.id))
}

fn browser_hash(state: &AppState, jar: &CookieJar) -> String {
    cookies::get(state, jar, cookies::BROWSER).map(|b| cookies::browser_hash(&b)).unwrap_or_default()
}

/// The SMS code to the account's own phone, behind the graphic captcha.
async fn send_own_code(view: View<'_>, ip: &str, captcha_id: &str, captcha: &str) -> Response {
    let phone = view.user.phone.clone().unwrap_or_default();
    let req = CodeRequest::new(SmsPurpose::Verify, &phone, ip, captcha_id, captcha);
    let notice = sms_form::send_code(view.state, view.locale, req).await;
    view.notice(notice).await
}

pub async fn profile_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<ProfileForm>,
) -> Result<Response, PageError> {
    let edit = ProfileEdit { nickname: f.nickname, gender: f.gender, ethnicity: f.ethnicity };
    let ip = sms_form::ip_of(addr);
    match changes::edit_profile(&state.store, me.user.clone(), &edit, &ip, state.clock.now()).await? {
        Ok(()) => Ok(to_account(&state)),
        Err(key) => Ok(View::new(&state, jar, locale, "profile", &me.user).refuse(StatusCode::BAD_REQUEST, key).await),
    }
}

/// A5: SMS re-verification, the old password, the new one twice.
pub async fn password_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    let ip = sms_form::ip_of(addr);
    let view = View::new(&state, jar.clone(), locale, "password", &me.user);
    if f.action == "send_code" {
        return Ok(send_own_code(view, &ip, &f.captcha_id, &f.captcha).await);
    }
    let svc = PasswordServices {
        config: &state.config,
        users: &state.users,
        passwords: &state.passwords,
        sms_codes: &state.sms_codes,
    };
    let change = PasswordChange {
        user: &me.user,
        old_password: &f.old_password,
        password: &f.password,
        password2: &f.password2,
        sms_code: &f.sms_code,
        ip: &ip,
        now: state.clock.now(),
    };
    Ok(match changes::change_password(&state.store, &svc, &state, &change).await? {
        PasswordChanged::Done(cookie) => {
            // Other sessions ended with the change; this browser signs in afresh.
            let jar = jar.add(cookies::build(&state, cookies::SESSION, cookie, None));
            (jar, to_account(&state)).into_response()
        }
        PasswordChanged::Locked(secs) => {
            let msg = state
                .pages
                .text(locale.0, "account_password_locked")
                .replace("{minutes}", &((secs + 59) / 60).to_string());
            view.render(StatusCode::TOO_MANY_REQUESTS, Some(Notice::Error(msg))).await
        }
        PasswordChanged::Refused(key) => view.refuse(StatusCode::BAD_REQUEST, key).await,
    })
}

/// A6: the confirmation box and the SMS code, then one core call.
pub async fn delete_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<DeleteForm>,
) -> Result<Response, PageError> {
    let ip = sms_form::ip_of(addr);
    let view = View::new(&state, jar.clone(), locale, "delete", &me.user);
    if f.action == "send_code" {
        return Ok(send_own_code(view, &ip, &f.captcha_id, &f.captcha).await);
    }
    if f.confirm.is_none() {
        return Ok(view.refuse(StatusCode::BAD_REQUEST, "delete_confirm_required").await);
    }
    let phone = me.user.phone.clone().unwrap_or_default();
    if !state.sms_codes.verify(&phone, SmsPurpose::Verify, &f.sms_code).await? {
        return Ok(view.refuse(StatusCode::BAD_REQUEST, "sms_code_wrong").await);
    }
    accounts::delete_account(&state.store, &state, &me.user, &me.session.sid, &ip, state.clock.now()).await?;
    let jar = jar.remove(cookies::build(&state, cookies::SESSION, String::new(), None));
    let mut ctx = tera::Context::new();
    ctx.insert("view", "deleted");
    Ok((jar, page(&state, StatusCode::OK, "account.html", locale.0, ctx)).into_response())
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
async fn open_with_current_phone(view: View<'_>, kind: &str, code: &str) -> Result<Response, PageError> {
    let (state, u) = (view.state, view.user);
    let phone = u.phone.as_deref().unwrap_or_default();
    if !state.sms_codes.verify(phone, SmsPurpose::Verify, code).await? {
        return Ok(view.refuse(StatusCode::BAD_REQUEST, "sms_code_wrong").await);
    }
    let browser = browser_hash(state, &view.jar);
    let id = flows::start(&state.store, kind, &u.id, &browser, None, state.clock.now()).await?;
    Ok(see_other(&format!("{}/account/{}?flow={id}", state.config.issuer, view.view)))
}

/// A5 phone change: an SMS code on the old phone opens a browser-bound
/// flow; an SMS code on the new phone (which must be free) completes it.
pub async fn phone_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<PhoneForm>,
) -> Result<Response, PageError> {
    let ip = sms_form::ip_of(addr);
    let in_flow = !f.flow.is_empty();
    if in_flow && !open_flow(&state, &jar, PHONE_FLOW, &f.flow, &me.user).await? {
        return Err(flow_expired());
    }
    let u = &me.user;
    let view = View::new(&state, jar, locale, "phone", u).step(&f.flow, &f.new_phone);
    match f.action.as_str() {
        "send_code" => {
            let old_phone = u.phone.clone().unwrap_or_default();
            let (phone, must_exist) =
                if in_flow { (f.new_phone.as_str(), Some(false)) } else { (old_phone.as_str(), None) };
            let code_req = CodeRequest::new(SmsPurpose::Verify, phone, &ip, &f.captcha_id, &f.captcha);
            let notice = sms_form::send_code(&state, locale.0, code_req.account_must_exist(must_exist)).await;
            Ok(view.notice(notice).await)
        }
        "verify_old" => open_with_current_phone(view, PHONE_FLOW, &f.sms_code).await,
        "verify_new" if in_flow => {
            let Ok(new_phone) = PhoneNumber::parse(&f.new_phone) else {
                return Ok(view.refuse(StatusCode::BAD_REQUEST, "register_phone_rule").await);
            };
            let now = state.clock.now();
            match changes::change_phone(
                &state.store,
                &state.sms_codes,
                &state,
                &SecondStep { user: u, flow: &f.flow, code: &f.sms_code, ip: &ip, now },
                &new_phone,
            )
            .await?
            {
                Changed::Done => Ok(to_account(&state)),
                Changed::FlowExpired => Err(flow_expired()),
                Changed::Refused("register_phone_taken") => Ok(View::new(&state, view.jar, locale, "phone", u)
                    .refuse(StatusCode::CONFLICT, "register_phone_taken")
                    .await),
                Changed::Refused(key) => Ok(view.refuse(StatusCode::BAD_REQUEST, key).await),
            }
        }
        _ => Ok(to_account(&state)),
    }
}

/// A5 e-mail binding: an SMS code on the account's phone opens the flow;
/// a code mailed to the new address proves it and binds it.
pub async fn email_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    locale: Locale,
    me: SignedIn,
    CsrfForm(f): CsrfForm<EmailForm>,
) -> Result<Response, PageError> {
    let ip = sms_form::ip_of(addr);
    let in_flow = !f.flow.is_empty();
    if in_flow && !open_flow(&state, &jar, EMAIL_FLOW, &f.flow, &me.user).await? {
        return Err(flow_expired());
    }
    let u = &me.user;
    let text = |key: &str| state.pages.text(locale.0, key);
    let email = f.email.trim().to_ascii_lowercase();
    let view = View::new(&state, jar, locale, "email", u).step(&f.flow, &f.email);
    match f.action.as_str() {
        "send_code" if !in_flow => Ok(send_own_code(view, &ip, &f.captcha_id, &f.captcha).await),
        "verify_old" => open_with_current_phone(view, EMAIL_FLOW, &f.sms_code).await,
        "send_mail" if in_flow => {
            if !crate::ports::mail::valid_address(&email) {
                return Ok(view.refuse(StatusCode::BAD_REQUEST, "email_rule").await);
            }
            let code = match state.sms_codes.issue(&email, "bind_email", &ip).await {
                Ok(c) => c,
                Err(crate::domain::authn::sms_codes::SendError::TooFrequent(secs)) => {
                    let msg = text("sms_too_frequent").replace("{minutes}", &((secs + 59) / 60).to_string());
                    return Ok(view.render(StatusCode::BAD_REQUEST, Some(Notice::Error(msg))).await);
                }
                Err(e) => return Err(PageError::unavailable(e)),
            };
            let body = text("mail_code_body").replace("{code}", &code).replace("{minutes}", "5");
            if let Err(e) =
                state.mail.send(&email, &text("mail_code_subject"), &body, "bind_email", state.clock.now()).await
            {
                tracing::error!("mail: {e:#}");
                return Ok(view.refuse(StatusCode::BAD_GATEWAY, "mail_failed").await);
            }
            Ok(view.render(StatusCode::OK, Some(Notice::Info(text("mail_sent")))).await)
        }
        "verify_mail" if in_flow => {
            let now = state.clock.now();
            match changes::bind_email(
                &state.store,
                &state.sms_codes,
                &state,
                &SecondStep { user: u, flow: &f.flow, code: &f.sms_code, ip: &ip, now },
                &email,
            )
            .await?
            {
                Changed::Done => Ok(to_account(&state)),
                Changed::FlowExpired => Err(flow_expired()),
                Changed::Refused(key) => Ok(view.refuse(StatusCode::BAD_REQUEST, key).await),
            }
        }
        _ => Ok(to_account(&state)),
    }
}
