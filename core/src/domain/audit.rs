//! The audit trail of sensitive use cases. Each use case records its own
//! event here — inside its transaction where it has one — so every entry
//! path (page, OAuth endpoint, app API, CLI) is audited alike and none can
//! forget to. Handlers pass the client IP in as data when they know it.
//!
//! The row keeps the acting person in `user_id` (so a person's own events
//! can be listed and removed with the account) and a fixed, parseable
//! prefix in `detail`: `outcome=… actor=… subject=…`, then free text.
//! Nothing secret goes in: no passwords, codes or tokens.
use sea_orm::{ConnectionTrait, DbErr};

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused before it was tried: the throttle holds the account or IP.
    Locked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Locked => "locked",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A person with an account (its id).
    User(&'a str),
    /// An enterprise acting through its representative (its id).
    Enterprise(&'a str),
    /// A back-office operator at the command line (the name given).
    Operator(&'a str),
    /// A staff member in the operator console (their account id).
    Staff(&'a str),
    /// Nobody identified yet (a failed sign-in names only what was typed).
    Anonymous,
}

impl Actor<'_> {
    fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id),
            _ => None,
        }
    }

    /// How the actor is named in `detail` (`actor=…`) and wherever a record
    /// keeps who acted (`staff:<id>`, `operator:<name>`, …).
    pub fn label(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Enterprise(id) => format!("enterprise:{id}"),
            Actor::Operator(name) => format!("operator:{name}"),
            Actor::Staff(id) => format!("staff:{id}"),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// One audited event. `action` is a stable snake_case name (the list is in
/// docs/security.md); `subject` names what the action was done to, as
/// `kind:id`.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub action: &'a str,
    pub actor: Actor<'a>,
    pub subject: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub ip: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// A successful `action` by `actor` on `subject`, without detail or IP.
    pub fn new(action: &'a str, actor: Actor<'a>, subject: &'a str) -> Self {
        Event { action, actor, subject, outcome: Outcome::Success, detail: "", ip: None }
    }
    pub fn outcome(self, outcome: Outcome) -> Self {
        Event { outcome, ..self }
    }
    pub fn detail(self, detail: &'a str) -> Self {
        Event { detail, ..self }
    }
    pub fn ip(self, ip: Option<&'a str>) -> Self {
        Event { ip, ..self }
    }
}

/// The `detail` column of an event: the fixed prefix, then the free text.
pub fn detail_of(e: &Event<'_>) -> String {
    let mut out = format!("outcome={} actor={} subject={}", e.outcome.as_str(), e.actor.label(), e.subject);
    if !e.detail.is_empty() {
        out.push(' ');
        out.push_str(e.detail);
    }
    out
}

/// Records `e` at `now` (the injected clock) on any connection, so a use
/// case audits in its own transaction and the event commits or rolls back
/// with it.
pub async fn record<C: ConnectionTrait>(conn: &C, e: Event<'_>, now: i64) -> Result<(), DbErr> {
    append(conn, e.actor.user_id(), e.action, &detail_of(&e), e.ip, now).await
}

// ---------------------------------------------------------------- the chain
//
// Every row written from here on takes the next sequence number and
// `hash = SHA-256(previous hash ‖ canonical row)`; the head row in
// `audit_chain` holds the last (seq, hash). Appending is a compare-and-set
// on the head inside the caller's connection (its transaction where it has
// one): on PostgreSQL the head stays row-locked until the event commits, so
// a second writer waits, finds the head moved and chains after it; SQLite
// has one writer. Editing, deleting or inserting a row afterwards breaks
// the recomputation (`verify`). The same append bumps the statistics
// counters the event stands for (`staff::stats`), so no path is missed.

/// The hash the chain starts from (rows older than the chain stay out).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HEAD: &str = "head";

/// The fields a row's hash covers: sequence, id, acting account, action,
/// detail (outcome, actor, subject and free text), IP and time.
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub user_id: Option<&'a str>,
    pub action: &'a str,
    pub detail: &'a str,
    pub ip: Option<&'a str>,
    pub created_at: i64,
}

/// `SHA-256(prev ‖ canonical)` as lower-case hex. Each field is written
/// with its length first, so no two different rows encode alike; an absent
/// user id or IP differs from an empty one.
pub fn chain_hash(prev: &str, c: &Canonical<'_>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"idp-audit-v1\n");
    let mut field = |v: Option<&str>| match v {
        Some(v) => {
            h.update(format!("{}:", v.len()).as_bytes());
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        None => h.update(b"-\n"),
    };
    field(Some(prev));
    field(Some(&c.seq.to_string()));
    field(Some(c.id));
    field(c.user_id);
    field(Some(c.action));
    field(Some(c.detail));
    field(c.ip);
    field(Some(&c.created_at.to_string()));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends one audit row to the chain on `conn` and bumps the counters it
/// stands for. Callers normally use [`record`]; this is the raw form for
/// events whose detail has no fixed prefix.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    user_id: Option<&str>,
    action: &str,
    detail: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    use crate::store::entities::{audit, audit_chain};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let id = crate::crypto::random_token(12);
    // Another writer can move the head between our read and our update
    // (then the update matches nothing and we read again); on PostgreSQL
    // the update waits for that writer's commit first.
    for _ in 0..1000 {
        let head = audit_chain::Entity::find_by_id(HEAD.to_string())
            .one(conn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("audit_chain head".into()))?;
        let seq = head.seq + 1;
        let canonical = Canonical { seq, id: &id, user_id, action, detail, ip, created_at: now };
        let hash = chain_hash(&head.hash, &canonical);
        let moved = audit_chain::Entity::update_many()
            .col_expr(audit_chain::Column::Seq, Expr::value(seq))
            .col_expr(audit_chain::Column::Hash, Expr::value(hash.clone()))
            .col_expr(audit_chain::Column::UpdatedAt, Expr::value(now))
            .filter(audit_chain::Column::Id.eq(HEAD))
            .filter(audit_chain::Column::Seq.eq(head.seq))
            .exec(conn)
            .await?;
        if moved.rows_affected != 1 {
            continue;
        }
        audit::ActiveModel {
            id: Set(id),
            user_id: Set(user_id.map(String::from)),
            action: Set(action.into()),
            detail: Set(detail.into()),
            ip: Set(ip.map(String::from)),
            created_at: Set(now),
            seq: Set(Some(seq)),
            hash: Set(Some(hash)),
        }
        .insert(conn)
        .await?;
        crate::domain::staff::stats::audited(conn, action, detail, now).await?;
        return Ok(());
    }
    Err(DbErr::Custom("audit chain: the head kept moving".into()))
}

/// Why the chain does not verify, at the first place it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Break {
    /// The row's content or hash was changed after it was written.
    Edited,
    /// Rows are missing before this one (deleted), or a sequence repeats.
    Missing,
    /// The last rows were deleted: the head names a later row.
    Truncated,
    /// The head's hash does not match the last row.
    HeadMismatch,
    /// Rows outside the chain were added (or pre-chain rows removed).
    Unchained,
}

impl Break {
    pub fn as_str(self) -> &'static str {
        match self {
            Break::Edited => "edited",
            Break::Missing => "missing",
            Break::Truncated => "truncated",
            Break::HeadMismatch => "head_mismatch",
            Break::Unchained => "unchained",
        }
    }
}

/// The first broken place: the row (its id when it exists) and sequence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Broken {
    pub seq: i64,
    pub id: Option<String>,
    pub reason: Break,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Chained rows checked.
    pub rows: i64,
    /// Rows older than the chain (recorded at its genesis).
    pub legacy_rows: i64,
    pub head_seq: i64,
    /// The head hash: write it down elsewhere to anchor the chain.
    pub head_hash: String,
    pub broken: Option<Broken>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Recomputes the whole chain in sequence order, in pages, and reports the
/// first row that does not match.
pub async fn verify<C: ConnectionTrait>(conn: &C) -> Result<Verification, DbErr> {
    use crate::store::entities::{audit, audit_chain};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    let head = audit_chain::Entity::find_by_id(HEAD.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_chain head".into()))?;
    let mut out = Verification {
        rows: 0,
        legacy_rows: head.legacy_rows,
        head_seq: head.seq,
        head_hash: head.hash.clone(),
        broken: None,
    };
    let unchained = audit::Entity::find().filter(audit::Column::Seq.is_null()).count(conn).await? as i64;
    let mut prev = GENESIS.to_string();
    let mut expected = 1i64;
    loop {
        let rows = audit::Entity::find()
            .filter(audit::Column::Seq.gte(expected))
            .order_by_asc(audit::Column::Seq)
            .limit(1000)
            .all(conn)
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let seq = r.seq.unwrap_or_default();
            if seq != expected {
                out.broken = Some(Broken { seq: expected, id: Some(r.id), reason: Break::Missing });
                return Ok(out);
            }
            let canonical = Canonical {
                seq,
                id: &r.id,
                user_id: r.user_id.as_deref(),
                action: &r.action,
                detail: &r.detail,
                ip: r.ip.as_deref(),
                created_at: r.created_at,
            };
            let hash = chain_hash(&prev, &canonical);
            if r.hash.as_deref() != Some(hash.as_str()) {
                out.broken = Some(Broken { seq, id: Some(r.id), reason: Break::Edited });
                return Ok(out);
            }
            out.rows += 1;
            prev = hash;
            expected += 1;
        }
    }
    if expected - 1 != head.seq {
        out.broken = Some(Broken { seq: expected, id: None, reason: Break::Truncated });
    } else if prev != head.hash {
        out.broken = Some(Broken { seq: head.seq, id: None, reason: Break::HeadMismatch });
    } else if unchained != head.legacy_rows {
        out.broken = Some(Broken { seq: 0, id: None, reason: Break::Unchained });
    }
    Ok(out)
}

/// [`verify`], then records who checked and what was found
/// (`audit_verified`, outcome failure when the chain is broken).
pub async fn verify_recorded(
    db: &crate::store::Store,
    actor: Actor<'_>,
    ip: Option<&str>,
    now: i64,
) -> Result<Verification, DbErr> {
    let v = verify(db).await?;
    let detail = match &v.broken {
        None => format!("rows={} ok", v.rows),
        Some(b) => format!("rows={} broken_seq={} reason={}", v.rows, b.seq, b.reason.as_str()),
    };
    let outcome = if v.ok() { Outcome::Success } else { Outcome::Failure };
    record(db, Event::new("audit_verified", actor, "audit").detail(&detail).ip(ip).outcome(outcome), now).await?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_has_a_fixed_prefix() {
        let e = Event::new("consent_granted", Actor::User("u1"), "client:app").detail("scope=openid");
        assert_eq!(detail_of(&e), "outcome=success actor=user:u1 subject=client:app scope=openid");
        let e = Event::new("sign_in", Actor::Anonymous, "login:name:bob").outcome(Outcome::Locked);
        assert_eq!(detail_of(&e), "outcome=locked actor=anonymous subject=login:name:bob");
        assert_eq!(e.actor.user_id(), None);
    }

    #[test]
    fn chain_hash_covers_every_field() {
        let c = Canonical {
            seq: 1,
            id: "a",
            user_id: Some("u"),
            action: "sign_in",
            detail: "d",
            ip: Some("1.2.3.4"),
            created_at: 5,
        };
        let h = chain_hash(GENESIS, &c);
        assert_eq!(h.len(), 64);
        assert_ne!(h, chain_hash(GENESIS, &Canonical { ip: None, ..c }));
        assert_ne!(h, chain_hash(GENESIS, &Canonical { ip: Some(""), ..c }));
        assert_ne!(h, chain_hash(GENESIS, &Canonical { seq: 2, ..c }));
        assert_ne!(h, chain_hash(GENESIS, &Canonical { detail: "e", ..c }));
        assert_ne!(h, chain_hash(&h, &c));
    }
}
