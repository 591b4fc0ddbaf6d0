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
use crate::store::entities::{appeal, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};

/// At most this many appeals per contact phone in 30 days, and one pending.
pub const MAX_PER_30_DAYS: u64 = 3;

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
pub async fn file(db: &Store, codes: &SmsCodes, new: NewAppeal, now: i64) -> Result<String, FileError> {
    let (claimed, name, id_number) = normalise(&new)?;
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
    // The appeal and its audit record (`appeal_filed`) commit together.
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
    crate::domain::identity::accounts::audit(&txn, None, "appeal_filed", &id, new.ip.as_deref(), now).await?;
    txn.commit().await?;
    Ok(id)
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
    operator: &str,
    now: i64,
) -> Result<Option<appeal::Model>, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let decision = crate::domain::review::Decision::from_approve(approve);
    let decided =
        crate::domain::review::decide_once::<appeal::Entity, _>(&txn, id, decision, Some(reason.into()), operator, now)
            .await?;
    let Some(a) = decided else {
        txn.rollback().await?;
        return Ok(None);
    };
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
            _ => {}
        }
    }
    let action = if approve { "appeal_approved" } else { "appeal_rejected" };
    let subject = format!("appeal:{}", a.id);
    let detail = format!("kind={}", a.kind);
    let event = crate::domain::audit::Event::new(action, crate::domain::audit::Actor::Operator(operator), &subject)
        .detail(&detail);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(Some(a))
}

/// The SMS text for an outcome (locale strings passed in by the caller).
pub fn outcome_text(template: &str, a: &appeal::Model) -> String {
    template.replace("{id}", &a.id).replace("{reason}", a.reason.as_deref().unwrap_or(""))
}
