//! Signing in, one use case per method (A1, A3): each checks what the
//! person proved and answers with an outcome the page renders; every
//! successful one ends in [`finish`], the one place a session is made.
//!
//! - [`password_sign_in`]: throttle reservation (before the password is
//!   checked, so parallel guesses cannot slip past the limit), the graphic
//!   captcha once sign-in looks risky, the password, then the reservation
//!   given back or kept as a failure (audited by the throttle).
//! - [`sms_sign_in`]: the SMS code, then an existing, active account.
//! - [`register`]: the registration rules, the SMS code, the account, its
//!   audit record.
//! - [`finish`]: in one transaction the session (fresh cookie value), the
//!   factors proved in the same step, what the session acts for (C1), the
//!   `sign_in` audit record with method, level and outcome, and the
//!   waiting authorization request marked as signed in.
use crate::config::{SessionConfig, ThrottleConfig};
use crate::domain::assurance::{AssuranceConfig, Factor};
use crate::domain::authn::captcha::CaptchaService;
use crate::domain::authn::sessions::{self, SessionInfo};
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::authn::{pending, throttle};
use crate::domain::error::DomainResult;
use crate::domain::identity::accounts::{self, Created, RegistrationForm};
use crate::domain::identity::users::{PhoneNumber, UserService, UserSummary};
use crate::domain::tokens::authorize::AuthRequest;
use crate::ports::sms::SmsPurpose;
use crate::store::Store;
use crate::store::entities::user;
use crate::telemetry::{self, Count, SignInOutcome};

/// A password attempt as typed on the sign-in form.
pub struct PasswordAttempt<'a> {
    /// Username, phone or ID number, as typed.
    pub identifier: &'a str,
    pub password: &'a str,
    pub captcha_id: &'a str,
    pub captcha_answer: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// How a password attempt ended. `risky` tells the page to show a graphic
/// captcha with the next try.
pub enum PasswordOutcome {
    Verified(Box<user::Model>),
    /// Identifier or password left empty (not counted).
    MissingFields {
        risky: bool,
    },
    /// The throttle holds the account or the address for this many minutes.
    Locked {
        minutes: i64,
    },
    /// The captcha demanded on a risky sign-in was missing or wrong.
    CaptchaWrong,
    /// Wrong identifier or password.
    Failed {
        risky: bool,
    },
    /// The password was right but an operator suspended the account
    /// (issue 15). Still counted, so it cannot serve to test passwords.
    Suspended {
        risky: bool,
    },
}

/// What the services a password sign-in needs.
pub struct PasswordServices<'a> {
    pub store: &'a Store,
    pub users: &'a UserService,
    pub captcha: &'a CaptchaService,
    pub throttle: &'a ThrottleConfig,
}

/// A3: a citizen signs in with a password. One counter per account however
/// its identifier is spelled; a captcha once two failures are on the
/// account (or ten from the address); the attempt is counted before the
/// captcha and the password are checked, so a wrong captcha is a failed
/// attempt too.
pub async fn password_sign_in(s: PasswordServices<'_>, a: PasswordAttempt<'_>) -> DomainResult<PasswordOutcome> {
    let outcome = password_attempt(s, a).await?;
    let counted = match &outcome {
        // A success is counted where the session is made (`finish`).
        PasswordOutcome::Verified(_) | PasswordOutcome::MissingFields { .. } => None,
        PasswordOutcome::Locked { .. } => Some(SignInOutcome::Locked),
        PasswordOutcome::CaptchaWrong => Some(SignInOutcome::CaptchaWrong),
        PasswordOutcome::Failed { .. } => Some(SignInOutcome::Failed),
        PasswordOutcome::Suspended { .. } => Some(SignInOutcome::Suspended),
    };
    if let Some(outcome) = counted {
        telemetry::count(Count::SignIn { method: Factor::Password, level: 0, outcome });
    }
    Ok(outcome)
}

async fn password_attempt(s: PasswordServices<'_>, a: PasswordAttempt<'_>) -> DomainResult<PasswordOutcome> {
    let key = throttle::citizen_key(s.users, a.identifier).await?;
    let (account, by_ip) = throttle::failures(s.store, &key, a.ip, a.now).await?;
    let risky = throttle::risky(account, by_ip);
    if a.identifier.trim().is_empty() || a.password.is_empty() {
        return Ok(PasswordOutcome::MissingFields { risky });
    }
    let reservation = match throttle::reserve(s.store, s.throttle, &key, a.ip, a.now).await? {
        throttle::Verdict::Proceed(r) => r,
        throttle::Verdict::Locked(secs) => return Ok(PasswordOutcome::Locked { minutes: (secs + 59) / 60 }),
    };
    if risky && !s.captcha.check(a.captcha_id, a.captcha_answer).await? {
        throttle::failed(s.store, reservation, a.ip, a.now).await?;
        return Ok(PasswordOutcome::CaptchaWrong);
    }
    let checked = s.users.check_password(a.identifier, a.password).await.inspect_err(|e| {
        tracing::error!("password check: {e}");
    })?;
    let suspended = matches!(checked, crate::domain::identity::users::PasswordCheck::Suspended);
    let Some(user) = checked.user() else {
        throttle::failed(s.store, reservation, a.ip, a.now).await?;
        // This failure may be the one that makes the next try risky.
        let risky =
            throttle::failures(s.store, &key, a.ip, a.now).await.map(|(a, i)| throttle::risky(a, i)).unwrap_or(true);
        return Ok(if suspended { PasswordOutcome::Suspended { risky } } else { PasswordOutcome::Failed { risky } });
    };
    throttle::succeeded(s.store, reservation).await?;
    Ok(PasswordOutcome::Verified(Box::new(user)))
}

/// How an SMS-code sign-in ended.
pub enum SmsOutcome {
    Verified(Box<user::Model>),
    /// Not a mainland mobile number.
    BadPhone,
    CodeWrong,
    /// No active account holds this phone.
    NoAccount,
}

/// A3: a citizen signs in with a code sent to their phone.
pub async fn sms_sign_in(sms: &SmsCodes, users: &UserService, phone: &str, code: &str) -> DomainResult<SmsOutcome> {
    let Ok(phone) = PhoneNumber::parse(phone) else { return Ok(SmsOutcome::BadPhone) };
    let failed = || telemetry::count(Count::SignIn { method: Factor::Sms, level: 0, outcome: SignInOutcome::Failed });
    if !sms.verify(phone.as_str(), SmsPurpose::Login, code).await? {
        failed();
        return Ok(SmsOutcome::CodeWrong);
    }
    Ok(match users.find_by_login(phone.as_str()).await? {
        Some(u) if !u.disabled => SmsOutcome::Verified(Box::new(u)),
        _ => {
            failed();
            SmsOutcome::NoAccount
        }
    })
}

/// How a registration ended.
pub enum RegisterOutcome {
    Created(UserSummary),
    /// A rule of the form was broken (the locale key of the message).
    Invalid(&'static str),
    /// The phone or the username is already registered (the locale key).
    Taken(&'static str),
    CodeWrong,
}

/// A1: a citizen registers with username, phone (proved by an SMS code),
/// password twice and the agreement; audited as `register`.
pub async fn register(
    store: &Store,
    passwords: &crate::crypto::password::PasswordService,
    sms: &SmsCodes,
    form: &RegistrationForm,
    sms_code: &str,
    ip: &str,
    now: i64,
) -> DomainResult<RegisterOutcome> {
    let (username, phone) = match accounts::validate(form) {
        Ok(v) => v,
        Err(e) => return Ok(RegisterOutcome::Invalid(e.message)),
    };
    if !sms.verify(phone.as_str(), SmsPurpose::Register, sms_code).await? {
        return Ok(RegisterOutcome::CodeWrong);
    }
    let created = match accounts::create_citizen(store, passwords, &username, &phone, &form.password, now).await? {
        Created::Ok(u) => u,
        Created::Taken(key) => return Ok(RegisterOutcome::Taken(key)),
    };
    accounts::audit(store, Some(&created.sub), "register", "phone verified by SMS", Some(ip), now).await?;
    Ok(RegisterOutcome::Created(created))
}

/// Which enterprise a sign-in acts for (C1): as representative when
/// `delegation_id` is none, else as that agent.
#[derive(Debug, Clone)]
pub struct Acting {
    pub enterprise_id: String,
    pub delegation_id: Option<String>,
}

/// A proved sign-in, whatever the method.
pub struct Proved<'a> {
    pub user_id: &'a str,
    pub method: Factor,
    /// Keep the device signed in for 30 days (A3).
    pub remember: bool,
    /// Further factors verified in the same step (a face check in the app).
    pub extra: &'a [Factor],
    /// What the session acts for (C1); `None` — a citizen sign-in — ends any
    /// acting the session did before.
    pub acting: Option<&'a Acting>,
    pub ip: Option<&'a str>,
    pub now: i64,
}

/// The configuration a finished sign-in reads.
pub struct FinishConfig<'a> {
    pub session: &'a SessionConfig,
    pub assurance: &'a AssuranceConfig,
}

/// How a sign-in ended.
#[derive(Debug)]
pub enum Finished {
    /// The new cookie value and the session.
    Session(String, SessionInfo),
    /// Two-step sign-in is on and no strong factor was used: no session
    /// exists; the entry holds the sign-in and asks for the second step.
    SecondStepNeeded,
}

/// Ends every sign-in: the session (a fresh cookie value; the same person
/// keeps the `sid`, another replaces it), the extra factors, the acting,
/// the audit record and the waiting request marked signed in — all or
/// nothing. Two-step sign-in (`second_step::needed`) is decided here, so
/// no entry can make a session that skips it.
pub async fn finish(
    store: &Store,
    cfg: FinishConfig<'_>,
    existing: Option<&SessionInfo>,
    who: Proved<'_>,
    request: Option<(&str, AuthRequest)>,
) -> DomainResult<Finished> {
    let Proved { user_id, method, remember, extra, acting, ip, now } = who;
    let mut used = vec![method];
    used.extend_from_slice(extra);
    if crate::domain::authn::second_step::needed(store, user_id, &used).await? {
        return Ok(Finished::SecondStepNeeded);
    }
    let txn = crate::store::begin_write(store).await?;
    let sign_in = sessions::SignIn { user_id, factor: method, remember, now };
    let mut established = sessions::establish(&txn, existing, sign_in, cfg.session).await?;
    for factor in extra {
        if let Some(next) = sessions::add_factor(&txn, &established.1, *factor, now).await? {
            established = next;
        }
    }
    match acting {
        Some(a) => {
            crate::domain::delegation::acting::set(
                &txn,
                &established.1.sid,
                &a.enterprise_id,
                a.delegation_id.as_deref(),
            )
            .await?
        }
        None => crate::domain::delegation::acting::clear(&txn, &established.1.sid).await?,
    }
    let acting_label = acting.map(|a| match &a.delegation_id {
        Some(d) => format!("delegation:{d}"),
        None => format!("enterprise:{}", a.enterprise_id),
    });
    let done = sessions::Completed { session: &established.1, method, acting: acting_label.as_deref(), ip, now };
    let level = sessions::signed_in(&txn, done, cfg.assurance).await?;
    if let Some((req_id, mut r)) = request {
        crate::domain::staff::stats::bump(&txn, "sign_in_app", &format!("client={}", r.client_id), now).await?;
        r.login_done = true;
        pending::update(&txn, req_id, &r).await?;
    }
    txn.commit().await?;
    telemetry::count(Count::SignIn { method, level, outcome: SignInOutcome::Success });
    Ok(Finished::Session(established.0, established.1))
}
