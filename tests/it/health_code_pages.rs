//! The health-code admin lists past the storage listing cap:
//! more than 10,000 log rows written straight into `plugin_kv`, walked
//! screen by screen newest first — every event exactly once — with the
//! date filter read as a key range and the other filters stopping at their
//! reading budget and saying so; the code list paged the same way.
use crate::both;
use crate::health_code::*;
use crate::plugin_kit::*;
use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashSet;

const SYNTHETIC: i64 = 10_050;
pub(crate) const PAGE: usize = 400;
const SCAN: usize = 1000;

async fn insert(app: &TestApp, rows: Vec<(String, String)>) {
    insert_kv(app, "health-code", rows).await
}

/// Every screen of `/admin/<list>.json?<query>`: the items of each and
/// how many rows each examined; checks a screen is never over `PAGE`.
/// 张三's code issued, shown and scanned valid once: one of each event.
pub(crate) async fn shown_and_scanned_once(app: &TestApp) {
    citizen(app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(app, "zhang_san").await;
    let (_, html) = page(&b, app, "/").await;
    let (_, st) = app_with(app, "health_code.scan").await;
    assert_eq!(json(scan(app, &st, &payload_in(&html), "东门").await).await["valid"], true);
}

pub(crate) async fn walk(app: &TestApp, list: &str, field: &str, query: &str) -> (Vec<Value>, Vec<(usize, u64, bool)>) {
    let (mut all, mut screens, mut before) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let cursor = before.as_deref().map(|c| format!("&before={}", urlencode(c))).unwrap_or_default();
        let v = admin_get(app, &format!("/admin/{list}.json?{query}{cursor}")).await;
        let items = v[field].as_array().unwrap().clone();
        assert!(items.len() <= PAGE, "{}", items.len());
        screens.push((items.len(), v["examined"].as_u64().unwrap(), v["limited"] == true));
        all.extend(items);
        match v["next"].as_str() {
            Some(n) => before = Some(n.to_string()),
            None => return (all, screens),
        }
        assert!(screens.len() < 200, "the walk does not end");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn logs_past_the_cap(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |c, _| {
        let settings: toml::Table = toml::from_str(&format!("log_page_size = {PAGE}\nlog_scan_rows = {SCAN}")).unwrap();
        c.plugins.settings.insert("health-code".into(), toml::Value::Table(settings));
    })
    .await;
    shown_and_scanned_once(&app).await;

    // 10,050 older events over the three days before today, one every 20 s
    // (seq numbers far above the real counter's): shows, and scans at 西门
    // — every 1000th at 北门.
    let now = app.state.clock.now();
    let base = now - 3 * 86_400 - 3600;
    let mut rows = Vec::new();
    let mut at_of = Vec::new();
    for i in 0..SYNTHETIC {
        let at = base + i * 20;
        let (kind, place) = match i % 2 {
            0 => ("show", ""),
            _ if i % 1000 == 1 => ("scan", "北门"),
            _ => ("scan", "西门"),
        };
        let e = json!({ "kind": kind, "code_type": "personal", "holder": "h", "app": "app", "place": place,
                        "result": format!("n{i}"), "at": at });
        rows.push((format!("log/{at:012}-s{:012}", 1_000_000 + i), e.to_string()));
        at_of.push(at);
    }
    insert(&app, rows).await;

    // The whole log, newest first: the real events (issue, show, scan),
    // then every synthetic one exactly once.
    let (all, screens) = walk(&app, "logs", "events", "").await;
    let real = 3;
    assert_eq!(all.len() as i64, SYNTHETIC + real, "every event, past the 10,000-row listing cap");
    assert_eq!(screens.len(), (SYNTHETIC as usize + 3).div_ceil(PAGE), "full screens of {PAGE}");
    assert!(screens.iter().all(|(_, _, limited)| !limited));
    assert_eq!(all[0]["kind"], "scan", "the newest first: {}", all[0]);
    let ats: Vec<i64> = all.iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "newest first throughout");
    let markers: Vec<&str> = all[real as usize..].iter().map(|e| e["result"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..SYNTHETIC).rev().map(|i| format!("n{i}")).collect();
    assert_eq!(markers, expected, "each synthetic event once, in order");

    // A date is a key range: the walk examines that day's rows and no other.
    let day = idp_day(base + 86_400 + 100);
    let in_day = at_of.iter().filter(|at| idp_day(**at) == day).count();
    assert!(in_day > PAGE, "the day spans several screens");
    let (found, screens) = walk(&app, "logs", "events", &format!("date={day}")).await;
    assert_eq!(found.len(), in_day);
    assert!(found.iter().all(|e| idp_day(e["at"].as_i64().unwrap()) == day));
    assert_eq!(screens.iter().map(|s| s.1).sum::<u64>(), in_day as u64, "only the day's rows were read");
    let (scans, _) = walk(&app, "logs", "events", &format!("date={day}&kind=scan")).await;
    assert_eq!(scans.len(), found.iter().filter(|e| e["kind"] == "scan").count());

    // A rare place: each screen reads at most the budget and says when it
    // stopped there; walking on finds every match once.
    let (north, screens) = walk(&app, "logs", "events", "place=%E5%8C%97%E9%97%A8").await;
    assert_eq!(north.len(), 11, "{north:?}");
    assert!(screens.iter().all(|s| s.1 <= SCAN as u64), "{screens:?}");
    assert!(screens[0].2, "the first screen stopped at its budget");
    assert_eq!(screens.iter().map(|s| s.1).sum::<u64>(), SYNTHETIC as u64 + 3, "each row read once");
    let r = api().get(app.url(&format!("{BASE}/admin/logs?place=%E5%8C%97%E9%97%A8"))).bearer_auth(ADMIN_TOKEN);
    let html = r.send().await.unwrap().text().await.unwrap();
    assert!(html.contains("本页已检查 1000 条记录仍未排满"), "{html}");

    // The HTML pages: "older" carries the cursor and the filters.
    let r = api().get(app.url(&format!("{BASE}/admin/logs?kind=show"))).bearer_auth(ADMIN_TOKEN);
    let html = r.send().await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("<tr data-kind=\"show\">").count(), PAGE);
    assert!(!html.contains("class=\"newest\""));
    let older = html.split("class=\"older\" rel=\"next\" href=\"").nth(1).unwrap().split('"').next().unwrap();
    let older = older.replace("&amp;", "&");
    assert!(older.contains("kind=show&before=log%2F"), "{older}");
    let html = api().get(app.url(&older)).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("<tr data-kind=\"show\">").count(), PAGE);
    assert!(html.contains("class=\"newest\""), "{html}");

    // A date that is no date: the error in the user's language, the input kept.
    let r = api().get(app.url(&format!("{BASE}/admin/logs?date=2026-02-30&place=x"))).bearer_auth(ADMIN_TOKEN);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("日期格式应为 YYYY-MM-DD")
            && html.contains("value=\"2026-02-30\"")
            && html.contains("value=\"x\"")
    );
    let r = api().get(app.url(&format!("{BASE}/admin/logs.json?date=yesterday"))).bearer_auth(ADMIN_TOKEN);
    assert_eq!(r.send().await.unwrap().status(), 400);

    // The code list: records by issue time, newest first, past a screen.
    let mut rows = Vec::new();
    for i in 0..(PAGE as i64 + 50) {
        let h = json!({ "hid": format!("syn{i:04}"), "kind": "enterprise", "key": format!("91110000{i:010}"),
                        "masked_name": "某公司", "number": format!("QY{i:08}"), "issued_at": base + i });
        rows.push((format!("issued/{:012}-syn{i:04}", base + i), h.to_string()));
    }
    insert(&app, rows).await;
    let (codes, screens) = walk(&app, "codes", "codes", "").await;
    assert_eq!((codes.len(), screens.len()), (PAGE + 51, 2));
    assert_eq!(codes[0]["key"], ZHANG_ID, "the newest record first");
    let issued: Vec<i64> = codes.iter().map(|c| c["issued_at"].as_i64().unwrap()).collect();
    assert!(issued.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(codes.iter().map(|c| c["hid"].as_str().unwrap()).collect::<HashSet<_>>().len(), codes.len());
    let one = admin_get(&app, &format!("/admin/codes.json?q={ZHANG_ID}")).await;
    assert_eq!((one["codes"][0]["key"].as_str(), one["examined"].as_u64()), (Some(ZHANG_ID), Some(1)), "by its index");
    let (some, _) = walk(&app, "codes", "codes", "q=QY0000012").await;
    assert_eq!(some.len(), 10, "QY00000120…129");
    let (personal, _) = walk(&app, "codes", "codes", "type=personal").await;
    assert_eq!(personal.len(), 1);
}
both!(health_code_logs_and_codes_page_past_the_cap, super::logs_past_the_cap);

/// `YYYY-MM-DD` in China Standard Time, as the plugin dates events.
pub(crate) fn idp_day(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts + 8 * 3600, 0).unwrap().format("%Y-%m-%d").to_string()
}
