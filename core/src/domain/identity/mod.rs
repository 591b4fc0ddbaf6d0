//! Real-name identity binding (B2–B5, B7): bind at L2 after the
//! authority's check, raise to L3 by face or bank card, L4 by an in-person
//! assertion or a counter verification; rebind, unbind, and takeover of an
//! identity another account holds. Every attempt is recorded in
//! `verifications` (masked subject, result, provider reference — never a
//! face sample). The identity row and the account's proofing level change
//! in one transaction; a unique index on the document decides races, so an
//! identity always has at most one holder.
pub mod accounts;
pub mod appeals;
pub mod changes;
pub mod documents;
pub mod profile;
pub mod users;
use crate::domain::identity::accounts::{audit, end_sessions};
use crate::domain::identity::documents::{
    Document, DocumentNumber, DocumentType, PersonName, Validity, mask_name, mask_number,
};
use crate::domain::tokens::subjects::Moved;
use crate::ports::notify::{EndedSession, Notices};
use crate::ports::verifier::{BankCardCheck, FaceSample, IdentityVerifier, Outcome, Verdict, VerifierError};
use crate::store::Store;
use crate::store::entities::{identity, identity_takeover, operator, user, verification};
use chrono::NaiveDate;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

/// A pending takeover stays open this long for the face check.
pub const TAKEOVER_LIFETIME: i64 = 30 * 60;

/// Children aged 0–6 are never asked for a face (B7): their
/// faces change too fast for a comparison with the authority photo.
pub const FACE_MIN_AGE: i32 = 7;

/// The outcome of an attempt to bind or raise, for the page to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    /// Bound or raised; `displaced` lost the identity (and the person's
    /// subject) in a takeover.
    Done {
        level: u8,
        displaced: Option<Displaced>,
        /// A rebind to another document: the account's other sessions,
        /// ended in the binding's transaction.
        rebound: Option<Vec<EndedSession>>,
    },
    /// The identity is held by another account: a takeover is open (face).
    Taken {
        takeover: String,
    },
    /// Taken over by yet another account while this one was checking.
    TakenMeanwhile,
    Refused(Outcome),
    /// The verifier timed out or is down: nothing changed.
    Unavailable,
    /// Nothing bound to check against (face / bank card before L2).
    NoIdentity,
    /// A child 0–6: no face check is ever asked (B7).
    FaceNotRequired,
    /// The bank card's name/number are not the bound identity's.
    NotYourIdentity,
    /// An in-person assertion that was already used.
    Replayed,
    /// The attested document has expired.
    DocumentExpired,
}

/// The account that lost its identity in a takeover: the subjects moved
/// and its sessions ended, in the taker's binding transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displaced {
    pub moved: Moved,
    pub ended: Vec<EndedSession>,
}

/// What a binding records and ends inside its own transaction, besides
/// the identity row: its audit record, and for a rebind (换绑) to another
/// document the end of the account's other sessions and grants.
#[derive(Debug, Clone, Copy, Default)]
struct Effects<'a> {
    /// The audit action of the binding (`identity_bind` …).
    audit: Option<&'a str>,
    /// Appended to the audit detail `level N` (who recorded it).
    detail: &'a str,
    /// A second audit row in the same transaction: (account, action,
    /// detail) — the counter operator's own record of what he recorded.
    also: Option<(&'a str, &'a str, &'a str)>,
    /// End the account's sessions (except `keep_sid`) on a rebind.
    rebind: bool,
    keep_sid: Option<&'a str>,
    ip: Option<&'a str>,
}

/// The account's proofing level, in the account row (contract with
/// `domain::assurance`).
async fn set_level<C: ConnectionTrait>(conn: &C, user_id: &str, level: u8) -> Result<(), DbErr> {
    crate::domain::assurance::set_proofing_level(conn, user_id, level).await
}

pub async fn current(db: &Store, user_id: &str) -> Result<Option<identity::Model>, DbErr> {
    identity::Entity::find_by_id(user_id.to_owned()).one(db).await
}

/// The bound identity as a `Document` again (for face and bank checks).
pub fn document_of(m: &identity::Model, today: NaiveDate) -> Option<Document> {
    let kind = DocumentType::parse(&m.doc_type)?;
    let number = DocumentNumber::parse(kind, &m.doc_number).ok()?;
    let name = PersonName::parse(&m.name).ok()?;
    let validity = Validity::parse(&m.valid_from, m.valid_to.as_deref().unwrap_or(""), m.valid_to.is_none()).ok()?;
    Document::new(number, name, validity, today).ok()
}

fn subject(doc_kind: &str, name: &str, number: &str) -> String {
    format!("{doc_kind} {} {}", mask_name(name), mask_number(number))
}

/// Records one verification attempt.
#[allow(clippy::too_many_arguments)]
pub async fn record<C: ConnectionTrait>(
    db: &C,
    user_id: Option<&str>,
    kind: &str,
    subject: &str,
    outcome: &str,
    reference: Option<&str>,
    detail: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    verification::ActiveModel {
        id: Set(crate::crypto::random_token(12)),
        user_id: Set(user_id.map(String::from)),
        kind: Set(kind.into()),
        subject: Set(subject.into()),
        outcome: Set(outcome.into()),
        reference: Set(reference.filter(|r| !r.is_empty()).map(String::from)),
        detail: Set(detail.map(String::from)),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    crate::domain::staff::stats::bump(db, "verification", &format!("kind={kind} outcome={outcome}"), now).await
}

async fn record_verdict(
    db: &Store,
    user_id: &str,
    kind: &str,
    subj: &str,
    verdict: &Result<Verdict, VerifierError>,
    now: i64,
) -> Result<Option<Outcome>, DbErr> {
    match verdict {
        Ok(v) => {
            record(db, Some(user_id), kind, subj, v.outcome.as_str(), Some(&v.reference), None, now).await?;
            Ok(Some(v.outcome))
        }
        Err(e) => {
            let what = match e {
                VerifierError::Timeout => "timeout",
                VerifierError::CircuitOpen => "circuit_open",
                VerifierError::Unavailable(_) => "unavailable",
            };
            tracing::warn!("identity verifier ({kind}): {e}");
            record(db, Some(user_id), kind, subj, what, None, None, now).await?;
            Ok(None)
        }
    }
}

/// The identity row of `doc` bound to `user_id` at `level` by `method`.
fn identity_row(
    user_id: &str,
    doc: &Document,
    level: u8,
    method: &str,
    bound_at: i64,
    now: i64,
) -> identity::ActiveModel {
    let (birth, sex) = match doc.number.birth_and_sex() {
        Some((b, s)) => (Some(b.to_string()), Some(format!("{s:?}").to_lowercase())),
        None => (None, None),
    };
    identity::ActiveModel {
        user_id: Set(user_id.into()),
        doc_type: Set(doc.kind().as_str().into()),
        doc_number: Set(doc.number.as_str().into()),
        name: Set(doc.name.as_str().into()),
        birth_date: Set(birth),
        sex: Set(sex),
        valid_from: Set(doc.validity.start.to_string()),
        valid_to: Set(doc.validity.end.map(|d| d.to_string())),
        level: Set(i32::from(level)),
        method: Set(method.into()),
        bound_at: Set(bound_at),
        updated_at: Set(now),
    }
}

/// The account row mirrors name and document number (any of the seven
/// types, A2): sign-in by document number (A3), the real-name step of
/// password reset (A4) and appeals (A8) read them.
async fn mirror_on_account<C: ConnectionTrait>(conn: &C, user_id: &str, doc: &Document, now: i64) -> Result<(), DbErr> {
    let id_number = Some(doc.number.as_str().to_string());
    user::Entity::update_many()
        .col_expr(user::Column::Name, Expr::value(doc.name.as_str()))
        .col_expr(user::Column::IdNumber, Expr::value(id_number))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Records the real-name identity of an account created for it moments
/// ago in the caller's transaction (C2: the agent's account, after the
/// verifier's face pass of exactly this document through the app): the
/// identity row at `level` by `method`, mirrored on the account, and the
/// account's proofing level. `false` when another account holds the
/// document (its unique index decides a race): the caller rolls back.
pub async fn record_for_new_account<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    doc: &Document,
    level: u8,
    method: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let inserted = match identity_row(user_id, doc, level, method, now, now).insert(conn).await {
        Ok(_) => mirror_on_account(conn, user_id, doc, now).await,
        Err(e) => Err(e),
    };
    match inserted {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    set_level(conn, user_id, level).await?;
    Ok(true)
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Binds `doc` to `user_id` at `level` in one transaction, replacing the
/// account's previous identity (rebind). With `takeover_from`, the identity
/// is first taken from that account, which drops to L1 and whose sessions
/// end in the same transaction. Returns `Taken` when another account holds
/// it and no takeover was allowed. `fx` adds the audit record and the
/// rebind's effects to the transaction.
#[allow(clippy::too_many_arguments)]
async fn bind(
    db: &Store,
    user_id: &str,
    doc: &Document,
    level: u8,
    method: &str,
    takeover_from: Option<&str>,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let mine = current(db, user_id).await?;
    let same = mine.as_ref().filter(|m| m.doc_type == doc.kind().as_str() && m.doc_number == doc.number.as_str());
    let level = same.map_or(level, |m| level.max(m.level.clamp(1, 4) as u8));
    let txn = crate::store::begin_write(db).await?;
    // Writes first: on SQLite the first statement takes the write lock, so
    // racing transactions queue instead of failing on a stale snapshot.
    let mut displaced = None;
    if let Some(from) = takeover_from.filter(|f| *f != user_id) {
        let gone = identity::Entity::delete_many()
            .filter(identity::Column::DocType.eq(doc.kind().as_str()))
            .filter(identity::Column::DocNumber.eq(doc.number.as_str()))
            .filter(identity::Column::UserId.eq(from))
            .exec(&txn)
            .await?;
        let legacy = user::Entity::update_many()
            .col_expr(user::Column::IdNumber, Expr::value(Option::<String>::None))
            .col_expr(user::Column::Name, Expr::value(Option::<String>::None))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(from))
            .filter(user::Column::IdNumber.eq(doc.number.as_str()))
            .exec(&txn)
            .await?;
        if gone.rows_affected == 1 {
            user::Entity::update_many()
                .col_expr(user::Column::IdNumber, Expr::value(Option::<String>::None))
                .col_expr(user::Column::Name, Expr::value(Option::<String>::None))
                .filter(user::Column::Id.eq(from))
                .exec(&txn)
                .await?;
            set_level(&txn, from, 1).await?;
        }
        if gone.rows_affected == 1 || legacy.rows_affected == 1 {
            // The person's `sub` moves with the identity, in this transaction.
            displaced = Some(crate::domain::tokens::subjects::move_with_identity(&txn, from, user_id, now).await?);
        }
    }
    identity::Entity::delete_by_id(user_id.to_owned()).exec(&txn).await?;
    if let Some(holder) = identity::Entity::find()
        .filter(identity::Column::DocType.eq(doc.kind().as_str()))
        .filter(identity::Column::DocNumber.eq(doc.number.as_str()))
        .one(&txn)
        .await?
    {
        txn.rollback().await?;
        return Ok(if takeover_from.is_some() {
            BindOutcome::TakenMeanwhile
        } else {
            BindOutcome::Taken { takeover: holder.user_id }
        });
    }
    let row = identity_row(user_id, doc, level, method, same.map_or(now, |m| m.bound_at), now);
    if let Err(e) = row.insert(&txn).await {
        txn.rollback().await?;
        return if is_unique_violation(&e) { Ok(taken_after_race(db, doc, takeover_from).await?) } else { Err(e) };
    }
    match mirror_on_account(&txn, user_id, doc, now).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            // An account created with this ID number before binding existed.
            txn.rollback().await?;
            let legacy = user::Entity::find().filter(user::Column::IdNumber.eq(doc.number.as_str())).one(db).await?;
            return Ok(match (legacy, takeover_from) {
                (Some(u), None) => BindOutcome::Taken { takeover: u.id },
                _ => BindOutcome::TakenMeanwhile,
            });
        }
        Err(e) => return Err(e),
    }
    set_level(&txn, user_id, level).await?;
    identity_takeover::Entity::delete_many().filter(identity_takeover::Column::UserId.eq(user_id)).exec(&txn).await?;
    let displaced = match displaced {
        Some(moved) => {
            let from = moved.from_user.clone();
            let ended = end_sessions(&txn, &from, None, &moved.subject, now).await?;
            // The old account's audit row carries no address: the request
            // came from the taker, not from this account's holder.
            let detail = "identity moved to another account";
            audit(&txn, Some(&from), "identity_taken_over", detail, Some(""), now).await?;
            Some(Displaced { moved, ended })
        }
        None => None,
    };
    let other_document =
        mine.as_ref().is_some_and(|p| p.doc_type != doc.kind().as_str() || p.doc_number != doc.number.as_str());
    let mut rebound = None;
    if fx.rebind && other_document {
        // 换绑: the old identity is gone, so the account's other sessions
        // end and every grant and refresh token dies.
        let subject = crate::domain::tokens::subjects::of_account(&txn, user_id).await?;
        let ended = end_sessions(&txn, user_id, fx.keep_sid, &subject, now).await?;
        crate::domain::tokens::grants::revoke_all_for_user(&txn, user_id, now).await?;
        audit(&txn, Some(user_id), "identity_rebind", "previous identity replaced", fx.ip, now).await?;
        rebound = Some(ended);
    }
    audit_effects(&txn, user_id, level, fx, now).await?;
    txn.commit().await?;
    Ok(BindOutcome::Done { level, displaced, rebound })
}

/// The audit rows of a binding's [`Effects`], in its transaction.
async fn audit_effects<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    level: u8,
    fx: Effects<'_>,
    now: i64,
) -> Result<(), DbErr> {
    if let Some(action) = fx.audit {
        audit(conn, Some(user_id), action, &format!("level {level}{}", fx.detail), fx.ip, now).await?;
    }
    if let Some((who, action, detail)) = fx.also {
        audit(conn, Some(who), action, detail, fx.ip, now).await?;
    }
    Ok(())
}

async fn taken_after_race(db: &Store, doc: &Document, takeover_from: Option<&str>) -> Result<BindOutcome, DbErr> {
    if takeover_from.is_some() {
        return Ok(BindOutcome::TakenMeanwhile);
    }
    let holder = identity::Entity::find()
        .filter(identity::Column::DocType.eq(doc.kind().as_str()))
        .filter(identity::Column::DocNumber.eq(doc.number.as_str()))
        .one(db)
        .await?;
    Ok(match holder {
        Some(h) => BindOutcome::Taken { takeover: h.user_id },
        None => BindOutcome::TakenMeanwhile,
    })
}

/// Opens a takeover: the verified document waits for this account's face
/// check (B5). Returns the takeover id.
async fn open_takeover(db: &Store, user_id: &str, doc: &Document, holder: &str, now: i64) -> Result<String, DbErr> {
    identity_takeover::Entity::delete_many().filter(identity_takeover::Column::UserId.eq(user_id)).exec(db).await?;
    let id = crate::crypto::random_token(12);
    let document = serde_json::json!({
        "doc_type": doc.kind().as_str(),
        "number": doc.number.as_str(),
        "name": doc.name.as_str(),
        "valid_from": doc.validity.start.to_string(),
        "valid_to": doc.validity.end.map(|d| d.to_string()),
    });
    identity_takeover::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user_id.into()),
        document: Set(document.to_string()),
        holder_user_id: Set(Some(holder.into())),
        created_at: Set(now),
        expires_at: Set(now + TAKEOVER_LIFETIME),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The live takeover of an account, with its document.
pub async fn pending_takeover(
    db: &Store,
    user_id: &str,
    today: NaiveDate,
    now: i64,
) -> Result<Option<(identity_takeover::Model, Document)>, DbErr> {
    let row = identity_takeover::Entity::find()
        .filter(identity_takeover::Column::UserId.eq(user_id))
        .filter(identity_takeover::Column::ExpiresAt.gt(now))
        .order_by_desc(identity_takeover::Column::CreatedAt)
        .one(db)
        .await?;
    Ok(row.and_then(|r| {
        let v: serde_json::Value = serde_json::from_str(&r.document).ok()?;
        let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("").to_string();
        let kind = DocumentType::parse(&s("doc_type"))?;
        let number = DocumentNumber::parse(kind, &s("number")).ok()?;
        let name = PersonName::parse(&s("name")).ok()?;
        let to = s("valid_to");
        let validity = Validity::parse(&s("valid_from"), &to, to.is_empty()).ok()?;
        Some((r, Document::new(number, name, validity, today).ok()?))
    }))
}

/// L2 (B2): the authority checks name + number + validity; on a pass the
/// identity is bound (or rebound), or a takeover is opened when another
/// account holds it.
pub async fn verify_document<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    user_id: &str,
    doc: &Document,
    now: i64,
) -> Result<BindOutcome, DbErr> {
    verify_document_with(db, verifier, user_id, doc, now, Effects::default()).await
}

async fn verify_document_with<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    user_id: &str,
    doc: &Document,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let subj = subject(doc.kind().as_str(), doc.name.as_str(), doc.number.as_str());
    let verdict = verifier.check_id(doc).await;
    match record_verdict(db, user_id, "id", &subj, &verdict, now).await? {
        None => return Ok(BindOutcome::Unavailable),
        Some(Outcome::Pass) => {}
        Some(other) => return Ok(BindOutcome::Refused(other)),
    }
    match bind(db, user_id, doc, 2, "id_check", None, now, fx).await? {
        BindOutcome::Taken { takeover: holder } => {
            Ok(BindOutcome::Taken { takeover: open_takeover(db, user_id, doc, &holder, now).await? })
        }
        other => Ok(other),
    }
}

/// Whether a face may be asked for this document (B7: never for 0–6).
pub fn face_required(doc: &Document, today: NaiveDate) -> bool {
    doc.age_on(today).is_none_or(|age| age >= FACE_MIN_AGE)
}

/// L3 by face (B3), or the face check that completes a takeover (B5).
/// The sample goes to the verifier and nowhere else.
async fn face_check<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    user_id: &str,
    sample: &FaceSample,
    today: NaiveDate,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let takeover = pending_takeover(db, user_id, today, now).await?;
    let bound = current(db, user_id).await?;
    let doc = match (&takeover, &bound) {
        (Some((_, doc)), _) => doc.clone(),
        (None, Some(m)) => match document_of(m, today) {
            Some(d) => d,
            None => return Ok(BindOutcome::Refused(Outcome::Expired)),
        },
        (None, None) => return Ok(BindOutcome::NoIdentity),
    };
    if !face_required(&doc, today) {
        return Ok(BindOutcome::FaceNotRequired);
    }
    let subj = subject(doc.kind().as_str(), doc.name.as_str(), doc.number.as_str());
    let verdict = verifier.check_face(&doc, sample).await;
    match record_verdict(db, user_id, "face", &subj, &verdict, now).await? {
        None => return Ok(BindOutcome::Unavailable),
        Some(Outcome::Pass) => {}
        Some(other) => return Ok(BindOutcome::Refused(other)),
    }
    match takeover {
        Some((t, doc)) => {
            let holder = t.holder_user_id.as_deref().unwrap_or_default();
            bind(db, user_id, &doc, 3, "face", Some(holder), now, fx).await
        }
        None => raise(db, user_id, 3, "face", now, fx).await,
    }
}

/// Raises the bound identity (and the account) to at least `level`.
async fn raise(
    db: &Store,
    user_id: &str,
    level: u8,
    method: &str,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let r = identity::Entity::update_many()
        .col_expr(identity::Column::Level, Expr::value(i32::from(level)))
        .col_expr(identity::Column::Method, Expr::value(method))
        .col_expr(identity::Column::UpdatedAt, Expr::value(now))
        .filter(identity::Column::UserId.eq(user_id))
        .filter(identity::Column::Level.lt(i32::from(level)))
        .exec(&txn)
        .await?;
    let Some(row) = identity::Entity::find_by_id(user_id.to_owned()).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(BindOutcome::NoIdentity);
    };
    let level = if r.rows_affected == 1 { level } else { row.level.clamp(1, 4) as u8 };
    set_level(&txn, user_id, level).await?;
    audit_effects(&txn, user_id, level, fx, now).await?;
    txn.commit().await?;
    Ok(BindOutcome::Done { level, displaced: None, rebound: None })
}

/// L3 by bank card four elements (B3), for the bound resident ID.
async fn bank_card_check<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    user_id: &str,
    card: &BankCardCheck,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let Some(bound) = current(db, user_id).await? else { return Ok(BindOutcome::NoIdentity) };
    if bound.doc_number != card.id_number.as_str() || bound.name != card.name.as_str() {
        return Ok(BindOutcome::NotYourIdentity);
    }
    let subj = format!("bank_card {} {}", mask_name(card.name.as_str()), card.card.masked());
    let verdict = verifier.check_bank_card(card).await;
    match record_verdict(db, user_id, "bank_card", &subj, &verdict, now).await? {
        None => Ok(BindOutcome::Unavailable),
        Some(Outcome::Pass) => raise(db, user_id, 3, "bank_card", now, fx).await,
        Some(other) => Ok(BindOutcome::Refused(other)),
    }
}

/// L4 by a signed in-person assertion (B4): the chip was read in front of
/// the person, so the identity is bound even if another account held it.
async fn in_person_assertion<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    user_id: &str,
    token: &str,
    today: NaiveDate,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let claims = match verifier.check_in_person(token, now).await {
        Ok(Ok(c)) => c,
        Ok(Err(outcome)) => {
            record(db, Some(user_id), "in_person", "assertion", outcome.as_str(), None, None, now).await?;
            return Ok(BindOutcome::Refused(outcome));
        }
        Err(e) => {
            tracing::warn!("identity verifier (in_person): {e}");
            record(db, Some(user_id), "in_person", "assertion", "unavailable", None, None, now).await?;
            return Ok(BindOutcome::Unavailable);
        }
    };
    let subj = subject(claims.number.kind().as_str(), claims.name.as_str(), claims.number.as_str());
    if !crate::store::record_once(db, &format!("in_person:{}:{}", claims.issuer, claims.jti), claims.expires_at).await?
    {
        record(db, Some(user_id), "in_person", &subj, "replayed", Some(&claims.jti), None, now).await?;
        return Ok(BindOutcome::Replayed);
    }
    let Ok(doc) = Document::new(claims.number, claims.name, claims.validity, today) else {
        record(db, Some(user_id), "in_person", &subj, "expired", Some(&claims.jti), None, now).await?;
        return Ok(BindOutcome::DocumentExpired);
    };
    let detail = format!("issuer={} place={}", claims.issuer, claims.place);
    record(db, Some(user_id), "in_person", &subj, "pass", Some(&claims.jti), Some(&detail), now).await?;
    bind_over_holder(db, user_id, &doc, "in_person", now, fx).await
}

/// L4 bind that displaces any other holder: physical evidence outranks an
/// online binding.
async fn bind_over_holder(
    db: &Store,
    user_id: &str,
    doc: &Document,
    method: &str,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    match bind(db, user_id, doc, 4, method, None, now, fx).await? {
        BindOutcome::Taken { takeover: holder } => bind(db, user_id, doc, 4, method, Some(&holder), now, fx).await,
        other => Ok(other),
    }
}

/// How long a face check passed through the verifier counts for binding it
/// to a browser (a scan ticket confirmed from the app, D2).
pub const FACE_FRESH: i64 = 10 * 60;

/// Whether this person passed a face check through the verifier in the last
/// [`FACE_FRESH`] seconds. The app's own word is never enough: the check
/// must have gone through `POST /api/identity/face` and been recorded.
pub async fn recent_face_pass<C: ConnectionTrait>(db: &C, user_id: &str, now: i64) -> Result<bool, DbErr> {
    Ok(verification::Entity::find()
        .filter(verification::Column::UserId.eq(user_id))
        .filter(verification::Column::Kind.eq("face"))
        .filter(verification::Column::Outcome.eq("pass"))
        .filter(verification::Column::CreatedAt.gt(now - FACE_FRESH))
        .one(db)
        .await?
        .is_some())
}

pub async fn is_operator(db: &Store, user_id: &str) -> Result<bool, DbErr> {
    Ok(operator::Entity::find_by_id(user_id.to_owned()).one(db).await?.is_some())
}

/// Grants or revokes the counter-operator role (B4), audited in the same
/// transaction (`operator_granted` / `operator_revoked`, by whom).
pub async fn set_operator(db: &Store, user_id: &str, on: bool, by: &str, now: i64) -> Result<(), DbErr> {
    let txn = crate::store::begin_write(db).await?;
    operator::Entity::delete_by_id(user_id.to_owned()).exec(&txn).await?;
    if on {
        operator::ActiveModel { user_id: Set(user_id.into()), granted_by: Set(by.into()), granted_at: Set(now) }
            .insert(&txn)
            .await?;
    }
    let action = if on { "operator_granted" } else { "operator_revoked" };
    audit(&txn, Some(user_id), action, &format!("by {by}"), None, now).await?;
    txn.commit().await
}

/// L4 by a counter clerk (B4): the operator saw the person and the
/// physical document at `place`. `operator` is the operator's account id,
/// or `cli` for the bootstrap command.
pub async fn counter_verification(
    db: &Store,
    operator: &str,
    user_id: &str,
    doc: &Document,
    place: &str,
    now: i64,
) -> Result<BindOutcome, DbErr> {
    counter_verification_with(db, operator, user_id, doc, place, now, Effects::default()).await
}

async fn counter_verification_with(
    db: &Store,
    operator: &str,
    user_id: &str,
    doc: &Document,
    place: &str,
    now: i64,
    fx: Effects<'_>,
) -> Result<BindOutcome, DbErr> {
    let subj = subject(doc.kind().as_str(), doc.name.as_str(), doc.number.as_str());
    let detail = format!("operator={operator} place={place}");
    record(db, Some(user_id), "counter", &subj, "pass", None, Some(&detail), now).await?;
    bind_over_holder(db, user_id, doc, "counter", now, fx).await
}

/// Unbinding (解绑, B5) inside the caller's transaction: the account keeps
/// existing at L1 without an identity. Returns the identity it had.
async fn unbind<C: ConnectionTrait>(conn: &C, user_id: &str, now: i64) -> Result<Option<identity::Model>, DbErr> {
    let before = identity::Entity::find_by_id(user_id.to_owned()).one(conn).await?;
    identity::Entity::delete_by_id(user_id.to_owned()).exec(conn).await?;
    user::Entity::update_many()
        .col_expr(user::Column::IdNumber, Expr::value(Option::<String>::None))
        .col_expr(user::Column::Name, Expr::value(Option::<String>::None))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    set_level(conn, user_id, 1).await?;
    identity_takeover::Entity::delete_many().filter(identity_takeover::Column::UserId.eq(user_id)).exec(conn).await?;
    Ok(before)
}

// The use cases every entry path (pages, the app API, the admin counter,
// the CLI) calls. The binding, the sessions it ends (a rebind's, a
// takeover's on the old account) and, for `bind_identity`, its audit
// records commit in one transaction (`bind`); the notices (back-channel
// logout, SMS) follow the commit and are best effort.

/// The account a binding is for and where the request came from.
pub struct Binder<'a> {
    pub user: &'a user::Model,
    /// The session asking, which a rebind keeps; `None` off the web.
    pub keep_sid: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub now: i64,
}

/// Who recorded a counter verification (B4).
#[derive(Debug, Clone, Copy)]
pub enum CounterClerk<'a> {
    /// An operator's account, at L4 in its own session.
    Operator(&'a str),
    /// The bootstrap command line.
    Cli,
}

/// L2 bind or 换绑 rebind with a document checked by the authority, in one
/// transaction with its audit record. A rebind to another document also
/// ends the account's other sessions and revokes its grants and refresh
/// tokens (the old identity is gone) in that transaction; then the apps and
/// the phone are told.
pub async fn bind_identity<V: IdentityVerifier, N: Notices>(
    db: &Store,
    verifier: &V,
    notices: &N,
    b: &Binder<'_>,
    doc: &Document,
) -> Result<BindOutcome, DbErr> {
    let fx =
        Effects { audit: Some("identity_bind"), rebind: true, keep_sid: b.keep_sid, ip: b.ip, ..Default::default() };
    let r = verify_document_with(db, verifier, &b.user.id, doc, b.now, fx).await?;
    if let BindOutcome::Done { rebound: Some(ended), .. } = &r {
        notices.sessions_ended(ended).await;
        if let Some(phone) = &b.user.phone {
            notices.notify_phone(phone, "sms_identity_rebound", b.now).await;
        }
    }
    if let BindOutcome::Done { displaced: Some(d), .. } = &r {
        displaced(db, notices, d, b.now).await;
    }
    Ok(r)
}

/// L3 by the bank card's four elements (B3).
pub async fn raise_by_bank_card<V: IdentityVerifier, N: Notices>(
    db: &Store,
    verifier: &V,
    notices: &N,
    b: &Binder<'_>,
    card: &BankCardCheck,
) -> Result<BindOutcome, DbErr> {
    let r = bank_card_check(db, verifier, &b.user.id, card, b.now, audited(b, "identity_bank_card")).await?;
    settle(db, notices, &r, b.now).await;
    Ok(r)
}

/// L3 by a face check through the app, or the face step of a takeover (B3, B5).
pub async fn raise_by_face<V: IdentityVerifier, N: Notices>(
    db: &Store,
    verifier: &V,
    notices: &N,
    b: &Binder<'_>,
    sample: &FaceSample,
    today: NaiveDate,
) -> Result<BindOutcome, DbErr> {
    let r = face_check(db, verifier, &b.user.id, sample, today, b.now, audited(b, "identity_face")).await?;
    settle(db, notices, &r, b.now).await;
    Ok(r)
}

/// The outcome of a bank-card takeover: the SMS code to the bank's phone
/// was wrong (nothing was checked or changed), or what the binding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardTakeover {
    WrongCode,
    Bound(BindOutcome),
}

/// B5 by the bank card's four elements instead of a face check (seed 002):
/// an account with a pending takeover (its document passed the authority
/// check but is bound to another account) proves the person by the name
/// and document number of that document, a debit card and the phone the
/// bank has on file — the SMS code sent to that phone first, then the
/// verifier's four-element check. On a pass the identity moves exactly as
/// after the face check: one transaction binds it at L3 to this account,
/// ends the old account's sessions and grants, moves the subjects and
/// writes the audit (`identity_bank_card`, `identity_taken_over`); then the
/// old account's apps and phone are told.
#[allow(clippy::too_many_arguments)]
pub async fn take_over_by_bank_card<V: IdentityVerifier, N: Notices>(
    db: &Store,
    verifier: &V,
    notices: &N,
    codes: &crate::domain::authn::sms_codes::SmsCodes,
    b: &Binder<'_>,
    card: &BankCardCheck,
    bank_phone_code: &str,
    today: NaiveDate,
) -> Result<CardTakeover, DbErr> {
    let user_id = b.user.id.as_str();
    let Some((t, doc)) = pending_takeover(db, user_id, today, b.now).await? else {
        return Ok(CardTakeover::Bound(BindOutcome::NoIdentity));
    };
    if doc.number.as_str() != card.id_number.as_str() || doc.name.as_str() != card.name.as_str() {
        return Ok(CardTakeover::Bound(BindOutcome::NotYourIdentity));
    }
    let purpose = crate::ports::sms::SmsPurpose::Verify;
    if !codes.verify(card.phone.as_str(), purpose, bank_phone_code).await? {
        return Ok(CardTakeover::WrongCode);
    }
    let subj = format!("bank_card {} {}", mask_name(card.name.as_str()), card.card.masked());
    let verdict = verifier.check_bank_card(card).await;
    let r = match record_verdict(db, user_id, "bank_card", &subj, &verdict, b.now).await? {
        None => BindOutcome::Unavailable,
        Some(Outcome::Pass) => {
            let holder = t.holder_user_id.as_deref().unwrap_or_default();
            bind(db, user_id, &doc, 3, "bank_card", Some(holder), b.now, audited(b, "identity_bank_card")).await?
        }
        Some(other) => BindOutcome::Refused(other),
    };
    settle(db, notices, &r, b.now).await;
    Ok(CardTakeover::Bound(r))
}

/// L4 by a signed chip-reader or CA assertion (B4).
pub async fn bind_in_person<V: IdentityVerifier, N: Notices>(
    db: &Store,
    verifier: &V,
    notices: &N,
    b: &Binder<'_>,
    assertion: &str,
    today: NaiveDate,
) -> Result<BindOutcome, DbErr> {
    let fx = audited(b, "identity_in_person");
    let r = in_person_assertion(db, verifier, &b.user.id, assertion, today, b.now, fx).await?;
    settle(db, notices, &r, b.now).await;
    Ok(r)
}

/// L4 recorded at a counter (B4), from the admin page or the CLI.
pub async fn record_counter<N: Notices>(
    db: &Store,
    notices: &N,
    clerk: CounterClerk<'_>,
    b: &Binder<'_>,
    doc: &Document,
    place: &str,
) -> Result<BindOutcome, DbErr> {
    let target = b.user.id.as_str();
    let (operator, by, recorded) = match clerk {
        CounterClerk::Operator(op) => (op, format!(" by operator {op}"), Some(format!("for {target} at {place}"))),
        CounterClerk::Cli => ("cli", " by cli".to_string(), None),
    };
    let mut fx = audited(b, "identity_counter");
    fx.detail = &by;
    fx.also = recorded.as_deref().map(|r| (operator, "counter_verification_recorded", r));
    let r = counter_verification_with(db, operator, target, doc, place, b.now, fx).await?;
    settle(db, notices, &r, b.now).await;
    Ok(r)
}

/// 解绑 (002 §1.3.3.2), after the handler's SMS re-verification: in one
/// transaction the identity goes, the account drops to L1, every session
/// ends with its grants, and the audit row is written; then the apps and
/// the phone are told. `false` when there was no identity to unbind.
pub async fn unbind_identity<N: Notices>(db: &Store, notices: &N, b: &Binder<'_>) -> Result<bool, DbErr> {
    let user_id = b.user.id.as_str();
    let txn = crate::store::begin_write(db).await?;
    if unbind(&txn, user_id, b.now).await?.is_none() {
        txn.rollback().await?;
        return Ok(false);
    }
    let subject = crate::domain::tokens::subjects::of_account(&txn, user_id).await?;
    let ended = end_sessions(&txn, user_id, None, &subject, b.now).await?;
    crate::domain::tokens::grants::revoke_all_for_user(&txn, user_id, b.now).await?;
    audit(&txn, Some(user_id), "identity_unbind", "identity removed", b.ip, b.now).await?;
    txn.commit().await?;
    notices.sessions_ended(&ended).await;
    if let Some(phone) = &b.user.phone {
        notices.notify_phone(phone, "sms_identity_unbound", b.now).await;
    }
    Ok(true)
}

/// A binding audited as `action` in its own transaction.
fn audited<'a>(b: &Binder<'a>, action: &'a str) -> Effects<'a> {
    Effects { audit: Some(action), ip: b.ip, ..Default::default() }
}

/// After a successful binding committed: the account that lost the
/// identity in a takeover is told.
async fn settle<N: Notices>(db: &Store, notices: &N, r: &BindOutcome, now: i64) {
    if let BindOutcome::Done { displaced: Some(moved), .. } = r {
        displaced(db, notices, moved, now).await;
    }
}

/// The notices after a takeover (B5), once it committed: the relying apps
/// of the account that lost the identity see its ended sessions through
/// back-channel logout, and its phone is told. The takeover already ended
/// those sessions (audited as `identity_taken_over`), revoked both
/// accounts' grants and moved the person's `sub` (`domain::tokens::subjects`); the
/// logout tokens name the `sub` each app knew. The taker stays signed in,
/// but its apps drop the sessions they held under its retired `sub`.
pub async fn displaced<N: Notices>(db: &Store, notices: &N, d: &Displaced, now: i64) {
    let moved = &d.moved;
    notices.sessions_ended(&d.ended).await;
    match crate::domain::authn::sessions::live_for_user(db, &moved.to_user, now).await {
        Ok(live) => {
            let retired: Vec<EndedSession> =
                live.into_iter().map(|s| EndedSession { sid: s.sid, subject: moved.taker_previous.clone() }).collect();
            notices.sessions_ended(&retired).await;
        }
        Err(e) => tracing::error!("takeover: telling the taker's apps failed: {e}"),
    }
    match user::Entity::find_by_id(moved.from_user.clone()).one(db).await {
        Ok(Some(u)) => {
            if let Some(phone) = &u.phone {
                notices.notify_phone(phone, "sms_identity_taken_over", now).await;
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!("takeover: reading the old account failed: {e}"),
    }
}

/// Account deletion (A6): the identity and pending takeovers go; the
/// verification record keeps kind, result and reference under the
/// pseudonymous subject id, without the masked name and number.
pub async fn forget<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), DbErr> {
    identity::Entity::delete_by_id(user_id.to_owned()).exec(db).await?;
    crate::domain::tokens::subjects::forget(db, user_id).await?;
    identity_takeover::Entity::delete_many().filter(identity_takeover::Column::UserId.eq(user_id)).exec(db).await?;
    verification::Entity::update_many()
        .col_expr(verification::Column::Subject, Expr::value(""))
        .col_expr(verification::Column::Detail, Expr::value(Option::<String>::None))
        .filter(verification::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// An appeal released this ID number from the account holding it (A8).
pub async fn release_number<C: ConnectionTrait>(db: &C, number: &str) -> Result<Vec<String>, DbErr> {
    let holders = identity::Entity::find().filter(identity::Column::DocNumber.eq(number)).all(db).await?;
    for h in &holders {
        identity::Entity::delete_by_id(h.user_id.clone()).exec(db).await?;
        set_level(db, &h.user_id, 1).await?;
    }
    Ok(holders.into_iter().map(|h| h.user_id).collect())
}

/// The latest authority checks, newest first, optionally of one account
/// (the operator's `identity verifications` listing).
pub async fn verifications(db: &Store, user_id: Option<&str>, limit: u64) -> Result<Vec<verification::Model>, DbErr> {
    use sea_orm::QuerySelect;
    let mut q = verification::Entity::find().order_by_desc(verification::Column::CreatedAt).limit(limit);
    if let Some(id) = user_id {
        q = q.filter(verification::Column::UserId.eq(id));
    }
    q.all(db).await
}
