//! One-time backfill of the `issued/` index: code records issued
//! before the admin list paged over that index have no entry in it. The
//! walk reads `holder/` in key order one `kv_page` batch at a time and
//! indexes every record its `by/` entry names (the winner of its first
//! show; a record that lost, or whose show never claimed the index, is
//! not a code). Progress — the last key done and a lease — lives in one
//! row replaced by compare-and-swap, so of two nodes one walks at a time,
//! a node that dies mid-walk leaves a cursor the next one resumes from
//! once the lease lapses, and a batch done twice writes nothing twice
//! (index entries are insert-if-absent).
use crate::codes::{self, Holder};
use idp_plugin_sdk::{Host, Order};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

const PROGRESS: &str = "backfill/issued";
const HOLDERS: &str = "holder/";
/// Rows a batch reads: each costs an index check and at most one write,
/// so a batch stays well inside a plugin call's time limit.
const BATCH: u32 = 200;
/// Seconds a walker holds the walk without renewing it; a batch takes far
/// less, so a lapsed lease means its node stopped mid-batch.
const LEASE: i64 = 120;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    #[serde(default)]
    done: bool,
    /// The last `holder/` key indexed.
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    until: i64,
}

/// Runs batches for `owner` (this plugin instance) until `budget` has
/// passed; returns whether the backfill is complete. Stops early, without
/// error, when another live walker holds the lease or replaced the
/// progress row.
pub fn run(host: &Host, owner: &str, budget: Duration) -> Result<bool, String> {
    let started = Instant::now();
    while started.elapsed() < budget {
        let seen = host.kv_get(PROGRESS)?;
        let progress: Progress = match &seen {
            Some(raw) => serde_json::from_str(raw).map_err(|e| format!("backfill progress: {e}"))?,
            None => Progress::default(),
        };
        if progress.done {
            return Ok(true);
        }
        let now = host.now();
        if progress.owner != owner && progress.until > now {
            return Ok(false);
        }
        let mine = Progress { done: false, cursor: progress.cursor, owner: owner.into(), until: now + LEASE };
        let claimed = serde_json::to_string(&mine).map_err(|e| e.to_string())?;
        if !host.kv_put_if(PROGRESS, seen.as_deref(), &claimed, None)? {
            return Ok(false);
        }
        let page = host.kv_page(HOLDERS, mine.cursor.as_deref(), Order::Asc, BATCH)?;
        for (key, raw) in &page.rows {
            if let Ok(h) = serde_json::from_str::<Holder>(raw)
                && key[HOLDERS.len()..] == h.hid
                && codes::holds_index(host, &h)?
            {
                codes::index_issued(host, &h, raw)?;
            }
        }
        let last = page.rows.last().map(|(k, _)| k.clone()).or(mine.cursor);
        // Out of time: hand the walk back (a lapsed lease), so the next
        // admin list on any node goes on at once rather than after LEASE.
        let until = if started.elapsed() < budget { host.now() + LEASE } else { 0 };
        let next = Progress { done: page.next.is_none(), cursor: last, owner: owner.into(), until };
        let raw = serde_json::to_string(&next).map_err(|e| e.to_string())?;
        if !host.kv_put_if(PROGRESS, Some(&claimed), &raw, None)? {
            return Ok(false);
        }
        if next.done {
            return Ok(true);
        }
    }
    Ok(false)
}
