//! Review queues for reviewers: appeals (A8), representative changes (C5)
//! and kin-binding reports. A decision goes through the same use case as
//! the CLI (`idp appeal`, `idp enterprise`, `idp kin report-decide`:
//! decided once with `domain::review::decide_once`, audited there with the
//! reviewer as actor, `staff:<id>`), then the person hears the outcome.
use super::{Permission, Staff, StaffError};
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::identity::appeals;
use crate::ports::sms::{SmsMessage, SmsPurpose};
use crate::store::Store;
use crate::store::entities::{appeal, representative_change};
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
    let reason = may_decide(staff, approve, reason)?;
    let decided = appeals::decide(db, id, approve, reason, staff.actor(), now).await?.ok_or(StaffError::NotFound)?;
    let mut with_reason = decided.clone();
    with_reason.reason = Some(reason.to_string());
    let msg = SmsMessage {
        phone: decided.contact_phone.clone(),
        purpose: SmsPurpose::Notice,
        params: serde_json::json!({ "id": decided.id, "reason": reason }),
        text: appeals::outcome_text(sms_template, &with_reason),
    };
    tell(sms, &msg, now).await;
    Ok(decided)
}

/// Before a reviewer decides a person's request: the role, and a
/// rejection's reason (the person receives it). Returns the reason trimmed.
/// The decision itself is the core use case's (decided once, audited with
/// the reviewer as actor), then [`tell`].
fn may_decide<'a>(staff: &Staff, approve: bool, reason: &'a str) -> Result<&'a str, StaffError> {
    staff.require(Permission::Review)?;
    let reason = reason.trim();
    if !approve && reason.is_empty() {
        return Err(StaffError::Invalid("admin_reason_required"));
    }
    Ok(reason)
}

/// Tells the person the outcome; a failed SMS leaves the decision standing.
async fn tell(sms: &SmsCodes, msg: &SmsMessage, now: i64) {
    if let Err(e) = sms.gateway().send(msg, now).await {
        tracing::warn!("review {} decided, but the SMS failed: {e}", msg.params["id"]);
    }
}

// ------------------------------------------------ representative / phone changes (C5)

/// A representative or phone change request as a reviewer sees it: the
/// enterprise, what changes, the new values masked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub uscc: String,
    pub new_name: String,
    pub new_id_number: String,
    pub new_phone: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

fn status_filter(status: &str) -> Option<&str> {
    let status = if status.is_empty() { "pending" } else { status };
    (status != "all").then_some(status)
}

/// Change requests with `status` (`pending` by default; `all`).
pub async fn changes(db: &Store, staff: &Staff, status: &str) -> Result<Vec<ChangeRow>, StaffError> {
    use crate::domain::authn::flows::{mask_id_number, mask_phone};
    use crate::domain::identity::documents::mask_name;
    staff.require(Permission::Review)?;
    let rows = crate::domain::delegation::enterprises::changes(db, status_filter(status)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        let e = crate::domain::delegation::enterprises::find(db, &c.enterprise_id).await?;
        out.push(ChangeRow {
            enterprise_name: e.as_ref().map(|e| e.name.clone()).unwrap_or_default(),
            uscc: e.map(|e| e.uscc).unwrap_or_default(),
            new_name: mask_name(&c.new_name),
            new_id_number: mask_id_number(&c.new_id_number),
            new_phone: mask_phone(&c.new_phone),
            id: c.id,
            kind: c.kind,
            status: c.status,
            enterprise_id: c.enterprise_id,
            reason: c.reason,
            created_at: c.created_at,
        });
    }
    Ok(out)
}

/// Approves or rejects a pending change request (the same use case as
/// `idp enterprise approve/reject`: decided once, audited, the record
/// changed in the same transaction); a rejection needs a reason. The
/// applicant hears the outcome by SMS on the phone given in the request.
#[allow(clippy::too_many_arguments)]
pub async fn decide_change(
    db: &Store,
    sms: &SmsCodes,
    staff: &Staff,
    id: &str,
    approve: bool,
    reason: &str,
    sms_template: &str,
    now: i64,
) -> Result<representative_change::Model, StaffError> {
    use crate::domain::delegation::enterprises;
    let reason = may_decide(staff, approve, reason)?;
    let decided =
        enterprises::decide_change(db, id, approve, reason, staff.actor(), now).await?.ok_or(StaffError::NotFound)?;
    let msg = SmsMessage {
        phone: decided.new_phone.clone(),
        purpose: SmsPurpose::Notice,
        params: serde_json::json!({ "id": decided.id, "kind": decided.kind, "reason": reason }),
        text: enterprises::change_outcome_text(sms_template, &decided),
    };
    tell(sms, &msg, now).await;
    Ok(decided)
}

// ------------------------------------------------ kin-binding reports

/// A kin-binding report as a reviewer sees it (the relative's number masked).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KinReportRow {
    pub id: String,
    pub delegation_id: String,
    pub relative_id_number: String,
    pub reporter_user_id: String,
    pub reason: String,
    pub status: String,
    pub created_at: i64,
}

/// Kin-binding reports with `status` (`pending` by default; `all`).
pub async fn kin_reports(db: &Store, staff: &Staff, status: &str) -> Result<Vec<KinReportRow>, StaffError> {
    staff.require(Permission::Review)?;
    let rows = crate::domain::delegation::kin_reports::list(db, status_filter(status)).await?;
    Ok(rows
        .into_iter()
        .map(|r| KinReportRow {
            relative_id_number: crate::domain::authn::flows::mask_id_number(&r.relative_id_number),
            id: r.id,
            delegation_id: r.delegation_id,
            reporter_user_id: r.reporter_user_id,
            reason: r.reason,
            status: r.status,
            created_at: r.created_at,
        })
        .collect())
}

/// Removes the reported binding or dismisses the report (the same use case
/// as `idp kin report-decide`: decided once, audited, both sides told by SMS).
pub async fn decide_kin_report(
    db: &Store,
    notices: &crate::domain::delegation::kin::Notices<'_>,
    staff: &Staff,
    id: &str,
    remove: bool,
    now: i64,
) -> Result<(), StaffError> {
    staff.require(Permission::Review)?;
    crate::domain::delegation::kin_reports::decide(db, notices, id, remove, staff.actor(), now)
        .await?
        .ok_or(StaffError::NotFound)?;
    Ok(())
}

// ------------------------------------------------ enterprises by credit code

/// An enterprise as staff see it: the representative and agents masked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnterpriseView {
    pub id: String,
    pub uscc: String,
    pub name: String,
    pub region: String,
    pub representative_name: String,
    pub representative_id_number: String,
    pub representative_phone: String,
    pub representative_linked: bool,
    pub agents: Vec<AgentRow>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentRow {
    pub user_id: String,
    pub name: String,
    pub phone: String,
    pub state: String,
    pub valid_to: Option<String>,
}

/// Looks an enterprise up by its unified social credit code (USCC); the
/// code is checked first (`StaffError::Invalid`). Staff who may view people.
pub async fn enterprise(db: &Store, staff: &Staff, uscc: &str) -> Result<Option<EnterpriseView>, StaffError> {
    use crate::domain::authn::flows::{mask_id_number, mask_phone};
    use crate::domain::identity::documents::mask_name;
    staff.require(Permission::ViewPeople)?;
    let code = crate::domain::delegation::uscc::Uscc::parse(uscc.trim().to_uppercase().as_str())
        .map_err(|_| StaffError::Invalid("admin_uscc_rule"))?;
    let Some(e) = crate::domain::delegation::enterprises::find_by_uscc(db, code.as_str()).await? else {
        return Ok(None);
    };
    let mut agents = Vec::new();
    for d in crate::domain::delegation::agents_of(db, &e.id).await? {
        let u = crate::store::entities::user::Entity::find_by_id(d.grantee_user_id.clone()).one(db).await?;
        agents.push(AgentRow {
            name: u.as_ref().and_then(|u| u.name.clone()).map(|n| mask_name(&n)).unwrap_or_default(),
            phone: u.as_ref().and_then(|u| u.phone.clone()).map(|p| mask_phone(&p)).unwrap_or_default(),
            user_id: d.grantee_user_id,
            state: d.state,
            valid_to: d.valid_to,
        });
    }
    Ok(Some(EnterpriseView {
        id: e.id,
        uscc: e.uscc,
        name: e.name,
        region: e.region,
        representative_name: mask_name(&e.representative_name),
        representative_id_number: mask_id_number(&e.representative_id_number),
        representative_phone: mask_phone(&e.representative_phone),
        representative_linked: e.representative_user_id.is_some(),
        agents,
    }))
}
