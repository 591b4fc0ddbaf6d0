//! The enterprise-login password of an agent (C2): changed by the agent
//! signed in for that enterprise, reset by SMS to the agent's phone, or
//! cleared by the representative so that only the reset path is left.
//!
//! `delegations.agent_password_hash` holds it: `NULL` — the agent was added
//! by the representative or staff and signs in with his account's password;
//! an argon2id hash — the password set at C2 registration, change or reset;
//! [`MUST_RESET`] — cleared by the representative, nothing signs in until
//! a reset. Every write is one conditional UPDATE on the expected value and
//! state, and ends, in the same transaction, what the old password opened:
//! the sessions acting under the delegation and the grants issued under it
//! (as revocation does, `delegation::end_effects`).
use crate::crypto::password::PasswordService;
use crate::domain::audit::{Actor, Event};
use crate::domain::delegation::enterprises::{EnterpriseError, Refusal, check_enterprise_password, find_by_uscc};
use crate::domain::delegation::uscc::Uscc;
use crate::domain::delegation::{self, DelegationState, Ended};
use crate::domain::identity::users::PhoneNumber;
use crate::store::Store;
use crate::store::entities::{delegation as delegation_e, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Not an argon2 PHC string, so no password ever verifies against it.
pub const MUST_RESET: &str = "!must-reset";

/// The SMS-code purpose of an agent reset: bound to the enterprise, so a
/// code sent for one enterprise (or a citizen reset) opens nothing else.
pub fn reset_purpose(uscc: &Uscc) -> String {
    format!("agent_reset:{}", uscc.as_str())
}

/// The hash the agent's enterprise sign-in checks: the delegation's own,
/// else his account's; `None` (verified against the dummy hash, same
/// timing) once the representative required a new password.
pub fn sign_in_hash(d: Option<&delegation_e::Model>, account: &user::Model) -> Option<String> {
    match d.and_then(|d| d.agent_password_hash.clone()) {
        Some(h) if h == MUST_RESET => None,
        Some(h) => Some(h),
        None => Some(account.password_hash.clone()),
    }
}

/// Replaces the password only if it is still `old` and the delegation still
/// pending or active; ends its sessions (but `keep`) and grants, and
/// records `event` — all in one transaction.
async fn replace(
    db: &Store,
    d: &delegation_e::Model,
    old: Option<&str>,
    new_hash: &str,
    keep: Option<&str>,
    event: Event<'_>,
    now: i64,
) -> Result<Option<Ended>, sea_orm::DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let q = delegation_e::Entity::update_many()
        .col_expr(delegation_e::Column::AgentPasswordHash, Expr::value(new_hash))
        .filter(delegation_e::Column::Id.eq(d.id.as_str()))
        .filter(
            delegation_e::Column::State.is_in([DelegationState::Pending.as_str(), DelegationState::Active.as_str()]),
        );
    let q = match old {
        Some(h) => q.filter(delegation_e::Column::AgentPasswordHash.eq(h)),
        None => q.filter(delegation_e::Column::AgentPasswordHash.is_null()),
    };
    if q.exec(&txn).await?.rows_affected != 1 {
        return Ok(None);
    }
    let ended = delegation::end_effects(&txn, &d.id, now, keep).await?;
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(Some(ended))
}

pub struct Change<'a> {
    pub delegation_id: &'a str,
    /// The credit code of the enterprise the session acts for.
    pub uscc: &'a str,
    pub agent: &'a user::Model,
    pub current: &'a str,
    pub new: &'a str,
    /// The session the change is made in: it stays signed in.
    pub sid: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// The signed-in agent changes his password for the enterprise: the
/// current one must verify; the new one follows C2's rule and differs.
/// The current password is a sign-in secret, so a guess counts in the
/// enterprise sign-in throttle under the keys sign-in uses (the agent of
/// this enterprise, his citizen account, the address): `enterprise_locked`
/// once locked. After the change the apps of his other sessions for the
/// enterprise are told (back-channel logout) and his phone gets a notice.
/// Two changes racing with the same current password: one wins, the other
/// reads `agents_changed_meanwhile`.
pub async fn change<N: crate::ports::notify::Notices>(
    db: &Store,
    passwords: &PasswordService,
    notices: &N,
    throttle: &crate::config::ThrottleConfig,
    c: Change<'_>,
) -> Result<Result<(), Refusal>, EnterpriseError> {
    use crate::domain::delegation::enterprises as e;
    check_enterprise_password(c.new).map_err(EnterpriseError::Invalid)?;
    let keys = e::agent_keys(c.uscc, c.agent);
    let Some(held) = e::reserve_attempt(db, throttle, &keys, c.ip, c.now).await? else {
        return Ok(Err("enterprise_locked"));
    };
    let Some(d) = delegation::find(db, c.delegation_id)
        .await?
        .filter(|d| d.grantee_user_id == c.agent.id && delegation::in_force(d, c.now))
    else {
        e::release_attempt(db, held).await?;
        return Ok(Err("enterprise_not_agent"));
    };
    let ok = passwords.verify(c.current.to_string(), sign_in_hash(Some(&d), c.agent)).await?;
    if !ok {
        // A wrong guess keeps its throttle slot.
        return Ok(Err("agent_password_current_wrong"));
    }
    e::release_attempt(db, held).await?;
    if c.new == c.current {
        return Ok(Err("agent_password_same"));
    }
    let hash = passwords.hash(c.new.to_string()).await?;
    let subject = format!("delegation:{}", d.id);
    let detail = format!("enterprise={}", d.enterprise_id.as_deref().unwrap_or(""));
    let event = Event::new("agent_change_password", Actor::User(&c.agent.id), &subject).detail(&detail).ip(Some(c.ip));
    let Some(ended) = replace(db, &d, d.agent_password_hash.as_deref(), &hash, Some(c.sid), event, c.now).await? else {
        return Ok(Err("agents_changed_meanwhile"));
    };
    ended.tell(db, notices).await;
    if let Some(phone) = &c.agent.phone {
        notices.notify_phone(phone, "sms_agent_password_changed", c.now).await;
    }
    Ok(Ok(()))
}

/// The agent delegation a reset by (credit code, phone) is for: the
/// account holding that phone, a pending or active agent of that
/// enterprise. Rejected, revoked or expired agents have none.
pub async fn reset_target(
    db: &Store,
    uscc: &Uscc,
    phone: &PhoneNumber,
    now: i64,
) -> Result<Option<delegation_e::Model>, sea_orm::DbErr> {
    let Some(e) = find_by_uscc(db, uscc.as_str()).await? else { return Ok(None) };
    let Some(u) =
        user::Entity::find().filter(user::Column::Phone.eq(phone.as_str())).one(db).await?.filter(|u| !u.disabled)
    else {
        return Ok(None);
    };
    let d = delegation::agent_delegation(db, &e.id, &u.id).await?;
    Ok(d.filter(|d| DelegationState::of(d) == Some(DelegationState::Pending) || delegation::in_force(d, now)))
}

/// Sets a new password after the SMS code was consumed: the agent's
/// sessions for the enterprise and its grants end. `None` when the agent
/// was revoked or rejected (or reset by another request) meanwhile.
/// Audited as `agent_reset_password` when the agent reset it himself (by
/// SMS), `agent_password_set` when an operator `by` set it. After the
/// commit the apps of the ended sessions are told (back-channel logout)
/// and the agent's phone gets a notice.
#[allow(clippy::too_many_arguments)]
pub async fn reset<N: crate::ports::notify::Notices>(
    db: &Store,
    passwords: &PasswordService,
    notices: &N,
    d: &delegation_e::Model,
    new: &str,
    by: Actor<'_>,
    ip: Option<&str>,
    now: i64,
) -> Result<bool, EnterpriseError> {
    check_enterprise_password(new).map_err(EnterpriseError::Invalid)?;
    let hash = passwords.hash(new.to_string()).await?;
    let action = if matches!(by, Actor::Operator(_)) { "agent_password_set" } else { "agent_reset_password" };
    let subject = format!("delegation:{}", d.id);
    let detail = format!("enterprise={} agent={}", d.enterprise_id.as_deref().unwrap_or(""), d.grantee_user_id);
    let event = Event::new(action, by, &subject).detail(&detail).ip(ip);
    let Some(ended) = replace(db, d, d.agent_password_hash.as_deref(), &hash, None, event, now).await? else {
        return Ok(false);
    };
    ended.tell(db, notices).await;
    let agent = user::Entity::find_by_id(d.grantee_user_id.clone()).one(db).await?;
    if let Some(phone) = agent.and_then(|u| u.phone) {
        notices.notify_phone(&phone, "sms_agent_password_changed", now).await;
    }
    Ok(true)
}

/// The representative (or staff) requires a new password: the password is
/// cleared, every session and grant of the agent for the enterprise ends;
/// the agent must reset it by SMS. `None` if it is not a pending or active
/// agent of this enterprise.
/// After the commit the apps of the ended sessions are told and the agent
/// gets an SMS saying his password was cleared. `false` when nothing
/// changed.
pub async fn require_reset<N: crate::ports::notify::Notices>(
    db: &Store,
    notices: &N,
    enterprise_id: &str,
    delegation_id: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<bool, sea_orm::DbErr> {
    let Some(d) = delegation::find(db, delegation_id)
        .await?
        .filter(|d| d.enterprise_id.as_deref() == Some(enterprise_id) && d.kind == "agent")
    else {
        return Ok(false);
    };
    let subject = format!("delegation:{}", d.id);
    let detail = format!("agent={}", d.grantee_user_id);
    let event =
        Event::new("agent_password_reset_required", Actor::Enterprise(enterprise_id), &subject).detail(&detail).ip(ip);
    let Some(ended) = replace(db, &d, d.agent_password_hash.as_deref(), MUST_RESET, None, event, now).await? else {
        return Ok(false);
    };
    ended.tell(db, notices).await;
    let agent = user::Entity::find_by_id(d.grantee_user_id.clone()).one(db).await?;
    if let Some(phone) = agent.and_then(|u| u.phone) {
        notices.notify_phone(&phone, "sms_agent_password_cleared", now).await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn must_reset_is_no_password_hash() {
        assert!(!crate::crypto::password::verify_blocking("", MUST_RESET));
        assert!(!crate::crypto::password::verify_blocking(MUST_RESET, MUST_RESET));
    }
}
