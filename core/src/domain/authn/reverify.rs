//! Re-verification before managing sign-in factors (A5) for an
//! account without a phone — one registered through an upstream provider or
//! created by an operator. SMS on the account's phone is the rule; with no
//! phone the person proves it is them with what the account already has:
//! its password (counted by the sign-in throttle, so this is no side door
//! for guessing), a code from its authenticator app (the app's own lockout
//! and replay rule), or one of its passkeys (a step-up ceremony bound to
//! this browser and this account), or a fresh sign-in at the upstream
//! provider its account there is linked to (an account made through
//! third-party login may have nothing else).
use crate::config::ThrottleConfig;
use crate::domain::authn::brokering;
use crate::domain::authn::factors::{TotpService, Verdict};
use crate::domain::authn::passkeys::{Ceremony, PasskeyError, PasskeyService};
use crate::domain::authn::throttle;
use crate::domain::error::DomainResult;
use crate::domain::identity::users::UserService;
use crate::store::Store;
use crate::store::entities::user;
use sea_orm::DbErr;

/// The browser-bound flow a re-verification opens (SMS code, or without a
/// phone `without_phone` / `at_upstream`): 15 minutes in which sensitive
/// personal changes may be made.
pub const FLOW: &str = "factors";

/// Whether `user_id` re-verified in this browser within the flow's
/// lifetime: the gate of sensitive changes that carry no flow id of their
/// own (C6: granting a person-to-person delegation).
pub async fn recently(db: &Store, user_id: &str, browser_hash: &str, now: i64) -> Result<bool, DbErr> {
    use crate::store::entities::account_flow;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    if browser_hash.is_empty() {
        return Ok(false);
    }
    let n = account_flow::Entity::find()
        .filter(account_flow::Column::Kind.eq(FLOW))
        .filter(account_flow::Column::UserId.eq(user_id))
        .filter(account_flow::Column::Browser.eq(browser_hash))
        .filter(account_flow::Column::Step.eq(1))
        .filter(account_flow::Column::ExpiresAt.gt(now))
        .count(db)
        .await?;
    Ok(n > 0)
}

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
    pub db: &'a Store,
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
        Proof::Password(password) => account_password(v.db, v.throttle, v.users, u, password, ip, now).await,
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

/// A password checked under the sign-in throttle: the attempt reserves its
/// slot before the hash is checked, so parallel guesses cannot slip past
/// the limit, and only a right password gives the slot back. Shared by
/// every place that takes a password for `login` (re-verification, step-up,
/// the old password of a password change; fit for the sign-in page). `Verified` carries the account it opened.
pub async fn password(
    db: &Store,
    throttle: &ThrottleConfig,
    users: &UserService,
    login: &str,
    password: &str,
    ip: &str,
    now: i64,
) -> anyhow::Result<PasswordCheck> {
    // Counted on the account, whichever spelling of its identifier was typed.
    let key = throttle::citizen_key(users, login).await?;
    let reservation = match throttle::reserve(db, throttle, &key, ip, now).await? {
        throttle::Verdict::Proceed(r) => r,
        throttle::Verdict::Locked(secs) => return Ok(PasswordCheck::Locked(secs)),
    };
    match users.verify_password(login, password).await? {
        Some(found) => {
            throttle::succeeded(db, reservation).await?;
            Ok(PasswordCheck::Verified(Box::new(found)))
        }
        None => {
            throttle::failed(db, reservation, ip, now).await?;
            Ok(PasswordCheck::Wrong)
        }
    }
}

pub enum PasswordCheck {
    Verified(Box<user::Model>),
    Wrong,
    /// Too many wrong tries; retry after this many seconds.
    Locked(i64),
}

/// The password of this very account (a person already signed in).
pub async fn account_password(
    db: &Store,
    throttle: &ThrottleConfig,
    users: &UserService,
    u: &user::Model,
    password: &str,
    ip: &str,
    now: i64,
) -> anyhow::Result<Outcome> {
    Ok(match self::password(db, throttle, users, &u.username, password, ip, now).await? {
        PasswordCheck::Verified(found) if found.id == u.id => Outcome::Verified,
        PasswordCheck::Verified(_) | PasswordCheck::Wrong => Outcome::Wrong,
        PasswordCheck::Locked(secs) => Outcome::Locked(secs),
    })
}

/// A sign-in at the account's linked upstream provider, as the verified ID
/// token of a re-verification callback tells it.
pub struct UpstreamProof<'a> {
    pub upstream: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub auth_time: Option<i64>,
    pub issued_at: i64,
    /// `reverify_max_age` of this upstream.
    pub max_age: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    Verified,
    /// Another upstream account than the one linked to this account.
    OtherAccount,
    /// No `auth_time`, or an old one: the upstream did not make the person
    /// sign in again although `max_age=0` asked it to.
    NotFresh,
    /// The account has a phone: re-verify by SMS.
    UseSms,
}

pub async fn at_upstream(db: &Store, u: &user::Model, p: &UpstreamProof<'_>) -> Result<UpstreamOutcome, DbErr> {
    if u.phone.is_some() {
        return Ok(UpstreamOutcome::UseSms);
    }
    if !brokering::is_linked_to(db, p.upstream, p.issuer, p.subject, &u.id).await? {
        return Ok(UpstreamOutcome::OtherAccount);
    }
    Ok(if fresh(p.auth_time, p.issued_at, p.max_age) { UpstreamOutcome::Verified } else { UpstreamOutcome::NotFresh })
}

/// Both times are the upstream's own clock, so skew between the two
/// providers does not matter. An `auth_time` after the token was issued
/// can only be a broken upstream; a few seconds are allowed for rounding.
fn fresh(auth_time: Option<i64>, issued_at: i64, max_age: i64) -> bool {
    auth_time.is_some_and(|t| t <= issued_at + 5 && issued_at - t <= max_age)
}

/// Whether a signed-in person may re-verify at an upstream provider.
pub enum UpstreamStart {
    Allowed,
    /// The account has a phone: re-verification is by SMS code.
    UseSms,
    /// The account is not linked at this upstream.
    Unlinked,
    /// The account is gone or suspended.
    NoAccount,
}

/// A4: only an account without a phone re-verifies at an upstream, and
/// only at one it is linked to.
pub async fn upstream_start(
    store: &Store,
    users: &UserService,
    user_id: &str,
    upstream: &str,
) -> DomainResult<UpstreamStart> {
    let Some(u) = users.find(user_id).await?.filter(|u| !u.disabled) else { return Ok(UpstreamStart::NoAccount) };
    if u.phone.is_some() {
        return Ok(UpstreamStart::UseSms);
    }
    let links = crate::domain::authn::brokering::links_for_user(store, user_id).await?;
    Ok(if links.iter().any(|l| l.upstream == upstream) { UpstreamStart::Allowed } else { UpstreamStart::Unlinked })
}

/// The account re-verifying at an upstream, when the session that answers
/// is the one that asked (`sid`) and the account is still active.
pub async fn upstream_asker(
    users: &UserService,
    session: Option<&crate::domain::authn::sessions::SessionInfo>,
    sid: &str,
    user_id: &str,
) -> DomainResult<Option<user::Model>> {
    let Some(s) = session.filter(|s| s.sid == sid && s.user_id == user_id) else { return Ok(None) };
    Ok(users.find(&s.user_id).await?.filter(|u| !u.disabled))
}

#[cfg(test)]
mod tests {
    use super::fresh;

    #[test]
    fn upstream_sign_in_must_be_recent_by_the_upstream_clock() {
        assert!(fresh(Some(1_000), 1_000, 300));
        assert!(fresh(Some(700), 1_000, 300));
        assert!(!fresh(Some(699), 1_000, 300), "older than the window");
        assert!(!fresh(None, 1_000, 300), "max_age makes auth_time mandatory");
        assert!(!fresh(Some(2_000), 1_000, 300), "signed in after the token was issued");
        assert!(!fresh(Some(999), 1_000, 0));
    }
}
