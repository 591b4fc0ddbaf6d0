//! Step-up (B6) and passwordless sign-in with a passkey: one use case per
//! factor, each checking what the person proved and auditing it, so the
//! pages (`/mfa/*`, `/step-up/factor`, `/login/passkey`) only render the
//! outcome. A verified step-up factor is then recorded on the session with
//! [`record`].
use crate::config::ThrottleConfig;
use crate::domain::assurance::Factor;
use crate::domain::authn::factors::{TotpService, Verdict};
use crate::domain::authn::passkeys::{Ceremony, PasskeyError, PasskeyService};
use crate::domain::authn::reverify::{self, Outcome as ReverifyOutcome};
use crate::domain::authn::sessions::{self, SessionInfo};
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::identity::accounts;
use crate::domain::identity::users::UserService;
use crate::ports::sms::SmsPurpose;
use crate::store::Store;
use crate::store::entities::user;

/// How a step-up factor check ended.
#[derive(Debug)]
pub enum Check {
    /// Proved: record this factor on the session.
    Verified(Factor),
    /// Wrong code, password or ceremony: the locale key to show.
    Wrong(&'static str),
    /// Too many wrong tries: locked for this many minutes (0 when unknown).
    Locked(i64),
}

/// An authenticator-app code (six digits) or, anything longer, a recovery
/// code; audited as `step_up` when it is right.
pub async fn app_code(
    totp: &TotpService,
    store: &Store,
    user: &user::Model,
    code: &str,
    ip: &str,
    now: i64,
) -> DomainResult<Check> {
    let code = code.trim();
    let app_code = code.len() == 6 && code.chars().all(|c| c.is_ascii_digit());
    let verdict = if app_code {
        totp.verify(&user.id, &user.username, code, now).await?
    } else {
        totp.use_recovery_code(&user.id, code, now).await?
    };
    match verdict {
        Verdict::Accepted => {}
        Verdict::Wrong => return Ok(Check::Wrong("mfa_code_wrong")),
        Verdict::Replayed => return Ok(Check::Wrong("mfa_code_used")),
        Verdict::Locked => return Ok(Check::Locked(0)),
    }
    let (factor, detail) =
        if app_code { (Factor::Totp, "authenticator app") } else { (Factor::RecoveryCode, "recovery code") };
    accounts::audit(store, Some(&user.id), "step_up", detail, Some(ip), now).await?;
    Ok(Check::Verified(factor))
}

/// A passkey ceremony that was refused: why, and whether the database
/// failed (which the page shows as "try again later").
pub enum Refused {
    Passkey(PasskeyError),
    /// The passkey answered for another account than the signed-in one.
    OtherAccount,
}

/// A signature counter that did not increase is worth an audit entry on the
/// account (someone may hold a copy of the key).
async fn audit_clone(store: &Store, e: &PasskeyError, ip: &str, now: i64) -> DomainResult<()> {
    let PasskeyError::PossibleClone { user_id, passkey_id } = e else {
        return Ok(());
    };
    let id = passkey_id.as_deref().unwrap_or("?");
    tracing::warn!("passkey {id} of {user_id}: signature counter did not increase (possible clone)");
    let detail = format!("passkey {id}: signature counter did not increase");
    accounts::audit(store, Some(user_id), "passkey_clone_suspected", &detail, Some(ip), now).await?;
    Ok(())
}

/// A refused ceremony, audited when it looks like a cloned authenticator;
/// a storage failure is an error, not a refusal.
async fn refusal(store: &Store, e: PasskeyError, ip: &str, now: i64) -> DomainResult<Refused> {
    audit_clone(store, &e, ip, now).await?;
    match e {
        PasskeyError::Store(db) => Err(DomainError::Store(db)),
        PasskeyError::Internal(err) => Err(DomainError::Internal(anyhow::anyhow!("{err}"))),
        e => Ok(Refused::Passkey(e)),
    }
}

/// The signed-in person's passkey as a step-up factor; audited as
/// `step_up` when it is theirs.
pub async fn passkey(
    passkeys: &PasskeyService,
    store: &Store,
    user_id: &str,
    proof: PasskeyProof<'_>,
) -> DomainResult<Result<Factor, Refused>> {
    let PasskeyProof { ceremony, browser, credential, ip, now } = proof;
    let name = match passkeys.finish_authentication(Ceremony::StepUp, ceremony, browser, credential, now).await {
        // The ceremony allowed only the signed-in user's passkeys.
        Ok((owner, name)) if owner == user_id => name,
        Ok(_) => return Ok(Err(Refused::OtherAccount)),
        Err(e) => return Ok(Err(refusal(store, e, ip, now).await?)),
    };
    accounts::audit(store, Some(user_id), "step_up", &format!("passkey {name}"), Some(ip), now).await?;
    Ok(Ok(Factor::Passkey))
}

/// What the browser posted back from a passkey ceremony.
pub struct PasskeyProof<'a> {
    pub ceremony: &'a str,
    /// The browser's binding hash (the ceremony belongs to one browser).
    pub browser: &'a str,
    pub credential: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// Passwordless sign-in: the assertion names an active account, which is
/// then signed in with [`super::sign_in::finish`].
pub async fn passkey_sign_in(
    passkeys: &PasskeyService,
    users: &UserService,
    store: &Store,
    proof: PasskeyProof<'_>,
) -> DomainResult<Result<String, Refused>> {
    let PasskeyProof { ceremony, browser, credential, ip, now } = proof;
    let user_id = match passkeys.finish_login(ceremony, browser, credential, now).await {
        Ok((user_id, _)) => user_id,
        Err(e) => return Ok(Err(refusal(store, e, ip, now).await?)),
    };
    match users.find(&user_id).await? {
        Some(u) if !u.disabled => Ok(Ok(user_id)),
        _ => Ok(Err(Refused::OtherAccount)),
    }
}

/// The everyday factor the session has not used yet (B6, L3): the
/// password under the sign-in throttle, or a code sent to the account's
/// own phone.
pub async fn everyday(
    deps: Everyday<'_>,
    user: &user::Model,
    factor: Factor,
    password: &str,
    sms_code: &str,
    ip: &str,
    now: i64,
) -> DomainResult<Check> {
    if factor == Factor::Password {
        let outcome =
            reverify::account_password(deps.store, deps.throttle, deps.users, user, password, ip, now).await?;
        return Ok(match outcome {
            ReverifyOutcome::Verified => Check::Verified(Factor::Password),
            ReverifyOutcome::Locked(secs) => Check::Locked((secs + 59) / 60),
            ReverifyOutcome::Wrong | ReverifyOutcome::UseSms => Check::Wrong("step_up_password_wrong"),
        });
    }
    let phone = user.phone.clone().unwrap_or_default();
    Ok(if deps.sms.verify(&phone, SmsPurpose::Verify, sms_code).await? {
        Check::Verified(Factor::Sms)
    } else {
        Check::Wrong("sms_code_wrong")
    })
}

/// The services the everyday factor needs.
pub struct Everyday<'a> {
    pub store: &'a Store,
    pub throttle: &'a ThrottleConfig,
    pub users: &'a UserService,
    pub sms: &'a SmsCodes,
}

/// Records a verified factor on the session: a new cookie value (a new
/// session id at every privilege change). `None` when the session ended
/// meanwhile.
pub async fn record(
    store: &Store,
    session: &SessionInfo,
    factor: Factor,
    now: i64,
) -> DomainResult<Option<(String, SessionInfo)>> {
    Ok(sessions::add_factor(store, session, factor, now).await?)
}
