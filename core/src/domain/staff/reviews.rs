//! Review queues for reviewers: appeals (A8). A decision goes through the
//! same use case as `idp appeal approve/reject` (decided once, audited
//! there with the reviewer as operator), then the appellant gets the SMS.
use super::{Permission, Staff, StaffError};
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::identity::appeals;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::store::Store;
use crate::store::entities::appeal;
use sea_orm::EntityTrait;

/// An appeal in the reviewers' queue, with its review promise (A8: due
/// time, overdue) and its evidence (without the bytes).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppealRow {
    #[serde(flatten)]
    pub appeal: appeal::Model,
    pub due_at: Option<i64>,
    /// Still pending after its due time.
    pub overdue: bool,
    pub evidence: Vec<appeals::EvidenceInfo>,
}

/// Appeals with `status` (`pending` by default; `all` for every one;
/// `overdue` for the pending ones past their due time).
pub async fn appeals(db: &Store, staff: &Staff, status: &str, now: i64) -> Result<Vec<AppealRow>, StaffError> {
    staff.require(Permission::Review)?;
    let status = if status.is_empty() { "pending" } else { status };
    let listed = match status {
        "all" => None,
        "overdue" => Some(crate::domain::review::PENDING),
        s => Some(s),
    };
    let list = appeals::list(db, listed).await?;
    let due = appeals::due_times(db, &list.iter().map(|a| a.id.clone()).collect::<Vec<_>>()).await?;
    let mut rows = Vec::new();
    for a in list {
        let due_at = due.get(&a.id).copied();
        let overdue = a.status == crate::domain::review::PENDING && due_at.is_some_and(|d| d < now);
        if status == "overdue" && !overdue {
            continue;
        }
        let evidence = appeals::evidence_of(db, &a.id).await?;
        rows.push(AppealRow { appeal: a, due_at, overdue, evidence });
    }
    Ok(rows)
}

/// One appeal for its detail view, with its evidence list.
pub async fn appeal(db: &Store, staff: &Staff, id: &str, now: i64) -> Result<AppealRow, StaffError> {
    staff.require(Permission::Review)?;
    let a = appeal::Entity::find_by_id(id.to_owned()).one(db).await?.ok_or(StaffError::NotFound)?;
    let due_at = appeals::due_times(db, std::slice::from_ref(&a.id)).await?.get(&a.id).copied();
    let overdue = a.status == crate::domain::review::PENDING && due_at.is_some_and(|d| d < now);
    let evidence = appeals::evidence_of(db, &a.id).await?;
    Ok(AppealRow { appeal: a, due_at, overdue, evidence })
}

/// An evidence image of an appeal, for reviewers only: (sniffed content
/// type, bytes).
pub async fn evidence_image(
    db: &Store,
    staff: &Staff,
    appeal_id: &str,
    evidence_id: &str,
) -> Result<(String, Vec<u8>), StaffError> {
    staff.require(Permission::Review)?;
    appeals::evidence_image(db, appeal_id, evidence_id).await?.ok_or(StaffError::NotFound)
}

/// Approves or rejects a pending appeal; a rejection needs a reason (the
/// appellant receives it). `sms_template` is the locale text of the
/// outcome message. A failed SMS leaves the decision standing.
#[allow(clippy::too_many_arguments)]
pub async fn decide_appeal(
    db: &Store,
    sms: &SmsCodes,
    staff: &Staff,
    id: &str,
    approve: bool,
    reason: &str,
    sms_template: &str,
    now: i64,
) -> Result<appeal::Model, StaffError> {
    staff.require(Permission::Review)?;
    let reason = reason.trim();
    if !approve && reason.is_empty() {
        return Err(StaffError::Invalid("admin_reason_required"));
    }
    let operator = format!("staff:{}", staff.user_id);
    let decided = appeals::decide(db, id, approve, reason, &operator, now).await?.ok_or(StaffError::NotFound)?;
    let mut with_reason = decided.clone();
    with_reason.reason = Some(reason.to_string());
    let msg = SmsMessage {
        phone: decided.contact_phone.clone(),
        purpose: SmsPurpose::Notice,
        params: serde_json::json!({ "id": decided.id, "reason": reason }),
        text: appeals::outcome_text(sms_template, &with_reason),
    };
    if let Err(e) = sms.gateway().send(&msg, now).await {
        tracing::warn!("appeal {} decided, but the SMS failed: {e}", decided.id);
    }
    Ok(decided)
}
