//! Sign-ins and code flows under concurrent load finish without a single
//! database failure, on SQLite as on PostgreSQL. SQLite has one writer: a
//! transaction that read before writing used to fail at once with
//! "database is locked" (codes 5 and 517) when another writer committed
//! in between, which users saw as 503 pages and token errors.
use crate::both;
use crate::support::*;

const BROWSERS: usize = 16;
const FLOWS_EACH: usize = 6;

async fn concurrent_sign_ins_and_flows(backend: Backend) {
    // Sixteen citizens, each at an address of their own behind the
    // provider's reverse proxy (all traffic stays on loopback; only the
    // forwarded header differs). From one address, sixteen sign-ins in
    // flight at once look like password guessing and rightly meet the
    // graphic captcha, which is not what this test is about.
    let dir = temp_dir();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = config_for(&backend, port, &dir).await;
    config.trusted_proxies = vec!["127.0.0.1/32".into()];
    let app = std::sync::Arc::new(spawn_with(config, listener, dir).await);
    let client = std::sync::Arc::new(app.confidential().await);
    let mut users = Vec::new();
    for i in 0..BROWSERS {
        users.push(app.user(&format!("load{i:02}x")).await);
    }
    // Every browser signs in by password at the same moment, then loops
    // authorize (prompt=none) → token → userinfo.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(BROWSERS));
    let mut tasks = Vec::new();
    for i in 0..BROWSERS {
        let (app, client, barrier) = (app.clone(), client.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("x-forwarded-for", format!("198.51.100.{}", i + 1).parse().unwrap());
            let http = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap();
            let browser = Browser { http };
            barrier.wait().await;
            let login = format!("load{i:02}x");
            let mut failures = Vec::new();
            let first = browser.run(&app, &auth_url(&app, &client, &[]), &login, PASSWORD).await;
            let mut code = match &first {
                End::Client(url) => query_of(url).get("code").cloned(),
                End::Page(status, _) => {
                    failures.push(format!("sign-in: page {status}"));
                    None
                }
            };
            for n in 0..FLOWS_EACH {
                if n > 0 {
                    let url = auth_url(&app, &client, &[("prompt", "none")]);
                    let res = browser.http.get(&url).send().await.unwrap();
                    let status = res.status().as_u16();
                    code = location(&res).and_then(|l| query_of(&l).get("code").cloned());
                    if code.is_none() {
                        failures.push(format!("authorize: {status}"));
                        continue;
                    }
                }
                let Some(c) = code.take() else { continue };
                let res = redeem(&app, &client, &c, None).await;
                let status = res.status().as_u16();
                let body = json(res).await;
                let Some(at) = body["access_token"].as_str() else {
                    failures.push(format!("token: {status} {body}"));
                    continue;
                };
                let res = api().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap();
                if res.status() != 200 {
                    failures.push(format!("userinfo: {}", res.status()));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    assert!(failures.is_empty(), "{} of {} flows failed: {failures:?}", failures.len(), BROWSERS * FLOWS_EACH);
}
both!(no_failed_flow_under_concurrent_load, super::concurrent_sign_ins_and_flows);
