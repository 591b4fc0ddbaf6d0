//! Statistics from counters (G2): one row per (platform day, metric, dimension)
//! in `stat_counters`, bumped in the same transaction as the event it
//! counts, so the statistics page reads a few hundred rows for any range
//! instead of scanning the audit trail.
//!
//! Where counts come from (each in one place every path goes through):
//! - the audit writer (`domain::audit::append`) maps audited events:
//!   `sign_in` success → `sign_in` by `method` and `level`, failure →
//!   `sign_in_failure`, locked → `lockout`; `mini_program_login` →
//!   `sign_in` (method `mini_program`) and `sign_in_app`; `register` →
//!   `registration`;
//! - `authn::sign_in::finish` → `sign_in_app` by `client` when the sign-in
//!   answers an app's authorization request;
//! - `identity::record` (every identity check) → `verification` by `kind`
//!   and `outcome`;
//! - the SMS limiter → `sms_sent`, or `sms_refused` when over a limit.
use super::{Permission, Staff, StaffError};
use crate::store::Store;
use crate::store::entities::stat_counter;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use std::collections::BTreeMap;

/// The metrics, in the order the page shows them.
pub const METRICS: [&str; 8] =
    ["sign_in", "sign_in_app", "sign_in_failure", "lockout", "registration", "verification", "sms_sent", "sms_refused"];

/// The longest range one report covers.
pub const MAX_DAYS: i64 = 366;

const DAY: i64 = 86_400;

/// The platform's days are China Standard Time days (UTC+8; China keeps
/// one time zone and no daylight saving): a sign-in at 07:00 in Beijing
/// counts on that day, not on the UTC day before.
pub const DAY_OFFSET: i64 = 8 * 3600;

/// The platform day an instant falls in (its first second, as an instant).
pub fn day_of(t: i64) -> i64 {
    let local = t + DAY_OFFSET;
    local - local.rem_euclid(DAY) - DAY_OFFSET
}

/// An instant as the platform's wall-clock time, `YYYY-MM-DD HH:MM:SS`.
pub fn local_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t + DAY_OFFSET, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Adds one to `metric` / `dim` for the day of `now`, on the caller's
/// connection (its transaction): `INSERT … ON CONFLICT (key) DO UPDATE SET
/// count = count + 1`, atomic on both databases.
pub async fn bump<C: ConnectionTrait>(conn: &C, metric: &str, dim: &str, now: i64) -> Result<(), DbErr> {
    let day = day_of(now);
    stat_counter::Entity::insert(stat_counter::ActiveModel {
        key: Set(format!("{day}|{metric}|{dim}")),
        day: Set(day),
        metric: Set(metric.into()),
        dim: Set(dim.into()),
        count: Set(1),
    })
    .on_conflict(
        OnConflict::column(stat_counter::Column::Key)
            .value(stat_counter::Column::Count, Expr::col((stat_counter::Entity, stat_counter::Column::Count)).add(1))
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// `key=value` from an audit detail (`outcome=… actor=… method=…`).
fn field<'a>(detail: &'a str, key: &str) -> Option<&'a str> {
    detail.split_whitespace().find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The counters an audited event stands for.
pub fn counters_of(action: &str, detail: &str) -> Vec<(&'static str, String)> {
    let outcome = field(detail, "outcome").unwrap_or("success");
    match (action, outcome) {
        ("sign_in", "success") => {
            let method = field(detail, "method").unwrap_or("");
            let level = field(detail, "level").unwrap_or("");
            vec![("sign_in", format!("method={method} level={level}"))]
        }
        ("sign_in", "locked") => vec![("lockout", String::new())],
        ("sign_in", _) => vec![("sign_in_failure", String::new())],
        ("mini_program_login", "success") => vec![
            ("sign_in", "method=mini_program level=".to_string()),
            ("sign_in_app", format!("client={}", field(detail, "client").unwrap_or(""))),
        ],
        ("register", _) => vec![("registration", String::new())],
        _ => Vec::new(),
    }
}

/// Bumps the counters of an audited event (called by the audit writer).
pub async fn audited<C: ConnectionTrait>(conn: &C, action: &str, detail: &str, now: i64) -> Result<(), DbErr> {
    for (metric, dim) in counters_of(action, detail) {
        bump(conn, metric, &dim, now).await?;
    }
    Ok(())
}

/// One metric and dimension over the report's days.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Series {
    pub metric: String,
    /// `""` for a metric's total over every dimension.
    pub dim: String,
    /// One count per day of the report.
    pub counts: Vec<i64>,
    pub total: i64,
}

/// Counters over a range of platform days.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// `YYYY-MM-DD`, oldest first.
    pub days: Vec<String>,
    /// Per metric (in [`METRICS`] order), the total over all dimensions.
    pub totals: Vec<Series>,
    /// Per metric and dimension (dimensioned metrics only).
    pub series: Vec<Series>,
}

impl Report {
    /// A metric's total series.
    pub fn total(&self, metric: &str) -> Option<&Series> {
        self.totals.iter().find(|s| s.metric == metric)
    }
}

/// The date of a platform day, `YYYY-MM-DD`.
pub fn label(day: i64) -> String {
    chrono::DateTime::from_timestamp(day + DAY_OFFSET, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Parses `YYYY-MM-DD` to the first second of that platform day.
pub fn parse_day(s: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp() - DAY_OFFSET)
}

/// The counters from day `from` to day `to` (inclusive, any instants in
/// them), at most [`MAX_DAYS`]; for auditors and platform admins.
pub async fn report(db: &Store, staff: &Staff, from: i64, to: i64) -> Result<Report, StaffError> {
    staff.require(Permission::ViewAudit)?;
    let (from, to) = (day_of(from), day_of(to));
    if to < from {
        return Err(StaffError::Invalid("admin_stats_bad_range"));
    }
    if (to - from) / DAY + 1 > MAX_DAYS {
        return Err(StaffError::Invalid("admin_stats_range_too_long"));
    }
    let n = ((to - from) / DAY + 1) as usize;
    let rows = stat_counter::Entity::find()
        .filter(stat_counter::Column::Day.gte(from))
        .filter(stat_counter::Column::Day.lt(to + DAY))
        .order_by_asc(stat_counter::Column::Day)
        .all(db)
        .await?;
    let mut totals: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let mut dims: BTreeMap<(usize, String), Vec<i64>> = BTreeMap::new();
    for r in rows {
        let Some(m) = METRICS.iter().position(|m| *m == r.metric) else { continue };
        let i = ((r.day - from) / DAY) as usize;
        if i >= n {
            continue;
        }
        totals.entry(m).or_insert_with(|| vec![0; n])[i] += r.count;
        if !r.dim.is_empty() {
            dims.entry((m, r.dim)).or_insert_with(|| vec![0; n])[i] += r.count;
        }
    }
    let series = |metric: usize, dim: String, counts: Vec<i64>| Series {
        metric: METRICS[metric].to_string(),
        dim,
        total: counts.iter().sum(),
        counts,
    };
    Ok(Report {
        days: (0..n).map(|i| label(from + i as i64 * DAY)).collect(),
        totals: (0..METRICS.len())
            .map(|m| series(m, String::new(), totals.remove(&m).unwrap_or_else(|| vec![0; n])))
            .collect(),
        series: dims.into_iter().map(|((m, dim), counts)| series(m, dim, counts)).collect(),
    })
}

/// The report as CSV: `day,metric,dimension,count`, one line per day and
/// series (totals with an empty dimension).
pub fn to_csv(r: &Report) -> String {
    let mut out = String::from("day,metric,dimension,count\r\n");
    for s in r.totals.iter().chain(r.series.iter()) {
        for (day, count) in r.days.iter().zip(&s.counts) {
            let line = [day.as_str(), s.metric.as_str(), s.dim.as_str(), &count.to_string()]
                .iter()
                .map(|c| super::audit_view::csv_cell(c))
                .collect::<Vec<_>>()
                .join(",");
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audited_events_map_to_counters() {
        let d = "outcome=success actor=user:u subject=session:s method=password level=2 amr=pwd";
        assert_eq!(counters_of("sign_in", d), vec![("sign_in", "method=password level=2".to_string())]);
        assert_eq!(counters_of("sign_in", "outcome=locked actor=anonymous subject=x")[0].0, "lockout");
        assert_eq!(counters_of("sign_in", "outcome=failure actor=anonymous subject=x")[0].0, "sign_in_failure");
        assert_eq!(counters_of("register", "phone verified by SMS")[0].0, "registration");
        assert!(counters_of("consent_granted", d).is_empty());
        // 1970-01-04 00:00:05 UTC is 08:00:05 in Beijing on the 4th.
        assert_eq!(day_of(86_400 * 3 + 5), 86_400 * 3 - DAY_OFFSET);
        assert_eq!(label(day_of(86_400 * 3 + 5)), "1970-01-04");
        // 1970-01-04 20:00 UTC is already the 5th in Beijing.
        assert_eq!(label(day_of(86_400 * 3 + 20 * 3600)), "1970-01-05");
        assert_eq!(parse_day("1970-01-02"), Some(86_400 - DAY_OFFSET));
        assert_eq!(local_time(0), "1970-01-01 08:00:00");
    }
}
