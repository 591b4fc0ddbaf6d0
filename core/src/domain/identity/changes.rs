//! A5 self-service changes of a signed-in person: profile details, the
//! password, the phone and the e-mail address. Each is one use case that
//! checks its proofs (old password, SMS or mail code, the browser-bound
//! flow), writes the change and its audit record in one transaction, and
//! only then tells the old phone.
use crate::config::Config;
use crate::crypto::password::PasswordService;
use crate::domain::assurance::Factor;
use crate::domain::authn::reverify::{self, Outcome};
use crate::domain::authn::sessions;
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::identity::accounts::{audit, check_citizen_password};
use crate::domain::identity::profile::ProfileEdit;
use crate::domain::identity::users::{PhoneNumber, UserService};
use crate::ports::notify::Notices;
use crate::ports::sms::SmsPurpose;
use crate::store::Store;
use crate::store::entities::user;
use crate::telemetry::{self, Count, SignInOutcome};
use sea_orm::{ActiveModelTrait, DbErr, Set};

/// A refusal, named by the locale key of its message.
pub type Refusal = &'static str;

/// A5 profile edit (nickname, gender, ethnicity), audited with the change.
pub async fn edit_profile(
    db: &Store,
    u: user::Model,
    edit: &ProfileEdit,
    ip: &str,
    now: i64,
) -> Result<Result<(), Refusal>, DbErr> {
    let user_id = u.id.clone();
    let model = match crate::domain::identity::profile::edited(u, edit, now) {
        Ok(m) => m,
        Err(key) => return Ok(Err(key)),
    };
    let txn = crate::store::begin_write(db).await?;
    model.update(&txn).await?;
    audit(&txn, Some(&user_id), "profile_update", "details", Some(ip), now).await?;
    txn.commit().await?;
    Ok(Ok(()))
}

/// What a password change (A5) presents.
pub struct PasswordChange<'a> {
    pub user: &'a user::Model,
    pub old_password: &'a str,
    pub password: &'a str,
    pub password2: &'a str,
    pub sms_code: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// Everything a password change needs from the running service.
pub struct PasswordServices<'a> {
    pub config: &'a Config,
    pub users: &'a UserService,
    pub passwords: &'a PasswordService,
    pub sms_codes: &'a SmsCodes,
}

#[derive(Debug)]
pub enum PasswordChanged {
    /// Changed; this browser's fresh session cookie (every other session
    /// ended with the change).
    Done(String),
    /// The old password was guessed too often; retry after these seconds.
    Locked(i64),
    Refused(Refusal),
}

/// A5 password change: the new password meets the rules and is typed
/// twice, the old one is right (counted by the sign-in throttle: it is a
/// sign-in secret) and the SMS code on the account's phone is right. In one
/// transaction the hash changes, every session and grant of the account
/// ends and the audit row is written; then the phone is told, and this
/// browser signs in afresh with the SMS code and the old password it just
/// presented.
pub async fn change_password<N: Notices>(
    db: &Store,
    svc: &PasswordServices<'_>,
    notices: &N,
    c: &PasswordChange<'_>,
) -> anyhow::Result<PasswordChanged> {
    if let Err(key) = check_citizen_password(c.password) {
        return Ok(PasswordChanged::Refused(match key {
            "password_length" => "register_password_length",
            "password_chars" => "register_password_chars",
            _ => "register_password_kinds",
        }));
    }
    if c.password != c.password2 {
        return Ok(PasswordChanged::Refused("register_password_mismatch"));
    }
    let u = c.user;
    let throttle = &svc.config.login_throttle;
    match reverify::account_password(db, throttle, svc.users, u, c.old_password, c.ip, c.now).await? {
        Outcome::Verified => {}
        Outcome::Locked(secs) => return Ok(PasswordChanged::Locked(secs)),
        _ => return Ok(PasswordChanged::Refused("account_old_password_wrong")),
    }
    let phone = u.phone.clone().unwrap_or_default();
    if !svc.sms_codes.verify(&phone, SmsPurpose::Verify, c.sms_code).await? {
        return Ok(PasswordChanged::Refused("sms_code_wrong"));
    }
    let hash = svc.passwords.hash(c.password.to_string()).await?;
    let txn = crate::store::begin_write(db).await?;
    let mut model: user::ActiveModel = u.clone().into();
    model.password_hash = Set(hash);
    model.updated_at = Set(c.now);
    model.update(&txn).await?;
    crate::domain::tokens::grants::revoke_all_for_user(&txn, &u.id, c.now).await?;
    sessions::revoke_all_for_user(&txn, &u.id).await?;
    audit(&txn, Some(&u.id), "change_password", "SMS + old password", Some(c.ip), c.now).await?;
    txn.commit().await?;
    notices.notify_phone(&phone, "sms_password_changed", c.now).await;
    let sign_in = sessions::SignIn { user_id: &u.id, factor: Factor::Sms, remember: false, now: c.now };
    let (cookie, s) = sessions::establish(db, None, sign_in, &svc.config.session).await?;
    let (cookie, s) = sessions::add_factor(db, &s, Factor::Password, c.now).await?.unwrap_or((cookie, s));
    let done = sessions::Completed { session: &s, method: Factor::Password, acting: None, ip: Some(c.ip), now: c.now };
    match sessions::signed_in(db, done, &svc.config.assurance).await {
        Ok(level) => {
            telemetry::count(Count::SignIn { method: Factor::Password, level, outcome: SignInOutcome::Success })
        }
        Err(e) => tracing::error!("audit of the sign-in after a password change: {e}"),
    }
    Ok(PasswordChanged::Done(cookie))
}

/// The outcome of the second step of a phone change or e-mail binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Done,
    /// The flow expired or another request completed it.
    FlowExpired,
    Refused(Refusal),
}

/// The second step of a phone change or e-mail binding: the account, the
/// flow the first step opened, the code that proves the new channel.
#[derive(Clone, Copy)]
pub struct SecondStep<'a> {
    pub user: &'a user::Model,
    pub flow: &'a str,
    pub code: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// The second step of a phone change (A5), after the old phone opened
/// `flow`: the SMS code sent to the new phone proves it; in one
/// transaction the flow is spent, the account moves to the new phone (one
/// phone, one account: the unique index decides a race) and the audit row
/// is written; then the old phone is told.
pub async fn change_phone<N: Notices>(
    db: &Store,
    sms_codes: &SmsCodes,
    notices: &N,
    step: &SecondStep<'_>,
    new_phone: &PhoneNumber,
) -> Result<Changed, DbErr> {
    let SecondStep { user: u, flow, code, ip, now } = *step;
    if !sms_codes.verify(new_phone.as_str(), SmsPurpose::Verify, code).await? {
        return Ok(Changed::Refused("sms_code_wrong"));
    }
    let txn = crate::store::begin_write(db).await?;
    if !crate::domain::authn::flows::advance(&txn, flow, 1, now).await? {
        txn.rollback().await?;
        return Ok(Changed::FlowExpired);
    }
    let mut model: user::ActiveModel = u.clone().into();
    model.phone = Set(Some(new_phone.as_str().to_string()));
    model.phone_verified = Set(true);
    model.updated_at = Set(now);
    match model.update(&txn).await {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            return Ok(Changed::Refused("register_phone_taken"));
        }
        Err(e) => return Err(e),
    }
    let detail = format!("to {}", crate::domain::authn::flows::mask_phone(new_phone.as_str()));
    audit(&txn, Some(&u.id), "change_phone", &detail, Some(ip), now).await?;
    txn.commit().await?;
    if let Some(old) = &u.phone {
        notices.notify_phone(old, "sms_phone_changed", now).await;
    }
    Ok(Changed::Done)
}

/// The second step of an e-mail binding (A5), after the phone opened
/// `flow`: the code mailed to `email` proves it; in one transaction the
/// flow is spent, the address bound and the audit row written; then the
/// phone is told.
pub async fn bind_email<N: Notices>(
    db: &Store,
    sms_codes: &SmsCodes,
    notices: &N,
    step: &SecondStep<'_>,
    email: &str,
) -> Result<Changed, DbErr> {
    let SecondStep { user: u, flow, code, ip, now } = *step;
    if !sms_codes.verify_for(email, "bind_email", code).await? {
        return Ok(Changed::Refused("mail_code_wrong"));
    }
    let txn = crate::store::begin_write(db).await?;
    if !crate::domain::authn::flows::advance(&txn, flow, 1, now).await? {
        txn.rollback().await?;
        return Ok(Changed::FlowExpired);
    }
    let mut model: user::ActiveModel = u.clone().into();
    model.email = Set(Some(email.to_string()));
    model.email_verified = Set(true);
    model.updated_at = Set(now);
    model.update(&txn).await?;
    audit(&txn, Some(&u.id), "bind_email", "mail code verified", Some(ip), now).await?;
    txn.commit().await?;
    if let Some(phone) = &u.phone {
        notices.notify_phone(phone, "sms_email_bound", now).await;
    }
    Ok(Changed::Done)
}

/// An operator sets an account's password from the command line (A4
/// support): the password policy, then in one transaction the hash, every
/// session and grant of the account ended, and the audit row
/// `password_set` naming who set it; then the apps of the ended sessions
/// are told (back-channel logout) and the phone gets a notice. `false`
/// when no account answers to `login`.
#[allow(clippy::too_many_arguments)]
pub async fn set_password<N: Notices>(
    db: &Store,
    users: &UserService,
    passwords: &PasswordService,
    notices: &N,
    login: &str,
    password: &str,
    by: &str,
    now: i64,
) -> anyhow::Result<bool> {
    crate::domain::identity::users::check_password_policy(password).map_err(|m| anyhow::anyhow!(m))?;
    let Some(u) = users.find_by_login(login).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
        return Ok(false);
    };
    let hash = passwords.hash(password.to_string()).await?;
    let txn = crate::store::begin_write(db).await?;
    let mut model: user::ActiveModel = u.clone().into();
    model.password_hash = Set(hash);
    model.updated_at = Set(now);
    model.update(&txn).await?;
    let subject = crate::domain::tokens::subjects::of_account(&txn, &u.id).await?;
    let ended = crate::domain::identity::accounts::end_sessions(&txn, &u.id, None, &subject, now).await?;
    crate::domain::tokens::grants::revoke_all_for_user(&txn, &u.id, now).await?;
    sessions::revoke_all_for_user(&txn, &u.id).await?;
    audit(&txn, Some(&u.id), "password_set", &format!("by {by}"), None, now).await?;
    txn.commit().await?;
    notices.sessions_ended(&ended).await;
    if let Some(phone) = &u.phone {
        notices.notify_phone(phone, "sms_password_changed", now).await;
    }
    Ok(true)
}
