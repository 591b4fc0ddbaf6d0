//! The log of every show, scan and administrative operation (E4, E5; seed
//! 003 §2.2.8): who (app or holder), when, where (place tag), what came of
//! it. One kv entry per event, keyed by time, so the statistics are counted
//! from the same entries the log pages list.
use crate::paging::{self, Screen};
use idp_plugin_sdk::{Host, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `show`, `scan`, `issue` or `operation`.
    pub kind: String,
    /// `personal`, `kin`, `enterprise` (shows, scans) or the operation name.
    pub code_type: String,
    /// The holder id of the code concerned, if any.
    #[serde(default)]
    pub holder: String,
    /// The scanning app's client id, or the signed-in user for shows.
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub place: String,
    /// `ok`, a rejection reason, or the operation's detail.
    #[serde(default)]
    pub result: String,
    pub at: i64,
}

/// Logs the event under a database-wide sequence number (the log's order
/// on every node) and counts it in the exact statistics counters.
pub fn record(host: &Host, mut e: Event) -> Result<(), String> {
    e.at = host.now();
    e.place = e.place.chars().take(60).collect();
    let raw = serde_json::to_string(&e).map_err(|e| e.to_string())?;
    let seq = host.kv_incr("seq/log", 1, None)?;
    host.kv_put(&format!("{}-{}", log_key_at(e.at), crate::util::seq_key(seq)), &raw, None)?;
    if let Some(metric) = metric(&e) {
        host.kv_incr(&format!("{STAT}{metric}/{}/{}", e.code_type, crate::util::date(e.at)), 1, None)?;
    }
    Ok(())
}

/// Prefix of the statistics counters `stat/<metric>/<code type>/<date>`.
pub const STAT: &str = "stat/";

/// Which statistic an event counts in: codes issued, shown, scanned valid.
fn metric(e: &Event) -> Option<&'static str> {
    match (e.kind.as_str(), e.result.as_str()) {
        ("issue", _) => Some("issued"),
        ("show", _) => Some("shown"),
        ("scan", "ok") => Some("scanned"),
        _ => None,
    }
}

/// The statistics counters of the CST days `from..=to` (`YYYY-MM-DD`):
/// (metric, code type, date, count). One key-range read per metric and
/// code type — the counters of other days are not read, however many
/// years of them there are. Atomic increments, so parallel shows
/// and scans on any node are all counted.
pub fn counters(
    host: &Host,
    metrics: &[&str],
    types: &[&str],
    day_before: &str,
    to: &str,
) -> Result<Vec<(String, String, String, u64)>, String> {
    let mut out = Vec::new();
    for m in metrics {
        for t in types {
            let prefix = format!("{STAT}{m}/{t}/");
            // Strictly after the day before `from`: `from` is the first key.
            let mut cursor = Some(format!("{prefix}{day_before}"));
            while let Some(c) = cursor {
                let page = host.kv_page(&prefix, Some(&c), paging::Order::Asc, 100)?;
                cursor = page.next;
                for (k, v) in page.rows {
                    let date = &k[prefix.len()..];
                    if date > to {
                        cursor = None;
                        break;
                    }
                    if let Ok(n) = v.parse() {
                        out.push((m.to_string(), t.to_string(), date.to_string(), n));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Prefix of the log entries `log/<time:012>-<seq>`: key order is time order.
const LOG: &str = "log/";

fn log_key_at(at: i64) -> String {
    format!("{LOG}{at:012}")
}

/// Filters of the log page: any of kind, app, place (substring), date.
#[derive(Debug, Default)]
pub struct Filter {
    pub kind: Option<String>,
    pub app: Option<String>,
    pub place: Option<String>,
    pub date: Option<String>,
    /// The CST day of `date` as `[start, end)`, when `date` is a real date.
    day: Option<(i64, i64)>,
}

impl Filter {
    /// The filter of a query, or Err when `date` is not a real
    /// `YYYY-MM-DD` (the page shows the error and keeps what was typed).
    pub fn from_query(q: &[(String, String)]) -> Result<Self, Self> {
        let get = |k: &str| q.iter().find(|(n, v)| n == k && !v.trim().is_empty()).map(|(_, v)| v.trim().to_string());
        let mut f = Filter { kind: get("kind"), app: get("app"), place: get("place"), date: get("date"), day: None };
        if let Some(d) = &f.date {
            match crate::util::parse_date(d) {
                Some(start) => f.day = Some((start, start + 86_400)),
                None => return Err(f),
            }
        }
        Ok(f)
    }
    pub fn matches(&self, e: &Event) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == e.kind)
            && self.app.as_ref().is_none_or(|a| *a == e.app)
            && self.place.as_ref().is_none_or(|p| e.place.contains(p.as_str()))
            && self.day.is_none_or(|(start, end)| (start..end).contains(&e.at))
    }

    /// One screen of matching events, newest first, before `cursor` (a
    /// log key from the previous screen). The date is a key range — the
    /// read starts at the day's end and stops at its start; kind, app and
    /// place are checked row by row, at most `budget` rows a screen.
    pub fn screen(
        &self,
        host: &Host,
        cursor: Option<&str>,
        size: usize,
        budget: usize,
    ) -> Result<Screen<Event>, String> {
        let floor = self.day.map(|(start, _)| log_key_at(start));
        let mut start = cursor.filter(|c| c.starts_with(LOG)).map(String::from);
        if let Some((_, end)) = self.day {
            let end = log_key_at(end);
            if start.as_ref().is_none_or(|c| *c > end) {
                start = Some(end);
            }
        }
        paging::screen(host, LOG, start, floor.as_deref(), size, budget, |_, raw| {
            serde_json::from_str::<Event>(raw).ok().filter(|e| self.matches(e))
        })
    }
}

pub fn to_json(e: &Event) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}
