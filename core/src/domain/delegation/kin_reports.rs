//! Reports of malicious kin bindings (docs/security.md, "Proof before
//! binding": a way for the real holder to report it). Who may report a
//! binding: another active guardian of the same relative, or the relative
//! himself once his account holds his real-name identity. An operator
//! decides (`idp kin reports`, `idp kin report-decide`): removing unbinds
//! in the same transaction that decides the report, whatever the 24-hour
//! unbinding rule says, and both the removed binder and the reporter are
//! told by SMS.
use crate::domain::audit::{Actor, Event};
use crate::domain::delegation::kin::{KinRefusal, Notices, mask_name};
use crate::domain::delegation::{self, DelegationState, Kind};
use crate::store::Store;
use crate::store::entities::{delegation as delegation_e, kin_report, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};

pub const PENDING: &str = "pending";
pub const REMOVED: &str = "removed";
pub const DISMISSED: &str = "dismissed";
const MAX_REASON: usize = 500;

fn active_kin() -> sea_orm::Select<delegation_e::Entity> {
    delegation_e::Entity::find()
        .filter(delegation_e::Column::Kind.eq(Kind::Kin.as_str()))
        .filter(delegation_e::Column::State.eq(DelegationState::Active.as_str()))
}

/// The relative's ID number `u` speaks for: his own once real-name
/// verified (level 2 or more), never a number he only typed.
fn own_id_number(u: &user::Model) -> Option<&str> {
    u.id_number.as_deref().filter(|_| u.proofing_level >= 2)
}

/// Active kin bindings `u` may report: other users' bindings of the
/// relatives `u` has bound, and every binding of `u` himself.
pub async fn reportable_by(db: &Store, u: &user::Model) -> Result<Vec<delegation_e::Model>, DbErr> {
    let mut numbers: Vec<String> = active_kin()
        .filter(delegation_e::Column::GranteeUserId.eq(u.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|d| d.relative_id_number)
        .collect();
    numbers.extend(own_id_number(u).map(String::from));
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    active_kin()
        .filter(delegation_e::Column::RelativeIdNumber.is_in(numbers))
        .filter(delegation_e::Column::GranteeUserId.ne(u.id.as_str()))
        .order_by_asc(delegation_e::Column::CreatedAt)
        .all(db)
        .await
}

/// Files `reporter`'s report on the binding `delegation_id`. A binding he
/// may not report is `NotFound`, like one that does not exist.
pub async fn report(
    db: &Store,
    reporter: &user::Model,
    delegation_id: &str,
    reason: &str,
    now: i64,
) -> Result<Result<kin_report::Model, KinRefusal>, DbErr> {
    let Some(d) = reportable_by(db, reporter).await?.into_iter().find(|d| d.id == delegation_id) else {
        return Ok(Err(KinRefusal::NotFound));
    };
    let pending = kin_report::Entity::find()
        .filter(kin_report::Column::DelegationId.eq(d.id.as_str()))
        .filter(kin_report::Column::ReporterUserId.eq(reporter.id.as_str()))
        .filter(kin_report::Column::Status.eq(PENDING))
        .count(db)
        .await?;
    if pending > 0 {
        return Ok(Err(KinRefusal::AlreadyReported));
    }
    let reason: String = reason.trim().chars().take(MAX_REASON).collect();
    let row = kin_report::ActiveModel {
        id: Set(crate::crypto::random_token(12)),
        delegation_id: Set(d.id.clone()),
        relative_id_number: Set(d.relative_id_number.clone().unwrap_or_default()),
        reporter_user_id: Set(reporter.id.clone()),
        reason: Set(reason),
        status: Set(PENDING.into()),
        created_at: Set(now),
        decided_at: Set(None),
        decided_by: Set(None),
    }
    .insert(db)
    .await?;
    let subject = format!("kin_report:{}", row.id);
    let detail = format!("delegation={}", d.id);
    let event = Event::new("kin_reported", Actor::User(&reporter.id), &subject).detail(&detail);
    crate::domain::audit::record(db, event, now).await?;
    Ok(Ok(row))
}

/// Reports for the operators, newest first (`status` None: all).
pub async fn list(db: &Store, status: Option<&str>) -> Result<Vec<kin_report::Model>, DbErr> {
    let mut q = kin_report::Entity::find();
    if let Some(s) = status {
        q = q.filter(kin_report::Column::Status.eq(s));
    }
    q.order_by_desc(kin_report::Column::CreatedAt).all(db).await
}

/// An operator's decision on a pending report.
#[derive(Debug)]
pub struct Decided {
    pub report: kin_report::Model,
    /// The binding ended by a removal (and what ending it ended).
    pub unbound: Option<delegation::Ended>,
}

/// Decides the pending report `id`: `remove` unbinds the reported binding
/// in the same transaction (and closes the binding's other pending
/// reports), otherwise dismisses. `None` when no such pending report.
pub async fn decide(
    db: &Store,
    notices: &Notices<'_>,
    id: &str,
    remove: bool,
    by: Actor<'_>,
    now: i64,
) -> Result<Option<Decided>, DbErr> {
    use crate::domain::review;
    let txn = crate::store::begin_write(db).await?;
    // Approving a report removes the binding, rejecting dismisses it.
    let decision = review::Decision::from_approve(remove);
    // One conditional UPDATE: two operators deciding at once, one wins.
    let Some(report) = review::decide_once::<kin_report::Entity, _>(&txn, id, decision, None, by, now).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let binding = delegation_e::Entity::find_by_id(report.delegation_id.clone()).one(&txn).await?;
    let mut unbound = None;
    if remove {
        let ended = delegation_e::Entity::update_many()
            .col_expr(delegation_e::Column::State, Expr::value(DelegationState::Revoked.as_str()))
            .col_expr(delegation_e::Column::Reason, Expr::value("reported"))
            .col_expr(delegation_e::Column::ModifiedAt, Expr::value(now))
            .filter(delegation_e::Column::Id.eq(report.delegation_id.as_str()))
            .filter(delegation_e::Column::Kind.eq(Kind::Kin.as_str()))
            .filter(delegation_e::Column::State.eq(DelegationState::Active.as_str()))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if ended {
            unbound = Some(delegation::end_effects(&txn, &report.delegation_id, now, None).await?);
        }
        let same_binding = kin_report::Column::DelegationId.eq(report.delegation_id.as_str()).into();
        review::decide_pending::<kin_report::Entity, _>(&txn, same_binding, decision, None, by, now).await?;
    }
    // In the decision's transaction: the decision and its record commit together.
    let subject = format!("kin_report:{id}");
    let detail = format!("delegation={}", report.delegation_id);
    let actions = ("kin_report_removed", "kin_report_dismissed");
    review::record_decision(&txn, actions, decision, by, &subject, &detail, now).await?;
    txn.commit().await?;
    let relative = mask_name(binding.as_ref().and_then(|d| d.relative_name.as_deref()).unwrap_or_default());
    if let (Some(d), Some(_)) = (&binding, &unbound) {
        notices.send(db, &d.grantee_user_id, "sms_kin_binding_removed", &relative, now).await;
    }
    let key = if remove { "sms_kin_report_removed" } else { "sms_kin_report_dismissed" };
    notices.send(db, &report.reporter_user_id, key, &relative, now).await;
    Ok(Some(Decided { report, unbound }))
}
