//! The "send me a code" step shared by registration, SMS sign-in and the
//! later self-service flows: graphic captcha first (A7), then the limits,
//! then the gateway.
use crate::domain::authn::sms_codes::SendError;
use crate::domain::identity::users::PhoneNumber;
use crate::kit::cookies;
use crate::kit::pages::page;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

/// What to tell the person: an info or error message, already localised.
pub enum Notice {
    Info(String),
    Error(String),
}

impl Notice {
    /// The page status that goes with the message.
    pub fn status(&self) -> StatusCode {
        match self {
            Notice::Info(_) => StatusCode::OK,
            Notice::Error(_) => StatusCode::BAD_REQUEST,
        }
    }
}

pub struct CodeRequest<'a> {
    pub phone: &'a str,
    pub captcha_id: &'a str,
    pub captcha_answer: &'a str,
    pub purpose: SmsPurpose,
    pub ip: &'a str,
    /// Registration needs a free phone, sign-in an existing account.
    pub account_must_exist: Option<bool>,
    /// The same request already checked a graphic captcha (forgot-password
    /// step 1 sends the first code): one captcha per flow, still one
    /// captcha before every send (A7).
    pub captcha_passed: bool,
}

impl<'a> CodeRequest<'a> {
    /// A code for `purpose` to `phone`, behind the captcha the form shows;
    /// no account check (the phone is the account's own, or any).
    pub fn new(purpose: SmsPurpose, phone: &'a str, ip: &'a str, captcha_id: &'a str, captcha_answer: &'a str) -> Self {
        CodeRequest { phone, captcha_id, captcha_answer, purpose, ip, account_must_exist: None, captcha_passed: false }
    }

    /// The caller has just checked a captcha in this same request.
    pub fn captcha_passed(self) -> Self {
        CodeRequest { captcha_passed: true, ..self }
    }

    /// Only when the phone is (`true`) or is not (`false`) an account's.
    pub fn account_must_exist(self, must_exist: Option<bool>) -> Self {
        CodeRequest { account_must_exist: must_exist, ..self }
    }
}

/// Where a requested code goes.
pub enum Delivery<'a> {
    /// Stored under the request's purpose and sent.
    Send,
    /// Stored under this key (bound to more than the phone) and sent.
    Keyed(&'a str),
    /// Nobody to send to: only counted against the limits, so the answer is
    /// the one a send would get (no enumeration).
    CountOnly,
}

pub async fn send_code(state: &AppState, locale: &str, r: CodeRequest<'_>) -> Notice {
    send_code_as(state, locale, r, Delivery::Send).await
}

pub async fn send_code_as(state: &AppState, locale: &str, r: CodeRequest<'_>, delivery: Delivery<'_>) -> Notice {
    send_code_detailed(state, locale, r, delivery).await.notice
}

/// The seconds a form waits before offering "send" again (the countdown on
/// the button; the hard limits are A7's, counted in `sms_codes`).
pub const RESEND_WAIT: i64 = 60;

/// A send's answer for a form: the notice, the field it belongs to, and how
/// long the "send" button counts down.
pub struct Sent {
    pub notice: Notice,
    pub field: Option<&'static str>,
    pub wait: i64,
}

impl Sent {
    /// A refusal by locale key, shown at its field.
    pub fn refused(state: &AppState, locale: &str, key: &'static str) -> Sent {
        Sent { notice: Notice::Error(state.pages.text(locale, key)), field: field_of(key), wait: 0 }
    }

    /// Puts the field and countdown into a form page's context.
    /// A message with no field of its own (shown above the form).
    pub fn message(notice: Notice) -> Sent {
        Sent { notice, field: None, wait: 0 }
    }

    /// The page status that goes with the message.
    pub fn status(&self) -> StatusCode {
        self.notice.status()
    }

    pub fn into_ctx(self, ctx: &mut tera::Context) -> Notice {
        ctx.insert("error_field", self.field.unwrap_or(""));
        ctx.insert("sms_wait", &self.wait);
        self.notice
    }
}

/// The form field a refusal belongs to (shown next to it), by locale key.
pub fn field_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "register_phone_rule" | "register_phone_taken" | "sms_login_no_account" => "phone",
        "captcha_wrong" => "captcha",
        "sms_code_wrong" => "sms_code",
        "register_password_mismatch" => "password2",
        k if k.starts_with("register_username") || k.starts_with("username_") => "username",
        k if k.starts_with("register_password") || k.starts_with("password_") => "password",
        k if k.starts_with("register_agree") => "agree",
        "forgot_no_account" | "forgot_no_phone" => "account",
        "forgot_id_mismatch" | "id_number_invalid" => "id_number",
        _ => return None,
    })
}

/// [`send_code_as`] with the field and countdown for the form.
pub async fn send_code_detailed(state: &AppState, locale: &str, r: CodeRequest<'_>, delivery: Delivery<'_>) -> Sent {
    let CodeRequest { phone, captcha_id, captcha_answer, purpose, ip, account_must_exist, captcha_passed } = r;
    let text = |key: &str| state.pages.text(locale, key);
    let Ok(phone) = PhoneNumber::parse(phone) else { return Sent::refused(state, locale, "register_phone_rule") };
    if !captcha_passed {
        match state.captcha.check(captcha_id, captcha_answer).await {
            Ok(true) => {}
            Ok(false) => return Sent::refused(state, locale, "captcha_wrong"),
            Err(e) => {
                tracing::error!("captcha: {e}");
                return Sent::refused(state, locale, "error_unavailable");
            }
        }
    }
    if let Some(must_exist) = account_must_exist {
        match crate::domain::identity::accounts::phone_taken(&state.store, &phone).await {
            Ok(exists) if exists == must_exist => {}
            Ok(true) => return Sent::refused(state, locale, "register_phone_taken"),
            Ok(false) => return Sent::refused(state, locale, "sms_login_no_account"),
            Err(e) => {
                tracing::error!("phone lookup: {e}");
                return Sent::refused(state, locale, "error_unavailable");
            }
        }
    }
    // SMS bodies use the platform's default language (one template per purpose).
    let template = state.pages.text(&state.config.default_locale, "sms_code_text");
    let render = |code: &str| template.replace("{code}", code).replace("{minutes}", "5");
    let sent = match delivery {
        Delivery::Send => state.sms_codes.send(phone.as_str(), purpose, ip, render).await,
        Delivery::Keyed(key) => state.sms_codes.send_keyed(phone.as_str(), purpose, key, ip, render).await,
        Delivery::CountOnly => state.sms_codes.count_unsent(phone.as_str(), ip).await,
    };
    match sent {
        Ok(()) => Sent { notice: Notice::Info(text("sms_sent")), field: None, wait: RESEND_WAIT },
        Err(SendError::TooFrequent(secs)) => {
            let key = if secs > 3600 { "sms_too_frequent_day" } else { "sms_too_frequent" };
            let notice = Notice::Error(text(key).replace("{minutes}", &((secs + 59) / 60).to_string()));
            Sent { notice, field: Some("phone"), wait: secs.min(RESEND_WAIT) }
        }
        Err(e) => {
            tracing::error!("sms send: {e}");
            Sent::refused(state, locale, "sms_gateway_failed")
        }
    }
}

/// What a phone-code form answers before its own action: a forged post
/// (CSRF) and the "send me a code" button. `Some` is the status and notice
/// to show the form again with; `None` goes on to the form's own action.
pub async fn csrf_or_send(
    state: &AppState,
    jar: &CookieJar,
    locale: &str,
    csrf: &str,
    action: &str,
    r: CodeRequest<'_>,
) -> Option<(StatusCode, Notice)> {
    if !cookies::csrf_ok(state, jar, csrf) {
        return Some((StatusCode::FORBIDDEN, Notice::Error(state.pages.text(locale, "error_csrf"))));
    }
    if action != "send_code" {
        return None;
    }
    let notice = send_code(state, locale, r).await;
    Some((notice.status(), notice))
}

/// A page holding a phone-code form: the page's own fields in `ctx`, plus
/// the CSRF token, the notice and, while the form still asks for a code
/// (`captcha`), a fresh graphic captcha.
#[allow(clippy::too_many_arguments)]
pub async fn form_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    template: &str,
    locale: &str,
    mut ctx: tera::Context,
    notice: Option<Notice>,
    captcha: bool,
) -> Response {
    let (jar, browser) = cookies::browser(state, jar);
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    for key in ["error_field", "send_action"] {
        if !ctx.contains_key(key) {
            ctx.insert(key, "");
        }
    }
    if !ctx.contains_key("sms_wait") {
        ctx.insert("sms_wait", &0);
    }
    insert_notice(&mut ctx, notice);
    if captcha {
        captcha_ctx(state, &mut ctx).await;
    }
    (jar, page(state, status, template, locale, ctx)).into_response()
}

/// Puts a notice into a page context as `info` or `error`.
fn insert_notice(ctx: &mut tera::Context, notice: Option<Notice>) {
    let (info, error) = match notice {
        Some(Notice::Info(m)) => (Some(m), None),
        Some(Notice::Error(m)) => (None, Some(m)),
        None => (None, None),
    };
    ctx.insert("info", &info);
    ctx.insert("error", &error);
}

/// A fresh captcha for the next render; `None` if one cannot be made.
pub async fn captcha_ctx(state: &AppState, ctx: &mut tera::Context) {
    match state.captcha.create().await {
        Ok(c) => {
            ctx.insert("captcha_id", &c.id);
            ctx.insert("captcha_image", &c.image);
        }
        Err(e) => {
            tracing::error!("captcha: {e}");
            ctx.insert("captcha_id", "");
            ctx.insert("captcha_image", "");
        }
    }
}

#[derive(serde::Serialize)]
struct FreshCaptcha {
    id: String,
    image: String,
}

/// `GET /captcha`: a fresh graphic captcha for the "换一张" link (the
/// page's script swaps the image and the hidden id; without script the link
/// reloads the page).
pub async fn fresh_captcha(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.captcha.create().await {
        Ok(c) => {
            let mut res = axum::Json(FreshCaptcha { id: c.id, image: c.image }).into_response();
            res.headers_mut()
                .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!("captcha: {e}");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub fn ip_of(addr: std::net::SocketAddr) -> String {
    cookies::client_ip(Some(addr))
}
