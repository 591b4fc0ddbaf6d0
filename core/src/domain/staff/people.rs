//! People in the console: search (masked), account detail, the unmasked
//! view (with a reason, audited), suspend / restore and force sign-out.
use super::{Permission, Staff, StaffError};
use crate::domain::audit::Event;
use crate::domain::authn::flows::{mask_id_number, mask_phone};
use crate::domain::authn::sessions;
use crate::domain::identity::accounts::end_sessions;
use crate::domain::identity::users::{IdNumber, PhoneNumber};
use crate::domain::tokens::grants;
use crate::ports::notify::Notices;
use crate::store::Store;
use crate::store::entities::{delegation, passkey, recovery_code, totp_factor, upstream_link, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

/// A search hit, with phone and ID number masked.
#[derive(Debug, Clone, Serialize)]
pub struct PersonRow {
    pub id: String,
    pub username: String,
    pub phone: String,
    pub id_number: String,
    pub name: String,
    pub level: i32,
    pub disabled: bool,
}

fn mask_name(name: &str) -> String {
    crate::domain::identity::documents::mask_name(name)
}

fn row(u: &user::Model) -> PersonRow {
    PersonRow {
        id: u.id.clone(),
        username: u.username.clone(),
        phone: u.phone.as_deref().map(mask_phone).unwrap_or_default(),
        id_number: u.id_number.as_deref().map(mask_id_number).unwrap_or_default(),
        name: u.name.as_deref().map(mask_name).unwrap_or_default(),
        level: u.proofing_level,
        disabled: u.disabled,
    }
}

/// Finds accounts by username (prefix), phone or ID number (exact). At
/// most 50 hits, masked. The search itself is audited (it may name a
/// phone or ID number), with the query masked.
pub async fn search(db: &Store, staff: &Staff, query: &str, now: i64) -> Result<Vec<PersonRow>, StaffError> {
    staff.require(Permission::ViewPeople)?;
    let q = query.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let (cond, shown) = if let Ok(p) = PhoneNumber::parse(q) {
        (Condition::all().add(user::Column::Phone.eq(p.as_str())), mask_phone(p.as_str()))
    } else if let Ok(i) = IdNumber::parse(q) {
        (Condition::all().add(user::Column::IdNumber.eq(i.as_str())), mask_id_number(i.as_str()))
    } else if let Ok(d) = crate::domain::identity::documents::DocumentNumber::parse_any(None, q) {
        // Any other document type (A2); a passport number can be spelt
        // like a username, so both match.
        let escaped: String = q.chars().filter(|c| c.is_alphanumeric() || *c == '_').take(40).collect();
        let cond = Condition::any()
            .add(user::Column::IdNumber.eq(d.as_str()))
            .add(user::Column::Username.starts_with(escaped.as_str()));
        (cond, mask_id_number(d.as_str()))
    } else {
        let escaped: String = q.chars().filter(|c| c.is_alphanumeric() || *c == '_').take(40).collect();
        (Condition::all().add(user::Column::Username.starts_with(escaped.as_str())), escaped)
    };
    let rows = user::Entity::find().filter(cond).order_by_asc(user::Column::Username).limit(50).all(db).await?;
    let detail = format!("query={shown} hits={}", rows.len());
    crate::domain::audit::record(db, Event::new("staff_search", staff.actor(), "people").detail(&detail), now).await?;
    Ok(rows.iter().map(row).collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub sid: String,
    pub auth_time: i64,
    pub factors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DelegationRow {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub role: &'static str,
}

/// Everything the console shows about one account (still masked).
#[derive(Debug, Clone, Serialize)]
pub struct PersonDetail {
    pub person: PersonRow,
    pub created_at: i64,
    pub totp: bool,
    pub passkeys: u64,
    pub upstreams: Vec<String>,
    pub sessions: Vec<SessionRow>,
    pub delegations: Vec<DelegationRow>,
}

pub async fn detail(db: &Store, staff: &Staff, user_id: &str, now: i64) -> Result<PersonDetail, StaffError> {
    staff.require(Permission::ViewPeople)?;
    let u = user::Entity::find_by_id(user_id.to_string()).one(db).await?.ok_or(StaffError::NotFound)?;
    let totp = totp_factor::Entity::find_by_id(u.id.clone()).one(db).await?.is_some_and(|t| t.confirmed);
    let passkeys = passkey::Entity::find().filter(passkey::Column::UserId.eq(u.id.as_str())).count(db).await?;
    let upstreams = upstream_link::Entity::find()
        .filter(upstream_link::Column::UserId.eq(u.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.upstream)
        .collect();
    let sessions = sessions::live_for_user(db, &u.id, now)
        .await?
        .into_iter()
        .map(|s| SessionRow { factors: s.amr(), sid: s.sid.chars().take(8).collect(), auth_time: s.auth_time })
        .collect();
    let delegations = delegation::Entity::find()
        .filter(
            Condition::any()
                .add(delegation::Column::GranteeUserId.eq(u.id.as_str()))
                .add(delegation::Column::PrincipalUserId.eq(u.id.as_str())),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|d| DelegationRow {
            role: if d.grantee_user_id == u.id { "grantee" } else { "principal" },
            id: d.id,
            kind: d.kind,
            state: d.state,
        })
        .collect();
    Ok(PersonDetail { person: row(&u), created_at: u.created_at, totp, passkeys, upstreams, sessions, delegations })
}

/// The unmasked contact and identity data.
#[derive(Debug, Clone, Serialize)]
pub struct Unmasked {
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub name: Option<String>,
}

/// Shows an account's unmasked data: only with a stated reason, and the
/// look with its reason is audited before anything is returned.
pub async fn unmask(
    db: &Store,
    staff: &Staff,
    user_id: &str,
    reason: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<Unmasked, StaffError> {
    staff.require(Permission::ManagePeople)?;
    let reason = reason.trim();
    if reason.chars().count() < 4 || reason.chars().count() > 200 {
        return Err(StaffError::Invalid("admin_reason_required"));
    }
    let u = user::Entity::find_by_id(user_id.to_string()).one(db).await?.ok_or(StaffError::NotFound)?;
    let subject = format!("user:{}", u.id);
    let detail = format!("reason={}", reason.replace(char::is_whitespace, "_"));
    crate::domain::audit::record(db, Event::new("staff_unmasked", staff.actor(), &subject).detail(&detail).ip(ip), now)
        .await?;
    Ok(Unmasked { phone: u.phone, id_number: u.id_number, name: u.name })
}

/// What the console does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    /// Suspend: sign-in refused, every session, grant and refresh token ends.
    Suspend,
    /// Lift a suspension.
    Restore,
    /// End every session and grant; the account stays usable.
    SignOut,
}

/// One change to an account, with the staff member's reason and address.
pub struct AccountChange<'a> {
    pub user_id: &'a str,
    pub action: AccountAction,
    pub reason: &'a str,
    pub ip: Option<&'a str>,
}

/// Suspends, restores or signs out an account in one transaction: the
/// flag, the ended sessions and revoked grants (refresh and access tokens
/// die with them) and the audit record commit together; the apps hear of
/// the ended sessions (back-channel logout) only after the commit.
pub async fn act<N: Notices>(
    db: &Store,
    notices: &N,
    staff: &Staff,
    change: AccountChange<'_>,
    now: i64,
) -> Result<(), StaffError> {
    let AccountChange { user_id, action, reason, ip } = change;
    staff.require(Permission::ManagePeople)?;
    let reason = reason.trim();
    if action == AccountAction::Suspend && (reason.is_empty() || reason.chars().count() > 200) {
        return Err(StaffError::Invalid("admin_reason_required"));
    }
    if user_id == staff.user_id && action == AccountAction::Suspend {
        return Err(StaffError::Invalid("admin_not_yourself"));
    }
    let txn = crate::store::begin_write(db).await?;
    let u = user::Entity::find_by_id(user_id.to_string()).one(&txn).await?.ok_or(StaffError::NotFound)?;
    let mut ended = Vec::new();
    if action != AccountAction::Restore {
        let subject = crate::domain::tokens::subjects::of_account(&txn, &u.id).await?;
        ended = end_sessions(&txn, &u.id, None, &subject, now).await?;
        grants::revoke_all_for_user(&txn, &u.id, now).await?;
    }
    let (flag, name) = match action {
        AccountAction::Suspend => (Some(true), "account_suspended"),
        AccountAction::Restore => (Some(false), "account_restored"),
        AccountAction::SignOut => (None, "staff_signed_out"),
    };
    if let Some(flag) = flag {
        user::Entity::update_many()
            .col_expr(user::Column::Disabled, Expr::value(flag))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(u.id.as_str()))
            .exec(&txn)
            .await?;
    }
    let subject = format!("user:{}", u.id);
    let detail = format!("sessions={} reason={}", ended.len(), reason.replace(char::is_whitespace, "_"));
    crate::domain::audit::record(&txn, Event::new(name, staff.actor(), &subject).detail(&detail).ip(ip), now).await?;
    txn.commit().await?;
    notices.sessions_ended(&ended).await;
    Ok(())
}

/// How the staff member checked the person's identity before a factor
/// reset: at the counter with the ID card, by video call, or by documents
/// the person sent in. Anything else is refused.
pub const IDENTITY_CHECKS: [&str; 3] = ["in_person", "video", "documents"];

/// What a factor reset removed.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FactorsReset {
    pub totp: u64,
    pub passkeys: u64,
    pub recovery_codes: u64,
    pub sessions: usize,
}

/// Resets an account's strong factors (authenticator app, passkeys,
/// recovery codes) after the staff member checked the person's identity
/// (`check`, one of [`IDENTITY_CHECKS`]) — for someone who lost their
/// phone and their codes. A reason is required. Every session and grant
/// ends in the same transaction, with the audit record
/// (`staff_factors_reset`); the apps hear of it after the commit. The
/// password is untouched, the account stays usable, and the person
/// enrols new factors after signing in again.
#[allow(clippy::too_many_arguments)]
pub async fn reset_factors<N: Notices>(
    db: &Store,
    notices: &N,
    staff: &Staff,
    user_id: &str,
    check: &str,
    reason: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<FactorsReset, StaffError> {
    staff.require(Permission::ManagePeople)?;
    let reason = reason.trim();
    if reason.chars().count() < 4 || reason.chars().count() > 200 {
        return Err(StaffError::Invalid("admin_reason_required"));
    }
    if !IDENTITY_CHECKS.contains(&check) {
        return Err(StaffError::Invalid("admin_identity_check_required"));
    }
    if user_id == staff.user_id {
        return Err(StaffError::Invalid("admin_not_yourself"));
    }
    let txn = crate::store::begin_write(db).await?;
    let u = user::Entity::find_by_id(user_id.to_string()).one(&txn).await?.ok_or(StaffError::NotFound)?;
    let totp = totp_factor::Entity::delete_many()
        .filter(totp_factor::Column::UserId.eq(u.id.as_str()))
        .exec(&txn)
        .await?
        .rows_affected;
    let passkeys = passkey::Entity::delete_many()
        .filter(passkey::Column::UserId.eq(u.id.as_str()))
        .exec(&txn)
        .await?
        .rows_affected;
    let recovery_codes = recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(u.id.as_str()))
        .exec(&txn)
        .await?
        .rows_affected;
    let subject = crate::domain::tokens::subjects::of_account(&txn, &u.id).await?;
    let ended = end_sessions(&txn, &u.id, None, &subject, now).await?;
    grants::revoke_all_for_user(&txn, &u.id, now).await?;
    let done = FactorsReset { totp, passkeys, recovery_codes, sessions: ended.len() };
    let subject = format!("user:{}", u.id);
    let detail = format!(
        "check={check} totp={totp} passkeys={passkeys} recovery_codes={recovery_codes} sessions={} reason={}",
        ended.len(),
        reason.replace(char::is_whitespace, "_")
    );
    crate::domain::audit::record(
        &txn,
        Event::new("staff_factors_reset", staff.actor(), &subject).detail(&detail).ip(ip),
        now,
    )
    .await?;
    txn.commit().await?;
    notices.sessions_ended(&ended).await;
    Ok(done)
}
