//! Failed-login throttling per account and per client IP, kept in the
//! shared database so it holds across nodes. Each attempt reserves a slot
//! atomically *before* the password is checked, so parallel guesses cannot
//! slip past the limit (Keycloak CVE-2024-4629); a success gives the slot
//! back. Locks expire by themselves, so an attacker cannot lock a victim
//! out for good.
use crate::config::ThrottleConfig;
use crate::domain::audit::{Actor, Event, Outcome};
use crate::domain::error::DomainResult;
use crate::domain::identity::users::{PhoneNumber, UserService};
use crate::store;
use crate::store::Store;
use sea_orm::DbErr;

pub enum Verdict {
    Proceed(Reservation),
    /// Locked; retry after this many seconds.
    Locked(i64),
}

pub struct Reservation {
    /// The throttle key as the caller gave it (`acct:{id}`, `phone:…`).
    login: String,
    account_key: String,
    ip_key: String,
}

/// The audit view of a throttle key: the account when the key names one,
/// otherwise nobody yet, with the key (never a password) as the subject.
fn audit_event<'a>(login: &'a str, subject: &'a str, outcome: Outcome, ip: &'a str) -> Event<'a> {
    let actor = match login.strip_prefix("acct:") {
        Some(id) => Actor::User(id),
        None => Actor::Anonymous,
    };
    Event::new("sign_in", actor, subject).outcome(outcome).ip(Some(ip))
}

/// The throttle key for a citizen password attempt on `identifier` (a
/// username, phone or ID number as typed). Throttle what is attacked, not
/// what is typed (docs/security.md): `+86+8613800138000`, full-width digits or a
/// lower-case `x` all reach one account, so the key is that account
/// (`acct:{id}`); an identifier naming no account is keyed on its canonical
/// spelling, so unknown identifiers are throttled alike and the answer does
/// not tell whether the account exists. Every path that checks a citizen's
/// password passes this key to `reserve` and `failures`.
pub async fn citizen_key(users: &UserService, identifier: &str) -> DomainResult<String> {
    if let Some(u) = users.find_by_login(identifier).await? {
        return Ok(account_of(&u.id));
    }
    let typed = identifier.trim();
    Ok(if let Ok(p) = PhoneNumber::parse(typed) {
        format!("phone:{}", p.as_str())
    } else if let Ok(i) = crate::domain::identity::documents::DocumentNumber::parse_any(None, typed) {
        format!("id:{}", i.as_str())
    } else {
        format!("name:{}", typed.to_lowercase())
    })
}

/// The throttle key of an account already known (a signed-in person
/// re-entering a password): the same counter `citizen_key` resolves to.
pub fn account_of(user_id: &str) -> String {
    format!("acct:{user_id}")
}

fn account_key(login: &str) -> String {
    format!("login:acct:{}", login.trim().to_lowercase())
}

/// Reserves an attempt at `now` (the injected clock: lock windows move
/// with it).
pub async fn reserve(db: &Store, cfg: &ThrottleConfig, login: &str, ip: &str, now: i64) -> Result<Verdict, DbErr> {
    let account_key = account_key(login);
    let ip_key = format!("login:ip:{ip}");
    // An account already at its limit stays locked until its window ends.
    if let Some((count, expires)) = store::read_counter(db, &account_key, now).await?
        && count >= cfg.account_failures
    {
        let subject = format!("login:{login}");
        crate::domain::audit::record(db, audit_event(login, &subject, Outcome::Locked, ip), now).await?;
        return Ok(Verdict::Locked(expires - now));
    }
    let account = store::bump_counter(db, &account_key, cfg.lock_seconds, now).await?;
    let ip_count = store::bump_counter(db, &ip_key, cfg.lock_seconds, now).await?;
    if account > cfg.account_failures || ip_count > cfg.ip_failures {
        store::release_counter(db, &account_key).await?;
        store::release_counter(db, &ip_key).await?;
        let wait = store::read_counter(db, if ip_count > cfg.ip_failures { &ip_key } else { &account_key }, now)
            .await?
            .map(|(_, e)| e - now)
            .unwrap_or(cfg.lock_seconds);
        let subject = format!("login:{login}");
        crate::domain::audit::record(db, audit_event(login, &subject, Outcome::Locked, ip), now).await?;
        return Ok(Verdict::Locked(wait.max(1)));
    }
    Ok(Verdict::Proceed(Reservation { login: login.to_string(), account_key, ip_key }))
}

/// The password was right: forget the account's failures and give back
/// the IP slot.
pub async fn succeeded(db: &Store, r: Reservation) -> Result<(), DbErr> {
    store::clear_counter(db, &r.account_key).await?;
    store::release_counter(db, &r.ip_key).await
}

/// The attempt failed (a wrong password or captcha): the reserved slot
/// stays counted, and the failure is audited.
pub async fn failed(db: &Store, r: Reservation, ip: &str, now: i64) -> Result<(), DbErr> {
    let subject = format!("login:{}", r.login);
    crate::domain::audit::record(db, audit_event(&r.login, &subject, Outcome::Failure, ip), now).await
}

/// Failed attempts recorded so far for this account and this IP; used to
/// demand a graphic captcha once sign-in looks risky (A3).
pub async fn failures(db: &Store, login: &str, ip: &str, now: i64) -> Result<(i64, i64), DbErr> {
    let account = store::read_counter(db, &account_key(login), now).await?.map(|(c, _)| c).unwrap_or(0);
    let ip = store::read_counter(db, &format!("login:ip:{ip}"), now).await?.map(|(c, _)| c).unwrap_or(0);
    Ok((account, ip))
}

/// Captcha after two failures on the account or ten from the address.
pub fn risky(account_failures: i64, ip_failures: i64) -> bool {
    account_failures >= 2 || ip_failures >= 10
}
