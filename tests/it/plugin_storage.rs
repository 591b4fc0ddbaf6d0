//! The plugins' paged storage callback `kv_page` over HTTP,
//! through the kv-probe test plugin: key order both ways, cursors that
//! neither skip nor repeat a row, the limit and its clamp, expired rows and
//! keys outside the prefix left out — on both backends, whose text order
//! must agree (code point order, also on a PostgreSQL collation).
use crate::both;
use crate::plugin_kit::*;
use crate::support::*;
use serde_json::{Value, json};

const BASE: &str = "/plugins/kv-probe";

/// Writes `[key, value, ttl]` rows, 100 a request (a plugin call has a
/// time limit).
async fn put(app: &TestApp, rows: Value) {
    for chunk in rows.as_array().unwrap().chunks(100) {
        let body = json!({ "rows": chunk });
        let r = api().post(app.url(&format!("{BASE}/admin/put"))).bearer_auth(ADMIN_TOKEN).json(&body);
        assert_eq!(r.send().await.unwrap().status(), 200);
    }
}

/// One page: its keys and the next cursor.
async fn page(
    app: &TestApp,
    prefix: &str,
    cursor: Option<&str>,
    desc: bool,
    limit: u32,
) -> (Vec<String>, Option<String>) {
    let mut q = vec![("prefix", prefix.to_string()), ("desc", desc.to_string()), ("limit", limit.to_string())];
    if let Some(c) = cursor {
        q.push(("cursor", c.to_string()));
    }
    let r = api().get(app.url(&format!("{BASE}/admin/page"))).query(&q).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    let keys = v["rows"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    (keys, v["next"].as_str().map(String::from))
}

/// Every key under `prefix`, page by page; asserts no page is over `limit`.
async fn walk(app: &TestApp, prefix: &str, desc: bool, limit: u32) -> (Vec<String>, usize) {
    let (mut all, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let (keys, next) = page(app, prefix, cursor.as_deref(), desc, limit).await;
        assert!(keys.len() <= limit as usize, "{keys:?}");
        pages += 1;
        all.extend(keys);
        match next {
            Some(n) => cursor = Some(n),
            None => return (all, pages),
        }
        assert!(pages < 1000, "the walk does not end");
    }
}

async fn paging(backend: Backend) {
    let app = spawn_plugins(backend, &[KV_PROBE], |_, _| {}).await;
    let mut expected: Vec<String> = (1..=23).map(|i| format!("log/{i:04}")).collect();
    // Code point order: z (7A) < é (E9) < 中 (4E2D) < 😀 (1F600), unlike a
    // language collation; `%` and `_` are plain characters of a prefix.
    expected.extend(["log/z", "log/é", "log/中", "log/😀"].map(String::from));
    let rows: Vec<Value> = expected.iter().rev().map(|k| json!([k, format!("v {k}"), null])).collect();
    put(&app, Value::Array(rows)).await;
    let outside = ["log", "lof/1", "log0", "logs/1", "LOG/1", "lo", "log%/1", "log_/1"];
    put(&app, Value::Array(outside.iter().map(|k| json!([k, "x", null])).collect())).await;
    put(&app, json!([["log/0012x", "soon gone", 5]])).await;

    let (asc, pages) = walk(&app, "log/", false, 5).await;
    assert_eq!(asc.len(), expected.len() + 1, "{asc:?}");
    assert!(asc.contains(&"log/0012x".to_string()), "a live row with a TTL is listed");
    app.state.clock.advance(10);
    let (asc, pages_after) = walk(&app, "log/", false, 5).await;
    assert_eq!(asc, expected, "ascending, every key exactly once, expired and outside keys left out");
    assert_eq!((pages, pages_after), (6, 6), "28 then 27 rows in pages of 5");
    let (desc, _) = walk(&app, "log/", true, 7).await;
    assert_eq!(desc, expected.iter().rev().cloned().collect::<Vec<_>>(), "descending is the exact reverse");
    // The last full page says there is none after it only when that is so.
    let (keys, next) = page(&app, "log/", Some("log/0020"), false, 7).await;
    assert_eq!((keys.len(), next), (7, None), "exactly the 7 remaining rows: no next page");

    // A cursor is any key, inside the prefix or not, and excluded itself.
    let (keys, _) = page(&app, "log/", Some("log/0010"), false, 2).await;
    assert_eq!(keys, ["log/0011", "log/0012"]);
    let (keys, _) = page(&app, "log/", Some("log/0010"), true, 2).await;
    assert_eq!(keys, ["log/0009", "log/0008"]);
    let (keys, next) = page(&app, "log/", Some("log/0015x"), true, 3).await;
    assert_eq!(
        (keys, next.as_deref()),
        (vec!["log/0015".into(), "log/0014".into(), "log/0013".into()], Some("log/0013"))
    );
    assert_eq!(page(&app, "log/", Some("log0"), true, 1).await.0, ["log/😀"], "a cursor past the prefix");
    assert_eq!(page(&app, "log/", Some("log/😀"), false, 9).await, (vec![], None));
    assert_eq!(page(&app, "log%/", None, false, 9).await.0, ["log%/1"], "`%` is no wildcard");
    assert_eq!(page(&app, "log_/", None, false, 9).await.0, ["log_/1"], "`_` is no wildcard");
    assert_eq!(page(&app, "nothing/", None, false, 9).await, (vec![], None));

    // The limit is clamped to 1..=500.
    assert_eq!(page(&app, "log/", None, false, 0).await.0, ["log/0001"]);
    let many: Vec<Value> = (0..501).map(|i| json!([format!("big/{i:05}"), "x", null])).collect();
    put(&app, Value::Array(many)).await;
    let (keys, next) = page(&app, "big/", None, false, 100_000).await;
    assert_eq!((keys.len(), next.as_deref()), (500, Some("big/00499")));
    assert_eq!(page(&app, "big/", next.as_deref(), false, 100_000).await, (vec!["big/00500".into()], None));
    // An empty prefix pages the plugin's whole namespace.
    assert_eq!(walk(&app, "", true, 200).await.0.len(), 27 + outside.len() + 501);

    // kv_list agrees with the walk for a bounded set.
    let r =
        api().get(app.url(&format!("{BASE}/admin/list?prefix=log/"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let listed: Vec<String> =
        json(r).await["rows"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, expected);
}
both!(plugin_kv_page_order_cursor_limit, super::paging);
