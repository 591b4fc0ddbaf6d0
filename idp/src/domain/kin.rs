//! Kin relations (亲属码, E2, seed 001) on the delegation model: a user (the
//! guardian, the grantee) acts for a relative who is a minor or an elder.
//!
//! Rules: the relative's ID number must be valid ("请输入正确的身份证号");
//! the relative's age from the ID number and today's date must be 0–16 or
//! 60+ ("暂时只支持绑定16岁以下及60岁以上的亲属"); a user binds at most 8
//! relatives; a relative is bound by at most 3 users; unbinding only 24 h
//! after binding; the relative's face check is needed except at ages 0–6
//! (B7: children that young are never face-checked). The relative's ID
//! card is declared with its validity (start, end or long-term) under the
//! same rules as a resident ID card on the identity page (documents.rs:
//! not expired, not yet valid, the legal term for the age), also for ages
//! 0–6; that validity is what the verifier is sent. The limits are
//! counted inside the binding's transaction after taking the counting
//! locks of both the user and the relative, so racing binds cannot exceed
//! them.
use super::delegation::{self, ACTIVE, Kind, NewDelegation};
use super::documents::{Document, DocumentError, DocumentForm, DocumentType, Validity};
use super::users::IdNumber;
use crate::store::entities::delegation as delegation_e;
use chrono::{Datelike, NaiveDate};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

pub const MAX_RELATIVES_PER_USER: u64 = 8;
pub const MAX_USERS_PER_RELATIVE: u64 = 3;
pub const UNBIND_AFTER: i64 = 24 * 3600;

/// Age in whole years on `today` of the person born on the ID's date.
pub fn age(id: &IdNumber, today: NaiveDate) -> Option<u32> {
    let born = NaiveDate::parse_from_str(&id.as_str()[6..14], "%Y%m%d").ok()?;
    if born > today {
        return None;
    }
    let mut years = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// Refusals, each a locale key carrying the manual's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KinRefusal {
    BadIdNumber,
    AgeOutOfRange,
    TooManyRelatives,
    TooManyGuardians,
    AlreadyBound,
    SelfBinding,
    FaceRequired,
    TooEarlyToUnbind,
    NotFound,
    /// The ID card itself (its validity, the name as printed): the
    /// documents' own message.
    Card(DocumentError),
}

impl KinRefusal {
    pub fn message_key(self) -> &'static str {
        match self {
            KinRefusal::BadIdNumber => "kin_bad_id",
            KinRefusal::AgeOutOfRange => "kin_age",
            KinRefusal::TooManyRelatives => "kin_too_many_relatives",
            KinRefusal::TooManyGuardians => "kin_too_many_guardians",
            KinRefusal::AlreadyBound => "kin_already_bound",
            KinRefusal::SelfBinding => "kin_self",
            KinRefusal::FaceRequired => "kin_face_required",
            KinRefusal::TooEarlyToUnbind => "kin_unbind_too_early",
            KinRefusal::NotFound => "kin_not_found",
            KinRefusal::Card(e) => e.key(),
        }
    }
}

/// A binding request that passed the rules that need no database.
#[derive(Debug, Clone)]
pub struct KinRequest {
    pub name: String,
    pub id_number: IdNumber,
    pub relation: String,
    pub age: u32,
    /// The card's validity as declared (checked against today).
    pub validity: Validity,
}

impl KinRequest {
    /// Whether the relative's face check is needed (not at ages 0–6).
    pub fn needs_face(&self) -> bool {
        self.age > 6
    }
}

/// The relative's ID card validity as the kin form sent it: start date,
/// end date, or long-term (the identity page's fields and meaning).
#[derive(Debug, Clone, Default)]
pub struct CardTerm {
    pub valid_from: String,
    pub valid_to: String,
    pub long_term: Option<String>,
}

impl CardTerm {
    /// The term of an already checked validity (a gate's payload).
    pub fn of(v: &Validity) -> Self {
        Self {
            valid_from: v.start.to_string(),
            valid_to: v.end.map(|d| d.to_string()).unwrap_or_default(),
            long_term: v.end.is_none().then(|| "on".into()),
        }
    }
}

pub fn check(name: &str, id_number: &str, relation: &str, card: &CardTerm, now: i64) -> Result<KinRequest, KinRefusal> {
    let id = IdNumber::parse(id_number).map_err(|_| KinRefusal::BadIdNumber)?;
    let today = delegation::today(now);
    let age = age(&id, today).ok_or(KinRefusal::BadIdNumber)?;
    if !(age <= 16 || age >= 60) {
        return Err(KinRefusal::AgeOutOfRange);
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(KinRefusal::BadIdNumber);
    }
    let relation = match relation {
        "child" | "parent" | "grandparent" | "grandchild" | "spouse" | "other" => relation,
        _ => "other",
    };
    // The card as a resident ID card of the identity page.
    let form = DocumentForm {
        doc_type: DocumentType::ResidentId.as_str().into(),
        name: name.into(),
        number: id.as_str().into(),
        valid_from: card.valid_from.clone(),
        valid_to: card.valid_to.clone(),
        long_term: card.long_term.clone(),
    };
    let doc = Document::parse(&form, today).map_err(KinRefusal::Card)?;
    Ok(KinRequest {
        name: doc.name.as_str().into(),
        id_number: id,
        relation: relation.into(),
        age,
        validity: doc.validity,
    })
}

/// Binds the relative to `guardian` (active at once). `face_checked` says
/// the relative passed the face check; required unless aged 0–6.
pub async fn bind(
    db: &DatabaseConnection,
    guardian_user_id: &str,
    guardian_id_number: Option<&str>,
    req: &KinRequest,
    face_checked: bool,
    now: i64,
) -> Result<Result<delegation_e::Model, KinRefusal>, DbErr> {
    if req.needs_face() && !face_checked {
        return Ok(Err(KinRefusal::FaceRequired));
    }
    if guardian_id_number == Some(req.id_number.as_str()) {
        return Ok(Err(KinRefusal::SelfBinding));
    }
    let txn = crate::store::begin_write(db).await?;
    // Fixed order (user, then relative) so two binds cannot deadlock.
    delegation::lock(&txn, &format!("kin-user:{guardian_user_id}")).await?;
    delegation::lock(&txn, &format!("kin-relative:{}", req.id_number.as_str())).await?;
    let active = || {
        delegation_e::Entity::find()
            .filter(delegation_e::Column::Kind.eq(Kind::Kin.as_str()))
            .filter(delegation_e::Column::State.eq(ACTIVE))
    };
    let mine = active().filter(delegation_e::Column::GranteeUserId.eq(guardian_user_id));
    if mine.clone().filter(delegation_e::Column::RelativeIdNumber.eq(req.id_number.as_str())).count(&txn).await? > 0 {
        return Ok(Err(KinRefusal::AlreadyBound));
    }
    if mine.count(&txn).await? >= MAX_RELATIVES_PER_USER {
        return Ok(Err(KinRefusal::TooManyRelatives));
    }
    let guardians =
        active().filter(delegation_e::Column::RelativeIdNumber.eq(req.id_number.as_str())).count(&txn).await?;
    if guardians >= MAX_USERS_PER_RELATIVE {
        return Ok(Err(KinRefusal::TooManyGuardians));
    }
    let d = delegation::insert(
        &txn,
        NewDelegation {
            kind: Kind::Kin,
            enterprise_id: None,
            principal_user_id: None,
            relative_name: Some(req.name.clone()),
            relative_id_number: Some(req.id_number.as_str().into()),
            relation: Some(req.relation.clone()),
            grantee_user_id: guardian_user_id.into(),
            scopes: String::new(),
            valid_from: None,
            valid_to: None,
            state: ACTIVE,
            agent_password_hash: None,
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(d))
}

/// Unbinds, but only 24 hours after binding (seed 001).
pub async fn unbind(
    db: &DatabaseConnection,
    guardian_user_id: &str,
    id: &str,
    now: i64,
) -> Result<Result<(), KinRefusal>, DbErr> {
    let Some(d) = delegation::find(db, id)
        .await?
        .filter(|d| d.kind == Kind::Kin.as_str() && d.grantee_user_id == guardian_user_id && d.state == ACTIVE)
    else {
        return Ok(Err(KinRefusal::NotFound));
    };
    if now - d.created_at < UNBIND_AFTER {
        return Ok(Err(KinRefusal::TooEarlyToUnbind));
    }
    match delegation::revoke(db, &d.id, &delegation::Party::Guardian(guardian_user_id), now).await? {
        Some(_) => Ok(Ok(())),
        None => Ok(Err(KinRefusal::NotFound)),
    }
}

/// A relative as plugins see it (the health-code plugin, E1/E2).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relative {
    pub relation_id: String,
    pub masked_name: String,
    pub id_number: String,
    pub age: u32,
    pub relation: String,
}

pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

pub async fn relatives_of(db: &DatabaseConnection, user_id: &str, now: i64) -> Result<Vec<Relative>, DbErr> {
    let today = delegation::today(now);
    Ok(delegation::granted_by(db, user_id, Kind::Kin)
        .await?
        .into_iter()
        .filter(|d| d.state == ACTIVE)
        .filter_map(|d| {
            let id = IdNumber::parse(d.relative_id_number.as_deref()?).ok()?;
            Some(Relative {
                relation_id: d.id.clone(),
                masked_name: mask_name(d.relative_name.as_deref().unwrap_or_default()),
                age: age(&id, today)?,
                id_number: id.as_str().into(),
                relation: d.relation.clone().unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid ID number born on `yyyymmdd` (check digit computed).
    pub fn id_born(date: &str) -> String {
        let body = format!("110101{date}123");
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
        let check = b"10X98765432"[(sum % 11) as usize] as char;
        format!("{body}{check}")
    }

    fn at(y: i32, m: u32, d: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(4, 0, 0))
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0)
    }

    /// A card issued on 2026-01-01 with the legal term for its holder
    /// (the first of 5, 10, 20 years or long-term the documents accept).
    fn card(id: &str) -> CardTerm {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let terms = [("2031-01-01", None), ("2036-01-01", None), ("2046-01-01", None), ("", Some("on".to_string()))];
        let term = |(to, long): (&str, Option<String>)| CardTerm {
            valid_from: "2026-01-01".into(),
            valid_to: to.into(),
            long_term: long,
        };
        terms
            .into_iter()
            .map(term)
            .find(|c| {
                let f = DocumentForm {
                    doc_type: "resident_id".into(),
                    name: "某某".into(),
                    number: id.into(),
                    valid_from: c.valid_from.clone(),
                    valid_to: c.valid_to.clone(),
                    long_term: c.long_term.clone(),
                };
                Document::parse(&f, today).is_ok()
            })
            .unwrap_or_default()
    }

    #[test]
    fn ages_and_messages() {
        let now = at(2026, 11, 26);
        let c = |name: &str, id: &str, relation: &str| check(name, id, relation, &card(id), now);
        assert_eq!(c("小明", &id_born("20200101"), "child").map(|r| r.age), Ok(6));
        assert!(!c("小明", &id_born("20200101"), "child").map(|r| r.needs_face()).unwrap_or(true));
        assert!(c("小红", &id_born("20190101"), "child").map(|r| r.needs_face()).unwrap_or(false));
        // 16 on the day before the 17th birthday, refused on it.
        assert!(c("甲", &id_born("20091127"), "child").is_ok());
        assert_eq!(c("甲", &id_born("20091126"), "child").map(|_| ()), Err(KinRefusal::AgeOutOfRange));
        assert_eq!(c("乙", &id_born("19800101"), "parent").map(|_| ()), Err(KinRefusal::AgeOutOfRange));
        assert!(c("丙", &id_born("19661126"), "parent").is_ok());
        assert_eq!(c("丁", "110101200001011234", "child").map(|_| ()), Err(KinRefusal::BadIdNumber));
        assert_eq!(mask_name("王小明"), "王**");
    }

    #[test]
    fn the_card_follows_the_documents_rules() {
        let now = at(2026, 11, 26);
        let id = id_born("20190101");
        let term = |from: &str, to: &str| CardTerm {
            valid_from: from.into(),
            valid_to: to.into(),
            long_term: to.is_empty().then(|| "on".into()),
        };
        let expired = check("小红", &id, "child", &term("2020-01-01", "2025-01-01"), now);
        assert_eq!(expired.map(|_| ()), Err(KinRefusal::Card(DocumentError::Expired)));
        assert_eq!(KinRefusal::Card(DocumentError::Expired).message_key(), "identity_err_expired");
        // A child's card is never long-term; the term is checked even at 0–6.
        let long = check("小明", &id_born("20200101"), "child", &term("2026-01-01", ""), now);
        assert_eq!(long.map(|_| ()), Err(KinRefusal::Card(DocumentError::Term)));
        let ok = check("小红", &id, "child", &term("2026-01-01", "2031-01-01"), now).map(|r| r.validity);
        assert_eq!(ok.map(|v| v.end), Ok(NaiveDate::from_ymd_opt(2031, 1, 1)));
    }
}
