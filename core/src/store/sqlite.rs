//! Settings of each new SQLite connection that sqlx has no option for.
use sea_orm::sqlx::pool::PoolOptions;
use sea_orm::sqlx::{Error, Sqlite, SqliteConnection};
use std::ffi::c_int;

/// Turns on SQLite's query planner stability guarantee on every connection
/// the pool opens, so that no plan depends on a bound value.
///
/// Without it SQLite (the bundled 3.51) plans a `LIMIT ?` from the value
/// bound to it and marks the statement to be prepared again whenever that
/// parameter is bound anew. sea-orm binds every limit (`.one()` included)
/// and sqlx binds all parameters on each execution, so each of those
/// cached statements was parsed and planned again every time it ran:
/// about three times per code flow, 4–5 % of the server's CPU. The value
/// of a limit changes no plan worth having here, and a `LIKE` with a bound
/// pattern (the staff search) does not use an index either way: our
/// columns use the default case-sensitive collation while `LIKE` ignores
/// case.
pub fn stable_plans(pool: PoolOptions<Sqlite>) -> PoolOptions<Sqlite> {
    pool.after_connect(|conn, _| Box::pin(async move { set_stable_plans(conn).await }))
}

async fn set_stable_plans(conn: &mut SqliteConnection) -> Result<(), Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked for the
    // call; SQLITE_DBCONFIG_ENABLE_QPSG takes an int and an int pointer
    // (null: the new setting is not read back).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(Error::Configuration(format!("sqlite3_db_config(ENABLE_QPSG) failed: {rc}").into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    use sea_orm::sqlx::{Connection, Executor};
    use std::str::FromStr;

    /// How many times the statements prepared on `conn` were prepared again.
    async fn reprepares(conn: &mut SqliteConnection) -> i64 {
        let mut handle = conn.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        let mut total = 0;
        // SAFETY: the handle is locked; sqlite3_next_stmt walks the
        // connection's own statements, which stay alive while it is held.
        unsafe {
            let mut stmt = libsqlite3_sys::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !stmt.is_null() {
                total += i64::from(libsqlite3_sys::sqlite3_stmt_status(
                    stmt,
                    libsqlite3_sys::SQLITE_STMTSTATUS_REPREPARE,
                    0,
                ));
                stmt = libsqlite3_sys::sqlite3_next_stmt(db, stmt);
            }
        }
        total
    }

    /// Runs a cached `… LIMIT ?` lookup (what sea-orm's `.one()` sends)
    /// four times with other values, on a connection with or without the
    /// setting; returns the re-preparations.
    async fn limit_lookups(stable: bool) -> i64 {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        let mut conn = SqliteConnection::connect_with(&opts).await.unwrap();
        if stable {
            set_stable_plans(&mut conn).await.unwrap();
        }
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER)").await.unwrap();
        for i in 0..4 {
            sea_orm::sqlx::query("SELECT v FROM t WHERE id = ? LIMIT ?")
                .bind(format!("row{i}"))
                .bind(1i64)
                .fetch_optional(&mut conn)
                .await
                .unwrap();
        }
        reprepares(&mut conn).await
    }

    #[tokio::test]
    async fn cached_statements_are_not_prepared_again() {
        assert_eq!(limit_lookups(true).await, 0);
        // The measurement can tell: without the setting the same lookups
        // are prepared again on each run after the first.
        assert!(limit_lookups(false).await >= 3);
    }
}
