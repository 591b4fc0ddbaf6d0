//! The audit viewer and its CSV export (G2) for auditors and platform
//! admins. Filters read the fixed `outcome=… actor=… subject=…` prefix
//! every audit row carries (see `domain::audit`), the acting account
//! column, and the time. Statistics are in `stats` (counters, no scans).
use super::{Permission, Staff, StaffError};
use crate::domain::audit::Event;
use crate::store::Store;
use crate::store::entities::audit;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

pub const PAGE_SIZE: u64 = 50;
/// The most rows one CSV export carries (pages of 1000 are read in turn);
/// narrow the filter for more.
pub const EXPORT_MAX: u64 = 50_000;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// An actor label, e.g. `user:…`, `staff:…`, `operator:cli`.
    pub actor: String,
    /// A subject, e.g. `user:…`, `client:…`.
    pub subject: String,
    /// An action name, e.g. `sign_in`.
    pub event: String,
    /// An account id: rows it did or that were done to it.
    pub person: String,
    /// An app (client_id): rows about it or naming it (`client=…`).
    pub client: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: String,
    /// 0-based page.
    pub page: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub at: i64,
    pub action: String,
    pub detail: String,
    pub ip: String,
    pub user_id: String,
    pub seq: Option<i64>,
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

impl Filter {
    /// The same filter with every field cleaned (what the query uses).
    pub fn cleaned(&self) -> Filter {
        let date = |s: &str| if super::stats::parse_day(s).is_some() { s.trim().to_string() } else { String::new() };
        Filter {
            actor: clean(&self.actor),
            subject: clean(&self.subject),
            event: clean(&self.event),
            person: clean(&self.person),
            client: clean(&self.client),
            from: date(&self.from),
            to: date(&self.to),
            page: self.page.min(10_000),
        }
    }

    fn condition(&self) -> Condition {
        let f = self.cleaned();
        let mut cond = Condition::all();
        let subject_is = |s: &str| {
            Condition::any()
                .add(audit::Column::Detail.contains(format!(" subject={s} ")))
                .add(audit::Column::Detail.ends_with(format!(" subject={s}")))
        };
        if !f.actor.is_empty() {
            cond = cond.add(audit::Column::Detail.contains(format!(" actor={} ", f.actor)));
        }
        if !f.subject.is_empty() {
            cond = cond.add(subject_is(&f.subject));
        }
        if !f.event.is_empty() {
            cond = cond.add(audit::Column::Action.eq(f.event.as_str()));
        }
        if !f.person.is_empty() {
            cond = cond.add(
                Condition::any()
                    .add(audit::Column::UserId.eq(f.person.as_str()))
                    .add(audit::Column::Detail.contains(format!(" actor=staff:{} ", f.person)))
                    .add(subject_is(&format!("user:{}", f.person))),
            );
        }
        if !f.client.is_empty() {
            cond = cond.add(
                subject_is(&format!("client:{}", f.client))
                    .add(audit::Column::Detail.contains(format!(" client={} ", f.client)))
                    .add(audit::Column::Detail.ends_with(format!(" client={}", f.client))),
            );
        }
        if let Some(from) = super::stats::parse_day(&f.from) {
            cond = cond.add(audit::Column::CreatedAt.gte(from));
        }
        if let Some(to) = super::stats::parse_day(&f.to) {
            cond = cond.add(audit::Column::CreatedAt.lt(to + 86_400));
        }
        cond
    }
}

async fn rows(db: &Store, f: &Filter, offset: u64, limit: u64) -> Result<Vec<Row>, StaffError> {
    let found = audit::Entity::find()
        .filter(f.condition())
        .order_by_desc(audit::Column::CreatedAt)
        .order_by_desc(audit::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok(found
        .into_iter()
        .map(|r| Row {
            at: r.created_at,
            action: r.action,
            detail: r.detail,
            ip: r.ip.unwrap_or_default(),
            user_id: r.user_id.unwrap_or_default(),
            seq: r.seq,
        })
        .collect())
}

/// One page of audit rows, newest first.
pub async fn search(db: &Store, staff: &Staff, f: &Filter) -> Result<Page, StaffError> {
    staff.require(Permission::ViewAudit)?;
    let page = f.page.min(10_000);
    let mut rows = rows(db, f, page * PAGE_SIZE, PAGE_SIZE + 1).await?;
    let has_more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok(Page { rows, page, has_more })
}

/// One CSV cell: quoted when it holds a comma, quote or line break, and
/// defused when a spreadsheet would read it as a formula (a leading `=`,
/// `+`, `-`, `@`, tab or carriage return gets a `'` in front, OWASP).
pub fn csv_cell(s: &str) -> String {
    let mut v = String::with_capacity(s.len() + 2);
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.push('\'');
    }
    v.push_str(s);
    if v.contains([',', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// The filtered rows as CSV (newest first, at most [`EXPORT_MAX`]), read
/// page by page. The export is itself audited (`audit_exported`, with the
/// filter and the number of rows). Returns the text and whether rows were
/// left out at the cap.
pub async fn export_csv(
    db: &Store,
    staff: &Staff,
    f: &Filter,
    ip: Option<&str>,
    now: i64,
) -> Result<(String, bool), StaffError> {
    staff.require(Permission::ViewAudit)?;
    let mut out = String::from("time,seq,action,account,ip,detail\r\n");
    let mut n = 0u64;
    let batch = 1000u64;
    let mut truncated = false;
    loop {
        let page = rows(db, f, n, batch).await?;
        let got = page.len() as u64;
        for r in page {
            if n >= EXPORT_MAX {
                truncated = true;
                break;
            }
            let seq = r.seq.map(|s| s.to_string()).unwrap_or_default();
            let cells = [csv_time(r.at), seq, r.action, r.user_id, r.ip, r.detail];
            out.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
            n += 1;
        }
        if truncated || got < batch {
            break;
        }
    }
    let c = f.cleaned();
    let detail = format!(
        "rows={n} truncated={truncated} actor={} subject={} event={} person={} client={} from={} to={}",
        c.actor, c.subject, c.event, c.person, c.client, c.from, c.to
    );
    let e = Event::new("audit_exported", staff.actor(), "audit").detail(&detail).ip(ip);
    crate::domain::audit::record(db, e, now).await?;
    Ok((out, truncated))
}

/// Recomputes the audit hash chain (`idp audit verify` does the same) for
/// auditors; the check is audited (`audit_verified`).
pub async fn verify(
    db: &Store,
    staff: &Staff,
    ip: Option<&str>,
    now: i64,
) -> Result<crate::domain::audit::Verification, StaffError> {
    staff.require(Permission::ViewAudit)?;
    Ok(crate::domain::audit::verify_recorded(db, staff.actor(), ip, now).await?)
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_escaped_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }
}
