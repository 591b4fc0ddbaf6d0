//! `cargo bench -p idp --bench flows`: a load generator for any OpenID
//! Provider, so idp and a peer (node-oidc-provider) run the same work side by
//! side (driven by `scripts/bench-peer.sh`). Each of N workers is a browser
//! that signs in once through the provider's own pages, then, for a fixed
//! time per scenario:
//! - `code`: authorize `prompt=none` with the session (PKCE) → code → token
//!   → userinfo (one "flow"),
//! - `refresh`: the refresh grant, using the rotated token each time,
//! - `introspect`: introspection of the worker's access token,
//! - `password` (idp): a new browser signing in by password (authorize →
//!   sign-in page → password → code at the client), after measuring the
//!   argon2id bound of idp's parameters on this machine (`BOUND` line).
//!
//! Prints one `RESULT <label> <scenario> <per second> <p50 ms> <p99 ms> <errors>`
//! line per scenario. Not a test: numbers for docs/performance.md.
//!
//! Environment: BENCH_ISSUER, BENCH_KIND (`idp` | `peer`: endpoint paths),
//! BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT, BENCH_USER,
//! BENCH_PASSWORD, BENCH_LABEL, BENCH_SECS (10), BENCH_CONCURRENCY (32),
//! BENCH_SCENARIOS (`refresh,introspect,code`), BENCH_CITIZEN_PREFIX
//! (`password`: worker i signs in as `<prefix>i`, from its own address sent
//! as `X-Forwarded-For`, which the server must trust from 127.0.0.1),
//! BENCH_CITIZEN_SPREAD (`password` over seeded accounts: each sign-in picks
//! account k at random from 1..=N and types `<prefix>k` or, every other
//! time, the seed's phone number `139` + k in eight digits, so lookups by
//! username and by phone land all over a large table).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use reqwest::redirect::Policy;
use sha2::Digest;
use std::time::{Duration, Instant};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[derive(Clone)]
struct Target {
    issuer: String,
    authorize: String,
    token: String,
    userinfo: String,
    introspect: String,
    client_id: String,
    secret: String,
    redirect: String,
    scope: String,
}

struct Worker {
    http: reqwest::Client,
    access: String,
    refresh: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn pkce() -> (String, String) {
    let verifier = b64(&rand::random::<[u8; 32]>());
    let challenge = b64(&sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(t: &Target, challenge: &str, prompt: Option<&str>) -> String {
    let mut u = url::Url::parse(&t.authorize).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &t.client_id)
            .append_pair("redirect_uri", &t.redirect)
            .append_pair("scope", &t.scope)
            .append_pair("state", &b64(&rand::random::<[u8; 12]>()))
            .append_pair("nonce", &b64(&rand::random::<[u8; 12]>()))
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(p) = prompt {
            q.append_pair("prompt", p);
        }
    }
    u.to_string()
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&").replace("&#x2F;", "/").replace("&#x3D;", "="))
}

/// A form to submit: its `action` (none: the page itself) and fields.
type Filled = (Option<String>, Vec<(String, String)>);

/// The sign-in (or consent) form of a provider page and the fields a person
/// would send: hidden inputs, the user name and password.
fn fill_form(html: &str, user: &str, password: &str) -> Option<Filled> {
    let forms: Vec<&str> = html.split("<form").skip(1).map(|f| f.split("</form>").next().unwrap_or(f)).collect();
    let form = forms
        .iter()
        .find(|f| f.contains("name=\"password\""))
        .or_else(|| forms.iter().find(|f| f.to_ascii_lowercase().contains("method=\"post\"")))?;
    let head = &form[..form.find('>')?];
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        let Some(name) = attr(tag, "name") else { continue };
        match name.as_str() {
            "username" | "login" => fields.push((name, user.to_string())),
            "password" => fields.push((name, password.to_string())),
            _ if tag.contains("type=\"hidden\"") => fields.push((name, attr(tag, "value").unwrap_or_default())),
            _ => {}
        }
    }
    if form.contains("name=\"decision\"") {
        fields.push(("decision".into(), "allow".into()));
    }
    Some((attr(head, "action"), fields))
}

fn location(res: &reqwest::Response, base: &str) -> Option<String> {
    let loc = res.headers().get("location")?.to_str().ok()?;
    Some(url::Url::parse(base).ok()?.join(loc).ok()?.to_string())
}

fn code_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

/// Signs in through the provider's pages; returns the browser and a code.
async fn sign_in(t: &Target, user: &str, password: &str) -> (reqwest::Client, String, String) {
    match try_sign_in(t, user, password, None).await {
        Ok(done) => done,
        Err(why) => panic!("sign-in failed: {why}"),
    }
}

/// A new browser (no cookies) signing in by password until the code
/// reaches the client, or why it did not. `address`: the browser's own
/// address as a trusted reverse proxy would forward it (`X-Forwarded-For`).
async fn try_sign_in(
    t: &Target,
    user: &str,
    password: &str,
    address: Option<&str>,
) -> Result<(reqwest::Client, String, String), String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(a) = address {
        headers.insert("x-forwarded-for", a.parse().unwrap());
    }
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    let (verifier, challenge) = pkce();
    let mut url = authorize_url(t, &challenge, None);
    for _ in 0..20 {
        if url.starts_with(&t.redirect) {
            let code = code_of(&url).ok_or_else(|| format!("no code at the client: {url}"))?;
            return Ok((http, code, verifier));
        }
        let res = http.get(&url).send().await.map_err(|e| e.to_string())?;
        if let Some(next) = location(&res, &url) {
            url = next;
            continue;
        }
        let page = res.text().await.map_err(|e| e.to_string())?;
        let (action, form) = fill_form(&page, user, password).ok_or_else(|| format!("no form at {url}:\n{page}"))?;
        let target = match action.filter(|a| !a.is_empty()) {
            Some(a) => url::Url::parse(&url).unwrap().join(&a).unwrap().to_string(),
            None => url.clone(),
        };
        let res = http.post(&target).form(&form).send().await.map_err(|e| e.to_string())?;
        url = location(&res, &target).ok_or_else(|| format!("form at {target} went nowhere: {}", res.status()))?;
    }
    Err("sign-in did not reach the client".into())
}

/// What a password sign-in types: the worker's own account, or with a
/// spread a random seeded one, by username or (every other attempt) phone.
fn typed(citizen: &str, spread: Option<u64>, attempt: usize) -> String {
    let Some(n) = spread else { return citizen.to_string() };
    let prefix = citizen.trim_end_matches(|c: char| c.is_ascii_digit());
    let k = rand::Rng::gen_range(&mut rand::thread_rng(), 1..=n);
    // `seed1` … `seed9` are too short to be typed as usernames (six or more).
    if attempt.is_multiple_of(2) && k >= 10 { format!("{prefix}{k}") } else { format!("139{k:08}") }
}

/// The argon2id bound of idp's password sign-ins on this machine: how many
/// verifications per second idp's own parameters allow with every core
/// hashing and nothing else running (`crypto::password::verify_blocking`,
/// the function the server calls). Measured for `secs` seconds.
fn argon2_bound(password: &str, secs: f64) -> f64 {
    let hash = idp::crypto::password::hash_blocking(password).unwrap();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        assert!(idp::crypto::password::verify_blocking(password, &hash));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    done as f64 / started.elapsed().as_secs_f64()
}

async fn redeem(t: &Target, http: &reqwest::Client, code: &str, verifier: &str) -> Option<serde_json::Value> {
    let res = http
        .post(&t.token)
        .basic_auth(&t.client_id, Some(&t.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &t.redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

/// One authorize (prompt=none) → token → userinfo flow.
async fn code_flow(t: &Target, w: &Worker) -> bool {
    let (verifier, challenge) = pkce();
    let mut url = authorize_url(t, &challenge, Some("none"));
    // The peer answers authorize with a redirect to its resume endpoint.
    for _ in 0..4 {
        let Ok(res) = w.http.get(&url).send().await else { return false };
        let Some(next) = location(&res, &url) else { return false };
        url = next;
        if url.starts_with(&t.redirect) {
            break;
        }
    }
    let Some(code) = code_of(&url) else { return false };
    let Some(tokens) = redeem(t, &w.http, &code, &verifier).await else { return false };
    let Some(access) = tokens["access_token"].as_str() else { return false };
    matches!(w.http.get(&t.userinfo).bearer_auth(access).send().await, Ok(r) if r.status().is_success())
}

async fn refresh(t: &Target, w: &mut Worker) -> bool {
    let Some(rt) = w.refresh.clone() else { return false };
    let res = w
        .http
        .post(&t.token)
        .basic_auth(&t.client_id, Some(&t.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
        .send()
        .await;
    let Ok(res) = res else { return false };
    if !res.status().is_success() {
        return false;
    }
    let Ok(v) = res.json::<serde_json::Value>().await else { return false };
    if let Some(next) = v["refresh_token"].as_str() {
        w.refresh = Some(next.to_string());
    }
    if let Some(a) = v["access_token"].as_str() {
        w.access = a.to_string();
    }
    true
}

async fn introspect(t: &Target, w: &Worker) -> bool {
    let res = w
        .http
        .post(&t.introspect)
        .basic_auth(&t.client_id, Some(&t.secret))
        .form(&[("token", w.access.as_str())])
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => {
            r.json::<serde_json::Value>().await.map(|v| v["active"] == true).unwrap_or(false)
        }
        _ => false,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs bench
    // targets too, without it — and there is no provider to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("flows benchmark: run it through scripts/bench-peer.sh (or `cargo bench -p idp --bench flows`)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let issuer = env("BENCH_ISSUER", "http://127.0.0.1:8080");
    let peer = env("BENCH_KIND", "idp") == "peer";
    let path = |idp: &str, peer_path: &str| format!("{issuer}{}", if peer { peer_path } else { idp });
    let t = Target {
        authorize: path("/authorize", "/auth"),
        token: path("/token", "/token"),
        userinfo: path("/userinfo", "/me"),
        introspect: path("/introspect", "/token/introspection"),
        client_id: env("BENCH_CLIENT_ID", "probe"),
        secret: env("BENCH_CLIENT_SECRET", ""),
        redirect: env("BENCH_REDIRECT", "http://127.0.0.1:9/cb"),
        scope: env("BENCH_SCOPE", "openid profile offline_access"),
        issuer: issuer.clone(),
    };
    let label = env("BENCH_LABEL", if peer { "peer" } else { "idp" });
    let user = env("BENCH_USER", "probeuser1");
    let password = env("BENCH_PASSWORD", "Pr0be-Passw0rd!x");
    let secs: u64 = env("BENCH_SECS", "10").parse().unwrap();
    let n: usize = env("BENCH_CONCURRENCY", "32").parse().unwrap();
    // Refresh and introspection first: node-oidc-provider ends a grant's
    // refresh-token chain once the same grant is authorized again, so after
    // the code scenario every peer refresh would fail.
    let scenarios = env("BENCH_SCENARIOS", "refresh,introspect,code");
    // `password`: worker i signs in as `<prefix>i` (accounts the caller made).
    let citizens = std::env::var("BENCH_CITIZEN_PREFIX").ok();
    let spread: Option<u64> = std::env::var("BENCH_CITIZEN_SPREAD").ok().map(|n| n.parse().unwrap());

    // Every worker signs in once (its own browser session and grant).
    let mut workers = Vec::new();
    for _ in 0..n {
        let (http, code, verifier) = sign_in(&t, &user, &password).await;
        let tokens = redeem(&t, &http, &code, &verifier).await.expect("first code redeems");
        workers.push(Worker {
            http,
            access: tokens["access_token"].as_str().expect("access token").to_string(),
            refresh: tokens["refresh_token"].as_str().map(String::from),
        });
    }
    eprintln!("{label}: {n} browsers signed in at {}", t.issuer);

    for scenario in scenarios.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if scenario == "password" {
            // The bound first, with the server idle; then the sign-ins.
            println!("BOUND {label} argon2id {:.1}", argon2_bound(&password, secs as f64 / 2.0));
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mut w in std::mem::take(&mut workers) {
            let t = t.clone();
            let scenario = scenario.to_string();
            let (password, label) = (password.clone(), label.clone());
            // Password sign-ins: citizens with accounts of their own from
            // addresses of their own (the sign-in throttle holds one account
            // to a few attempts in flight, one address to fifty).
            let citizen = match &citizens {
                Some(prefix) => format!("{prefix}{}", tasks.len() + 1),
                None => user.clone(),
            };
            let address = format!("10.77.{}.{}", tasks.len() / 250, tasks.len() % 250 + 1);
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < deadline {
                    let one = Instant::now();
                    let ok = match scenario.as_str() {
                        "code" => code_flow(&t, &w).await,
                        "refresh" => refresh(&t, &mut w).await,
                        "introspect" => introspect(&t, &w).await,
                        // A new browser signing in by password (idp only:
                        // the peer's development login checks no password).
                        "password" => match try_sign_in(
                            &t,
                            &typed(&citizen, spread, lat.len() + errors),
                            &password,
                            Some(&address),
                        )
                        .await
                        {
                            Ok(_) => true,
                            Err(why) => {
                                if errors == 0 {
                                    eprintln!("{label}: a password sign-in failed: {why}");
                                }
                                false
                            }
                        },
                        other => panic!("unknown scenario {other}"),
                    };
                    if ok {
                        lat.push(one.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (w, lat, errors)
            }));
        }
        let (mut all, mut errors) = (Vec::new(), 0);
        for task in tasks {
            let (w, lat, e) = task.await.unwrap();
            workers.push(w);
            all.extend(lat);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort();
        let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
        let ms = |d: Option<Duration>| d.unwrap_or_default().as_secs_f64() * 1e3;
        println!(
            "RESULT {label} {scenario} {:.0} {:.2} {:.2} {errors}",
            all.len() as f64 / elapsed,
            ms(pct(0.5)),
            ms(pct(0.99))
        );
    }
}
