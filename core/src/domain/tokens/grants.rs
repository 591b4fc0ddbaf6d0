//! Grants: what a user authorised a client to have. Authorization codes and
//! refresh tokens point at a grant; revoking the grant ends everything it
//! issued, including JWT access tokens (they carry the grant id and are
//! checked at userinfo and introspection).
//!
//! Every single-use transition is one conditional UPDATE whose affected-row
//! count decides the winner, so two racing requests or two nodes cannot
//! both redeem a code or rotate a refresh token.
use crate::crypto::{SecretHasher, pkce_s256, random_token};
use crate::domain::error::{DomainResult, OAuthError};
use crate::store::Store;
use crate::store::entities::{auth_code, grant, refresh_token};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, InsertStatement, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, QueryFilter, QueryTrait, Set,
};

const CODE: &str = "authorization_code";
const REFRESH: &str = "refresh_token";

#[derive(Debug, Clone)]
pub struct NewGrant {
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub scope: String,
    pub claims: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    /// The enterprise and delegation the user acts under (C4), if any.
    pub enterprise_id: Option<String>,
    pub delegation_id: Option<String>,
    /// The client's pairwise sector (`Client::sector`); none = public subjects.
    pub sector: Option<String>,
}

/// Creates the grant and its authorization code so that both stand or
/// neither does; returns the code (only its keyed digest is stored). Both
/// expire from `now`.
#[allow(clippy::too_many_arguments)]
pub async fn create_with_code(
    db: &Store,
    hasher: &SecretHasher,
    new: NewGrant,
    redirect_uri: &str,
    code_challenge: Option<String>,
    dpop_jkt: Option<String>,
    code_ttl: i64,
    grant_ttl: i64,
    now: i64,
) -> Result<String, DbErr> {
    let grant_id = random_token(18);
    let code = random_token(32);
    let code_row = auth_code::ActiveModel {
        code_hash: Set(hasher.digest(CODE, &code)),
        client_id: Set(new.client_id.clone()),
        grant_id: Set(grant_id.clone()),
        redirect_uri: Set(redirect_uri.to_string()),
        code_challenge: Set(code_challenge),
        expires_at: Set(now + code_ttl),
        consumed_at: Set(None),
        dpop_jkt: Set(dpop_jkt),
    };
    let backend = db.get_database_backend();
    match new.sector.clone() {
        // A public subject is read by the grant's insert itself, so the two
        // inserts only write: they go to the database as one unit, without
        // a transaction held open across this task's awaits (B5: the
        // subject is still read at the moment of writing).
        None => {
            let subject = crate::domain::tokens::subjects::of_account_expr(&new.user_id);
            let grant = insert_with_subject(grant_row(grant_id, new, String::new(), grant_ttl, now), subject)?;
            let code_insert = auth_code::Entity::insert(code_row).build(backend);
            crate::store::write_together(db, vec![backend.build(&grant), code_insert]).await?;
        }
        // A pairwise subject may be drawn here for the first time: read,
        // then write, in one writer transaction.
        Some(sector) => {
            let txn = crate::store::begin_write(db).await?;
            let subject = crate::domain::tokens::subjects::of_account_in(&txn, Some(&sector), &new.user_id).await?;
            grant_row(grant_id, new, subject, grant_ttl, now).insert(&txn).await?;
            code_row.insert(&txn).await?;
            txn.commit().await?;
        }
    }
    Ok(code)
}

/// The insert of `row` with its `subject` column computed by `subject`
/// (an SQL expression) in the same statement.
fn insert_with_subject(row: grant::ActiveModel, subject: Expr) -> Result<InsertStatement, DbErr> {
    let (mut columns, mut values) = (Vec::new(), Vec::new());
    for c in grant::Column::iter() {
        if matches!(c, grant::Column::Subject) {
            columns.push(c);
            values.push(subject.clone());
        } else if let Some(v) = row.get(c).into_value() {
            columns.push(c);
            values.push(Expr::val(v));
        }
    }
    Ok(Query::insert()
        .into_table(grant::Entity)
        .columns(columns)
        .values(values)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned())
}

/// Redeems a code (RFC 6749 §4.1.3, RFC 7636 §4.6). A second redemption
/// fails and revokes the grant, and with it every token the first one
/// produced (RFC 6749 §10.5, RFC 9700 §4.2.4).
#[allow(clippy::too_many_arguments)]
pub async fn redeem_code(
    db: &Store,
    hasher: &SecretHasher,
    code: &str,
    client_id: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    jkt: Option<&str>,
    now: i64,
) -> DomainResult<grant::Model> {
    let invalid = |d: &str| OAuthError::invalid_grant(d);
    if code.is_empty() || code.len() > 256 {
        return Err(invalid("invalid authorization code").into());
    }
    let (row, g) = with_grant::<auth_code::Entity>(
        db,
        auth_code::Column::CodeHash,
        &hasher.digest(CODE, code),
        auth_code::Column::GrantId,
    )
    .await?
    .ok_or_else(|| invalid("invalid authorization code"))?;
    if row.client_id != client_id {
        return Err(invalid("the code was issued to another client").into());
    }
    if row.consumed_at.is_some() {
        revoke_grant(db, &row.grant_id, now).await?;
        return Err(invalid("the authorization code was already used").into());
    }
    if row.expires_at <= now {
        return Err(invalid("the authorization code has expired").into());
    }
    if redirect_uri != Some(row.redirect_uri.as_str()) {
        return Err(invalid("redirect_uri does not match the authorization request").into());
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            if !valid_verifier(v) {
                return Err(
                    OAuthError::invalid_request("code_verifier must be 43–128 characters of [A-Za-z0-9-._~]").into()
                );
            }
            if &pkce_s256(v) != challenge {
                return Err(invalid("PKCE verification failed").into());
            }
        }
        (Some(_), None) => return Err(invalid("code_verifier is required").into()),
        (None, Some(_)) => {
            return Err(invalid("code_verifier sent but no code_challenge was").into());
        }
        (None, None) => {}
    }
    // RFC 9449 §10: a code bound with `dpop_jkt` is redeemed only with a
    // proof by that key; refused before consuming, so a thief cannot burn it.
    if let Some(bound) = row.dpop_jkt.as_deref()
        && jkt != Some(bound)
    {
        return Err(OAuthError::new(
            "invalid_dpop_proof",
            "the authorization code is bound (dpop_jkt) to another DPoP key than this proof's",
        )
        .into());
    }
    // Read the grant before consuming: the winner of a race must not be
    // turned away by a concurrent replay revoking the grant a moment later
    // (that revocation still kills the tokens it issues, via `gid`).
    let g = Some(g).filter(|g| is_live(g, now)).ok_or_else(|| invalid("the grant was revoked"))?;
    let won = auth_code::Entity::update_many()
        .col_expr(auth_code::Column::ConsumedAt, Expr::value(now))
        .filter(auth_code::Column::CodeHash.eq(row.code_hash.clone()))
        .filter(auth_code::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    if won.rows_affected != 1 {
        revoke_grant(db, &row.grant_id, now).await?;
        return Err(invalid("the authorization code was already used").into());
    }
    Ok(g)
}

pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Binds a grant's refresh tokens to a DPoP key (RFC 9449 §5: public
/// clients); the first binding stays.
pub async fn bind_dpop(db: &Store, grant_id: &str, jkt: &str) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::DpopJkt, Expr::value(jkt))
        .filter(grant::Column::Id.eq(grant_id))
        .filter(grant::Column::DpopJkt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Binds a grant's refresh tokens to the client certificate whose
/// thumbprint its first bound token carried (RFC 8705 §3); never rebinds.
pub async fn bind_certificate(db: &Store, grant_id: &str, x5t: &str) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::CertX5t, Expr::value(x5t))
        .filter(grant::Column::Id.eq(grant_id))
        .filter(grant::Column::CertX5t.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Whether a grant is neither revoked nor expired at `now`.
pub fn is_live(g: &grant::Model, now: i64) -> bool {
    g.revoked_at.is_none() && g.expires_at > now
}

/// The grant if it is neither revoked nor expired at `now`.
pub async fn active_grant(db: &Store, grant_id: &str, now: i64) -> Result<Option<grant::Model>, DbErr> {
    Ok(grant::Entity::find_by_id(grant_id.to_owned()).one(db).await?.filter(|g| is_live(g, now)))
}

/// The grant `gid` if it is live at `now` and the access token `jti` issued
/// under it was not revoked on its own: one statement for userinfo's and
/// introspection's two checks.
pub async fn live_grant_of_token(db: &Store, gid: &str, jti: &str, now: i64) -> Result<Option<grant::Model>, DbErr> {
    use crate::store::entities::revoked_token;
    let revoked = Query::select()
        .expr(Expr::val(1))
        .from(revoked_token::Entity)
        .and_where(Expr::col((revoked_token::Entity, revoked_token::Column::Jti)).eq(jti))
        .to_owned();
    let mut query = Query::select();
    for c in grant::Column::iter() {
        query.column((grant::Entity, c));
    }
    query
        .expr_as(Expr::exists(revoked), Alias::new("token_revoked"))
        .from(grant::Entity)
        .and_where(Expr::col((grant::Entity, grant::Column::Id)).eq(gid));
    let Some(row) = db.query_one(&query).await? else {
        return Ok(None);
    };
    if row.try_get::<bool>("", "token_revoked")? {
        return Ok(None);
    }
    let g = grant::Model::from_query_result(&row, "")?;
    Ok(Some(g).filter(|g| is_live(g, now)))
}

pub async fn issue_refresh(db: &Store, hasher: &SecretHasher, g: &grant::Model) -> Result<String, DbErr> {
    let token = random_token(32);
    refresh_token::ActiveModel {
        token_hash: Set(hasher.digest(REFRESH, &token)),
        grant_id: Set(g.id.clone()),
        expires_at: Set(g.expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Rotates a refresh token (RFC 9700 §4.14.2) already looked up with
/// [`refresh_lookup`] (the token endpoint checks its bindings first): the
/// presented one is consumed by a conditional update, so of two racing
/// presentations one wins and the other revokes the whole grant, as does
/// presenting an already-rotated one.
pub async fn rotate_found(
    db: &Store,
    found: Option<(refresh_token::Model, grant::Model)>,
    client_id: &str,
    now: i64,
) -> DomainResult<grant::Model> {
    let invalid = || OAuthError::invalid_grant("invalid refresh token");
    let (row, g) = found.ok_or_else(invalid)?;
    if g.client_id != client_id {
        return Err(invalid().into());
    }
    if row.used_at.is_some() {
        revoke_grant(db, &g.id, now).await?;
        return Err(OAuthError::invalid_grant("refresh token reuse detected; the grant is revoked").into());
    }
    if row.expires_at <= now || g.revoked_at.is_some() {
        return Err(invalid().into());
    }
    let won = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::TokenHash.eq(row.token_hash.clone()))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if won.rows_affected != 1 {
        revoke_grant(db, &g.id, now).await?;
        return Err(OAuthError::invalid_grant("refresh token reuse detected; the grant is revoked").into());
    }
    Ok(g)
}

/// The grant behind a refresh token, if the token is live (for revocation
/// and introspection).
pub async fn refresh_lookup(
    db: &Store,
    hasher: &SecretHasher,
    token: &str,
) -> Result<Option<(refresh_token::Model, grant::Model)>, DbErr> {
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    with_grant::<refresh_token::Entity>(
        db,
        refresh_token::Column::TokenHash,
        &hasher.digest(REFRESH, token),
        refresh_token::Column::GrantId,
    )
    .await
}

/// A code or refresh token (the row of `E` whose `key` column holds `value`)
/// with the grant it points at, read in one statement: the token endpoint's
/// hot path. Columns come back as `r_<column>` and `g_<column>`.
async fn with_grant<E>(
    db: &Store,
    key: E::Column,
    value: &str,
    grant_id: E::Column,
) -> Result<Option<(E::Model, grant::Model)>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
{
    let mut query = Query::select();
    for c in E::Column::iter() {
        query.expr_as(Expr::col((E::default(), c)), Alias::new(format!("r_{}", c.as_str())));
    }
    for c in grant::Column::iter() {
        query.expr_as(Expr::col((grant::Entity, c)), Alias::new(format!("g_{}", c.as_str())));
    }
    query
        .from(E::default())
        .inner_join(grant::Entity, Expr::col((grant::Entity, grant::Column::Id)).equals((E::default(), grant_id)))
        .and_where(Expr::col((E::default(), key)).eq(value));
    let Some(row) = db.query_one(&query).await? else {
        return Ok(None);
    };
    Ok(Some((E::Model::from_query_result(&row, "r_")?, grant::Model::from_query_result(&row, "g_")?)))
}

/// Revokes the live grants matching `which`, at `now`.
async fn revoke_where<C: ConnectionTrait>(conn: &C, which: Condition, now: i64) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .filter(which)
        .filter(grant::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn revoke_grant(db: &Store, grant_id: &str, now: i64) -> Result<(), DbErr> {
    revoke_where(db, Condition::all().add(grant::Column::Id.eq(grant_id)), now).await
}

pub async fn revoke_all_for_user<C: ConnectionTrait>(db: &C, user_id: &str, now: i64) -> Result<(), DbErr> {
    revoke_where(db, Condition::all().add(grant::Column::UserId.eq(user_id)), now).await
}

pub async fn revoke_by_sid<C: ConnectionTrait>(db: &C, sid: &str, now: i64) -> Result<(), DbErr> {
    revoke_where(db, Condition::all().add(grant::Column::Sid.eq(sid)), now).await
}

/// Revokes every grant made under a delegation (C3 revocation): their
/// refresh tokens and access tokens stop working at once.
pub async fn revoke_for_delegation<C: ConnectionTrait>(conn: &C, delegation_id: &str, now: i64) -> Result<(), DbErr> {
    revoke_where(conn, Condition::all().add(grant::Column::DelegationId.eq(delegation_id)), now).await
}

/// The row of a new grant, live for `ttl` seconds from `now`.
fn grant_row(id: String, new: NewGrant, subject: String, ttl: i64, now: i64) -> grant::ActiveModel {
    grant::ActiveModel {
        id: Set(id),
        client_id: Set(new.client_id),
        subject: Set(Some(subject)),
        user_id: Set(new.user_id),
        sid: Set(new.sid),
        scope: Set(new.scope),
        claims: Set(new.claims),
        nonce: Set(new.nonce),
        auth_time: Set(new.auth_time),
        acr: Set(new.acr),
        amr: Set(serde_json::to_string(&new.amr).unwrap_or_else(|_| "[]".into())),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        revoked_at: Set(None),
        enterprise_id: Set(new.enterprise_id),
        delegation_id: Set(new.delegation_id),
        dpop_jkt: Set(None),
        sector: Set(new.sector),
        cert_x5t: Set(None),
    }
}

/// A grant without an authorization code (RFC 8693 token exchange): the
/// delegated token hangs off it so ending the delegation ends the token.
pub async fn create_direct(db: &Store, new: NewGrant, ttl: i64, now: i64) -> Result<grant::Model, DbErr> {
    let subject = crate::domain::tokens::subjects::of_account_in(db, new.sector.as_deref(), &new.user_id).await?;
    grant_row(random_token(18), new, subject, ttl, now).insert(db).await
}
