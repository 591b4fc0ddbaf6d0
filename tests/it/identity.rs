//! Real-name identity (A2, B2–B5, B7) over HTTP with the sandbox verifier
//! (no latency) and, for timeouts, the HTTP adapter against a server that
//! never answers.
use crate::both;
use crate::support::*;
use idp::domain::assurance;
use idp::domain::identity::documents::{Document, DocumentForm};
use idp::domain::identity::users::NewUser;
use idp::ports::verifier::Verifier;
use idp::store::entities::{dev_message, identity, user, verification};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub(crate) const ZHANG: [(&str, &str); 5] = [
    ("doc_type", "resident_id"),
    ("name", "张三"),
    ("number", "110101199003074514"),
    ("valid_from", "2018-06-06"),
    ("valid_to", "2038-06-06"),
];

pub(crate) async fn app_with(b: Backend, tweak: impl FnOnce(&mut idp::config::Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.verifier.latency_min_ms = 0;
    config.verifier.latency_max_ms = 0;
    tweak(&mut config);
    spawn_with(config, listener, dir).await
}

async fn latest(app: &TestApp, channel: &str, to: &str) -> Option<String> {
    dev_message::Entity::find()
        .filter(dev_message::Column::Channel.eq(channel))
        .filter(dev_message::Column::Recipient.eq(to))
        .order_by_desc(dev_message::Column::Id)
        .one(&app.state.store)
        .await
        .unwrap()
        .map(|m| m.body)
}

fn code_in(body: &str) -> String {
    let c: Vec<char> = body.chars().collect();
    c.windows(6).find(|w| w.iter().all(char::is_ascii_digit)).map(|w| w.iter().collect()).unwrap()
}

/// A citizen with a phone, signed in through a relying app in `Browser`.
pub(crate) async fn citizen(app: &TestApp, client: &TestClient, phone: &str) -> (String, String, Browser) {
    let username = random_name("u");
    let id = app
        .state
        .users
        .create(NewUser {
            username: username.clone(),
            password: PASSWORD.into(),
            phone: Some(phone.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .sub;
    let (_, b) = sign_in(app, client, &username, &[]).await;
    (id, username, b)
}

/// Step 1 of a gated page: captcha, SMS code, verify → the flow id.
pub(crate) async fn sms_step(app: &TestApp, b: &Browser, path: &str, phone: &str) -> String {
    let html = b.http.get(app.url(path)).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = latest(app, "captcha", &captcha_id).await.unwrap();
    let form = [("csrf", csrf.as_str()), ("captcha_id", &captcha_id), ("captcha", &answer), ("action", "send_code")];
    let res = b.http.post(app.url(path)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let code = code_in(&latest(app, "sms", phone).await.unwrap());
    let form = [("csrf", csrf.as_str()), ("sms_code", &code), ("action", "verify_sms"), ("req", "")];
    let res = b.http.post(app.url(path)).form(&form).send().await.unwrap();
    let to = location(&res).expect("redirect to the second step");
    query_of(&to).get("flow").cloned().unwrap()
}

pub(crate) async fn submit(
    app: &TestApp,
    b: &Browser,
    path: &str,
    flow: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let html = b.http.get(app.url(&format!("{path}?flow={flow}"))).send().await.unwrap().text().await.unwrap();
    let mut form = vec![
        ("csrf".to_string(), hidden(&html, "csrf").unwrap()),
        ("flow".to_string(), flow.to_string()),
        ("action".to_string(), "submit".to_string()),
    ];
    for (k, v) in fields {
        form.push((k.to_string(), v.to_string()));
    }
    let res = b.http.post(app.url(path)).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn holder(app: &TestApp, number: &str) -> Vec<identity::Model> {
    identity::Entity::find().filter(identity::Column::DocNumber.eq(number)).all(&app.state.store).await.unwrap()
}

async fn level(app: &TestApp, user_id: &str) -> u8 {
    assurance::proofing_level(&app.state.store, user_id).await.unwrap()
}

fn with(
    base: &[(&'static str, &'static str)],
    over: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = base.iter().filter(|(k, _)| !over.iter().any(|(o, _)| o == k)).cloned().collect();
    v.extend_from_slice(over);
    v
}

/// A token of the citizen app, the client an administrator permitted
/// `scan_login`: the only kind the face API accepts. The relying
/// app `_client` the account signed in to cannot run face checks.
async fn access_token(app: &TestApp, _client: &TestClient, username: &str) -> String {
    crate::scan::citizen(app, username).await.token
}

pub(crate) async fn face(app: &TestApp, token: &str, sample: &str) -> reqwest::Response {
    use base64::Engine;
    let face = base64::engine::general_purpose::STANDARD.encode(sample);
    api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(token)
        .json(&serde_json::json!({"face": face}))
        .send()
        .await
        .unwrap()
}

async fn l2_binding_and_refusals(b: Backend) {
    let app = app_with(b, |_| {}).await;
    let client = app.confidential().await;
    let (uid, _, br) = citizen(&app, &client, "13900000001").await;
    let flow = sms_step(&app, &br, "/identity/verify", "13900000001").await;
    // Bad check digit: refused before any call, clear message.
    let (status, body) =
        submit(&app, &br, "/identity/verify", &flow, &with(&ZHANG, &[("number", "110101199003074515")])).await;
    assert_eq!(status, 400);
    assert!(body.contains("校验码不正确"), "{body}");
    // Expired document (2015–2025 card, today is later).
    let expired = with(&ZHANG, &[("valid_from", "2015-06-06"), ("valid_to", "2025-06-06")]);
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &expired).await;
    assert_eq!(status, 400);
    assert!(body.contains("证件已过期"), "{body}");
    // A rare character the authority cannot match: told to use the counter or appeal.
    let rare = [
        ("doc_type", "resident_id"),
        ("name", "王䶮"),
        ("number", "110101198505120037"),
        ("valid_from", "2015-01-01"),
        ("valid_to", "2035-01-01"),
    ];
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &rare).await;
    assert_eq!(status, 400);
    assert!(body.contains("生僻字") && body.contains("申诉"), "{body}");
    let (_, body) = submit(&app, &br, "/identity/verify", &flow, &with(&ZHANG, &[("name", "张四")])).await;
    assert!(body.contains("不一致"), "{body}");
    assert!(holder(&app, "110101199003074514").await.is_empty());
    assert!(holder(&app, "110101198505120037").await.is_empty());
    assert_eq!(level(&app, &uid).await, 1);
    // The attempts are recorded, masked.
    let rows = verification::Entity::find()
        .filter(verification::Column::UserId.eq(uid.as_str()))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(rows.iter().any(|r| r.outcome == "rare_character" && r.subject.contains("*䶮")));
    assert!(rows.iter().all(|r| !r.subject.contains("110101198505120037")));
    // Pass: bound at L2, name and ID number on the account, flow used up.
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("认证成功"));
    assert_eq!(level(&app, &uid).await, 2);
    let u = user::Entity::find_by_id(uid.clone()).one(&app.state.store).await.unwrap().unwrap();
    assert_eq!((u.name.as_deref(), u.id_number.as_deref()), (Some("张三"), Some("110101199003074514")));
    let replay = br.http.get(app.url(&format!("/identity/verify?flow={flow}"))).send().await.unwrap();
    assert_eq!(replay.status(), 400, "a used flow cannot be replayed");
    let page = br.http.get(app.url("/identity")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("*三") && page.contains("data-level=\"2\""), "{page}");
    // The authority's answers are counted for operators, by check and answer.
    let metrics = api().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for outcome in ["pass", "mismatch", "rare_character"] {
        let series = format!("idp_verifier_calls_total{{check=\"id\",outcome=\"{outcome}\"}} ");
        assert!(metrics.lines().any(|l| l.starts_with(&series)), "{series} missing:\n{metrics}");
    }
}
both!(l2_binding_and_refusals_both, super::l2_binding_and_refusals);

async fn verifier_timeout(b: Backend) {
    // A provider that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", hang.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let app = app_with(b, |c| {
        c.verifier.kind = "http".into();
        c.verifier.url = Some(url);
        c.verifier.key = Some("shared-secret".into());
        c.verifier.timeout_ms = 300;
        c.verifier.retries = 1;
    })
    .await;
    let client = app.confidential().await;
    let (uid, _, br) = citizen(&app, &client, "13900000002").await;
    let flow = sms_step(&app, &br, "/identity/verify", "13900000002").await;
    let started = std::time::Instant::now();
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
    assert_eq!(status, 503);
    assert!(body.contains("核验服务暂不可用"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(holder(&app, "110101199003074514").await.is_empty());
    assert_eq!(level(&app, &uid).await, 1);
    let rows = verification::Entity::find()
        .filter(verification::Column::UserId.eq(uid.as_str()))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), vec!["timeout"]);
    // The flow survives a provider failure: the person can try again later.
    let (status, _) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
    assert_eq!(status, 503);
}
both!(verifier_timeout_both, super::verifier_timeout);

/// A fake provider that fails with 503 until told to pass, counting calls;
/// each answer takes `delay_ms` (so calls can overlap one in flight).
async fn flaky_provider(delay_ms: u64) -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let (calls, healthy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (c, h) = (calls.clone(), healthy.clone());
    let app = axum::Router::new().route(
        "/id",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let (c, h) = (c.clone(), h.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                assert!(headers.contains_key("x-idp-signature"), "requests are signed");
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                if h.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, r#"{"result":"pass","reference":"fake-1"}"#)
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls, healthy)
}

/// The HTTP verifier against `url`, no retries, the given breaker.
async fn breaker_app(b: Backend, url: String, failures: u32, cooldown_ms: u64) -> TestApp {
    app_with(b, |c| {
        c.verifier.kind = "http".into();
        c.verifier.url = Some(url);
        c.verifier.key = Some("shared-secret".into());
        c.verifier.timeout_ms = 5000;
        c.verifier.retries = 0;
        c.verifier.breaker_failures = failures;
        c.verifier.breaker_cooldown_ms = cooldown_ms;
    })
    .await
}

async fn circuit_breaker(b: Backend) {
    let (url, calls, healthy) = flaky_provider(0).await;
    let app = breaker_app(b, url, 2, 1500).await;
    let client = app.confidential().await;
    let (uid, _, br) = citizen(&app, &client, "13900000003").await;
    let flow = sms_step(&app, &br, "/identity/verify", "13900000003").await;
    // Two failures reach the provider and open the circuit.
    for n in 1..=2 {
        let (status, body) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
        assert_eq!(status, 503);
        assert!(body.contains("核验服务暂不可用"), "{body}");
        assert_eq!(calls.load(Ordering::SeqCst), n);
    }
    // Open: fails fast with the same clear message, no upstream call, even
    // once the provider has recovered.
    healthy.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
    assert_eq!(status, 503);
    assert!(body.contains("核验服务暂不可用"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_millis(1000));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "an open circuit does not call the provider");
    assert!(holder(&app, "110101199003074514").await.is_empty());
    // After the cool-down the circuit closes: the next check goes through.
    app.state.clock.advance(2);
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(level(&app, &uid).await, 2);
    let rows = verification::Entity::find()
        .filter(verification::Column::UserId.eq(uid.as_str()))
        .order_by_asc(verification::Column::CreatedAt)
        .all(&app.state.store)
        .await
        .unwrap();
    let outcomes: Vec<_> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "unavailable").count(), 2, "{outcomes:?}");
    assert!(outcomes.contains(&"circuit_open") && outcomes.contains(&"pass"), "{outcomes:?}");
    assert!(rows.iter().any(|r| r.reference.as_deref() == Some("fake-1")));
}
both!(circuit_breaker_both, super::circuit_breaker);

/// Valid resident ID numbers (checksummed), one per citizen below.
const NUMBERS: [&str; 4] = ["110101199003074522", "110101199003074530", "110101199003074549", "110101199003074557"];

/// Half-open: after the cool-down the circuit lets exactly one probe reach
/// the provider while the rest keep failing fast; a failed probe opens it
/// for another cool-down, a good one closes it.
async fn circuit_breaker_half_open(b: Backend) {
    let (url, calls, healthy) = flaky_provider(600).await;
    let app = breaker_app(b, url, 1, 1500).await;
    let client = app.confidential().await;
    let mut people = Vec::new();
    for (i, number) in NUMBERS.iter().enumerate() {
        let phone = format!("1390000002{i}");
        let (uid, _, br) = citizen(&app, &client, &phone).await;
        let flow = sms_step(&app, &br, "/identity/verify", &phone).await;
        people.push((uid, br, flow, with(&ZHANG, &[("number", number)])));
    }
    // All of them at once, each its own person and flow.
    let all_at_once = |who: &[usize]| {
        let runs = who.iter().map(|&i| {
            let (_, br, flow, fields) = &people[i];
            submit(&app, br, "/identity/verify", flow, fields)
        });
        futures_util::future::join_all(runs)
    };
    let (status, _) = submit(&app, &people[0].1, "/identity/verify", &people[0].2, &people[0].3).await;
    assert_eq!(status, 503);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one failure opens the circuit");

    // Cool-down over, provider still down: one probe, three fail fast.
    app.state.clock.advance(2);
    let answers = all_at_once(&[0, 1, 2, 3]).await;
    assert!(answers.iter().all(|(s, body)| *s == 503 && body.contains("核验服务暂不可用")), "{answers:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "exactly one probe reaches the provider");
    // The failed probe opened it again: even a recovered provider is not asked.
    healthy.store(true, Ordering::SeqCst);
    let (status, _) = submit(&app, &people[1].1, "/identity/verify", &people[1].2, &people[1].3).await;
    assert_eq!(status, 503);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a failed probe opens the circuit for another cool-down");

    // Next cool-down, provider healthy: again one probe; it passes and closes.
    app.state.clock.advance(2);
    let answers = all_at_once(&[0, 1, 2, 3]).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "exactly one probe reaches the recovered provider");
    let passed: Vec<usize> = (0..4).filter(|&i| answers[i].0 == 200).collect();
    assert_eq!(passed.len(), 1, "the probe passes, the rest failed fast: {answers:?}");
    assert!(answers.iter().filter(|(s, _)| *s == 503).count() == 3, "{answers:?}");
    assert_eq!(level(&app, &people[passed[0]].0).await, 2);
    // Closed: the others now all reach the provider and pass.
    let rest: Vec<usize> = (0..4).filter(|i| !passed.contains(i)).collect();
    let answers = all_at_once(&rest).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    for (uid, ..) in &people {
        assert_eq!(level(&app, uid).await, 2);
    }
    let rows = verification::Entity::find().all(&app.state.store).await.unwrap();
    let count = |o: &str| rows.iter().filter(|r| r.outcome == o).count();
    assert_eq!((count("unavailable"), count("circuit_open"), count("pass")), (2, 7, 4), "{rows:?}");
}
both!(circuit_breaker_half_open_both, super::circuit_breaker_half_open);

async fn takeover_race(b: Backend) {
    let app = app_with(b, |_| {}).await;
    let client = app.confidential().await;
    let (old, _, ob) = citizen(&app, &client, "13900000010").await;
    let flow = sms_step(&app, &ob, "/identity/verify", "13900000010").await;
    assert_eq!(submit(&app, &ob, "/identity/verify", &flow, &ZHANG).await.0, 200);
    // Two new accounts claim the same identity: both told it is taken.
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for phone in ["13900000011", "13900000012"] {
        let (id, username, br) = citizen(&app, &client, phone).await;
        let flow = sms_step(&app, &br, "/identity/verify", phone).await;
        let (status, body) = submit(&app, &br, "/identity/verify", &flow, &ZHANG).await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("人脸识别") && body.contains("/appeal"), "{body}");
        ids.push(id);
        tokens.push(access_token(&app, &client, &username).await);
    }
    // Both pass the face check at once: exactly one ends up holding it.
    let (a, b2) = tokio::join!(face(&app, &tokens[0], "jpeg-a"), face(&app, &tokens[1], "jpeg-b"));
    let statuses = [a.status().as_u16(), b2.status().as_u16()];
    assert!(statuses.contains(&200) && statuses.iter().filter(|s| **s == 200).count() == 1, "{statuses:?}");
    let held = holder(&app, "110101199003074514").await;
    assert_eq!(held.len(), 1);
    let winner = &held[0].user_id;
    assert!(ids.contains(winner));
    assert_eq!(held[0].level, 3);
    assert_eq!(level(&app, winner).await, 3);
    assert_eq!(level(&app, &old).await, 1);
    // Exactly one account carries the person's sub; the loser keeps its own.
    use idp::domain::tokens::subjects;
    let db = &app.state.store;
    assert_eq!(subjects::of_account(db, winner).await.unwrap(), old);
    assert_eq!(subjects::account_for(db, &old).await.unwrap().as_deref(), Some(winner.as_str()));
    let loser = ids.iter().find(|i| *i != winner).unwrap();
    assert_eq!(subjects::of_account(db, loser).await.unwrap(), *loser);
    assert_ne!(subjects::of_account(db, &old).await.unwrap(), old);
    let old_user = user::Entity::find_by_id(old.clone()).one(&app.state.store).await.unwrap().unwrap();
    assert_eq!(old_user.id_number, None);
    assert!(latest(&app, "sms", "13900000010").await.unwrap().contains("换绑到其他账号"));
    // The old account's relying apps see the change: its tokens are revoked.
    assert_eq!(ob.http.get(app.url("/account")).send().await.unwrap().status(), 303);
}
both!(takeover_race_both, super::takeover_race);

async fn every_path_to_every_level(b: Backend) {
    let app = app_with(b, |_| {}).await;
    let client = app.confidential().await;
    let today = idp::domain::delegation::today(app.state.clock.now());
    // L3 by bank card (debit only).
    let (uid, _, br) = citizen(&app, &client, "13900000020").await;
    let flow = sms_step(&app, &br, "/identity/verify", "13900000020").await;
    assert_eq!(submit(&app, &br, "/identity/verify", &flow, &ZHANG).await.0, 200);
    let card = sms_step(&app, &br, "/identity/bank-card", "13900000020").await;
    let fields = [
        ("name", "张三"),
        ("number", "110101199003074514"),
        ("card_number", "6228480012345678903"),
        ("bank_phone", "13800000001"),
    ];
    let (status, body) = submit(&app, &br, "/identity/bank-card", &card, &fields).await;
    assert_eq!(status, 400);
    assert!(body.contains("借记卡"), "{body}");
    let debit = with(&fields, &[("card_number", "6222020200112233446")]);
    let (status, body) = submit(&app, &br, "/identity/bank-card", &card, &debit).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(level(&app, &uid).await, 3);

    // L3 by face through the app; a failed liveness changes nothing.
    let (uid, username, br) = citizen(&app, &client, "13900000021").await;
    let li = [
        ("doc_type", "resident_id"),
        ("name", "李秀"),
        ("number", "11010519491231002X"),
        ("valid_from", "2010-01-01"),
        ("long_term", "on"),
    ];
    let flow = sms_step(&app, &br, "/identity/verify", "13900000021").await;
    assert_eq!(submit(&app, &br, "/identity/verify", &flow, &li).await.0, 200);
    let token = access_token(&app, &client, &username).await;
    let res = face(&app, &token, "NOT-LIVE").await;
    assert_eq!(res.status(), 422);
    assert_eq!(level(&app, &uid).await, 2);
    let res = face(&app, &token, "jpeg").await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["level"], 3);
    assert_eq!(level(&app, &uid).await, 3);
    let rows =
        verification::Entity::find().filter(verification::Column::Kind.eq("face")).all(&app.state.store).await.unwrap();
    assert!(rows.iter().all(|r| !r.subject.contains("jpeg") && r.detail.is_none()), "no face sample is stored");

    // Children 0–6 are never asked for a face (B7).
    let (kid, kid_name, br) = citizen(&app, &client, "13900000022").await;
    let child = [
        ("doc_type", "resident_id"),
        ("name", "小宝"),
        ("number", "110101202305010027"),
        ("valid_from", "2024-01-01"),
        ("valid_to", "2029-01-01"),
    ];
    let flow = sms_step(&app, &br, "/identity/verify", "13900000022").await;
    assert_eq!(submit(&app, &br, "/identity/verify", &flow, &child).await.0, 200);
    let res = face(&app, &access_token(&app, &client, &kid_name).await, "jpeg").await;
    assert_eq!(json(res).await["result"], "not_required");
    assert_eq!(level(&app, &kid).await, 2);
    let page = br.http.get(app.url("/identity/face")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("无需进行人脸识别"), "{page}");

    // L4 by a chip-reader assertion; a replay is refused.
    let (uid, _, br) = citizen(&app, &client, "13900000023").await;
    let Verifier::Sandbox(sandbox) = &app.state.verifier else { panic!("sandbox expected") };
    let now = app.state.clock.now();
    let assertion = sandbox.sign_assertion(serde_json::json!({"jti": random_name("j"), "iat": now, "exp": now + 300,
        "doc_type": "hmt_residence_permit", "number": "830000199001010020", "name": "林台生",
        "valid_from": "2022-01-01", "valid_to": "2027-01-01", "place": "东城区政务服务中心"}));
    let post_assertion = |token: String| {
        let br = &br;
        let app = &app;
        async move {
            let html = br.http.get(app.url("/identity/in-person")).send().await.unwrap().text().await.unwrap();
            let form = [("csrf", hidden(&html, "csrf").unwrap()), ("assertion", token), ("req", String::new())];
            let res = br.http.post(app.url("/identity/in-person")).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, body) = post_assertion(format!("{assertion}x")).await;
    assert_eq!(status, 400);
    assert!(body.contains("凭证无效"), "{body}");
    assert_eq!(post_assertion(assertion.clone()).await.0, 200);
    assert_eq!(level(&app, &uid).await, 4);
    assert!(post_assertion(assertion).await.1.contains("已被使用"));

    // L4 at the counter: an operator, proofed at L4, whose own session has a
    // fresh face factor, records it; before that the page is refused.
    let (op, op_name, ob) = citizen(&app, &client, "13900000024").await;
    let chen = DocumentForm {
        doc_type: "resident_id".into(),
        name: "陈一".into(),
        number: "110101196606060097".into(),
        valid_from: "2015-01-01".into(),
        long_term: Some("on".into()),
        ..Default::default()
    };
    let doc = Document::parse(&chen, today).unwrap();
    let now = app.state.clock.now();
    idp::domain::identity::counter_verification(&app.state.store, "cli", &op, &doc, "bootstrap", now).await.unwrap();
    idp::domain::identity::set_operator(&app.state.store, &op, true, "cli", now).await.unwrap();
    assert_eq!(ob.http.get(app.url("/admin/in-person")).send().await.unwrap().status(), 403);
    assert_eq!(face(&app, &access_token(&app, &client, &op_name).await, "jpeg").await.status(), 200);
    // The operator's own face check, bound to this browser by a scan ticket.
    let next = crate::scan::face_via_app(&app, &ob, &op_name, "").await;
    assert!(next.ends_with("/account"), "{next}");
    let html = ob.http.get(app.url("/admin/in-person")).send().await.unwrap().text().await.unwrap();
    let (target, target_name, _) = citizen(&app, &client, "13900000025").await;
    let mut form = vec![
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("account", target_name),
        ("place", "西城区政务服务中心".into()),
    ];
    for (k, v) in [
        ("doc_type", "passport"),
        ("name", "张伟"),
        ("number", "E12345678"),
        ("valid_from", "2020-01-01"),
        ("valid_to", "2030-01-01"),
    ] {
        form.push((k, v.into()));
    }
    let res = ob.http.post(app.url("/admin/in-person")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(level(&app, &target).await, 4);
    let held = holder(&app, "E12345678").await;
    assert_eq!((held[0].method.as_str(), held[0].user_id.as_str()), ("counter", target.as_str()));
}
both!(every_path_to_every_level_both, super::every_path_to_every_level);

async fn rebind_and_unbind(b: Backend) {
    let app = app_with(b, |_| {}).await;
    let client = app.confidential().await;
    let (uid, _, br) = citizen(&app, &client, "13900000030").await;
    let flow = sms_step(&app, &br, "/identity/verify", "13900000030").await;
    assert_eq!(submit(&app, &br, "/identity/verify", &flow, &ZHANG).await.0, 200);
    // 换绑 to another identity after a fresh SMS step; the phone is told.
    let flow = sms_step(&app, &br, "/identity/verify", "13900000030").await;
    let li = [
        ("doc_type", "resident_id"),
        ("name", "李秀"),
        ("number", "11010519491231002X"),
        ("valid_from", "2010-01-01"),
        ("long_term", "on"),
    ];
    assert_eq!(submit(&app, &br, "/identity/verify", &flow, &li).await.0, 200);
    assert!(holder(&app, "110101199003074514").await.is_empty());
    assert_eq!(holder(&app, "11010519491231002X").await[0].user_id, uid);
    assert!(latest(&app, "sms", "13900000030").await.unwrap().contains("换绑"));
    // 解绑: SMS + confirmation; the account stays, at L1, signed out.
    let html = br.http.get(app.url("/identity/unbind")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = latest(&app, "captcha", &captcha_id).await.unwrap();
    let form = [("csrf", csrf.as_str()), ("captcha_id", &captcha_id), ("captcha", &answer), ("action", "send_code")];
    assert_eq!(br.http.post(app.url("/identity/unbind")).form(&form).send().await.unwrap().status(), 200);
    let code = code_in(&latest(&app, "sms", "13900000030").await.unwrap());
    let form = [("csrf", csrf.as_str()), ("sms_code", &code), ("action", "unbind")];
    let res = br.http.post(app.url("/identity/unbind")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400, "confirmation required");
    let code2 = code_in(&latest(&app, "sms", "13900000030").await.unwrap());
    let form = [("csrf", csrf.as_str()), ("sms_code", &code2), ("action", "unbind"), ("confirm", "yes")];
    let res = br.http.post(app.url("/identity/unbind")).form(&form).send().await.unwrap();
    assert!(location(&res).unwrap().ends_with("/login"));
    assert!(holder(&app, "11010519491231002X").await.is_empty());
    assert_eq!(level(&app, &uid).await, 1);
    assert!(user::Entity::find_by_id(uid).one(&app.state.store).await.unwrap().is_some());
}
both!(rebind_and_unbind_both, super::rebind_and_unbind);

#[tokio::test]
async fn identity_page_renders_every_view() {
    let app = app_with(Backend::Sqlite, |_| {}).await;
    for view in ["home", "sms", "unbind", "document", "admin", "bank_card", "face", "in_person", "taken", "done"] {
        for lang in ["zh-CN", "en"] {
            let mut ctx = tera::Context::new();
            for key in ["csrf", "flow", "req", "phone_masked", "captcha_id", "captcha_image"] {
                ctx.insert(key, "x");
            }
            ctx.insert("error", &Some("e"));
            ctx.insert("info", &Option::<String>::None);
            ctx.insert("view", view);
            crate::ops::identity_context(&mut ctx);
            app.state.pages.render("identity.html", lang, ctx).unwrap_or_else(|e| panic!("{view} {lang}: {e:?}"));
        }
    }
}
