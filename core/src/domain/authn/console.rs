//! The account console (issue 19): what a citizen sees and ends about his
//! own account — the apps he authorised (with revoke), his devices and
//! live sessions (sign out one or all others) and his sign-in history (from
//! the audit log). Every change checks that the row is the caller's own,
//! runs in one transaction and is audited.
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::scopes::ScopeSet;
use crate::store::Store;
use crate::store::entities::{audit, consent, grant, session};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

/// An app the person authorised.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorisedApp {
    pub client_id: String,
    /// The scopes granted (each a locale key `scope_<name>` on the page).
    pub scopes: Vec<String>,
    /// Claims granted by name (locale keys `claim_<name>`).
    pub claims: Vec<String>,
    pub granted_at: i64,
}

pub async fn authorised_apps(db: &Store, user_id: &str) -> Result<Vec<AuthorisedApp>, DbErr> {
    let rows = consent::Entity::find()
        .filter(consent::Column::UserId.eq(user_id))
        .order_by_desc(consent::Column::GrantedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuthorisedApp {
            client_id: r.client_id,
            scopes: ScopeSet::parse(&r.scope).iter().map(String::from).collect(),
            claims: r.claims.split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
            granted_at: r.granted_at,
        })
        .collect())
}

/// Withdraws the consent to `client_id` and revokes the app's grants (its
/// refresh and access tokens stop working); the next sign-in to the app asks
/// again. False when there was nothing to withdraw.
pub async fn revoke_app(db: &Store, user_id: &str, client_id: &str, ip: &str, now: i64) -> Result<bool, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let gone = consent::Entity::delete_many()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    if gone.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::ClientId.eq(client_id))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    let subject = format!("client:{client_id}");
    let e = Event::new("consent_revoked", Actor::User(user_id), &subject).ip(Some(ip));
    crate::domain::audit::record(&txn, e, now).await?;
    txn.commit().await?;
    Ok(true)
}

/// A live session of the person, as the devices list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// The public session id (what "sign out" names).
    pub sid: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub remember: bool,
    /// This browser's own session.
    pub current: bool,
}

pub async fn devices(db: &Store, user_id: &str, current_sid: &str, now: i64) -> Result<Vec<Device>, DbErr> {
    let rows = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Revoked.eq(false))
        .filter(session::Column::ExpiresAt.gt(now))
        .order_by_desc(session::Column::LastSeen)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Device {
            current: r.sid == current_sid,
            sid: r.sid,
            created_at: r.created_at,
            last_seen: r.last_seen,
            remember: r.remember,
        })
        .collect())
}

/// Signs out the person's session `sid` (never another person's) and
/// revokes the grants made in it. Returns the ended sids (for back-channel
/// logout); empty when there was nothing to end.
pub async fn end_session(db: &Store, user_id: &str, sid: &str, ip: &str, now: i64) -> Result<Vec<String>, DbErr> {
    end_where(db, user_id, Some(sid), None, ip, now).await
}

/// Signs out every session of the person except `keep_sid` (this browser).
pub async fn end_other_sessions(
    db: &Store,
    user_id: &str,
    keep_sid: &str,
    ip: &str,
    now: i64,
) -> Result<Vec<String>, DbErr> {
    end_where(db, user_id, None, Some(keep_sid), ip, now).await
}

async fn end_where(
    db: &Store,
    user_id: &str,
    only: Option<&str>,
    keep: Option<&str>,
    ip: &str,
    now: i64,
) -> Result<Vec<String>, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let mut q =
        session::Entity::find().filter(session::Column::UserId.eq(user_id)).filter(session::Column::Revoked.eq(false));
    if let Some(sid) = only {
        q = q.filter(session::Column::Sid.eq(sid));
    }
    if let Some(sid) = keep {
        q = q.filter(session::Column::Sid.ne(sid));
    }
    let sids: Vec<String> = q.all(&txn).await?.into_iter().map(|s| s.sid).collect();
    for sid in &sids {
        crate::domain::authn::sessions::revoke_by_sid(&txn, sid).await?;
        crate::domain::tokens::grants::revoke_by_sid(&txn, sid, now).await?;
        let subject = format!("session:{sid}");
        let e = Event::new("session_ended", Actor::User(user_id), &subject).ip(Some(ip));
        crate::domain::audit::record(&txn, e, now).await?;
    }
    txn.commit().await?;
    Ok(sids)
}

/// One line of the sign-in history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: i64,
    /// The audited action (`sign_in`, `factor_added`, …): a locale key
    /// `history_<action>` on the page.
    pub action: String,
    /// How the person signed in (`password`, `sms`, `passkey`, …) when the
    /// entry is a sign-in: a locale key `method_<name>`.
    pub method: Option<String>,
    pub ip: Option<String>,
}

/// Actions the history shows: sign-ins and what changes how one signs in.
pub const HISTORY_ACTIONS: &[&str] = &[
    "sign_in",
    "session_ended",
    "change_password",
    "factor_added",
    "factor_removed",
    "second_step_on",
    "second_step_off",
    "consent_revoked",
];

/// The person's latest `limit` history entries, newest first.
pub async fn history(db: &Store, user_id: &str, limit: u64) -> Result<Vec<HistoryEntry>, DbErr> {
    let rows = audit::Entity::find()
        .filter(audit::Column::UserId.eq(user_id))
        .filter(audit::Column::Action.is_in(HISTORY_ACTIONS.iter().copied()))
        .order_by_desc(audit::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| HistoryEntry { method: field(&r.detail, "method"), at: r.created_at, action: r.action, ip: r.ip })
        .collect())
}

/// `key=value` out of an audit detail (the values have no spaces).
fn field(detail: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    detail.split(' ').find_map(|w| w.strip_prefix(prefix.as_str())).filter(|v| !v.is_empty()).map(String::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_come_out_of_the_detail() {
        let d = "outcome=success actor=user:u subject=session:s method=password level=2 amr=pwd";
        assert_eq!(super::field(d, "method").as_deref(), Some("password"));
        assert_eq!(super::field(d, "nothing"), None);
    }
}
