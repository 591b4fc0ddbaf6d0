//! Health-code data from before paging: code records without an
//! `issued/` index entry, written in SQL as the older plugin left them,
//! are indexed once by a resumable backfill — two nodes starting at once,
//! a walk interrupted on another node resumed after its lease lapses — and
//! listed exactly once; the statistics read only the shown days' counters.
use crate::both;
use crate::health_code::*;
use crate::health_code_pages::{PAGE, idp_day, shown_and_scanned_once, walk};
use crate::plugin_kit::*;
use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

const PLUGIN: &str = "health-code";
const PROGRESS: &str = "backfill/issued";

/// A node of the health-code plugin on `db` (a list screen of `PAGE`).
async fn node(backend: &Backend, db: &str) -> TestApp {
    let db = db.to_string();
    spawn_plugins(backend.clone(), &[HEALTH], move |c, _| {
        c.database_url = Some(db);
        // A backfill screen is a long plugin call; on a loaded CI machine it
        // can pass the default 2 s limit. This test is about exactly-once
        // indexing, not about time limits (plugins.rs tests those).
        c.plugins.call_timeout_ms = 10_000;
        let settings: toml::Table = toml::from_str(&format!("log_page_size = {PAGE}")).unwrap();
        c.plugins.settings.insert(PLUGIN.into(), toml::Value::Table(settings));
    })
    .await
}

/// Pre-index code records `holder/<hid>` with their `by/` entries.
fn old_records(prefix: &str, n: usize, at: i64) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for i in 0..n {
        let (hid, key) = (format!("{prefix}{i:05}"), format!("9111{prefix}{i:08}"));
        let h = json!({ "hid": hid, "kind": "enterprise", "key": key, "masked_name": "某公司",
                        "number": format!("QY{i:08}"), "issued_at": at + i as i64 });
        rows.push((format!("holder/{hid}"), h.to_string()));
        rows.push((format!("by/enterprise/{key}"), hid));
    }
    rows
}

/// Lists every code on `app` once the backfill is complete, opening the
/// code list on `nodes` in turn until then (each screen goes on with it).
async fn listed_after_backfill(app: &TestApp, nodes: &[&TestApp]) -> Vec<String> {
    for round in 0..50 {
        let progress = kv_value(app, PLUGIN, PROGRESS).await.unwrap_or_default();
        if serde_json::from_str::<Value>(&progress).is_ok_and(|p| p["done"] == true) {
            let (codes, _) = walk(app, "codes", "codes", "").await;
            return codes.iter().map(|c| c["hid"].as_str().unwrap().to_string()).collect();
        }
        admin_get(nodes[round % nodes.len()], "/admin/codes.json").await;
    }
    panic!("the backfill did not finish");
}

fn once(hids: &[String]) -> BTreeSet<String> {
    let set: BTreeSet<String> = hids.iter().cloned().collect();
    assert_eq!(set.len(), hids.len(), "a record listed twice");
    set
}

async fn backfill(backend: Backend) {
    // The store as the older plugin left it: 1,100 records without index
    // entries (several batches), a record whose first show lost the race
    // (its holder's index names another) and one whose show never claimed
    // the index — neither is a code.
    let before = spawn(backend.clone()).await;
    let at = before.state.clock.now() - 30 * 86_400;
    let mut rows = old_records("old", 1100, at);
    let loser = json!({ "hid": "lost0", "kind": "enterprise", "key": "9111old00000000", "masked_name": "某公司",
                        "number": "QY99999999", "issued_at": at });
    rows.push(("holder/lost0".into(), loser.to_string()));
    let orphan = json!({ "hid": "orphan0", "kind": "personal", "key": "110105199001010011", "masked_name": "李*",
                         "number": "GR99999998", "issued_at": at });
    rows.push(("holder/orphan0".into(), orphan.to_string()));
    insert_kv(&before, PLUGIN, rows).await;

    // Two nodes start at once; a code issued afterwards is indexed by its show.
    let (a, b) = tokio::join!(node(&backend, &before.database_url), node(&backend, &before.database_url));
    citizen(&a, "zhang_san", "张三", ZHANG_ID).await;
    let zb = signed_in(&a, "zhang_san").await;
    assert_eq!(page(&zb, &a, "/").await.0, 200);
    let mut expected: BTreeSet<String> = (0..1100).map(|i| format!("old{i:05}")).collect();
    let zhang = admin_get(&a, &format!("/admin/codes.json?q={ZHANG_ID}")).await["codes"][0]["hid"].clone();
    expected.insert(zhang.as_str().unwrap().to_string());
    for n in [&a, &b] {
        assert_eq!(
            once(&listed_after_backfill(n, &[&a, &b]).await),
            expected,
            "every old record once, no loser, no orphan"
        );
    }

    // A walk another node began and left (its lease still live): a new
    // node neither duplicates nor takes it over, then resumes from its
    // cursor once the lease lapses — the records past the cursor appear.
    insert_kv(&before, PLUGIN, old_records("zold", 300, at)).await;
    let now = before.state.clock.now();
    let left = json!({ "done": false, "cursor": "holder/orphan0", "owner": "node-gone", "until": now + 600 });
    let progress = kv_value(&before, PLUGIN, PROGRESS).await.unwrap();
    assert!(progress.contains("\"done\":true"), "{progress}");
    set_kv(&before, PLUGIN, PROGRESS, &left.to_string()).await;
    let c = node(&backend, &before.database_url).await;
    let (codes, _) = walk(&c, "codes", "codes", "").await;
    assert_eq!(once(&codes.iter().map(|c| c["hid"].as_str().unwrap().to_string()).collect::<Vec<_>>()), expected);
    c.state.clock.advance(601);
    expected.extend((0..300).map(|i| format!("zold{i:05}")));
    assert_eq!(once(&listed_after_backfill(&c, &[&c]).await), expected);
    let done: Value = serde_json::from_str(&kv_value(&c, PLUGIN, PROGRESS).await.unwrap()).unwrap();
    assert_ne!(done["owner"], "node-gone", "{done}");
}
both!(health_code_backfill_indexes_old_records_once, super::backfill);

/// The statistics of the shown days read those days' counters only:
/// 10,050 older daily counters sort before the shown ones and would fill
/// a whole-prefix listing's 10,000-row cap; the shown numbers match the
/// log entries of each day.
async fn stats_by_range(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    shown_and_scanned_once(&app).await;

    // Days 1–5 before today: shows in the log and in their counters, as
    // the plugin records them; a day before the range and years before.
    let now = app.state.clock.now();
    let today_start = (now + 8 * 3600).div_euclid(86_400) * 86_400 - 8 * 3600;
    let (mut rows, mut shows) = (Vec::new(), HashMap::new());
    for d in 1..=8i64 {
        let day_at = today_start - d * 86_400 + 3600;
        let n = 2 * d as usize;
        for i in 0..n {
            let at = day_at + i as i64;
            let e = json!({ "kind": "show", "code_type": "personal", "holder": "h", "app": "zhang_san",
                            "place": "", "result": "", "at": at });
            rows.push((format!("log/{at:012}-s{:012}", 1_000_000 + d * 100 + i as i64), e.to_string()));
        }
        rows.push((format!("stat/shown/personal/{}", idp_day(day_at)), n.to_string()));
        shows.insert(idp_day(day_at), n as u64);
    }
    for d in 8..8 + 10_050i64 {
        rows.push((format!("stat/issued/personal/{}", idp_day(now - d * 86_400)), "1000".into()));
    }
    insert_kv(&app, PLUGIN, rows).await;

    let stats = admin_get(&app, "/admin/stats.json?days=6").await;
    let daily = stats["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 6);
    assert_eq!(daily[5]["date"], idp_day(now));
    assert_eq!((stats["from"].clone(), stats["to"].clone()), (daily[0]["date"].clone(), json!(idp_day(now))));
    for day in daily {
        let date = day["date"].as_str().unwrap();
        let (logged, _) = walk(&app, "logs", "events", &format!("date={date}&kind=show")).await;
        assert_eq!(day["shown"], logged.len() as u64, "{date}: the counter matches the log");
        let today = date == idp_day(now);
        assert_eq!(day["shown"], if today { 1 } else { shows[date] }, "{date}");
        assert_eq!((day["issued"].clone(), day["scanned"].clone()), (json!(u64::from(today)), json!(u64::from(today))));
    }
    assert_eq!(stats["shown"]["total"], 1 + (1..=5).map(|d| 2 * d).sum::<u64>(), "only the shown days: {stats}");
    assert_eq!(stats["shown"]["by_type"]["personal"], stats["shown"]["total"]);
    assert_eq!(stats["issued"]["total"], 1, "older counters are not in the range: {stats}");
    let html = api().get(app.url(&format!("{BASE}/admin/stats?days=6"))).bearer_auth(ADMIN_TOKEN).send().await;
    let html = html.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("{} – {}", daily[0]["date"].as_str().unwrap(), idp_day(now))), "{html}");
}
both!(health_code_stats_read_only_the_range, super::stats_by_range);
