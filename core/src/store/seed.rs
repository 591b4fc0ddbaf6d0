//! Large data for scale checks (issue 16): accounts with a live session, a
//! grant and a refresh token each, made by the database itself in batches
//! (`INSERT … SELECT` over a series), so ten million rows take minutes and
//! no memory here. Every seeded row's id starts with `seed-`; the accounts
//! share one password hash (hashing ten million passwords would measure
//! nothing). Used by `idp dev seed` and the query-plan test.
use crate::store::Store;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// Rows per statement: large enough to be fast, small enough that one
/// statement never holds the database for long.
const BATCH: u64 = 50_000;

/// What to make.
pub struct Seed<'a> {
    /// Accounts `seed1` … `seedN` (phone `139` + the number in 8 digits).
    pub accounts: u64,
    /// The client the grants belong to.
    pub client_id: &'a str,
    /// The password hash every seeded account shares.
    pub password_hash: &'a str,
    pub now: i64,
}

/// Makes accounts `1..=accounts` with their sessions, grants and refresh
/// tokens; returns how many accounts exist after. Idempotent per number:
/// growing a seed re-runs the numbers already there, whose keys make each
/// insert a no-op, and adds only what is missing.
pub async fn seed(db: &Store, s: &Seed<'_>) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let mut from = 1;
    while from <= s.accounts {
        let to = (from + BATCH - 1).min(s.accounts);
        let txn = crate::store::begin_write(db).await?;
        for sql in statements(backend) {
            let values =
                [(from as i64).into(), (to as i64).into(), s.password_hash.into(), s.now.into(), s.client_id.into()];
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        }
        txn.commit().await?;
        from = to + 1;
    }
    Ok(s.accounts)
}

/// The four inserts over the numbers `$1..=$2` (`$3` password hash, `$4`
/// now, `$5` client id).
fn statements(backend: DbBackend) -> [String; 4] {
    // PostgreSQL: generate_series; SQLite: a recursive CTE. `i` is the number.
    let (series, text) = match backend {
        DbBackend::Postgres => ("generate_series($1::bigint, $2::bigint) AS g(i)", "i::text"),
        _ => (
            "(WITH RECURSIVE g(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM g WHERE i < $2) SELECT i FROM g) AS g",
            "CAST(i AS TEXT)",
        ),
    };
    let phone = match backend {
        DbBackend::Postgres => "'139' || lpad(i::text, 8, '0')".to_string(),
        _ => "'139' || substr('00000000' || CAST(i AS TEXT), -8, 8)".to_string(),
    };
    let sql = [
        format!(
            "INSERT INTO users (id, username, phone, phone_verified, email_verified, password_hash, disabled, \
             created_at, updated_at, proofing_level) \
             SELECT 'seed-u-' || {text}, 'seed' || {text}, {phone}, true, false, $3, false, $4, $4, 1 FROM {series} WHERE true \
             ON CONFLICT DO NOTHING"
        ),
        format!(
            "INSERT INTO sessions (id_hash, sid, user_id, auth_time, created_at, last_seen, expires_at, revoked, \
             remember, factors) \
             SELECT 'seed-s-' || {text}, 'seed-sid-' || {text}, 'seed-u-' || {text}, $4, $4, $4, $4 + 86400, false, \
             false, '[]' FROM {series} WHERE true ON CONFLICT DO NOTHING"
        ),
        format!(
            "INSERT INTO grants (id, client_id, user_id, sid, scope, auth_time, acr, amr, created_at, expires_at) \
             SELECT 'seed-g-' || {text}, $5, 'seed-u-' || {text}, 'seed-sid-' || {text}, 'openid', $4, '', '[]', $4, \
             $4 + 2592000 FROM {series} WHERE true ON CONFLICT DO NOTHING"
        ),
        format!(
            "INSERT INTO refresh_tokens (token_hash, grant_id, expires_at) \
             SELECT 'seed-r-' || {text}, 'seed-g-' || {text}, $4 + 2592000 FROM {series} WHERE true ON CONFLICT DO NOTHING"
        ),
    ];
    // `$n` is PostgreSQL's numbered placeholder; SQLite's is `?n` (its `$n`
    // would be numbered by first appearance).
    match backend {
        DbBackend::Postgres => sql,
        _ => sql.map(|q| q.replace('$', "?")),
    }
}

/// Refreshes the planner's statistics after a large seed (PostgreSQL
/// `ANALYZE`; SQLite `ANALYZE` too).
pub async fn analyze(db: &Store) -> Result<(), DbErr> {
    db.execute_unprepared("ANALYZE").await.map(|_| ())
}
