//! Appeals (A8): a citizen whose phone, document number or
//! name is already used by another account files an appeal; operators
//! approve or reject it with a reason; too-frequent appeals are refused;
//! an approved appeal takes effect at once and the outcome goes out by SMS.
//! Proof before binding (docs/security.md): the contact phone and, for a phone
//! appeal, the claimed phone are proven by SMS when the appeal is filed —
//! approving moves that phone to the appellant's account.
use crate::crypto::random_token;
use crate::domain::authn::sms_codes::SmsCodes;
use crate::domain::identity::documents::DocumentNumber;
use crate::domain::identity::users::PhoneNumber;
use crate::ports::sms::SmsPurpose;
use crate::store::Store;
use crate::store::entities::{appeal, appeal_due, appeal_evidence, staff_role, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// At most this many appeals per contact phone in 30 days, and one pending.
pub const MAX_PER_30_DAYS: u64 = 3;

/// Evidence images per appeal (A8), and the size of each.
pub const MAX_EVIDENCE: usize = 3;
pub const MAX_EVIDENCE_BYTES: usize = 2 * 1024 * 1024;
/// Evidence is kept this long after the decision, then purged.
pub const EVIDENCE_RETENTION: i64 = 30 * 86400;

/// One uploaded evidence file, as received. Its type is decided by its
/// bytes (JPEG or PNG magic numbers), never by its name or declared type.
#[derive(Clone, Default)]
pub struct Evidence(pub Vec<u8>);

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Evidence({} bytes)", self.0.len())
    }
}

/// The image type by magic bytes: `image/jpeg` or `image/png`, else `None`.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else {
        None
    }
}

/// Checks the evidence files: at most [`MAX_EVIDENCE`], each a JPEG or PNG
/// of at most [`MAX_EVIDENCE_BYTES`]. Returns each file's sniffed type.
pub fn check_evidence(files: &[Evidence]) -> Result<Vec<&'static str>, FileError> {
    if files.len() > MAX_EVIDENCE {
        return Err(FileError::Field("appeal_evidence_count"));
    }
    files
        .iter()
        .map(|f| {
            if f.0.len() > MAX_EVIDENCE_BYTES {
                return Err(FileError::Field("appeal_evidence_size"));
            }
            sniff_image(&f.0).ok_or(FileError::Field("appeal_evidence_type"))
        })
        .collect()
}

/// The review promise (A8: staff review within a working day): the end
/// (23:59:59 China Standard Time) of the first working day after the day
/// the appeal was filed; Saturdays and Sundays are skipped, and so are the
/// configured `holidays` (`YYYY-MM-DD`, CST dates).
pub fn due_time(filed_at: i64, holidays: &[String]) -> i64 {
    use chrono::{Datelike, Duration, Weekday};
    const CST: i64 = 8 * 3600;
    let Some(filed) = chrono::DateTime::from_timestamp(filed_at + CST, 0).map(|d| d.date_naive()) else {
        return filed_at + 86400;
    };
    let mut day = filed + Duration::days(1);
    for _ in 0..60 {
        let holiday = holidays.iter().any(|h| h.trim() == day.format("%Y-%m-%d").to_string());
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holiday {
            break;
        }
        day += Duration::days(1);
    }
    let end = (day + Duration::days(1)).and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp()).unwrap_or(filed_at);
    end - CST - 1
}

/// A filed appeal: its id and when the review is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub id: String,
    pub due_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewAppeal {
    pub kind: String,
    pub claimed_value: String,
    pub name: String,
    pub id_number: String,
    pub contact_phone: String,
    pub details: String,
    pub appellant_user_id: Option<String>,
    /// The SMS code sent to `contact_phone`.
    pub contact_code: String,
    /// For a phone appeal: the SMS code sent to the claimed phone (unused
    /// when the claimed phone is the contact phone — one proof suffices).
    pub claimed_code: String,
    /// The filer's address, for the audit record.
    pub ip: Option<String>,
    /// Photos of the document and the like (A8): see [`check_evidence`].
    pub evidence: Vec<Evidence>,
    /// Non-working days besides weekends, for the due time.
    pub holidays: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A field is wrong; the locale key says how.
    #[error("invalid field: {0}")]
    Field(&'static str),
    #[error("too many appeals")]
    TooFrequent,
    #[error(transparent)]
    Store(#[from] DbErr),
}

fn normalise(new: &NewAppeal) -> Result<(String, String, String), FileError> {
    let claimed = match new.kind.as_str() {
        "phone" => PhoneNumber::parse(&new.claimed_value)
            .map(|p| p.as_str().to_string())
            .map_err(|_| FileError::Field("appeal_claimed_phone"))?,
        "id_number" => DocumentNumber::parse_any(None, &new.claimed_value)
            .map(|i| i.as_str().to_string())
            .map_err(|_| FileError::Field("appeal_claimed_id"))?,
        "name" => {
            let n = new.claimed_value.trim();
            if n.is_empty() || n.chars().count() > 30 {
                return Err(FileError::Field("appeal_name_rule"));
            }
            n.to_string()
        }
        _ => return Err(FileError::Field("appeal_kind_rule")),
    };
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 30 {
        return Err(FileError::Field("appeal_name_rule"));
    }
    // The appellant's own document: any of the seven types (A2).
    let id = DocumentNumber::parse_any(None, &new.id_number).map_err(|_| FileError::Field("appeal_id_rule"))?;
    let details = new.details.trim().chars().count();
    if !(10..=1000).contains(&details) {
        return Err(FileError::Field("appeal_details_rule"));
    }
    Ok((claimed, name.to_string(), id.as_str().to_string()))
}

/// Files an appeal. The contact phone (where the outcome goes) is proven by
/// its SMS code; a phone appeal proves the claimed phone too, since
/// approving it moves that phone to the appellant (A8). The codes are
/// checked before anything is looked up, so the form tells nobody whether
/// a phone, document number or name is registered. A name appeal corrects
/// the appellant's own account, so it needs one (a signed-in appellant).
pub async fn file(db: &Store, codes: &SmsCodes, new: NewAppeal, now: i64) -> Result<Filed, FileError> {
    let (claimed, name, id_number) = normalise(&new)?;
    let types = check_evidence(&new.evidence)?;
    let contact = PhoneNumber::parse(&new.contact_phone).map_err(|_| FileError::Field("register_phone_rule"))?;
    if new.kind == "name" && new.appellant_user_id.is_none() {
        return Err(FileError::Field("appeal_name_needs_account"));
    }
    if !codes.verify(contact.as_str(), SmsPurpose::Verify, &new.contact_code).await? {
        return Err(FileError::Field("sms_code_wrong"));
    }
    if new.kind == "phone"
        && claimed != contact.as_str()
        && !codes.verify(&claimed, SmsPurpose::Verify, &new.claimed_code).await?
    {
        return Err(FileError::Field("appeal_claimed_code_wrong"));
    }
    // Only something really taken can be appealed.
    let taken = match new.kind.as_str() {
        "phone" => user::Entity::find().filter(user::Column::Phone.eq(claimed.as_str())).count(db).await? > 0,
        "id_number" => user::Entity::find().filter(user::Column::IdNumber.eq(claimed.as_str())).count(db).await? > 0,
        _ => user::Entity::find().filter(user::Column::Name.eq(claimed.as_str())).count(db).await? > 0,
    };
    if !taken {
        return Err(FileError::Field("appeal_not_taken"));
    }
    let recent = appeal::Entity::find()
        .filter(appeal::Column::ContactPhone.eq(contact.as_str()))
        .filter(appeal::Column::CreatedAt.gt(now - 30 * 86400))
        .all(db)
        .await?;
    if recent.iter().any(|a| a.status == "pending") || recent.len() as u64 >= MAX_PER_30_DAYS {
        return Err(FileError::TooFrequent);
    }
    let id = format!("SS{}", random_token(9).to_uppercase().replace(['-', '_'], "0"));
    let due_at = due_time(now, &new.holidays);
    // The appeal, its evidence, its due time and its audit record
    // (`appeal_filed`) commit together.
    let txn = crate::store::begin_write(db).await?;
    appeal::ActiveModel {
        id: Set(id.clone()),
        kind: Set(new.kind),
        claimed_value: Set(claimed),
        name: Set(name),
        id_number: Set(id_number),
        contact_phone: Set(contact.as_str().to_string()),
        details: Set(new.details.trim().to_string()),
        appellant_user_id: Set(new.appellant_user_id),
        status: Set(crate::domain::review::PENDING.into()),
        reason: Set(None),
        decided_by: Set(None),
        created_at: Set(now),
        decided_at: Set(None),
    }
    .insert(&txn)
    .await?;
    for (file, content_type) in new.evidence.into_iter().zip(types) {
        appeal_evidence::ActiveModel {
            id: Set(random_token(12)),
            appeal_id: Set(id.clone()),
            content_type: Set(content_type.into()),
            size: Set(file.0.len() as i64),
            data: Set(file.0),
            created_at: Set(now),
            expires_at: Set(None),
        }
        .insert(&txn)
        .await?;
    }
    appeal_due::ActiveModel { appeal_id: Set(id.clone()), due_at: Set(due_at), reminded_at: Set(None) }
        .insert(&txn)
        .await?;
    crate::domain::identity::accounts::audit(&txn, None, "appeal_filed", &id, new.ip.as_deref(), now).await?;
    txn.commit().await?;
    Ok(Filed { id, due_at })
}

/// An appeal as its filer sees it: found only by its id together with
/// the contact phone it was filed with.
pub async fn status_of(
    db: &Store,
    id: &str,
    contact_phone: &str,
) -> Result<Option<(appeal::Model, Option<i64>)>, DbErr> {
    let Ok(phone) = PhoneNumber::parse(contact_phone) else { return Ok(None) };
    let Some(a) = appeal::Entity::find_by_id(id.trim().to_owned())
        .filter(appeal::Column::ContactPhone.eq(phone.as_str()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let due = appeal_due::Entity::find_by_id(a.id.clone()).one(db).await?.map(|d| d.due_at);
    Ok(Some((a, due)))
}

/// An evidence file without its bytes: what a list shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceInfo {
    pub id: String,
    pub content_type: String,
    pub size: i64,
}

/// The evidence of an appeal (not the bytes), oldest first.
pub async fn evidence_of(db: &Store, appeal_id: &str) -> Result<Vec<EvidenceInfo>, DbErr> {
    let rows: Vec<(String, String, i64)> = appeal_evidence::Entity::find()
        .select_only()
        .column(appeal_evidence::Column::Id)
        .column(appeal_evidence::Column::ContentType)
        .column(appeal_evidence::Column::Size)
        .filter(appeal_evidence::Column::AppealId.eq(appeal_id))
        .order_by_asc(appeal_evidence::Column::CreatedAt)
        .order_by_asc(appeal_evidence::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(id, content_type, size)| EvidenceInfo { id, content_type, size }).collect())
}

/// One evidence image of an appeal: (sniffed type, bytes). Who may see it
/// is decided by the caller (`staff::reviews::evidence_image`).
pub async fn evidence_image(
    db: &Store,
    appeal_id: &str,
    evidence_id: &str,
) -> Result<Option<(String, Vec<u8>)>, DbErr> {
    Ok(appeal_evidence::Entity::find_by_id(evidence_id.to_owned())
        .filter(appeal_evidence::Column::AppealId.eq(appeal_id))
        .one(db)
        .await?
        .map(|e| (e.content_type, e.data)))
}

/// The due times of the appeals `ids`, by appeal id.
pub async fn due_times(db: &Store, ids: &[String]) -> Result<std::collections::HashMap<String, i64>, DbErr> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows =
            appeal_due::Entity::find().filter(appeal_due::Column::AppealId.is_in(chunk.to_vec())).all(db).await?;
        out.extend(rows.into_iter().map(|d| (d.appeal_id, d.due_at)));
    }
    Ok(out)
}

/// Reminds the reviewers of appeals that became overdue (still pending
/// after their due time): each appeal is marked reminded by one
/// conditional UPDATE with its audit record, so however many nodes run
/// this, one reminder goes out per appeal. Every reviewer's phone gets one
/// notice per run that found newly overdue appeals. Returns how many
/// appeals were newly reminded. Run by the periodic upkeep of every node.
pub async fn remind_overdue<N: crate::ports::notify::PhoneNotifier>(
    db: &Store,
    notices: &N,
    now: i64,
) -> Result<usize, DbErr> {
    let due = appeal_due::Entity::find()
        .filter(appeal_due::Column::DueAt.lt(now))
        .filter(appeal_due::Column::RemindedAt.is_null())
        .all(db)
        .await?;
    let mut reminded = 0;
    for d in due {
        let pending = appeal::Entity::find_by_id(d.appeal_id.clone())
            .filter(appeal::Column::Status.eq(crate::domain::review::PENDING))
            .count(db)
            .await?
            > 0;
        let txn = crate::store::begin_write(db).await?;
        let won = appeal_due::Entity::update_many()
            .col_expr(appeal_due::Column::RemindedAt, Expr::value(now))
            .filter(appeal_due::Column::AppealId.eq(d.appeal_id.as_str()))
            .filter(appeal_due::Column::RemindedAt.is_null())
            .exec(&txn)
            .await?;
        if won.rows_affected != 1 || !pending {
            // Decided in time (nothing to remind), or another node won.
            txn.commit().await?;
            continue;
        }
        let subject = format!("appeal:{}", d.appeal_id);
        let detail = format!("due_at={}", d.due_at);
        let event = crate::domain::audit::Event::new(
            "appeal_overdue_reminded",
            crate::domain::audit::Actor::Operator("system"),
            &subject,
        )
        .detail(&detail);
        crate::domain::audit::record(&txn, event, now).await?;
        txn.commit().await?;
        reminded += 1;
    }
    if reminded > 0 {
        let reviewers: Vec<String> = staff_role::Entity::find()
            .filter(staff_role::Column::Role.eq("reviewer"))
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.user_id)
            .collect();
        let phones: std::collections::BTreeSet<String> = user::Entity::find()
            .filter(user::Column::Id.is_in(reviewers))
            .all(db)
            .await?
            .into_iter()
            .filter_map(|u| u.phone)
            .collect();
        for phone in phones {
            notices.notify_phone(&phone, "sms_appeals_overdue", now).await;
        }
    }
    Ok(reminded)
}

pub async fn list(db: &Store, status: Option<&str>) -> Result<Vec<appeal::Model>, DbErr> {
    let mut q = appeal::Entity::find();
    if let Some(s) = status {
        q = q.filter(appeal::Column::Status.eq(s));
    }
    q.order_by_asc(appeal::Column::CreatedAt).all(db).await
}

/// Decides a pending appeal exactly once (`domain::review::decide_once`:
/// two operators cannot both decide it). On approval the taken value is
/// released from the account holding it and, when the appellant already
/// has an account, a phone moves there; a name appeal renames the
/// appellant's account (audited, in the same transaction as the decision).
/// Every entry (the `idp appeal` CLI) decides through here. Returns the
/// decided appeal.
pub async fn decide(
    db: &Store,
    id: &str,
    approve: bool,
    reason: &str,
    by: crate::domain::audit::Actor<'_>,
    now: i64,
) -> Result<Option<appeal::Model>, DbErr> {
    use crate::domain::review;
    let txn = crate::store::begin_write(db).await?;
    let decision = review::Decision::from_approve(approve);
    let decided = review::decide_once::<appeal::Entity, _>(&txn, id, decision, Some(reason.into()), by, now).await?;
    let Some(a) = decided else {
        txn.rollback().await?;
        return Ok(None);
    };
    // The evidence is kept for the retention period after the decision,
    // whichever it is, then the purge deletes it.
    appeal_evidence::Entity::update_many()
        .col_expr(appeal_evidence::Column::ExpiresAt, Expr::value(now + EVIDENCE_RETENTION))
        .filter(appeal_evidence::Column::AppealId.eq(a.id.as_str()))
        .exec(&txn)
        .await?;
    if approve {
        match a.kind.as_str() {
            "phone" => {
                user::Entity::update_many()
                    .col_expr(user::Column::Phone, Expr::value(Option::<String>::None))
                    .col_expr(user::Column::PhoneVerified, Expr::value(false))
                    .col_expr(user::Column::UpdatedAt, Expr::value(now))
                    .filter(user::Column::Phone.eq(a.claimed_value.as_str()))
                    .exec(&txn)
                    .await?;
                if let Some(uid) = &a.appellant_user_id {
                    user::Entity::update_many()
                        .col_expr(user::Column::Phone, Expr::value(a.claimed_value.clone()))
                        .col_expr(user::Column::PhoneVerified, Expr::value(true))
                        .col_expr(user::Column::UpdatedAt, Expr::value(now))
                        .filter(user::Column::Id.eq(uid.as_str()))
                        .exec(&txn)
                        .await?;
                }
            }
            "id_number" => {
                // Released only: binding it again needs a fresh real-name check.
                crate::domain::identity::release_number(&txn, a.claimed_value.as_str()).await?;
                user::Entity::update_many()
                    .col_expr(user::Column::IdNumber, Expr::value(Option::<String>::None))
                    .col_expr(user::Column::UpdatedAt, Expr::value(now))
                    .filter(user::Column::IdNumber.eq(a.claimed_value.as_str()))
                    .exec(&txn)
                    .await?;
            }
            "name" => {
                // The appellant's own account takes the claimed name; the
                // account filed from is the only one the appeal can speak for.
                if let Some(uid) = &a.appellant_user_id {
                    let renamed = user::Entity::update_many()
                        .col_expr(user::Column::Name, Expr::value(a.claimed_value.clone()))
                        .col_expr(user::Column::UpdatedAt, Expr::value(now))
                        .filter(user::Column::Id.eq(uid.as_str()))
                        .exec(&txn)
                        .await?;
                    if renamed.rows_affected == 1 {
                        crate::domain::identity::accounts::audit(&txn, Some(uid), "appeal_renamed", &a.id, None, now)
                            .await?;
                    }
                }
            }
            // No other kind can be filed (`normalise` refuses it).
            _ => {}
        }
    }
    let (subject, detail) = (format!("appeal:{}", a.id), format!("kind={}", a.kind));
    review::record_decision(&txn, ("appeal_approved", "appeal_rejected"), decision, by, &subject, &detail, now).await?;
    txn.commit().await?;
    Ok(Some(a))
}

/// The SMS text for an outcome (locale strings passed in by the caller).
pub fn outcome_text(template: &str, a: &appeal::Model) -> String {
    template.replace("{id}", &a.id).replace("{reason}", a.reason.as_deref().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        // CST wall time → Unix seconds.
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap().and_utc().timestamp() - 8 * 3600
    }

    #[test]
    fn due_at_the_end_of_the_next_working_day() {
        // Tuesday → Wednesday 23:59:59.
        assert_eq!(due_time(at("2026-12-08 10:00"), &[]), at("2026-12-10 00:00") - 1);
        // Friday → Monday; Saturday → Monday.
        assert_eq!(due_time(at("2026-12-11 18:00"), &[]), at("2026-12-15 00:00") - 1);
        assert_eq!(due_time(at("2026-12-12 09:00"), &[]), at("2026-12-15 00:00") - 1);
        // A holiday Monday moves it to Tuesday.
        assert_eq!(due_time(at("2026-12-11 18:00"), &["2026-12-14".into()]), at("2026-12-16 00:00") - 1);
    }

    #[test]
    fn evidence_is_judged_by_its_bytes() {
        let png = Evidence(b"\x89PNG\r\n\x1a\n....".to_vec());
        let jpeg = Evidence(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2]);
        assert_eq!(check_evidence(&[png.clone(), jpeg]).unwrap(), vec!["image/png", "image/jpeg"]);
        assert!(matches!(
            check_evidence(&[Evidence(b"GIF89a".to_vec())]),
            Err(FileError::Field("appeal_evidence_type"))
        ));
        let big = Evidence([&png.0[..], &vec![0u8; MAX_EVIDENCE_BYTES]].concat());
        assert!(matches!(check_evidence(&[big]), Err(FileError::Field("appeal_evidence_size"))));
        assert!(matches!(check_evidence(&vec![png; 4]), Err(FileError::Field("appeal_evidence_count"))));
    }
}
