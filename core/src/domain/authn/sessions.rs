//! SSO sessions. The browser holds a 256-bit random cookie; the database
//! holds only its SHA-256, so a leaked table cannot be replayed. The public
//! `sid` (ID token, back-channel logout) is a separate random value.
use crate::config::SessionConfig;
use crate::crypto::{random_token, sha256_b64};
use crate::domain::assurance::{self, Factor, FactorEvent};
use crate::domain::audit::{Actor, Event};
use crate::store::Store;
use crate::store::entities::{session, session_client};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id_hash: String,
    pub sid: String,
    pub user_id: String,
    /// When the user last authenticated (first sign-in or a step-up factor).
    pub auth_time: i64,
    /// Every factor used in this session and when (the latest use of each).
    pub factors: Vec<FactorEvent>,
    /// "Remember this device for 30 days": the cookie persists.
    pub remember: bool,
}

impl SessionInfo {
    /// RFC 8176 methods used in this session.
    pub fn amr(&self) -> Vec<String> {
        assurance::amr(&self.factors)
    }
}

fn info(m: session::Model) -> SessionInfo {
    SessionInfo {
        factors: serde_json::from_str(&m.factors).unwrap_or_default(),
        id_hash: m.id_hash,
        sid: m.sid,
        user_id: m.user_id,
        auth_time: m.auth_time,
        remember: m.remember,
    }
}

/// Looks up a live session by cookie value, enforcing the idle and
/// absolute timeouts, and touches `last_seen` at most once a minute.
pub async fn find(db: &Store, cookie: &str, cfg: &SessionConfig, now: i64) -> Result<Option<SessionInfo>, DbErr> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let Some(row) = session::Entity::find_by_id(sha256_b64(cookie.as_bytes())).one(db).await? else {
        return Ok(None);
    };
    let idle = !row.remember && row.last_seen + cfg.idle_timeout <= now;
    if row.revoked || row.expires_at <= now || idle {
        return Ok(None);
    }
    if row.last_seen + 60 < now {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeen, Expr::value(now))
            .filter(session::Column::IdHash.eq(row.id_hash.clone()))
            .exec(db)
            .await?;
    }
    Ok(Some(info(row)))
}

/// How long a remembered device stays signed in (A3, mobile).
pub const REMEMBER_SECONDS: i64 = 30 * 24 * 3600;

/// A completed sign-in: who, with which factor, at what time, and whether
/// to remember the device for 30 days.
pub struct SignIn<'a> {
    pub user_id: &'a str,
    pub factor: Factor,
    pub remember: bool,
    pub now: i64,
}

fn factors_json(events: &[FactorEvent]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

/// Signs a user in. A fresh cookie value every time (session fixation);
/// re-authentication of the same user keeps the `sid` (relying parties keep
/// one session) and the factors used before, while a different user
/// replaces the session entirely.
pub async fn establish<C: ConnectionTrait>(
    db: &C,
    existing: Option<&SessionInfo>,
    sign_in: SignIn<'_>,
    cfg: &SessionConfig,
) -> Result<(String, SessionInfo), DbErr> {
    let SignIn { user_id, factor, remember, now } = sign_in;
    let lifetime = if remember { REMEMBER_SECONDS } else { cfg.absolute_timeout };
    let cookie = random_token(32);
    let id_hash = sha256_b64(cookie.as_bytes());
    if let Some(old) = existing {
        if old.user_id == user_id {
            let factors = assurance::with_event(old.factors.clone(), factor, now);
            let updated = session::Entity::update_many()
                .col_expr(session::Column::IdHash, Expr::value(id_hash.clone()))
                .col_expr(session::Column::AuthTime, Expr::value(now))
                .col_expr(session::Column::Factors, Expr::value(factors_json(&factors)))
                .col_expr(session::Column::LastSeen, Expr::value(now))
                .col_expr(session::Column::Remember, Expr::value(remember))
                .col_expr(session::Column::ExpiresAt, Expr::value(now + lifetime))
                .filter(session::Column::IdHash.eq(old.id_hash.clone()))
                .filter(session::Column::Revoked.eq(false))
                .exec(db)
                .await?;
            if updated.rows_affected == 1 {
                let info = SessionInfo {
                    id_hash,
                    sid: old.sid.clone(),
                    user_id: user_id.to_string(),
                    auth_time: now,
                    factors,
                    remember,
                };
                return Ok((cookie, info));
            }
        } else {
            revoke_by_sid(db, &old.sid).await?;
        }
    }
    let sid = random_token(16);
    let factors = vec![FactorEvent { factor, at: now }];
    session::ActiveModel {
        id_hash: Set(id_hash.clone()),
        sid: Set(sid.clone()),
        user_id: Set(user_id.to_string()),
        auth_time: Set(now),
        created_at: Set(now),
        last_seen: Set(now),
        expires_at: Set(now + lifetime),
        revoked: Set(false),
        remember: Set(remember),
        factors: Set(factors_json(&factors)),
    }
    .insert(db)
    .await?;
    Ok((cookie, SessionInfo { id_hash, sid, user_id: user_id.into(), auth_time: now, factors, remember }))
}

/// A finished sign-in, as the audit trail sees it: how the person signed
/// in, the assurance level (`acr`) the session now reaches, and what it
/// acts for. Every sign-in path ends by calling this once its session,
/// extra factors and acting are in place, so the level is the one the
/// session really has.
pub struct Completed<'a> {
    pub session: &'a SessionInfo,
    pub method: Factor,
    /// `enterprise:{id}` or `delegation:{id}` when the session acts for one.
    pub acting: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub now: i64,
}

/// Audits a completed sign-in (`sign_in`, success) and returns the
/// session's assurance level. Failures and locks are audited by the
/// throttle, where they are counted.
pub async fn signed_in<C: ConnectionTrait>(
    db: &C,
    done: Completed<'_>,
    cfg: &assurance::AssuranceConfig,
) -> Result<u8, DbErr> {
    let s = done.session;
    let proofing = assurance::proofing_level(db, &s.user_id).await?;
    let level = assurance::level(proofing, &s.factors, done.now, cfg);
    let method = serde_json::to_value(done.method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let mut detail = format!("method={method} level={level} amr={}", assurance::amr(&s.factors).join(","));
    if let Some(a) = done.acting {
        detail.push_str(&format!(" acting={a}"));
    }
    let subject = format!("session:{}", s.sid);
    let e = Event::new("sign_in", Actor::User(&s.user_id), &subject).detail(&detail).ip(done.ip);
    crate::domain::audit::record(db, e, done.now).await?;
    Ok(level)
}

/// Records a further factor (step-up) in a live session. The level may
/// change, so the cookie value is replaced (a new session id at every
/// privilege change); the `sid` relying parties know stays, and
/// `auth_time` becomes now. Returns the new cookie value and session, or
/// `None` when the session ended meanwhile.
pub async fn add_factor<C: ConnectionTrait>(
    db: &C,
    session: &SessionInfo,
    factor: Factor,
    now: i64,
) -> Result<Option<(String, SessionInfo)>, DbErr> {
    let factors = assurance::with_event(session.factors.clone(), factor, now);
    let cookie = random_token(32);
    let id_hash = sha256_b64(cookie.as_bytes());
    let updated = session::Entity::update_many()
        .col_expr(session::Column::IdHash, Expr::value(id_hash.clone()))
        .col_expr(session::Column::AuthTime, Expr::value(now))
        .col_expr(session::Column::Factors, Expr::value(factors_json(&factors)))
        .col_expr(session::Column::LastSeen, Expr::value(now))
        .filter(session::Column::IdHash.eq(session.id_hash.clone()))
        .filter(session::Column::Revoked.eq(false))
        .exec(db)
        .await?;
    let info = SessionInfo { id_hash, auth_time: now, factors, ..session.clone() };
    Ok((updated.rows_affected == 1).then_some((cookie, info)))
}

pub async fn revoke_by_sid<C: ConnectionTrait>(db: &C, sid: &str) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::Revoked, Expr::value(true))
        .filter(session::Column::Sid.eq(sid))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn revoke_all_for_user<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::Revoked, Expr::value(true))
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The (session, client) pairs this node has recorded (issue 16): without
/// it every authorization of a signed-in browser reads the pair's row again.
/// A recorded pair stays until its session ends, and an ended session never
/// takes a new grant (signing in again makes a new `sid`), so what is
/// remembered here cannot go stale in a way that matters. Bounded: forgotten
/// wholesale at [`RecordedClients::MAX`] pairs.
#[derive(Default)]
pub struct RecordedClients(std::sync::Mutex<std::collections::HashSet<String>>);

impl RecordedClients {
    pub const MAX: usize = 100_000;

    /// Records that `sid` signed in to `client_id` (for logout), reading
    /// the database only for a pair this node has not seen.
    pub async fn record(&self, db: &Store, sid: &str, client_id: &str) -> Result<(), DbErr> {
        let id = pair_id(sid, client_id);
        if self.0.lock().is_ok_and(|seen| seen.contains(&id)) {
            return Ok(());
        }
        record_client(db, sid, client_id).await?;
        if let Ok(mut seen) = self.0.lock() {
            if seen.len() >= Self::MAX {
                seen.clear();
            }
            seen.insert(id);
        }
        Ok(())
    }
}

fn pair_id(sid: &str, client_id: &str) -> String {
    sha256_b64(format!("{sid}\0{client_id}").as_bytes())
}

/// Remembers that a client received tokens in this session, for
/// back-channel logout.
pub async fn record_client(db: &Store, sid: &str, client_id: &str) -> Result<(), DbErr> {
    let id = pair_id(sid, client_id);
    if session_client::Entity::find_by_id(id.clone()).one(db).await?.is_some() {
        return Ok(());
    }
    let model = session_client::ActiveModel { id: Set(id), sid: Set(sid.into()), client_id: Set(client_id.into()) };
    match session_client::Entity::insert(model)
        .on_conflict(sea_orm::sea_query::OnConflict::column(session_client::Column::Id).do_nothing().to_owned())
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn clients_of(db: &Store, sid: &str) -> Result<Vec<String>, DbErr> {
    Ok(session_client::Entity::find()
        .filter(session_client::Column::Sid.eq(sid))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.client_id)
        .collect())
}

/// Every live session of a user (for logging them all out).
pub async fn live_for_user<C: ConnectionTrait>(db: &C, user_id: &str, now: i64) -> Result<Vec<SessionInfo>, DbErr> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Revoked.eq(false))
        .filter(session::Column::ExpiresAt.gt(now))
        .all(db)
        .await?
        .into_iter()
        .map(info)
        .collect())
}
