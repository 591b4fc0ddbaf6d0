//! The console's audit viewer (filters, CSV export, chain check) and the
//! statistics page (counters over a date range, server-drawn SVG charts
//! with the numbers beside them, CSV). Each handler calls one core use
//! case in `domain::staff::{audit_view, stats}`, which checks the role.
use super::{Console, refused};
use crate::domain::staff::{audit_view, stats};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, PageError};
use crate::server::AppState;
use crate::with_csrf;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

type PageResult = Result<Response, PageError>;

/// The audit filter as a query string or a form.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub person: String,
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: u64,
    #[serde(default)]
    pub csrf: String,
}
with_csrf!(AuditQuery);

impl AuditQuery {
    pub fn filter(&self) -> audit_view::Filter {
        audit_view::Filter {
            actor: self.actor.clone(),
            subject: self.subject.clone(),
            event: self.event.clone(),
            person: self.person.clone(),
            client: self.client.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            page: self.page,
        }
        .cleaned()
    }
}

fn time(t: i64) -> String {
    stats::local_time(t)
}

async fn audit_page(
    state: &AppState,
    c: &Console,
    jar: CookieJar,
    q: &AuditQuery,
    verified: Option<&crate::domain::audit::Verification>,
) -> PageResult {
    let filter = q.filter();
    let found = audit_view::search(&state.store, &c.staff, &filter).await.map_err(refused)?;
    let rows: Vec<serde_json::Value> = found
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({ "at": time(r.at), "action": r.action, "detail": r.detail, "ip": r.ip,
                "seq": r.seq })
        })
        .collect();
    let query = |page: u64| {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &filter.actor),
            ("subject", &filter.subject),
            ("event", &filter.event),
            ("person", &filter.person),
            ("client", &filter.client),
            ("from", &filter.from),
            ("to", &filter.to),
        ] {
            if !v.is_empty() {
                u.append_pair(k, v);
            }
        }
        u.append_pair("page", &page.to_string());
        format!("/admin/audit?{}", u.finish())
    };
    let verify = verified.map(|v| {
        serde_json::json!({
            "ok": v.ok(), "rows": v.rows, "legacy_rows": v.legacy_rows, "head_seq": v.head_seq,
            "head_hash": v.head_hash,
            "broken_seq": v.broken.as_ref().map(|b| b.seq),
            "broken_id": v.broken.as_ref().and_then(|b| b.id.clone()),
            "broken_reason": v.broken.as_ref().map(|b| b.reason.as_str()),
        })
    });
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({
            "actor": filter.actor, "subject": filter.subject, "event": filter.event,
            "person": filter.person, "client": filter.client, "from": filter.from, "to": filter.to,
            "rows": rows, "page": found.page + 1,
            "prev": (found.page > 0).then(|| query(found.page - 1)),
            "next": found.has_more.then(|| query(found.page + 1)),
            "verify": verify,
        }),
    );
    Ok(c.render(state, jar, "admin_audit.html", ctx))
}

/// `/admin/audit`: search by person, app, action, actor, subject and days.
pub async fn audit(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    audit_page(&state, &c, jar, &q, None).await
}

/// A CSV download (UTF-8 with a byte-order mark so spreadsheets read the
/// Chinese text), never cached.
pub fn csv_response(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        format!("\u{feff}{body}"),
    )
        .into_response()
}

/// `POST /admin/audit/export`: the filtered rows as CSV (audited).
pub async fn audit_export(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    c: Console,
    CsrfForm(q): CsrfForm<AuditQuery>,
) -> PageResult {
    let ip = cookies::client_ip(Some(addr));
    let (csv, _) = audit_view::export_csv(&state.store, &c.staff, &q.filter(), Some(&ip), state.clock.now())
        .await
        .map_err(refused)?;
    Ok(csv_response("audit.csv", csv))
}

/// `POST /admin/audit/verify`: recomputes the hash chain for an auditor
/// and shows the result above the log (audited).
pub async fn audit_verify(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    c: Console,
    jar: CookieJar,
    CsrfForm(q): CsrfForm<AuditQuery>,
) -> PageResult {
    let ip = cookies::client_ip(Some(addr));
    let v = audit_view::verify(&state.store, &c.staff, Some(&ip), state.clock.now()).await.map_err(refused)?;
    audit_page(&state, &c, jar, &q, Some(&v)).await
}

// ---------------------------------------------------------------- statistics

#[derive(Deserialize, Default)]
pub struct StatsQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub days: Option<i64>,
}

impl StatsQuery {
    /// The chosen range: `from`..`to` when given (a bad date is refused),
    /// else the `days` (7 by default) ending today.
    pub fn range(&self, now: i64) -> Result<(i64, i64), crate::domain::staff::StaffError> {
        use crate::domain::staff::StaffError;
        let today = stats::day_of(now);
        let day = |s: &str, default: i64| {
            if s.trim().is_empty() {
                Ok(default)
            } else {
                stats::parse_day(s).ok_or(StaffError::Invalid("admin_stats_bad_date"))
            }
        };
        let to = day(&self.to, today)?;
        let days = self.days.unwrap_or(7).clamp(1, stats::MAX_DAYS);
        let from = day(&self.from, to - (days - 1) * 86_400)?;
        Ok((from, to))
    }
}

/// `/admin/stats`: the counters over a date range.
pub async fn stats(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatsQuery>,
) -> PageResult {
    let (from, to) = q.range(state.clock.now()).map_err(refused)?;
    let r = stats::report(&state.store, &c.staff, from, to).await.map_err(refused)?;
    let text = |key: &str| state.pages.text(c.locale, key);
    let n = r.days.len();
    // One bar chart per metric: 10 units a day, 60 high, drawn here (the
    // CSP forbids inline script); the numbers are in the table beside it.
    let charts: Vec<serde_json::Value> = r
        .totals
        .iter()
        .map(|s| {
            let max = s.counts.iter().copied().max().unwrap_or(0).max(1);
            let bars: Vec<serde_json::Value> = s
                .counts
                .iter()
                .zip(&r.days)
                .enumerate()
                .map(|(i, (count, day))| {
                    let h = (count * 60 / max).max(i64::from(*count > 0));
                    serde_json::json!({ "x": i * 10 + 1, "y": 60 - h, "h": h, "n": count, "day": day })
                })
                .collect();
            serde_json::json!({ "metric": s.metric, "label": text(&format!("admin_metric_{}", s.metric)),
                "total": s.total, "max": max, "width": n * 10, "bars": bars })
        })
        .collect();
    let table: Vec<serde_json::Value> = r
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let cells: Vec<serde_json::Value> =
                r.totals.iter().map(|s| serde_json::json!({ "metric": s.metric, "n": s.counts[i] })).collect();
            serde_json::json!({ "day": day, "cells": cells })
        })
        .collect();
    let series: Vec<serde_json::Value> = r
        .series
        .iter()
        .map(|s| {
            serde_json::json!({ "metric": s.metric, "label": text(&format!("admin_metric_{}", s.metric)),
                "dim": s.dim, "total": s.total })
        })
        .collect();
    let heads: Vec<serde_json::Value> = r
        .totals
        .iter()
        .map(|s| {
            serde_json::json!({ "metric": s.metric, "label": text(&format!("admin_metric_{}", s.metric)),
            "total": s.total })
        })
        .collect();
    let mut csv = url::form_urlencoded::Serializer::new(String::new());
    csv.append_pair("from", &stats::label(from)).append_pair("to", &stats::label(to));
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "from": stats::label(from), "to": stats::label(to), "charts": charts, "table": table,
            "heads": heads, "series": series, "csv": format!("/admin/stats.csv?{}", csv.finish()) }),
    );
    Ok(c.render(&state, jar, "admin_stats.html", ctx))
}

/// `/admin/stats.csv`: the same counters as CSV.
pub async fn stats_csv(State(state): State<AppState>, c: Console, Query(q): Query<StatsQuery>) -> PageResult {
    let (from, to) = q.range(state.clock.now()).map_err(refused)?;
    let r = stats::report(&state.store, &c.staff, from, to).await.map_err(refused)?;
    Ok(csv_response("statistics.csv", stats::to_csv(&r)))
}
