//! Group commit for SQLite's single writer (issue 16).
//!
//! Every statement that writes needs the process's writer turn. Taken by
//! the request's own task, the turn is held through two thread hand-offs
//! (to the connection's worker and back) and then until the async runtime
//! gets round to polling that task again, behind every other ready request:
//! under load the turn was held about 330 µs for a write that SQLite does
//! in a few, and the code flow queued about 11 ms for it while a third of
//! the CPU sat idle. So autocommit writes are handed to one writer thread
//! of their own instead. It takes the turn once for everything queued,
//! runs those statements in one `BEGIN IMMEDIATE` transaction, commits,
//! and only then answers each caller with its own result: nobody hears of
//! a write before it is committed, and each statement still sees the ones
//! before it. When any statement in a group fails, the group is rolled
//! back and its statements run again one by one, so each caller gets
//! exactly the outcome it would have had alone.
//!
//! A caller may also hand over several statements that only write and
//! must stand or fall together ([`super::write_together`]): inside a group
//! they are simply more statements of its transaction; run alone (a group
//! of one, or after a split) they get a transaction of their own.
//!
//! Transactions that read before they write (`begin_write`) keep taking
//! the turn themselves.
use super::Writer;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, ExecResult, QueryResult, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

/// At most this many statements share one transaction.
const GROUP_MAX: usize = 64;

/// What a caller asks the writer to run.
#[derive(Clone)]
enum Op {
    Execute(Statement),
    Unprepared(String),
    QueryOne(Statement),
    QueryAll(Statement),
    /// Writes that stand or fall together.
    Batch(Vec<Statement>),
}

/// What it gets back.
enum Done {
    Executed(ExecResult),
    One(Option<QueryResult>),
    All(Vec<QueryResult>),
    Batch(Vec<ExecResult>),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Done, DbErr>>,
}

/// The queue in front of the writer thread; the thread ends when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    counts: Arc<Counts>,
}

/// What the writer has seen (tests and `/metrics`).
#[derive(Debug, Default)]
struct Counts {
    /// Jobs sent to the writer (a statement, or writes that go together).
    sent: AtomicUsize,
    /// Commits: every time the writer took the turn.
    commits: AtomicUsize,
    /// Groups of more than one statement committed together.
    grouped: AtomicUsize,
    /// Groups rolled back and run again one by one.
    split: AtomicUsize,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl GroupCommit {
    /// Starts the writer thread on `db`, taking `writer`'s turn per group.
    pub(super) fn start(db: DatabaseConnection, writer: Writer) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let seen = counts.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || runtime.block_on(run(db, writer, rx, seen)))?;
        Ok(Self { queue, counts })
    }

    /// Jobs sent so far; groups committed together; groups split.
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        let c = &self.counts;
        (c.sent.load(Ordering::SeqCst), c.grouped.load(Ordering::SeqCst), c.split.load(Ordering::SeqCst))
    }

    /// Turns the writer took so far.
    pub(super) fn commits(&self) -> usize {
        self.counts.commits.load(Ordering::SeqCst)
    }

    pub(super) async fn execute(&self, stmt: Statement) -> Option<Result<ExecResult, DbErr>> {
        self.send(Op::Execute(stmt), |done| match done {
            Done::Executed(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub(super) async fn execute_unprepared(&self, sql: &str) -> Option<Result<ExecResult, DbErr>> {
        self.send(Op::Unprepared(sql.to_owned()), |done| match done {
            Done::Executed(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub(super) async fn query_one(&self, stmt: Statement) -> Option<Result<Option<QueryResult>, DbErr>> {
        self.send(Op::QueryOne(stmt), |done| match done {
            Done::One(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub(super) async fn query_all(&self, stmt: Statement) -> Option<Result<Vec<QueryResult>, DbErr>> {
        self.send(Op::QueryAll(stmt), |done| match done {
            Done::All(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub(super) async fn batch(&self, stmts: Vec<Statement>) -> Option<Result<Vec<ExecResult>, DbErr>> {
        self.send(Op::Batch(stmts), |done| match done {
            Done::Batch(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// [`GroupCommit::ask`], unpacking the answer with `pick`.
    async fn send<T>(&self, op: Op, pick: fn(Done) -> Option<T>) -> Option<Result<T, DbErr>> {
        let done = self.ask(op).await?;
        Some(done.and_then(|d| {
            pick(d).ok_or_else(|| DbErr::Custom("the SQLite writer answered another kind of statement".into()))
        }))
    }

    /// `None` when the writer thread is gone (the caller then writes by
    /// itself); otherwise the statement's own outcome.
    async fn ask(&self, op: Op) -> Option<Result<Done, DbErr>> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { op, reply }).ok()?;
        self.counts.sent.fetch_add(1, Ordering::SeqCst);
        Some(answer.await.unwrap_or_else(|_| Err(DbErr::Custom("the SQLite writer stopped".into()))))
    }
}

async fn run(db: DatabaseConnection, writer: Writer, mut queue: mpsc::UnboundedReceiver<Job>, counts: Arc<Counts>) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    while queue.recv_many(&mut group, GROUP_MAX).await > 0 {
        counts.commits.fetch_add(1, Ordering::SeqCst);
        let outcomes = match writer.turn().await {
            Err(e) => group.iter().map(|_| Err(DbErr::Custom(e.to_string()))).collect(),
            Ok(_turn) => match group.len() {
                1 => vec![alone(&db, &group[0].op).await],
                _ => match together(&db, &group).await {
                    Some(outcomes) => {
                        counts.grouped.fetch_add(1, Ordering::SeqCst);
                        outcomes
                    }
                    None => {
                        counts.split.fetch_add(1, Ordering::SeqCst);
                        let mut outcomes = Vec::with_capacity(group.len());
                        for job in &group {
                            outcomes.push(alone(&db, &job.op).await);
                        }
                        outcomes
                    }
                },
            },
        };
        for (job, outcome) in group.drain(..).zip(outcomes) {
            // A caller that gave up no longer listens; its write stands.
            let _ = job.reply.send(outcome);
        }
    }
}

/// The group in one transaction; `None` when any of it failed (then
/// nothing of it was committed).
async fn together(db: &DatabaseConnection, group: &[Job]) -> Option<Vec<Result<Done, DbErr>>> {
    let txn = db.begin_with_options(immediate()).await.ok()?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        match run_op(&txn, &job.op).await {
            Ok(done) => outcomes.push(Ok(done)),
            Err(_) => {
                let _ = txn.rollback().await;
                return None;
            }
        }
    }
    txn.commit().await.ok()?;
    Some(outcomes)
}

fn immediate() -> TransactionOptions {
    TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() }
}

/// One job by itself: a batch in a transaction of its own, anything else
/// as the autocommit statement it is.
async fn alone(db: &DatabaseConnection, op: &Op) -> Result<Done, DbErr> {
    if !matches!(op, Op::Batch(_)) {
        return run_op(db, op).await;
    }
    let txn = db.begin_with_options(immediate()).await?;
    match run_op(&txn, op).await {
        Ok(done) => txn.commit().await.map(|_| done),
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

async fn run_op<C: ConnectionTrait>(conn: &C, op: &Op) -> Result<Done, DbErr> {
    match op.clone() {
        Op::Batch(stmts) => {
            let mut done = Vec::with_capacity(stmts.len());
            for stmt in stmts {
                done.push(conn.execute_raw(stmt).await?);
            }
            Ok(Done::Batch(done))
        }
        Op::Execute(stmt) => conn.execute_raw(stmt).await.map(Done::Executed),
        Op::Unprepared(sql) => conn.execute_unprepared(&sql).await.map(Done::Executed),
        Op::QueryOne(stmt) => conn.query_one_raw(stmt).await.map(Done::One),
        Op::QueryAll(stmt) => conn.query_all_raw(stmt).await.map(Done::All),
    }
}
