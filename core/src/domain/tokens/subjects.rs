//! The `sub` relying apps see (OIDC Core §2: locally unique, never
//! reassigned) — the one place that maps between accounts and subjects.
//!
//! A subject names a *person*: when another account takes over a real-name
//! identity (B5, after an L3 face check) the subject moves with the
//! identity, so every app keeps seeing the same `sub` for that person. The
//! displaced account gets a fresh subject (it is now an identity-less
//! account no app knows) and the taker's previous subject is retired. An
//! account that never took part in a takeover has no row in
//! `account_subjects`: its `sub` is its account id.
//!
//! Outbound, tokens carry the subject recorded on their grant
//! (`of_grant`). Inbound, an access token is mapped through its grant
//! (`account_of_token`), never by reading its `sub` back; a bare `sub`
//! (`id_token_hint`) through `account_for`.
use crate::crypto::random_token;
use crate::store::Store;
use crate::store::entities::{account_subject, delegation, enterprise, grant, pairwise_subject, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value};

/// `subject_type` of a client whose apps see one `sub` per sector.
pub const PAIRWISE: &str = "pairwise";
pub const PUBLIC: &str = "public";

/// The `sub` an app in `sector` sees for a person's subject (OIDC Core
/// §8.1): the person's subject itself when public (`None`), else a random
/// identifier drawn once per (sector, person) and kept. Because it follows
/// the *person's* subject, it survives an identity takeover (B5) unchanged.
pub async fn in_sector<C: ConnectionTrait>(db: &C, sector: Option<&str>, person: &str) -> Result<String, DbErr> {
    let Some(sector) = sector else {
        return Ok(person.to_string());
    };
    let find = || {
        pairwise_subject::Entity::find()
            .filter(pairwise_subject::Column::Sector.eq(sector))
            .filter(pairwise_subject::Column::Person.eq(person))
    };
    if let Some(r) = find().one(db).await? {
        return Ok(r.subject);
    }
    // Two first sign-ins racing: the unique (sector, person) index keeps one.
    let row = pairwise_subject::ActiveModel {
        subject: Set(random_token(18)),
        sector: Set(sector.into()),
        person: Set(person.into()),
        created_at: Set(0),
    };
    let _ = pairwise_subject::Entity::insert(row)
        .on_conflict(sea_orm::sea_query::OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    find().one(db).await?.map(|r| r.subject).ok_or_else(|| DbErr::RecordNotFound("pairwise subject".into()))
}

/// The `sub` an app in `sector` sees for an account now.
pub async fn of_account_in<C: ConnectionTrait>(db: &C, sector: Option<&str>, user_id: &str) -> Result<String, DbErr> {
    let person = of_account(db, user_id).await?;
    in_sector(db, sector, &person).await
}

/// The account a `sub` from an app in `sector` names now, if any: a
/// pairwise `sub` is looked up in its sector only, so one app's `sub`
/// means nothing at another sector.
pub async fn account_for_in<C: ConnectionTrait>(
    db: &C,
    sector: Option<&str>,
    sub: &str,
) -> Result<Option<String>, DbErr> {
    let Some(sector) = sector else {
        return account_for(db, sub).await;
    };
    match pairwise_subject::Entity::find_by_id(sub.to_owned()).one(db).await? {
        Some(r) if r.sector == sector => account_for(db, &r.person).await,
        _ => Ok(None),
    }
}

/// The `sub` a grant's tokens carry.
pub fn of_grant(g: &grant::Model) -> &str {
    g.subject.as_deref().unwrap_or(&g.user_id)
}

/// The account's `sub` now.
pub async fn of_account<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<String, DbErr> {
    Ok(account_subject::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
        .map_or_else(|| user_id.to_string(), |r| r.subject))
}

/// [`of_account`] as an SQL expression, for an insert that records the
/// subject in the same statement (the code flow's grant, inside its write
/// transaction): the account's subject row if it has one, else its id.
pub fn of_account_expr(user_id: &str) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::{Expr, ExprTrait, Func, Query, QueryStatementBuilder};
    let row = Query::select()
        .column(account_subject::Column::Subject)
        .from(account_subject::Entity)
        .and_where(Expr::col(account_subject::Column::UserId).eq(user_id))
        .to_owned();
    Func::coalesce([Expr::SubQuery(None, Box::new(row.into_sub_query_statement())), Expr::val(user_id)]).into()
}

/// The account a `sub` names now, if any.
pub async fn account_for<C: ConnectionTrait>(db: &C, sub: &str) -> Result<Option<String>, DbErr> {
    if let Some(r) = account_subject::Entity::find().filter(account_subject::Column::Subject.eq(sub)).one(db).await? {
        return Ok(Some(r.user_id));
    }
    // An account id is a subject only while the account has no row here:
    // a taker's own id was retired when it received the person's subject.
    if account_subject::Entity::find_by_id(sub.to_owned()).one(db).await?.is_some() {
        return Ok(None);
    }
    Ok(user::Entity::find_by_id(sub.to_owned()).one(db).await?.map(|u| u.id))
}

/// The account a (checked) access token speaks for: its grant's account,
/// while the grant is live at `now`.
pub async fn account_of_token(db: &Store, claims: &Map<String, Value>, now: i64) -> Result<Option<String>, DbErr> {
    let Some(gid) = claims.get("gid").and_then(Value::as_str) else {
        return Ok(None);
    };
    Ok(crate::domain::tokens::grants::active_grant(db, gid, now).await?.map(|g| g.user_id))
}

/// What a takeover did to the subjects, for the back-channel logout tokens
/// (each app is told about the `sub` it knew).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The account that lost the identity.
    pub from_user: String,
    /// The account that took it over.
    pub to_user: String,
    /// The person's subject: the displaced account's before, the taker's now.
    pub subject: String,
    /// The taker's subject before the move (retired).
    pub taker_previous: String,
}

/// Moves the person's subject from `from` to `to`, inside the caller's
/// takeover transaction, and revokes every grant of both accounts: they
/// were issued under subjects that no longer name those accounts. What the
/// person holds as a person moves too — delegations received (agent, C6
/// grantee, guardian) and granted (C6 principal), and standing as an
/// enterprise's legal representative — so tokens acting for someone keep
/// naming the person (`act.sub`), and the identity-less account left behind
/// cannot act for anyone.
pub(crate) async fn move_with_identity<C: ConnectionTrait>(
    txn: &C,
    from: &str,
    to: &str,
    now: i64,
) -> Result<Moved, DbErr> {
    let subject = of_account(txn, from).await?;
    let taker_previous = of_account(txn, to).await?;
    account_subject::Entity::delete_many().filter(account_subject::Column::UserId.is_in([from, to])).exec(txn).await?;
    let rows = [(from, random_token(18)), (to, subject.clone())];
    account_subject::Entity::insert_many(rows.into_iter().map(|(user_id, subject)| account_subject::ActiveModel {
        user_id: Set(user_id.into()),
        subject: Set(subject),
        updated_at: Set(now),
    }))
    .exec_without_returning(txn)
    .await?;
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .filter(grant::Column::UserId.is_in([from, to]))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    for side in [delegation::Column::GranteeUserId, delegation::Column::PrincipalUserId] {
        delegation::Entity::update_many().col_expr(side, Expr::value(to)).filter(side.eq(from)).exec(txn).await?;
    }
    // A grant between the two accounts would now be the person's to itself.
    delegation::Entity::update_many()
        .col_expr(delegation::Column::State, Expr::value(crate::domain::delegation::DelegationState::Revoked.as_str()))
        .col_expr(delegation::Column::ModifiedAt, Expr::value(now))
        .filter(delegation::Column::PrincipalUserId.eq(to))
        .filter(delegation::Column::GranteeUserId.eq(to))
        .exec(txn)
        .await?;
    enterprise::Entity::update_many()
        .col_expr(enterprise::Column::RepresentativeUserId, Expr::value(to))
        .filter(enterprise::Column::RepresentativeUserId.eq(from))
        .exec(txn)
        .await?;
    Ok(Moved { from_user: from.into(), to_user: to.into(), subject, taker_previous })
}

/// Account deletion (A6): the subject row goes with the account.
pub async fn forget<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), DbErr> {
    account_subject::Entity::delete_by_id(user_id.to_owned()).exec(db).await?;
    Ok(())
}
