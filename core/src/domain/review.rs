//! A single-decision review: a request filed by a person waits `pending`
//! until staff approve or reject it, exactly once. Appeals (A8) and
//! representative changes (C5) are both decided through [`decide_once`]:
//! one conditional UPDATE inside the caller's transaction, so two
//! operators deciding at the same moment cannot both win, and the effects
//! of the decision commit (or roll back) with it.
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

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
    fn reason_column() -> Self::Column;
    fn decided_by_column() -> Self::Column;
    fn decided_at_column() -> Self::Column;
}

/// Moves request `id` from pending to the decision's state, with the reason,
/// the deciding operator and the time, inside `conn` (the caller's
/// transaction). Returns the decided request, or `None` when it is unknown
/// or was already decided — then the caller rolls back and changes nothing.
pub async fn decide_once<E: Reviewed, C: ConnectionTrait>(
    conn: &C,
    id: &str,
    decision: Decision,
    reason: Option<String>,
    operator: &str,
    now: i64,
) -> Result<Option<E::Model>, DbErr> {
    let won = E::update_many()
        .col_expr(E::status_column(), Expr::value(decision.status()))
        .col_expr(E::reason_column(), SimpleExpr::from(Expr::value(reason)))
        .col_expr(E::decided_by_column(), Expr::value(operator))
        .col_expr(E::decided_at_column(), Expr::value(now))
        .filter(E::id_column().eq(id))
        .filter(E::status_column().eq(PENDING))
        .exec(conn)
        .await?;
    if won.rows_affected != 1 {
        return Ok(None);
    }
    E::find().filter(E::id_column().eq(id)).one(conn).await
}

macro_rules! reviewed {
    ($m:path) => {
        impl Reviewed for $m {
            fn id_column() -> Self::Column {
                <Self as EntityTrait>::Column::Id
            }
            fn status_column() -> Self::Column {
                <Self as EntityTrait>::Column::Status
            }
            fn reason_column() -> Self::Column {
                <Self as EntityTrait>::Column::Reason
            }
            fn decided_by_column() -> Self::Column {
                <Self as EntityTrait>::Column::DecidedBy
            }
            fn decided_at_column() -> Self::Column {
                <Self as EntityTrait>::Column::DecidedAt
            }
        }
    };
}

reviewed!(crate::store::entities::appeal::Entity);
reviewed!(crate::store::entities::representative_change::Entity);
