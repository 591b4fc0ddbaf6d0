//! The audit viewer and daily statistics (G2) for auditors and platform
//! admins. Filters read the fixed `outcome=… actor=… subject=…` prefix
//! every audit row carries (see `domain::audit`).
use super::{Permission, Staff, StaffError};
use crate::store::Store;
use crate::store::entities::audit;
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

pub const PAGE_SIZE: u64 = 50;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// An actor label, e.g. `user:…`, `staff:…`, `operator:cli`.
    pub actor: String,
    /// A subject, e.g. `user:…`, `client:…`.
    pub subject: String,
    /// An action name, e.g. `sign_in`.
    pub event: String,
    /// 0-based page.
    pub page: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub at: i64,
    pub action: String,
    pub detail: String,
    pub ip: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub rows: Vec<Row>,
    pub page: u64,
    pub has_more: bool,
}

fn clean(s: &str) -> String {
    s.trim().chars().filter(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.' | '@')).take(128).collect()
}

/// One page of audit rows, newest first.
pub async fn search(db: &Store, staff: &Staff, f: &Filter) -> Result<Page, StaffError> {
    staff.require(Permission::ViewAudit)?;
    let mut cond = Condition::all();
    let (actor, subject, event) = (clean(&f.actor), clean(&f.subject), clean(&f.event));
    if !actor.is_empty() {
        cond = cond.add(audit::Column::Detail.contains(format!(" actor={actor} ")));
    }
    if !subject.is_empty() {
        cond = cond.add(
            Condition::any()
                .add(audit::Column::Detail.contains(format!(" subject={subject} ")))
                .add(audit::Column::Detail.ends_with(format!(" subject={subject}"))),
        );
    }
    if !event.is_empty() {
        cond = cond.add(audit::Column::Action.eq(event));
    }
    let page = f.page.min(10_000);
    let rows = audit::Entity::find()
        .filter(cond)
        .order_by_desc(audit::Column::CreatedAt)
        .order_by_desc(audit::Column::Id)
        .offset(page * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
        .all(db)
        .await?;
    let has_more = rows.len() as u64 > PAGE_SIZE;
    let rows = rows
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|r| Row { at: r.created_at, action: r.action, detail: r.detail, ip: r.ip.unwrap_or_default() })
        .collect();
    Ok(Page { rows, page, has_more })
}

/// One day of statistics (UTC days).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub sign_ins: u64,
    pub sign_in_failures: u64,
    pub registrations: u64,
    pub verifications: u64,
}

fn day_label(day_start: i64) -> String {
    chrono::DateTime::from_timestamp(day_start, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Sign-ins (succeeded and failed), registrations and identity
/// verifications per UTC day over the `days` days ending today (1–31).
pub async fn daily(db: &Store, staff: &Staff, days: i64, now: i64) -> Result<Vec<Day>, StaffError> {
    staff.require(Permission::ViewAudit)?;
    let days = days.clamp(1, 31);
    let today = now - now.rem_euclid(86_400);
    let mut out = Vec::new();
    for i in (0..days).rev() {
        let start = today - i * 86_400;
        let in_day = || {
            Condition::all().add(audit::Column::CreatedAt.gte(start)).add(audit::Column::CreatedAt.lt(start + 86_400))
        };
        let count = |c: Condition| async move { audit::Entity::find().filter(c).count(db).await };
        let sign_ins = count(
            in_day().add(audit::Column::Action.eq("sign_in")).add(audit::Column::Detail.starts_with("outcome=success")),
        )
        .await?;
        let sign_in_failures = count(
            in_day().add(audit::Column::Action.eq("sign_in")).add(audit::Column::Detail.not_like("outcome=success%")),
        )
        .await?;
        let registrations = count(in_day().add(audit::Column::Action.eq("register"))).await?;
        let verifications = count(in_day().add(audit::Column::Action.starts_with("identity_"))).await?;
        out.push(Day { day: day_label(start), sign_ins, sign_in_failures, registrations, verifications });
    }
    Ok(out)
}
