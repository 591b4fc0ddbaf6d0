//! Storage: one sea-orm code path for SQLite (default) and PostgreSQL.
pub mod bus;
pub mod entities;
mod group_commit;
pub mod seed;
mod sqlite;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, DeleteStatement, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use std::time::Duration;

pub use sea_orm::DbErr;

/// The provider's database as the entries hold it: an opaque handle they
/// pass to the core's use cases. Only this crate can query through it (the
/// entry crate does not depend on sea-orm), so no rule can be re-implemented
/// beside the core.
#[derive(Clone, Debug)]
pub struct Store(DatabaseConnection, Writer, Option<group_commit::GroupCommit>);

/// The pool and the SQLite writer, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct StoreStats {
    /// Connections open, and of them idle; the pool's bound.
    pub connections: u32,
    pub idle: usize,
    pub max_connections: u32,
    /// SQLite's writer thread ([`group_commit`]), when there is one.
    pub writer: Option<WriterStats>,
}

/// What SQLite's writer thread did so far.
#[derive(Debug, Clone, Copy)]
pub struct WriterStats {
    /// Writes handed to it (a statement, or writes that go together).
    pub jobs: usize,
    /// Transactions it committed them in.
    pub commits: usize,
    /// Groups rolled back and run again one by one (a write failed).
    pub splits: usize,
}

/// SQLite's one writer, queued in this process: writers wait their turn on
/// an async lock (woken the moment the previous one commits) instead of in
/// SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms between attempts
/// and so turns contention into idle time. Other processes (the CLI) still
/// meet the busy timeout. `None` on PostgreSQL, where writers run at once.
#[derive(Clone, Debug)]
struct Writer(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

/// How long a writer waits for its turn before giving up like SQLite's
/// busy timeout would ("database is locked").
const WRITER_WAIT: Duration = Duration::from_secs(10);

impl Writer {
    fn for_backend(db: &DatabaseConnection) -> Self {
        let sqlite = db.get_database_backend() == sea_orm::DbBackend::Sqlite;
        Writer(sqlite.then(|| std::sync::Arc::new(tokio::sync::Mutex::new(()))))
    }

    async fn turn(&self) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, DbErr> {
        let Some(lock) = &self.0 else { return Ok(None) };
        match tokio::time::timeout(WRITER_WAIT, lock.clone().lock_owned()).await {
            Ok(guard) => Ok(Some(guard)),
            Err(_) => Err(DbErr::Custom("database is locked: no turn to write within the busy timeout".into())),
        }
    }

    /// An autocommit statement that writes takes a turn too.
    async fn turn_for(&self, sql: &str) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, DbErr> {
        if self.0.is_none() || !writes(sql) {
            return Ok(None);
        }
        self.turn().await
    }
}

/// Whether a statement writes (SQLite's own statements; PostgreSQL never asks).
fn writes(sql: &str) -> bool {
    let head = sql.trim_start().get(..7).unwrap_or_default().to_ascii_uppercase();
    ["INSERT", "UPDATE", "DELETE", "REPLACE"].iter().any(|w| head.starts_with(w))
}

impl Store {
    /// Wraps an open connection (tests and tools that open their own).
    pub fn new(db: DatabaseConnection) -> Self {
        let writer = Writer::for_backend(&db);
        Self(db, writer, None)
    }

    /// The same, with autocommit writes grouped by a writer thread of
    /// their own (see [`group_commit`]); SQLite only.
    fn with_group_commit(db: DatabaseConnection) -> std::io::Result<Self> {
        let writer = Writer::for_backend(&db);
        let group = group_commit::GroupCommit::start(db.clone(), writer.clone())?;
        Ok(Self(db, writer, Some(group)))
    }

    /// The writer thread, for a statement that writes on SQLite.
    fn group_for(&self, sql: &str) -> Option<&group_commit::GroupCommit> {
        self.2.as_ref().filter(|_| writes(sql))
    }

    /// Which database this is, for the readiness probe and metrics.
    pub fn backend_name(&self) -> &'static str {
        match self.0.get_database_backend() {
            sea_orm::DbBackend::Postgres => "postgres",
            sea_orm::DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// Whether the database answers at all (the readiness probe).
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.0.execute_unprepared("SELECT 1").await.map(|_| ())
    }

    /// The PostgreSQL pool behind the handle (the bus listens with a
    /// connection of its own from it); `None` on SQLite.
    pub fn postgres_pool(&self) -> Option<sea_orm::sqlx::PgPool> {
        (self.0.get_database_backend() == sea_orm::DbBackend::Postgres)
            .then(|| self.0.get_postgres_connection_pool().clone())
    }

    /// The pool and the SQLite writer as an operator watches them (`/metrics`).
    pub fn stats(&self) -> StoreStats {
        let (connections, idle, max_connections) = match self.0.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let p = self.0.get_postgres_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
            _ => {
                let p = self.0.get_sqlite_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
        };
        let writer = self.2.as_ref().map(|g| {
            let (jobs, _, splits) = g.counts();
            WriterStats { jobs, commits: g.commits(), splits }
        });
        StoreStats { connections, idle, max_connections, writer }
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(self) -> Result<(), DbErr> {
        self.0.close().await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Store {
    fn get_database_backend(&self) -> sea_orm::DbBackend {
        self.0.get_database_backend()
    }
    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        if let Some(group) = self.group_for(&stmt.sql)
            && let Some(done) = group.execute(stmt.clone()).await
        {
            return done;
        }
        let _turn = self.1.turn_for(&stmt.sql).await?;
        self.0.execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        if let Some(group) = self.group_for(sql)
            && let Some(done) = group.execute_unprepared(sql).await
        {
            return done;
        }
        let _turn = self.1.turn_for(sql).await?;
        self.0.execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: sea_orm::Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        if let Some(group) = self.group_for(&stmt.sql)
            && let Some(done) = group.query_one(stmt.clone()).await
        {
            return done;
        }
        let _turn = self.1.turn_for(&stmt.sql).await?;
        self.0.query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: sea_orm::Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        if let Some(group) = self.group_for(&stmt.sql)
            && let Some(done) = group.query_all(stmt.clone()).await
        {
            return done;
        }
        let _turn = self.1.turn_for(&stmt.sql).await?;
        self.0.query_all_raw(stmt).await
    }
    fn support_returning(&self) -> bool {
        self.0.support_returning()
    }
    fn is_mock_connection(&self) -> bool {
        self.0.is_mock_connection()
    }
}

/// A transaction begun by [`begin_write`]: on SQLite it holds this
/// process's writer turn until it commits, rolls back or is dropped.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> sea_orm::DbBackend {
        self.txn.get_database_backend()
    }
    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: sea_orm::Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: sea_orm::Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
    fn is_mock_connection(&self) -> bool {
        self.txn.is_mock_connection()
    }
}

#[async_trait::async_trait]
impl TransactionTrait for Store {
    type Transaction = DatabaseTransaction;
    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.0.begin().await
    }
    async fn begin_with_config(
        &self,
        isolation_level: Option<sea_orm::IsolationLevel>,
        access_mode: Option<sea_orm::AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.0.begin_with_config(isolation_level, access_mode).await
    }
    async fn begin_with_options(&self, options: TransactionOptions) -> Result<DatabaseTransaction, DbErr> {
        self.0.begin_with_options(options).await
    }
    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, sea_orm::TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.0.transaction(callback).await
    }
    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<sea_orm::IsolationLevel>,
        access_mode: Option<sea_orm::AccessMode>,
    ) -> Result<T, sea_orm::TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.0.transaction_with_config(callback, isolation_level, access_mode).await
    }
}

/// How long a pooled SQLite connection beyond the first may sit idle.
pub const SQLITE_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the pool. SQLite runs in WAL mode with a busy timeout so readers
/// never block the writer and concurrent writers wait instead of failing.
pub async fn connect(url: &str) -> Result<Store, DbErr> {
    let db = Database::connect(options(url, SQLITE_IDLE_TIMEOUT)).await?;
    // An in-memory database lives in one connection and sees no
    // contention worth grouping.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite || in_memory {
        return Ok(Store::new(db));
    }
    Store::with_group_commit(db).map_err(|e| DbErr::Custom(format!("the SQLite writer thread: {e}")))
}

/// The pool's options; `sqlite_idle` is how long an extra SQLite
/// connection may sit idle before it closes.
fn options(url: &str, sqlite_idle: Duration) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10));
    // sqlx pings a pooled connection on every acquire unless told otherwise
    // (and again on every release): on SQLite each ping is one more hand-off
    // to the connection's worker thread, on PostgreSQL one more round trip —
    // for each autocommit statement. A SQLite file cannot go away under us;
    // a PostgreSQL connection is pinged only after it sat idle (a restart or
    // a proxy may have dropped it), and one that failed is closed on release.
    if url.starts_with("sqlite:") {
        opts.test_before_acquire(false);
    } else {
        opts.test_before_acquire_if_idle_for(Duration::from_secs(5));
    }
    if url.starts_with("sqlite:") {
        // After a burst the extra connections close (down to one), giving
        // back what each holds in this process: SQLite's page cache, its
        // prepared statements and its worker thread. Shorter than the
        // upkeep's 30 s, whose statements go round the idle connections
        // one after another and would otherwise keep all of them alive.
        opts.idle_timeout(sqlite_idle).map_sqlx_sqlite_pool_opts(sqlite::stable_plans);
        opts.max_connections(8).min_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        opts.max_connections(24).min_connections(2);
    }
    opts
}

/// Begins a transaction that will write. On SQLite it starts as a writer
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
/// cannot wait for the write lock — SQLite answers "database is locked"
/// (codes 5 and 517) at once when another writer committed after its read,
/// and the busy timeout does not help. Starting as a writer makes it queue
/// behind the busy timeout like any single statement. PostgreSQL ignores
/// the mode. Every read-then-write transaction goes through here. On
/// SQLite it first takes this process's writer turn (see [`Writer`]).
pub async fn begin_write(db: &Store) -> Result<WriteTxn, DbErr> {
    let turn = db.1.turn().await?;
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok(WriteTxn { txn, _turn: turn })
}

/// Runs statements that only write (no read decides what they write) so
/// that they stand or fall together, in as few waits as each database
/// allows:
/// - on a SQLite file they go to the writer thread as one unit of its
///   group commit (no writer turn held across the caller's own awaits);
/// - on PostgreSQL they are one statement, each write but the last a
///   data-modifying `WITH` query, which PostgreSQL runs exactly once and
///   atomically with the rest: one round trip instead of four for two
///   inserts in a transaction;
/// - elsewhere (in-memory SQLite) in a [`begin_write`] transaction.
pub async fn write_together(db: &Store, stmts: Vec<sea_orm::Statement>) -> Result<(), DbErr> {
    if let Some(group) = &db.2
        && let Some(done) = group.batch(stmts.clone()).await
    {
        return done.map(|_| ());
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        return db.execute_raw(postgres_one_statement(stmts)).await.map(|_| ());
    }
    let txn = begin_write(db).await?;
    for stmt in stmts {
        txn.execute_raw(stmt).await?;
    }
    txn.commit().await
}

/// `WITH w0 AS (first), w1 AS (second) … last`, the placeholders of each
/// part numbered on from those before it.
fn postgres_one_statement(stmts: Vec<sea_orm::Statement>) -> sea_orm::Statement {
    let mut sql = String::new();
    let mut values = Vec::new();
    let last = stmts.len().saturating_sub(1);
    for (i, stmt) in stmts.into_iter().enumerate() {
        let part = renumber_placeholders(&stmt.sql, values.len());
        match i {
            _ if i == last => {
                if i > 0 {
                    sql.push(' ');
                }
                sql.push_str(&part);
            }
            0 => sql.push_str(&format!("WITH w0 AS ({part})")),
            _ => sql.push_str(&format!(", w{i} AS ({part})")),
        }
        values.extend(stmt.values.map(|v| v.0).unwrap_or_default());
    }
    sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, values)
}

/// PostgreSQL's `$n` placeholders in `sql` moved up by `by`; quoted
/// identifiers and string literals are left as they are.
fn renumber_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                out.push_str(&format!("${}", n + by));
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Applies pending migrations. When there are none it only reads, so CLI
/// commands running beside a live server take no write lock for nothing.
pub async fn migrate(db: &Store) -> Result<(), DbErr> {
    if let Ok(pending) = Migrator::get_pending_migrations_read_only(&db.0).await
        && pending.is_empty()
    {
        return Ok(());
    }
    Migrator::up(&db.0, None).await
}

/// Atomically counts one more event under `key` within a window of
/// `window` seconds and returns the count including this one. A single
/// upsert statement, so parallel requests and several nodes each see a
/// distinct count (the fix for check-then-act races like CVE-2024-4629).
pub async fn bump_counter(db: &Store, key: &str, window: i64, now: i64) -> Result<i64, DbErr> {
    let table = Alias::new("rate_counters");
    let col = |name: &'static str| Expr::col((Alias::new("rate_counters"), Alias::new(name)));
    // Built with sea-query's CASE so placeholders suit each backend.
    let expired = || col("expires_at").lte(now);
    let stmt = Query::insert()
        .into_table(table)
        .columns([Alias::new("key"), Alias::new("count"), Alias::new("window_start"), Alias::new("expires_at")])
        .values_panic([key.into(), 1i64.into(), now.into(), (now + window).into()])
        .on_conflict(
            OnConflict::column(Alias::new("key"))
                .values([
                    (Alias::new("count"), Expr::case(expired(), 1i64).finally(col("count").add(1i64)).into()),
                    (Alias::new("window_start"), Expr::case(expired(), now).finally(col("window_start")).into()),
                    (Alias::new("expires_at"), Expr::case(expired(), now + window).finally(col("expires_at")).into()),
                ])
                .to_owned(),
        )
        .returning_col(Alias::new("count"))
        .to_owned();
    let row = db.query_one(&stmt).await?;
    match row {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Err(DbErr::RecordNotFound("rate counter".into())),
    }
}

/// Reads a counter without changing it: (count, expires_at) if live.
pub async fn read_counter(db: &Store, key: &str, now: i64) -> Result<Option<(i64, i64)>, DbErr> {
    use entities::rate_counter;
    use sea_orm::EntityTrait;
    Ok(rate_counter::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .filter(|c| c.expires_at > now)
        .map(|c| (c.count, c.expires_at)))
}

pub async fn clear_counter(db: &Store, key: &str) -> Result<(), DbErr> {
    use entities::rate_counter;
    use sea_orm::EntityTrait;
    rate_counter::Entity::delete_by_id(key.to_owned()).exec(db).await?;
    Ok(())
}

/// Takes back one reserved attempt (a success after reserve-then-verify).
pub async fn release_counter(db: &Store, key: &str) -> Result<(), DbErr> {
    let stmt = Query::update()
        .table(Alias::new("rate_counters"))
        .value(
            Alias::new("count"),
            Expr::case(Expr::col(Alias::new("count")).gt(0i64), Expr::col(Alias::new("count")).sub(1i64)).finally(0i64),
        )
        .and_where(Expr::col(Alias::new("key")).eq(key))
        .to_owned();
    db.execute(&stmt).await?;
    Ok(())
}

/// Records a one-time value (e.g. a client assertion `jti`). Returns false
/// when it was already recorded: the caller must treat that as a replay.
pub async fn record_once(db: &Store, key: &str, expires_at: i64) -> Result<bool, DbErr> {
    let stmt = Query::insert()
        .into_table(Alias::new("used_jtis"))
        .columns([Alias::new("key"), Alias::new("expires_at")])
        .values_panic([key.into(), expires_at.into()])
        .on_conflict(OnConflict::column(Alias::new("key")).do_nothing().to_owned())
        .to_owned();
    let result = db.execute(&stmt).await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes expired ephemeral rows; run periodically by every node.
pub async fn purge_expired(db: &Store, now: i64) -> Result<(), DbErr> {
    purge_expired_in_batches(db, now, PURGE_BATCH).await.map(|_| ())
}

/// Rows one purge statement deletes at most: each batch is its own short
/// statement, so a large backlog never holds SQLite's single write lock (or
/// PostgreSQL row locks) for long, and requests interleave between batches.
pub const PURGE_BATCH: u64 = 500;
/// Batches per table per pass; what is left waits for the next pass.
const PURGE_MAX_BATCHES: u64 = 200;

/// Deletes expired rows in bounded batches of `batch` (found through the
/// `expires_at` indexes); returns how many rows went.
pub async fn purge_expired_in_batches(db: &Store, now: i64, batch: u64) -> Result<u64, DbErr> {
    let mut total = 0;
    for (table, grace) in [
        ("auth_requests", 60),
        ("auth_codes", 60),
        ("refresh_tokens", 60),
        ("revoked_tokens", 60),
        ("rate_counters", 60),
        ("used_jtis", 60),
        ("plugin_kv", 60),
        ("upstream_flows", 60),
        ("scan_tickets", 60),
        ("webauthn_ceremonies", 60),
        ("sms_sends", 60),
        ("par_requests", 60),
        ("sign_in_holds", 60),
        // Device (RFC 8628) and CIBA requests: kept an hour past expiry so
        // a late poll still hears `expired_token`, not an unknown code.
        ("device_codes", 3600),
        ("ciba_requests", 3600),
        ("sessions", 86400),
        // Appeal evidence: `expires_at` is set by the decision (A8 retention).
        ("appeal_evidence", 0),
    ] {
        if table == "sessions" {
            total += in_batches(db, &session_clients_batch(db, now - grace, batch), batch).await?;
        }
        total += in_batches(db, &expired_batch(db, table, now - grace, batch), batch).await?;
    }
    Ok(total)
}

/// Runs a bounded `DELETE` again until it removes fewer than `batch` rows
/// (or `PURGE_MAX_BATCHES` ran), yielding between batches; returns how many
/// rows went.
async fn in_batches(db: &Store, stmt: &DeleteStatement, batch: u64) -> Result<u64, DbErr> {
    let mut total = 0;
    for _ in 0..PURGE_MAX_BATCHES {
        let gone = db.execute(stmt).await?.rows_affected();
        total += gone;
        if gone < batch {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}

/// The column naming a row whatever the table's key is: SQLite's `rowid`,
/// PostgreSQL's `ctid`.
fn row_id(db: &Store) -> Alias {
    Alias::new(match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "ctid",
        _ => "rowid",
    })
}

/// `DELETE … WHERE <row id> IN (SELECT <row id> … WHERE expires_at < ? LIMIT n)`.
fn expired_batch(db: &Store, table: &str, before: i64, batch: u64) -> DeleteStatement {
    let expired = Query::select()
        .column(row_id(db))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("expires_at")).lt(before))
        .limit(batch)
        .to_owned();
    Query::delete().from_table(Alias::new(table)).and_where(Expr::col(row_id(db)).in_subquery(expired)).to_owned()
}

/// The (session, app) pairs recorded for logout of the sessions the purge
/// is about to delete, in the same bounded batches; run first, so no pair
/// outlives its session (an expired session records no new pairs).
fn session_clients_batch(db: &Store, before: i64, batch: u64) -> DeleteStatement {
    let sc = Alias::new("session_clients");
    let s = Alias::new("sessions");
    let expired = Query::select()
        .column((sc.clone(), row_id(db)))
        .from(sc.clone())
        .inner_join(s.clone(), Expr::col((s.clone(), Alias::new("sid"))).equals((sc.clone(), Alias::new("sid"))))
        .and_where(Expr::col((s, Alias::new("expires_at"))).lt(before))
        .limit(batch)
        .to_owned();
    Query::delete().from_table(sc).and_where(Expr::col(row_id(db)).in_subquery(expired)).to_owned()
}

/// Takes a row lock on `key` inside a transaction: a conditional write, so
/// it holds until commit on both databases. Counting rules (three kin
/// binders, SMS sends in a window) take it before they count, so racing
/// requests on any node count one after the other.
pub async fn lock<C: ConnectionTrait>(conn: &C, key: &str) -> Result<(), DbErr> {
    use entities::delegation_lock;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
    delegation_lock::Entity::insert(delegation_lock::ActiveModel { key: Set(key.into()), n: Set(0) })
        .on_conflict(OnConflict::column(delegation_lock::Column::Key).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    delegation_lock::Entity::update_many()
        .col_expr(delegation_lock::Column::N, Expr::col(delegation_lock::Column::N).add(1))
        .filter(delegation_lock::Column::Key.eq(key))
        .exec(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn idle_sqlite_connections_close_down_to_one() {
        let db = Database::connect(options("sqlite::memory:", Duration::from_millis(50))).await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        // A burst holds four connections at once.
        let burst = tokio::try_join!(pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()).unwrap();
        assert!(pool.size() >= 4, "{} connections for the burst", pool.size());
        drop(burst);
        // Waits for the pool's reaper (a condition, not a fixed time).
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.size() > 1 {
            assert!(Instant::now() < deadline, "{} connections still open", pool.size());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.size(), 1, "min_connections keeps one");
    }

    /// Autocommit writes queued behind a held turn commit as one group;
    /// each caller still gets its own outcome (a duplicate key fails alone,
    /// the others stand) and sees its write once the call returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_commit_together_with_their_own_outcomes() {
        let dir = std::env::temp_dir().join(format!("idp-group-commit-{}", crate::crypto::random_token(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let store = connect(&url).await.unwrap();
        store.execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY)").await.unwrap();
        let group = store.2.clone().expect("a SQLite file gets a writer thread");
        let insert = |k: String| {
            let store = store.clone();
            tokio::spawn(async move {
                let stmt = sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Sqlite,
                    "INSERT INTO t (k) VALUES (?)",
                    [k.into()],
                );
                store.execute_raw(stmt).await.map(|r| r.rows_affected())
            })
        };
        // Holds the turn until `n` statements in all were sent, so that
        // they queue up behind it.
        let queue_behind_turn = |n: usize, held: WriteTxn| {
            let group = group.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(10);
                while group.counts().0 < n {
                    assert!(Instant::now() < deadline, "{} writes sent", group.counts().0);
                    tokio::task::yield_now().await;
                }
                held.commit().await.unwrap();
            }
        };

        // Forty-one distinct keys: all stand, sharing transactions.
        let held = begin_write(&store).await.unwrap();
        let distinct: Vec<_> = (0..41).map(|i| insert(format!("k{i}"))).collect();
        queue_behind_turn(41, held).await;
        for w in distinct {
            assert_eq!(w.await.unwrap().unwrap(), 1);
        }
        let (_, grouped, split) = group.counts();
        assert!(grouped >= 1, "the queued writes shared a transaction");
        assert_eq!(split, 0);

        // Four inserts of one key among five others: exactly one of the four
        // stands, the others fail alone and the five stand.
        let held = begin_write(&store).await.unwrap();
        let duplicates: Vec<_> = (0..4).map(|_| insert("dup".into())).collect();
        let others: Vec<_> = (0..5).map(|i| insert(format!("other{i}"))).collect();
        queue_behind_turn(50, held).await;
        for w in others {
            assert_eq!(w.await.unwrap().unwrap(), 1);
        }
        let mut outcomes = Vec::new();
        for d in duplicates {
            outcomes.push(d.await.unwrap());
        }
        assert_eq!(outcomes.iter().filter(|r| matches!(r, Ok(1))).count(), 1, "{outcomes:?}");
        assert!(group.counts().2 >= 1, "the group with the duplicates was split");

        let rows = store
            .query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, "SELECT COUNT(*) AS n FROM t"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows.try_get::<i64>("", "n").unwrap(), 41 + 1 + 5);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn placeholders_move_up_outside_quotes() {
        let sql = r#"INSERT INTO "t$1" ("a", "b") VALUES ($1, '$2 it''s'), ($10, $2)"#;
        assert_eq!(renumber_placeholders(sql, 3), r#"INSERT INTO "t$1" ("a", "b") VALUES ($4, '$2 it''s'), ($13, $5)"#);
        let one =
            |sql: &str, v: i64| sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, [v.into()]);
        let joined = postgres_one_statement(vec![
            one("INSERT INTO a (x) VALUES ($1)", 1),
            one("INSERT INTO b (y) VALUES ($1)", 2),
        ]);
        assert_eq!(joined.sql, "WITH w0 AS (INSERT INTO a (x) VALUES ($1)) INSERT INTO b (y) VALUES ($2)");
        assert_eq!(joined.values.unwrap().0, vec![1i64.into(), 2i64.into()]);
    }

    /// Writes handed over together stand or fall together, inside a group
    /// with others and alone, without taking the others down with them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_together_stand_or_fall_together() {
        let dir = std::env::temp_dir().join(format!("idp-write-together-{}", crate::crypto::random_token(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let store = connect(&url).await.unwrap();
        store.execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY)").await.unwrap();
        let group = store.2.clone().expect("a SQLite file gets a writer thread");
        let stmt = |k: &str| {
            sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                "INSERT INTO t (k) VALUES (?)",
                [k.into()],
            )
        };
        let together = |keys: &[&str]| {
            let (store, stmts) = (store.clone(), keys.iter().map(|k| stmt(k)).collect());
            tokio::spawn(async move { write_together(&store, stmts).await })
        };
        let single = |k: &str| {
            let (store, stmt) = (store.clone(), stmt(k));
            tokio::spawn(async move { store.execute_raw(stmt).await.map(|r| r.rows_affected()) })
        };
        let count = |k: &'static str| {
            let store = store.clone();
            async move {
                let sql = format!("SELECT COUNT(*) AS n FROM t WHERE k LIKE '{k}'");
                let row = store.query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, sql));
                row.await.unwrap().unwrap().try_get::<i64>("", "n").unwrap()
            }
        };

        // Alone: the second insert fails, so the first does not stand either.
        single("taken").await.unwrap().unwrap();
        assert!(together(&["alone", "taken"]).await.unwrap().is_err());
        assert_eq!(count("alone").await, 0, "half of a failed unit stood");

        // Queued behind a held turn, so that they share a group.
        let held = begin_write(&store).await.unwrap();
        let before = group.counts().0;
        let first = single("first");
        let failing = together(&["half", "taken"]);
        let whole = together(&["pair-a", "pair-b"]);
        let last = single("last");
        let deadline = Instant::now() + Duration::from_secs(10);
        while group.counts().0 < before + 4 {
            assert!(Instant::now() < deadline, "{} writes sent", group.counts().0);
            tokio::task::yield_now().await;
        }
        held.commit().await.unwrap();
        assert!(failing.await.unwrap().is_err());
        whole.await.unwrap().unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(last.await.unwrap().unwrap(), 1);
        assert!(group.counts().2 >= 1, "the group with the failing unit was split");
        assert_eq!(count("half").await, 0, "half of a failed unit stood");
        assert_eq!(count("pair-%").await, 2);
        assert_eq!(count("first").await + count("last").await, 2);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
