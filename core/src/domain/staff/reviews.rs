//! Review queues for reviewers: appeals (A8). A decision goes through the
//! same use case as `idp appeal approve/reject` (decided once, audited
//! there with the reviewer as operator), then the appellant gets the SMS.
use super::{Permission, Staff, StaffError};
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::identity::appeals;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::store::Store;
use crate::store::entities::appeal;

/// Appeals with `status` (`pending` by default; `all` for every one).
pub async fn appeals(db: &Store, staff: &Staff, status: &str) -> Result<Vec<appeal::Model>, StaffError> {
    staff.require(Permission::Review)?;
    let status = if status.is_empty() { "pending" } else { status };
    Ok(appeals::list(db, (status != "all").then_some(status)).await?)
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
