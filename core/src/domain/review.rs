//! A single-decision review: a request filed by a person waits `pending`
//! until staff approve or reject it, exactly once. Appeals (A8),
//! representative changes (C5) and kin-binding reports are all decided
//! through [`decide_once`]: one conditional UPDATE inside the caller's
//! transaction, so two operators deciding at the same moment cannot both
//! win, and the effects of the decision commit (or roll back) with it.
//! The decision is audited with [`record_decision`], the decider named the
//! one way the audit search and the console read it ([`decided_by`]).
use crate::domain::audit::{self, Actor, Event};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// The state every reviewed request starts in.
pub const PENDING: &str = "pending";

/// What staff decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn from_approve(approve: bool) -> Self {
        if approve { Decision::Approve } else { Decision::Reject }
    }

    /// The request's state after the decision.
    pub fn status(self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        }
    }
}

/// A table of reviewed requests: its id, status and decision columns.
pub trait Reviewed: EntityTrait {
    fn id_column() -> Self::Column;
    fn status_column() -> Self::Column;
    /// Where the decision's reason goes; `None` for a table that keeps none.
    fn reason_column() -> Option<Self::Column>;
    fn decided_by_column() -> Self::Column;
    fn decided_at_column() -> Self::Column;
    /// The request's state after `decision`.
    fn status_after(decision: Decision) -> &'static str {
        decision.status()
    }
}

/// How a decision names who took it, in the request's `decided_by` column:
/// the audit actor's label (`staff:<account id>` for the console,
/// `operator:<name>` for the command line).
pub fn decided_by(by: Actor<'_>) -> String {
    by.label()
}

/// Moves request `id` from pending to the decision's state, with the reason,
/// the decider and the time, inside `conn` (the caller's transaction).
/// Returns the decided request, or `None` when it is unknown or was already
/// decided — then the caller rolls back and changes nothing.
pub async fn decide_once<E: Reviewed, C: ConnectionTrait>(
    conn: &C,
    id: &str,
    decision: Decision,
    reason: Option<String>,
    by: Actor<'_>,
    now: i64,
) -> Result<Option<E::Model>, DbErr> {
    let won = decide_pending::<E, C>(conn, E::id_column().eq(id).into(), decision, reason, by, now).await?;
    if won != 1 {
        return Ok(None);
    }
    E::find().filter(E::id_column().eq(id)).one(conn).await
}

/// Decides every still-pending request matching `which` alike (the other
/// reports on a binding a decision removed); returns how many it decided.
pub async fn decide_pending<E: Reviewed, C: ConnectionTrait>(
    conn: &C,
    which: Condition,
    decision: Decision,
    reason: Option<String>,
    by: Actor<'_>,
    now: i64,
) -> Result<u64, DbErr> {
    let mut update = E::update_many()
        .col_expr(E::status_column(), Expr::value(E::status_after(decision)))
        .col_expr(E::decided_by_column(), Expr::value(decided_by(by)))
        .col_expr(E::decided_at_column(), Expr::value(now));
    if let Some(column) = E::reason_column() {
        update = update.col_expr(column, SimpleExpr::from(Expr::value(reason)));
    }
    Ok(update.filter(which).filter(E::status_column().eq(PENDING)).exec(conn).await?.rows_affected)
}

/// Audits a decision inside its transaction: `actions` are the events for
/// (approve, reject), `subject` names the request as `kind:id`.
pub async fn record_decision<C: ConnectionTrait>(
    conn: &C,
    actions: (&str, &str),
    decision: Decision,
    by: Actor<'_>,
    subject: &str,
    detail: &str,
    now: i64,
) -> Result<(), DbErr> {
    let action = match decision {
        Decision::Approve => actions.0,
        Decision::Reject => actions.1,
    };
    audit::record(conn, Event::new(action, by, subject).detail(detail), now).await
}

macro_rules! reviewed {
    ($m:path) => {
        reviewed!($m, Some(<Self as EntityTrait>::Column::Reason), |d: Decision| d.status());
    };
    ($m:path, $reason:expr, $status:expr) => {
        impl Reviewed for $m {
            fn id_column() -> Self::Column {
                <Self as EntityTrait>::Column::Id
            }
            fn status_column() -> Self::Column {
                <Self as EntityTrait>::Column::Status
            }
            fn reason_column() -> Option<Self::Column> {
                $reason
            }
            fn decided_by_column() -> Self::Column {
                <Self as EntityTrait>::Column::DecidedBy
            }
            fn decided_at_column() -> Self::Column {
                <Self as EntityTrait>::Column::DecidedAt
            }
            fn status_after(decision: Decision) -> &'static str {
                ($status)(decision)
            }
        }
    };
}

reviewed!(crate::store::entities::appeal::Entity);
reviewed!(crate::store::entities::representative_change::Entity);
// A kin report's `reason` is the reporter's; approving it removes the
// binding, rejecting dismisses the report.
reviewed!(crate::store::entities::kin_report::Entity, None, |d: Decision| match d {
    Decision::Approve => crate::domain::delegation::kin_reports::REMOVED,
    Decision::Reject => crate::domain::delegation::kin_reports::DISMISSED,
});
