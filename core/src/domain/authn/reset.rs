//! Forgot password (A4): account (+ captcha) → verify (real-name accounts:
//! ID number + SMS code; others: SMS code) → new password twice → done.
//! One use case per step; each moves the browser-bound flow
//! (`authn::flows`) forward by exactly one step, so no step can be skipped
//! or replayed. The last step replaces the password (which ends every
//! session and refresh token of the account), audits `reset_password` and
//! tells the old channel.
use crate::domain::authn::captcha::CaptchaService;
use crate::domain::authn::flows;
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::error::DomainResult;
use crate::domain::identity::accounts::{self, check_citizen_password};
use crate::domain::identity::users::UserService;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::store::Store;
use crate::store::entities::{account_flow, user};

/// The kind of the flow in `account_flow`.
pub const KIND: &str = "reset_password";

/// How step 1 (name the account) ended.
pub enum Started {
    /// The flow to continue at step 2.
    Flow(String),
    /// Refused: the locale key of the message.
    Refused(&'static str),
}

/// Step 1: the captcha, then an active account with a phone.
pub async fn start(
    deps: (&Store, &UserService, &CaptchaService),
    account: &str,
    captcha: (&str, &str),
    browser_hash: &str,
    req: &str,
    now: i64,
) -> DomainResult<Started> {
    let (store, users, captchas) = deps;
    if !captchas.check(captcha.0, captcha.1).await? {
        return Ok(Started::Refused("captcha_wrong"));
    }
    let Some(user) = users.find_by_login(account).await?.filter(|u| !u.disabled) else {
        return Ok(Started::Refused("forgot_no_account"));
    };
    if user.phone.is_none() {
        return Ok(Started::Refused("forgot_no_phone"));
    }
    Ok(Started::Flow(flows::start(store, KIND, &user.id, browser_hash, Some(req), now).await?))
}

/// The flow of this browser at `step` and its account; `None` when it is
/// expired, foreign, at another step or its account is gone.
pub async fn at_step(
    store: &Store,
    users: &UserService,
    flow_id: &str,
    browser_hash: &str,
    step: i64,
    now: i64,
) -> DomainResult<Option<(account_flow::Model, user::Model)>> {
    let Some(flow) = flows::at_step(store, flow_id, KIND, browser_hash, step, now).await? else { return Ok(None) };
    Ok(users.find(&flow.user_id).await?.map(|u| (flow, u)))
}

/// How a step after the first ended.
pub enum Step {
    /// On to the next step.
    Advanced,
    /// Wrong answer: the locale key of the message (the step stays).
    Refused(&'static str),
    /// Another request took the step meanwhile, or the flow expired.
    Expired,
}

/// Step 2: the SMS code (and, for real-name accounts, the ID number, with
/// one answer for either mismatch).
pub async fn verify(
    store: &Store,
    sms: &SmsCodes,
    flow: &account_flow::Model,
    user: &user::Model,
    proof: (&str, &str),
    now: i64,
) -> DomainResult<Step> {
    let (id_number, sms_code) = proof;
    if !flows::prove_reset(sms, user, id_number, sms_code).await? {
        let key = if user.id_number.is_some() { "forgot_verify_failed" } else { "sms_code_wrong" };
        return Ok(Step::Refused(key));
    }
    Ok(if flows::advance(store, &flow.id, 1, now).await? { Step::Advanced } else { Step::Expired })
}

/// The new password, typed twice.
pub struct NewPassword<'a> {
    pub password: &'a str,
    pub password2: &'a str,
    pub ip: &'a str,
    /// The "your password changed" SMS, in the platform's language.
    pub notice_text: String,
    pub now: i64,
}

/// Step 3: the password rules, then the password replaced (sessions and
/// refresh tokens end), audited, and the account's phone told.
pub async fn set_password(
    deps: (&Store, &UserService, &SmsCodes),
    flow: &account_flow::Model,
    user: user::Model,
    p: NewPassword<'_>,
) -> DomainResult<Step> {
    let (store, users, sms) = deps;
    if let Err(key) = check_citizen_password(p.password) {
        return Ok(Step::Refused(match key {
            "password_length" => "register_password_length",
            "password_chars" => "register_password_chars",
            _ => "register_password_kinds",
        }));
    }
    if p.password != p.password2 {
        return Ok(Step::Refused("register_password_mismatch"));
    }
    if !flows::advance(store, &flow.id, 2, p.now).await? {
        return Ok(Step::Expired);
    }
    let (user_id, phone) = (user.id.clone(), user.phone.clone().unwrap_or_default());
    users.replace_password(user, p.password).await?;
    accounts::audit(store, Some(&user_id), "reset_password", "SMS verified", Some(p.ip), p.now).await?;
    // Best effort: the reset already happened and must not be undone by a
    // gateway hiccup.
    let msg = SmsMessage { phone, purpose: SmsPurpose::Notice, params: serde_json::json!({}), text: p.notice_text };
    if let Err(e) = sms.gateway().send(&msg, p.now).await {
        tracing::warn!("password change notice not sent: {e}");
    }
    Ok(Step::Advanced)
}
