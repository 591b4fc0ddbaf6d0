//! Kin relations (亲属码, E2) on the delegation model: a user (the
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
//!
//! Proof before binding (docs/security.md, "亲属码信息认证承诺"): every binding, at every age, needs the
//! authority's name + ID number check of the relative through the verifier
//! port and the guardian's acceptance of the commitment (承诺书) — that he
//! is the relative's guardian or family and answers for a false or
//! malicious binding. Both travel in the request as a [`Proof`] only
//! [`prove`] makes, and [`bind`] refuses a request without one, so no entry
//! path can skip them. The relative's other binders are told by SMS when
//! someone new binds him; a binding can be reported (`kin_reports`).
use crate::domain::delegation::{self, DelegationState, Kind, NewDelegation};
use crate::domain::identity::documents::{
    Document, DocumentError, DocumentForm, DocumentNumber, DocumentType, Validity,
};
use crate::domain::identity::users::IdNumber;
use crate::ports::sms::{SmsGateway, SmsMessage, SmsPurpose};
use crate::ports::verifier::{IdentityVerifier, Outcome, VerifierError};
use crate::store::Store;
use crate::store::entities::{delegation as delegation_e, kin_commitment, kin_document, user};
use chrono::{Datelike, NaiveDate};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set};

pub const MAX_RELATIVES_PER_USER: u64 = 8;
pub const MAX_USERS_PER_RELATIVE: u64 = 3;
pub const UNBIND_AFTER: i64 = 24 * 3600;

/// Age in whole years on `today` of the person born on the ID's date.
pub fn age(id: &IdNumber, today: NaiveDate) -> Option<u32> {
    age_from(NaiveDate::parse_from_str(&id.as_str()[6..14], "%Y%m%d").ok()?, today)
}

/// Age in whole years on `today` of a person born on `born` (`None`
/// before birth).
pub fn age_from(born: NaiveDate, today: NaiveDate) -> Option<u32> {
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
    /// The authority does not know this name with this ID number (or the
    /// request carries no verifier proof). One message for every verifier
    /// answer that is not a pass, so the form is no oracle.
    NotVerified,
    /// The commitment was not accepted, or not the current text.
    CommitmentRequired,
    /// This reporter already has a pending report on the binding.
    AlreadyReported,
    /// Too many name + ID number pairs the authority did not confirm today:
    /// the form must not become an oracle of who bears which ID number.
    TooManyAttempts,
    /// The ID card itself (its validity, the name as printed): the
    /// documents' own message.
    Card(DocumentError),
    /// A passport or permit carries no birth date: the form must give it
    /// (the age rules count from it).
    BirthDateRequired,
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
            KinRefusal::NotVerified => "kin_not_verified",
            KinRefusal::CommitmentRequired => "kin_commitment_required",
            KinRefusal::AlreadyReported => "kin_already_reported",
            KinRefusal::TooManyAttempts => "kin_too_many_attempts",
            KinRefusal::Card(e) => e.key(),
            KinRefusal::BirthDateRequired => "kin_birth_date",
        }
    }
}

/// A binding request that passed the rules that need no database.
#[derive(Debug, Clone)]
pub struct KinRequest {
    pub name: String,
    /// The relative's document number, of any type (A2).
    pub id_number: DocumentNumber,
    /// From the number where it carries one (resident ID), else as declared.
    pub birth_date: NaiveDate,
    pub relation: String,
    pub age: u32,
    /// The card's validity as declared (checked against today).
    pub validity: Validity,
    /// The card as the verifier is asked about it.
    card: Document,
    /// Set by [`prove`] only.
    proof: Option<Proof>,
}

/// The version of the commitment text (locale key `kin_commit_text`).
/// Change it with the wording: a form showing an older text is refused.
pub const COMMITMENT_VERSION: &str = "kin-commitment-2026-12";

/// The guardian's acceptance of the commitment: which text, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    version: String,
    accepted_at: i64,
}

impl Commitment {
    /// `ticked`: the guardian ticked "I accept"; `version`: the text he was
    /// shown; `at`: when he accepted.
    pub fn accept(ticked: bool, version: &str, at: i64) -> Result<Self, KinRefusal> {
        if !ticked || version != COMMITMENT_VERSION {
            return Err(KinRefusal::CommitmentRequired);
        }
        Ok(Self { version: version.into(), accepted_at: at })
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn accepted_at(&self) -> i64 {
        self.accepted_at
    }
}

/// What a binding needs besides the form's rules: the verifier's pass for
/// the relative's name + ID number, and the accepted commitment.
#[derive(Debug, Clone)]
pub struct Proof {
    reference: String,
    commitment: Commitment,
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

/// The relative's document as the kin form declared it besides its
/// number: its type (empty = resident ID card, A2) and the birth date,
/// needed for a type whose number carries none (passports, permits).
#[derive(Debug, Clone, Default)]
pub struct KinDocument {
    pub doc_type: String,
    pub birth_date: String,
}

/// The form's rules for a relative with a resident ID card.
pub fn check(name: &str, id_number: &str, relation: &str, card: &CardTerm, now: i64) -> Result<KinRequest, KinRefusal> {
    check_document(name, &KinDocument::default(), id_number, relation, card, now)
}

/// The form's rules for a relative with a document of any type: the
/// number valid for its type, the age (from the number where it carries a
/// birth date, else from the declared one) 0–16 or 60+, and the card's
/// validity under the documents' rules for that type.
pub fn check_document(
    name: &str,
    doc: &KinDocument,
    id_number: &str,
    relation: &str,
    card: &CardTerm,
    now: i64,
) -> Result<KinRequest, KinRefusal> {
    let kind = match doc.doc_type.trim() {
        "" => DocumentType::ResidentId,
        t => DocumentType::parse(t).ok_or(KinRefusal::BadIdNumber)?,
    };
    let number = DocumentNumber::parse(kind, id_number).map_err(|_| KinRefusal::BadIdNumber)?;
    let today = delegation::today(now);
    let born = match number.birth_and_sex() {
        Some((born, _)) => born,
        None => NaiveDate::parse_from_str(doc.birth_date.trim(), "%Y-%m-%d")
            .ok()
            .filter(|b| *b <= today)
            .ok_or(KinRefusal::BirthDateRequired)?,
    };
    let age = age_from(born, today).ok_or(KinRefusal::BadIdNumber)?;
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
    // The card as the identity page takes a document of its type.
    let form = DocumentForm {
        doc_type: kind.as_str().into(),
        name: name.into(),
        number: number.as_str().into(),
        valid_from: card.valid_from.clone(),
        valid_to: card.valid_to.clone(),
        long_term: card.long_term.clone(),
    };
    let doc = Document::parse(&form, today).map_err(KinRefusal::Card)?;
    if doc.validity.start < born {
        return Err(KinRefusal::Card(DocumentError::BirthDate));
    }
    Ok(KinRequest {
        name: doc.name.as_str().into(),
        id_number: number,
        birth_date: born,
        relation: relation.into(),
        age,
        validity: doc.validity,
        card: doc,
        proof: None,
    })
}

/// Verification kind of the relative's name + ID number check (recorded
/// under the guardian, masked, like every verification).
pub const KIN_ID: &str = "kin_id";

/// Unconfirmed name + ID number checks an account may make in 24 hours.
pub const MAX_FAILED_CHECKS_PER_DAY: u64 = 5;

/// Why a kin use case could not run: the database or the verifier.
#[derive(Debug, thiserror::Error)]
pub enum KinError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Verifier(#[from] VerifierError),
}

/// Asks the authority whether the relative's name, ID number and card
/// match a record; any answer but a pass is `NotVerified`. Returns the
/// verifier's reference.
pub async fn verify_relative<V: IdentityVerifier>(
    verifier: &V,
    db: &Store,
    guardian_user_id: &str,
    req: &KinRequest,
    now: i64,
) -> Result<Result<String, KinRefusal>, KinError> {
    use crate::store::entities::verification;
    let failed = verification::Entity::find()
        .filter(verification::Column::UserId.eq(guardian_user_id))
        .filter(verification::Column::Kind.eq(KIN_ID))
        // An outage of the authority is nobody's guess.
        .filter(verification::Column::Outcome.is_not_in([
            Outcome::Pass.as_str(),
            "timeout",
            "unavailable",
            "circuit_open",
        ]))
        .filter(verification::Column::CreatedAt.gt(now - 24 * 3600))
        .count(db)
        .await?;
    if failed >= MAX_FAILED_CHECKS_PER_DAY {
        return Ok(Err(KinRefusal::TooManyAttempts));
    }
    let verdict = verifier.check_id(&req.card).await;
    let subject = format!(
        "{} {} {}",
        req.id_number.kind().as_str(),
        crate::domain::identity::documents::mask_name(&req.name),
        crate::domain::identity::documents::mask_number(req.id_number.as_str())
    );
    let (outcome, reference) = match &verdict {
        Ok(v) => (v.outcome.as_str(), Some(v.reference.as_str())),
        Err(VerifierError::Timeout) => ("timeout", None),
        Err(VerifierError::CircuitOpen) => ("circuit_open", None),
        Err(VerifierError::Unavailable(_)) => ("unavailable", None),
    };
    crate::domain::identity::record(db, Some(guardian_user_id), KIN_ID, &subject, outcome, reference, None, now)
        .await?;
    let v = verdict?;
    Ok(if v.outcome == Outcome::Pass { Ok(v.reference) } else { Err(KinRefusal::NotVerified) })
}

/// The request with its proof: the verifier's pass now and the accepted
/// commitment. The only way to a request [`bind`] accepts.
pub async fn prove<V: IdentityVerifier>(
    verifier: &V,
    db: &Store,
    guardian_user_id: &str,
    mut req: KinRequest,
    commitment: Commitment,
    now: i64,
) -> Result<Result<KinRequest, KinRefusal>, KinError> {
    match verify_relative(verifier, db, guardian_user_id, &req, now).await? {
        Ok(reference) => {
            req.proof = Some(Proof { reference, commitment });
            Ok(Ok(req))
        }
        Err(r) => Ok(Err(r)),
    }
}

/// How kin notices reach people: the SMS gateway port, and the locale
/// text of a key (the deployment's default language: the recipient may
/// never have opened a page).
pub struct Notices<'a> {
    pub sms: &'a SmsGateway,
    pub text: &'a (dyn Fn(&str) -> String + Send + Sync),
}

impl Notices<'_> {
    /// Sends `key`'s text with `{relative}` filled to the account's phone,
    /// if it has one. A failed SMS never undoes what was decided.
    pub(crate) async fn send(&self, db: &Store, user_id: &str, key: &str, relative: &str, now: i64) {
        let phone = match user::Entity::find_by_id(user_id.to_owned()).one(db).await {
            Ok(Some(u)) => u.phone,
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("kin notice: {e}");
                None
            }
        };
        let Some(phone) = phone.filter(|p| !p.is_empty()) else { return };
        let text = (self.text)(key).replace("{relative}", relative);
        let msg = SmsMessage {
            phone,
            purpose: SmsPurpose::KinNotice,
            params: serde_json::json!({ "relative": relative }),
            text,
        };
        if let Err(e) = self.sms.send(&msg, now).await {
            tracing::warn!("kin notice not sent: {e}");
        }
    }
}

/// What the kin form sent: the relative, and how far the guardian got.
#[derive(Debug, Clone, Default)]
pub struct BindInput {
    pub name: String,
    pub id_number: String,
    pub relation: String,
    pub card: CardTerm,
    /// The document's type and declared birth date (A2).
    pub document: KinDocument,
    /// `None` until the guardian answered the commitment page.
    pub commitment: Option<Commitment>,
    /// The relative's face check passed (the face gate's continuation).
    pub face_checked: bool,
}

/// The next step of a binding.
#[derive(Debug)]
pub enum BindStep {
    /// Verified: show the commitment for the guardian to accept.
    Commitment(KinRequest),
    /// Verified and committed: the relative (7 or older) faces the phone.
    Face(KinRequest, Commitment),
    Bound(delegation_e::Model),
}

/// The kin binding use case (E2) every entry path calls: the
/// form's rules, no self-binding, the verifier's name + ID number check at
/// each step (the form's fields come back from the browser), then the
/// commitment, then the face check from age 7 (B7), then the atomic
/// binding and the notice to the relative's other binders.
pub async fn bind_relative<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    notices: &Notices<'_>,
    guardian: &user::Model,
    input: BindInput,
    now: i64,
) -> Result<Result<BindStep, KinRefusal>, KinError> {
    let req = match check_document(&input.name, &input.document, &input.id_number, &input.relation, &input.card, now) {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    if guardian.id_number.as_deref() == Some(req.id_number.as_str()) {
        return Ok(Err(KinRefusal::SelfBinding));
    }
    let Some(commitment) = input.commitment else {
        return Ok(verify_relative(verifier, db, &guardian.id, &req, now).await?.map(|_| BindStep::Commitment(req)));
    };
    if req.needs_face() && !input.face_checked {
        let verified = verify_relative(verifier, db, &guardian.id, &req, now).await?;
        return Ok(verified.map(|_| BindStep::Face(req, commitment)));
    }
    let req = match prove(verifier, db, &guardian.id, req, commitment, now).await? {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    let d = match bind(db, &guardian.id, guardian.id_number.as_deref(), &req, input.face_checked, now).await? {
        Ok(d) => d,
        Err(r) => return Ok(Err(r)),
    };
    // Seed 001: up to three users may bind one relative; each of the
    // others hears of a newcomer, so a stranger's binding does not go
    // unnoticed (and can be reported).
    let others = delegation_e::Entity::find()
        .filter(delegation_e::Column::Kind.eq(Kind::Kin.as_str()))
        .filter(delegation_e::Column::State.eq(DelegationState::Active.as_str()))
        .filter(delegation_e::Column::RelativeIdNumber.eq(req.id_number.as_str()))
        .filter(delegation_e::Column::Id.ne(d.id.as_str()))
        .all(db)
        .await?;
    let relative = mask_name(&req.name);
    for o in others {
        notices.send(db, &o.grantee_user_id, "sms_kin_new_binder", &relative, now).await;
    }
    Ok(Ok(BindStep::Bound(d)))
}

/// Binds the relative to `guardian` (active at once) and records the
/// commitment with it. `req` must carry its [`Proof`] (from [`prove`]);
/// `face_checked` says the relative passed the face check; required unless
/// aged 0–6. Entry paths call [`bind_relative`], which also notifies.
pub async fn bind(
    db: &Store,
    guardian_user_id: &str,
    guardian_id_number: Option<&str>,
    req: &KinRequest,
    face_checked: bool,
    now: i64,
) -> Result<Result<delegation_e::Model, KinRefusal>, DbErr> {
    if req.needs_face() && !face_checked {
        return Ok(Err(KinRefusal::FaceRequired));
    }
    let Some(proof) = &req.proof else {
        return Ok(Err(KinRefusal::NotVerified));
    };
    if guardian_id_number == Some(req.id_number.as_str()) {
        return Ok(Err(KinRefusal::SelfBinding));
    }
    let txn = crate::store::begin_write(db).await?;
    // Fixed order (user, then relative) so two binds cannot deadlock.
    crate::store::lock(&txn, &format!("kin-user:{guardian_user_id}")).await?;
    crate::store::lock(&txn, &format!("kin-relative:{}", req.id_number.as_str())).await?;
    let active = || {
        delegation_e::Entity::find()
            .filter(delegation_e::Column::Kind.eq(Kind::Kin.as_str()))
            .filter(delegation_e::Column::State.eq(DelegationState::Active.as_str()))
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
            state: DelegationState::Active,
            agent_password_hash: None,
        },
        now,
    )
    .await?;
    kin_commitment::ActiveModel {
        delegation_id: Set(d.id.clone()),
        user_id: Set(guardian_user_id.into()),
        text_version: Set(proof.commitment.version.clone()),
        accepted_at: Set(proof.commitment.accepted_at),
        verifier_reference: Set(proof.reference.clone()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    // A passport or permit: its type and the declared birth date, which
    // the age rules count from later (`relatives_of`).
    if req.id_number.kind() != DocumentType::ResidentId {
        kin_document::ActiveModel {
            delegation_id: Set(d.id.clone()),
            doc_type: Set(req.id_number.kind().as_str().into()),
            birth_date: Set(req.birth_date.to_string()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    let subject = format!("delegation:{}", d.id);
    let detail = format!("relation={} face_checked={face_checked}", req.relation);
    let event =
        crate::domain::audit::Event::new("kin_bound", crate::domain::audit::Actor::User(guardian_user_id), &subject);
    crate::domain::audit::record(&txn, event.detail(&detail), now).await?;
    txn.commit().await?;
    Ok(Ok(d))
}

/// Unbinds, but only 24 hours after binding.
pub async fn unbind(db: &Store, guardian_user_id: &str, id: &str, now: i64) -> Result<Result<(), KinRefusal>, DbErr> {
    let Some(d) = delegation::find(db, id).await?.filter(|d| {
        d.kind == Kind::Kin.as_str()
            && d.grantee_user_id == guardian_user_id
            && DelegationState::of(d) == Some(DelegationState::Active)
    }) else {
        return Ok(Err(KinRefusal::NotFound));
    };
    if now - d.created_at < UNBIND_AFTER {
        return Ok(Err(KinRefusal::TooEarlyToUnbind));
    }
    match delegation::revoke(db, &d.id, &delegation::Party::Guardian(guardian_user_id), None, now).await? {
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

pub async fn relatives_of(db: &Store, user_id: &str, now: i64) -> Result<Vec<Relative>, DbErr> {
    let today = delegation::today(now);
    let active: Vec<delegation_e::Model> = delegation::granted_by(db, user_id, Kind::Kin)
        .await?
        .into_iter()
        .filter(|d| DelegationState::of(d) == Some(DelegationState::Active))
        .collect();
    // Relatives bound with a passport or permit: their declared birth date.
    let ids: Vec<String> = active.iter().map(|d| d.id.clone()).collect();
    let declared: std::collections::HashMap<String, NaiveDate> = if ids.is_empty() {
        Default::default()
    } else {
        kin_document::Entity::find()
            .filter(kin_document::Column::DelegationId.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .filter_map(|k| Some((k.delegation_id, NaiveDate::parse_from_str(&k.birth_date, "%Y-%m-%d").ok()?)))
            .collect()
    };
    Ok(active
        .into_iter()
        .filter_map(|d| {
            let number = d.relative_id_number.clone()?;
            let born = match declared.get(&d.id) {
                Some(b) => *b,
                None => {
                    NaiveDate::parse_from_str(IdNumber::parse(&number).ok()?.as_str().get(6..14)?, "%Y%m%d").ok()?
                }
            };
            Some(Relative {
                relation_id: d.id.clone(),
                masked_name: mask_name(d.relative_name.as_deref().unwrap_or_default()),
                age: age_from(born, today)?,
                id_number: number,
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
    fn the_commitment_is_the_current_text_ticked() {
        let c = Commitment::accept(true, COMMITMENT_VERSION, 42);
        assert_eq!(c.as_ref().map(|c| (c.version(), c.accepted_at())), Ok((COMMITMENT_VERSION, 42)));
        assert_eq!(Commitment::accept(false, COMMITMENT_VERSION, 42), Err(KinRefusal::CommitmentRequired));
        assert_eq!(Commitment::accept(true, "kin-commitment-1999", 42), Err(KinRefusal::CommitmentRequired));
        // A request fresh from the form's rules carries no proof.
        let now = at(2026, 11, 26);
        let id = id_born("20200101");
        assert!(check("小明", &id, "child", &card(&id), now).is_ok_and(|r| r.proof.is_none()));
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
