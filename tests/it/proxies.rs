//! Behind a reverse proxy: `X-Forwarded-For` names the client only when
//! the peer is a trusted proxy, so rate limits and the scan app see the
//! citizen's address, and nobody picks their own address by sending the
//! header directly. The scan app also sees the browser's region from the
//! operator's table.
use crate::both;
use crate::scan::{CitizenApp, citizen, open_scan_tab_in};
use crate::support::*;
use idp::config::Config;
use reqwest::header::{HeaderMap, HeaderValue};

/// A server whose tweakable config gets a region table in its data folder.
async fn spawn_behind(b: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let regions = dir.join("regions.csv");
    std::fs::write(&regions, "# test table\n203.0.113.0/24,广东省深圳市\n203.0.0.0/8,亚太地区\n").unwrap();
    let mut config = config_for(&b, port, &dir).await;
    config.ip_regions_file = Some(regions);
    tweak(&mut config);
    spawn_with(config, listener, dir).await
}

/// A browser whose requests carry this `X-Forwarded-For` (as a proxy
/// would add it, or as an attacker would forge it).
fn browser_from(forwarded_for: &str) -> Browser {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_str(forwarded_for).unwrap());
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(h)
            .build()
            .unwrap(),
    }
}

async fn read_in(app: &TestApp, phone: &CitizenApp, ticket: &str, lang: &str) -> serde_json::Value {
    let res = api()
        .get(app.url(&format!("/api/scan/tickets/{ticket}")))
        .bearer_auth(&phone.token)
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    json(res).await
}

async fn scan_app_sees_the_forwarded_browser(b: Backend) {
    let app = spawn_behind(b, |c| c.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()]).await;
    app.user("proxied1").await;
    let rp = app.confidential().await;
    let phone = citizen(&app, "proxied1").await;

    // The client forged the left entry; the proxies appended the rest.
    let pc = open_scan_tab_in(&app, &rp, browser_from("198.51.100.66, 203.0.113.7, 10.0.0.5")).await;
    let t = read_in(&app, &phone, &pc.ticket, "zh-CN").await;
    assert_eq!(t["browser"]["ip"], "203.0.113.7", "the right-most address no trusted proxy wrote");
    assert_eq!(t["browser"]["location"], "广东省深圳市", "the most specific block of the table");
    assert_eq!(t["browser"]["location_kind"], "region");

    let pc = open_scan_tab_in(&app, &rp, browser_from("203.9.9.9")).await;
    assert_eq!(read_in(&app, &phone, &pc.ticket, "en").await["browser"]["location"], "亚太地区");

    let pc = open_scan_tab_in(&app, &rp, browser_from("198.51.100.66")).await;
    let t = read_in(&app, &phone, &pc.ticket, "en").await;
    assert_eq!(t["browser"]["location"], "198.51.0.0/16", "outside the table: only the network");
    assert_eq!(t["browser"]["location_kind"], "network");
}
both!(scan_app_sees_the_forwarded_browser_and_its_region, super::scan_app_sees_the_forwarded_browser);

async fn forged_header_is_ignored(b: Backend) {
    let app = spawn_behind(b, |_| {}).await;
    app.user("direct1").await;
    let rp = app.confidential().await;
    let phone = citizen(&app, "direct1").await;
    let pc = open_scan_tab_in(&app, &rp, browser_from("203.0.113.7")).await;
    let t = read_in(&app, &phone, &pc.ticket, "en").await;
    assert_eq!(t["browser"]["ip"], "127.0.0.1", "no trusted proxy: the socket peer is the client");
    assert_eq!(t["browser"]["location"], "local network", "in English for an English app");
}
both!(forwarded_for_from_an_untrusted_peer_is_ignored, super::forged_header_is_ignored);

/// Three wrong passwords (on different accounts, so no account lock or
/// captcha) lock the address for the rest of the window.
async fn fail_three_times(app: &TestApp, rp: &TestClient, from: impl Fn(usize) -> Browser) {
    for i in 0..3 {
        let end = from(i).run(app, &auth_url(app, rp, &[]), &format!("nobody{i}"), "Wrong-password-1").await;
        assert!(matches!(end, End::Page(..)), "wrong password {i} refused");
    }
}

fn locked(end: End) -> bool {
    match end {
        End::Page(_, body) => body.contains("登录失败次数过多"),
        End::Client(_) => false,
    }
}

async fn throttle_follows_the_client(b: Backend) {
    let tight = |c: &mut Config| {
        c.login_throttle.ip_failures = 3;
        c.login_throttle.account_failures = 100;
    };
    // Behind the proxy: one citizen's failures lock that citizen's address only.
    let app = spawn_behind(b.clone(), |c| {
        tight(c);
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    app.user("victim1").await;
    let rp = app.confidential().await;
    fail_three_times(&app, &rp, |_| browser_from("203.0.113.66")).await;
    let attacker = browser_from("203.0.113.66").run(&app, &auth_url(&app, &rp, &[]), "victim1", PASSWORD).await;
    assert!(locked(attacker), "the guessing address is locked, even with the right password");
    let citizen = browser_from("203.0.113.10").run(&app, &auth_url(&app, &rp, &[]), "victim1", PASSWORD).await;
    assert!(matches!(citizen, End::Client(_)), "another citizen behind the same proxy signs in: {citizen:?}");

    // Not behind a trusted proxy: rotating the header does not escape the lock.
    let app = spawn_behind(b, tight).await;
    app.user("victim2").await;
    let rp = app.confidential().await;
    fail_three_times(&app, &rp, |i| browser_from(&format!("198.51.100.{i}"))).await;
    let end = browser_from("198.51.100.200").run(&app, &auth_url(&app, &rp, &[]), "victim2", PASSWORD).await;
    assert!(locked(end), "a forged X-Forwarded-For picks no fresh rate-limit bucket");
}
both!(login_throttle_follows_the_forwarded_client, super::throttle_follows_the_client);
