//! `cargo bench -p idp --bench load`: throughput and latency of the token
//! endpoint against the real server on SQLite (in this process, on a
//! loopback port). Two scenarios: client_credentials, and the code flow
//! (authorize with an existing session + code exchange). Not a pass/fail
//! test: it prints numbers for docs/performance.md.
//!
//! IDP_BENCH_SECS (default 10) and IDP_BENCH_CONCURRENCY (default 32).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use idp::domain::clients::NewClient;
use idp::domain::identity::users::NewUser;
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Report {
    name: &'static str,
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Report {
    fn print(mut self) {
        self.latencies.sort();
        let n = self.latencies.len();
        let pct = |p: f64| {
            self.latencies.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).copied().unwrap_or_default()
        };
        println!(
            "{:<22} {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ok, {} errors, {:.1} s)",
            self.name,
            n as f64 / self.elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            n,
            self.errors,
            self.elapsed.as_secs_f64()
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not —
    // there this is only a build check, not a 20-second load run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load benchmark: run it with `cargo bench -p idp --bench load`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let secs = env_num("IDP_BENCH_SECS", 10);
    let conc = env_num("IDP_BENCH_CONCURRENCY", 32) as usize;
    let dir = std::env::temp_dir().join(format!("idp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = vec![
        ("IDP_ISSUER".to_string(), format!("http://127.0.0.1:{port}")),
        ("IDP_DATA_DIR".to_string(), dir.display().to_string()),
        ("IDP_MASTER_KEY".to_string(), "5a".repeat(32)),
    ];
    let config = idp::config::Config::load_from(None, &env).unwrap();
    let state = idp::build_state(config, true).await.unwrap();
    let base = state.config.issuer.clone();
    let client = state
        .clients
        .create(NewClient {
            name: "bench".into(),
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            skip_consent: true,
            ..Default::default()
        })
        .await
        .unwrap();
    state
        .users
        .create(NewUser { username: "bench_user".into(), password: "Bench-pass-123".into(), ..Default::default() })
        .await
        .unwrap();
    tokio::spawn(idp::serve(state.clone(), listener));
    let id = client.client.client_id.clone();
    let secret = client.client_secret.clone().unwrap();
    println!("idp load benchmark: {conc} concurrent clients, {secs} s per scenario, SQLite, ES256");

    // Scenario 1: client_credentials.
    let http = reqwest::Client::builder().pool_max_idle_per_host(conc).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, url, id, secret) = (http.clone(), format!("{base}/token"), id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let res = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut report = Report { name: "client_credentials", latencies: Vec::new(), errors: 0, elapsed: Duration::ZERO };
    for t in tasks {
        let (lat, errors) = t.await.unwrap();
        report.latencies.extend(lat);
        report.errors += errors;
    }
    report.elapsed = started.elapsed();
    report.print();

    // Scenario 2: code flow with a signed-in browser per worker.
    let mut browsers = Vec::new();
    for _ in 0..conc {
        browsers.push(signed_in_browser(&base, &id).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for browser in browsers {
        let (http, base, id, secret) = (http.clone(), base.clone(), id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let authorize = format!(
                "{base}/authorize?response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid&prompt=none"
            );
            while Instant::now() < deadline {
                let t = Instant::now();
                let Ok(res) = browser.get(&authorize).send().await else {
                    errors += 1;
                    continue;
                };
                let loc = res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let code = url::Url::parse(&loc).ok().and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()));
                let Some(code) = code else {
                    errors += 1;
                    continue;
                };
                let res = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9/cb")])
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut report =
        Report { name: "authorize+code exchange", latencies: Vec::new(), errors: 0, elapsed: Duration::ZERO };
    for t in tasks {
        let (lat, errors) = t.await.unwrap();
        report.latencies.extend(lat);
        report.errors += errors;
    }
    report.elapsed = started.elapsed();
    report.print();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn signed_in_browser(base: &str, client_id: &str) -> reqwest::Client {
    let b = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let start = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid"
    );
    let res = b.get(&start).send().await.unwrap();
    let login = res.headers()["location"].to_str().unwrap().to_string();
    let html = b.get(&login).send().await.unwrap().text().await.unwrap();
    let field = |name: &str| {
        let needle = format!("name=\"{name}\" value=\"");
        let s = html.find(&needle).unwrap() + needle.len();
        html[s..s + html[s..].find('"').unwrap()].to_string()
    };
    let form = [
        ("req", field("req")),
        ("csrf", field("csrf")),
        ("username", "bench_user".into()),
        ("password", "Bench-pass-123".into()),
    ];
    let res = b.post(format!("{base}/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "bench sign-in");
    b
}
