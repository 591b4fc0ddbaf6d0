//! Re-verification before managing sign-in factors (A5, issue #4) for an
//! account without a phone — one registered through an upstream provider or
//! created by an operator. SMS on the account's phone is the rule; with no
//! phone the person proves it is them with what the account already has:
//! its password (counted by the sign-in throttle, so this is no side door
//! for guessing), a code from its authenticator app (the app's own lockout
//! and replay rule), or one of its passkeys (a step-up ceremony bound to
//! this browser and this account).
use super::factors::{TotpService, Verdict};
use super::passkeys::{Ceremony, PasskeyError, PasskeyService};
use super::throttle;
use super::users::UserService;
use crate::config::ThrottleConfig;
use crate::store::entities::user;
use sea_orm::DatabaseConnection;

/// What the person offers.
pub enum Proof<'a> {
    Password(&'a str),
    AppCode(&'a str),
    Passkey { ceremony: &'a str, credential: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Verified,
    Wrong,
    /// Too many wrong tries; retry after this many seconds.
    Locked(i64),
    /// The account has a phone: re-verify by SMS.
    UseSms,
}

/// The services a re-verification may consult.
pub struct Verifiers<'a> {
    pub db: &'a DatabaseConnection,
    pub throttle: &'a ThrottleConfig,
    pub users: &'a UserService,
    pub totp: &'a TotpService,
    pub passkeys: &'a PasskeyService,
}

pub async fn without_phone(
    v: &Verifiers<'_>,
    u: &user::Model,
    proof: Proof<'_>,
    browser: &str,
    ip: &str,
    now: i64,
) -> anyhow::Result<Outcome> {
    if u.phone.is_some() {
        return Ok(Outcome::UseSms);
    }
    match proof {
        Proof::Password(password) => {
            let reservation = match throttle::reserve(v.db, v.throttle, &u.username, ip).await? {
                throttle::Verdict::Proceed(r) => r,
                throttle::Verdict::Locked(secs) => return Ok(Outcome::Locked(secs)),
            };
            let found = v.users.verify_password(&u.username, password).await?;
            if found.is_some_and(|f| f.id == u.id) {
                throttle::succeeded(v.db, reservation).await?;
                Ok(Outcome::Verified)
            } else {
                Ok(Outcome::Wrong)
            }
        }
        Proof::AppCode(code) => Ok(match v.totp.verify(&u.id, &u.username, code, now).await? {
            Verdict::Accepted => Outcome::Verified,
            Verdict::Locked => Outcome::Locked(15 * 60),
            Verdict::Wrong | Verdict::Replayed => Outcome::Wrong,
        }),
        Proof::Passkey { ceremony, credential } => {
            match v.passkeys.finish_authentication(Ceremony::StepUp, ceremony, browser, credential, now).await {
                Ok((owner, _)) if owner == u.id => Ok(Outcome::Verified),
                Ok(_) => Ok(Outcome::Wrong),
                Err(PasskeyError::Store(e)) => Err(e.into()),
                Err(_) => Ok(Outcome::Wrong),
            }
        }
    }
}
