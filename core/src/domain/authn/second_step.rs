//! Two-step sign-in (issue 19). Once an account has a strong factor (an
//! authenticator app or a passkey) a sign-in with only a weak one —
//! password, SMS code, an upstream provider — does not establish a session:
//! it is *held*, and the person finishes it on the second-factor page
//! (`/mfa/totp`, `/mfa/passkey`). The person switches this on and off on the
//! security page; it is on by default once a strong factor is enrolled, and
//! every change of the switch needs a fresh re-verification.
//!
//! [`needed`] is the one rule; every sign-in path ends in the entry's
//! single `complete`, which asks it before any session exists.
use crate::crypto::random_token;
use crate::domain::assurance::Factor;
use crate::domain::authn::factors::{Reverified, has_strong_factor};
use crate::domain::identity::accounts::audit;
use crate::store::Store;
use crate::store::entities::{second_step_pref, sign_in_hold};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

/// How long a held sign-in waits for its second step.
const LIFETIME: i64 = 10 * 60;

/// Factors that are a second step by themselves: with one of these in the
/// sign-in nothing more is asked.
pub fn is_strong(f: Factor) -> bool {
    matches!(f, Factor::Totp | Factor::RecoveryCode | Factor::Passkey | Factor::Face | Factor::Scan)
}

/// What the switch says for the account: the stored choice, or on when
/// nothing was chosen yet.
pub async fn switched_on(db: &Store, user_id: &str) -> Result<bool, DbErr> {
    Ok(second_step_pref::Entity::find_by_id(user_id.to_owned()).one(db).await?.is_none_or(|p| p.required))
}

/// Whether a sign-in of `user_id` with `factors` (the method and any extra
/// factors verified in the same step) needs a second step before a session
/// may exist: the switch is on, the account has a strong factor to ask
/// for, and none was used yet.
pub async fn needed(db: &Store, user_id: &str, factors: &[Factor]) -> Result<bool, DbErr> {
    if factors.iter().copied().any(is_strong) {
        return Ok(false);
    }
    Ok(has_strong_factor(db, user_id).await? && switched_on(db, user_id).await?)
}

/// Turns the switch on or off; only inside a re-verification of the
/// account's owner. Audited. Returns false when the proof is not the
/// account's.
pub async fn set(db: &Store, proof: &Reverified, user_id: &str, on: bool, ip: &str, now: i64) -> Result<bool, DbErr> {
    if proof.user_id() != user_id {
        return Ok(false);
    }
    let txn = crate::store::begin_write(db).await?;
    second_step_pref::Entity::delete_by_id(user_id.to_owned()).exec(&txn).await?;
    second_step_pref::ActiveModel { user_id: Set(user_id.into()), required: Set(on), updated_at: Set(now) }
        .insert(&txn)
        .await?;
    let action = if on { "second_step_on" } else { "second_step_off" };
    audit(&txn, Some(user_id), action, "", Some(ip), now).await?;
    txn.commit().await.map(|_| true)
}

/// A sign-in between its first and its second step: everything the entry
/// needs to finish it afterwards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Held {
    pub user_id: String,
    pub method: Factor,
    #[serde(default)]
    pub extra: Vec<Factor>,
    #[serde(default)]
    pub remember: bool,
    #[serde(default)]
    pub then: Option<String>,
    /// `(enterprise_id, delegation_id)` when the sign-in acts for one.
    #[serde(default)]
    pub acting: Option<(String, Option<String>)>,
    /// The authorization request it continues (empty: none).
    #[serde(default)]
    pub req: String,
}

/// Holds a sign-in for this browser; returns the hold's id.
pub async fn hold(db: &Store, held: &Held, browser_hash: &str, now: i64) -> Result<String, DbErr> {
    let id = random_token(18);
    sign_in_hold::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(held.user_id.clone()),
        browser: Set(browser_hash.into()),
        data: Set(serde_json::to_string(held).unwrap_or_default()),
        expires_at: Set(now + LIFETIME),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The live hold `id` of this browser.
pub async fn held(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<Held>, DbErr> {
    if id.is_empty() || id.len() > 64 || browser_hash.is_empty() {
        return Ok(None);
    }
    let row = sign_in_hold::Entity::find_by_id(id.to_owned()).one(db).await?;
    Ok(row.filter(|r| r.browser == browser_hash && r.expires_at > now).and_then(|r| serde_json::from_str(&r.data).ok()))
}

/// Consumes the hold once its second step succeeded: `None` when it is
/// gone, expired, another browser's, or a racing request took it first.
pub async fn take(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<Held>, DbErr> {
    let Some(h) = held(db, id, browser_hash, now).await? else { return Ok(None) };
    let gone = sign_in_hold::Entity::delete_many()
        .filter(sign_in_hold::Column::Id.eq(id))
        .filter(sign_in_hold::Column::Browser.eq(browser_hash))
        .exec(db)
        .await?;
    Ok((gone.rows_affected == 1).then_some(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn weak_factors_need_a_second_step() {
        assert!(!is_strong(Factor::Password));
        assert!(!is_strong(Factor::Sms));
        assert!(!is_strong(Factor::Federated));
        assert!(is_strong(Factor::Passkey) && is_strong(Factor::Totp) && is_strong(Factor::Scan));
    }
}
