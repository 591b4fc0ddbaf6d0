//! The health-code plugin over HTTP, loaded into the real server
//! (E1–E6): code rotation by the provider's clock and on
//! demand, tampered and expired payloads refused by the scan API, offline
//! codes valid on day 7 and refused on day 8, scan permission (none, and
//! switched off at once), status records and colours, kinship codes and
//! the kin rules at their boundaries, styles keeping one active, and
//! statistics matching the logged events.
use crate::both;
use crate::delegation::id_born;
use crate::plugin_kit::*;
use crate::support::*;
use chrono::{Days, Months};
use idp::domain::delegation;
use idp::domain::identity::users::NewUser;
use serde_json::{Value, json};

pub(crate) const BASE: &str = "/plugins/health-code";
pub(crate) const ZHANG_ID: &str = "11010519491231002X";

pub(crate) async fn citizen(app: &TestApp, username: &str, name: &str, id_number: &str) {
    app.state
        .users
        .create(NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            name: Some(name.into()),
            id_number: Some(id_number.into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A signed-in browser for `username`.
pub(crate) async fn signed_in(app: &TestApp, username: &str) -> Browser {
    let rp = app.confidential().await;
    tokens_for(app, &rp, username, "openid").await.1
}

pub(crate) async fn page(b: &Browser, app: &TestApp, path: &str) -> (u16, String) {
    let r = b.http.get(app.url(&format!("{BASE}{path}"))).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("{start} not in {html}")) + start.len();
    html[i..].split(end).next().unwrap()
}

pub(crate) fn payload_in(html: &str) -> String {
    between(html, "<code class=\"payload\">", "<").to_string()
}

/// A client permitted `scope`, and a client_credentials token for it.
pub(crate) async fn app_with(app: &TestApp, scope: &str) -> (TestClient, String) {
    let c = app.confidential().await;
    permit(app, &c, scope).await;
    let token = renewed(app, &c, scope).await;
    (c, token)
}

/// A new client-credentials token. Access tokens expire on the provider's
/// clock, so a scanner used across an `advance` past their lifetime asks
/// again, as a real one would.
pub(crate) async fn renewed(app: &TestApp, c: &TestClient, scope: &str) -> String {
    let r = client_token(app, c, scope).await;
    assert_eq!(r.status(), 200);
    json(r).await["access_token"].as_str().unwrap().to_string()
}

pub(crate) async fn scan(app: &TestApp, token: &str, payload: &str, place: &str) -> reqwest::Response {
    api()
        .post(app.url(&format!("{BASE}/api/scan")))
        .bearer_auth(token)
        .json(&json!({ "payload": payload, "place": place }))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn scanned(app: &TestApp, token: &str, payload: &str) -> Value {
    let r = scan(app, token, payload, "gate-1").await;
    assert_eq!(r.status(), 200);
    json(r).await
}

pub(crate) async fn admin_get(app: &TestApp, path: &str) -> Value {
    let r = api().get(app.url(&format!("{BASE}{path}"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    json(r).await
}

pub(crate) async fn admin_post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    api().post(app.url(&format!("{BASE}{path}"))).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap()
}

/// E1, E4: rotation every 10 minutes by the provider's clock and on demand,
/// tamper and expiry refused, colours from pushed status records, scan
/// permission absent and switched off.
async fn rotation_and_scanning(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(&app, "zhang_san").await;
    let (scanner, st) = app_with(&app, "health_code.scan").await;

    let (status, html) = page(&b, &app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-colour=\"green\"") && html.contains("张*") && html.contains("<svg"), "{html}");
    // It reloads itself before the code expires, with a pause the citizen
    // controls (WCAG 2.2.1), never a meta refresh.
    assert!(html.contains("id=\"auto-reload\" data-reload=\"") && html.contains("id=\"auto-reload-toggle\""), "{html}");
    assert!(!html.contains("http-equiv"), "no meta refresh");
    assert!(!html.contains("张三"), "the name is masked");
    let a = payload_in(&html);
    let header = jwt_claims(&format!("x.{}", a.split('.').next().unwrap()));
    assert_eq!(header["typ"], "idp-plugin+jwt");
    let ca = jwt_claims(&a);
    assert!(ca["exp"].as_i64().unwrap() - ca["iat"].as_i64().unwrap() <= 600);
    assert!(!a.contains(ZHANG_ID) && !ca.to_string().contains(ZHANG_ID), "no ID number in the QR");

    let ok = scanned(&app, &st, &a).await;
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(
        (ok["colour"].as_str(), ok["name"].as_str(), ok["code_type"].as_str()),
        (Some("green"), Some("张*"), Some("personal"))
    );
    let keys: Vec<&String> = ok.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "only status, masked identity and validity: {ok}");

    // Within the window the code id stays; after 10 minutes it changes.
    let (_, html) = page(&b, &app, "/").await;
    assert_eq!(jwt_claims(&payload_in(&html))["cid"], ca["cid"]);
    app.state.clock.advance(601);
    let st = renewed(&app, &scanner, "health_code.scan").await;
    let (_, html) = page(&b, &app, "/").await;
    let b2 = payload_in(&html);
    assert_ne!(jwt_claims(&b2)["cid"], ca["cid"], "a new code id every 10 minutes");
    assert_eq!(scanned(&app, &st, &a).await["reason"], "expired");
    assert_eq!(scanned(&app, &st, &b2).await["valid"], true);

    // On demand: the previous code, though unexpired, is superseded.
    let csrf = hidden(&html, "csrf").unwrap();
    let r = b.http.post(app.url(&format!("{BASE}/refresh"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = page(&b, &app, "/").await;
    let c = payload_in(&html);
    assert_ne!(jwt_claims(&c)["cid"], jwt_claims(&b2)["cid"]);
    assert_eq!(scanned(&app, &st, &b2).await["reason"], "superseded");
    assert_eq!(scanned(&app, &st, &c).await["valid"], true);

    // Tampered: another payload under the same signature; a forged signature.
    let parts: Vec<&str> = c.split('.').collect();
    let mut claims = jwt_claims(&c);
    claims["t"] = json!("enterprise");
    let forged = format!("{}.{}.{}", parts[0], idp::crypto::b64url(claims.to_string().as_bytes()), parts[2]);
    assert_eq!(scanned(&app, &st, &forged).await["reason"], "invalid");
    let flipped = format!("{}.{}.{}x", parts[0], parts[1], &parts[2][..parts[2].len() - 1]);
    assert_eq!(scanned(&app, &st, &flipped).await["valid"], false);
    assert_eq!(scanned(&app, &st, "not-a-code").await["reason"], "invalid");

    // A data source pushes a status record: the colour follows, with reason and history.
    let (_, src) = app_with(&app, "health_code.status").await;
    let push = |status: &'static str, reason: &'static str| {
        let (app, src) = (&app, src.clone());
        async move {
            api()
                .post(app.url(&format!("{BASE}/api/status")))
                .bearer_auth(&src)
                .json(&json!({ "id_number": ZHANG_ID, "status": status, "reason": reason }))
                .send()
                .await
                .unwrap()
        }
    };
    let r = push("close_contact", "与确诊病例同一航班").await;
    assert_eq!(r.status(), 201);
    assert_eq!(json(r).await["colour"], "red");
    assert_eq!(scanned(&app, &st, &c).await["colour"], "red");
    let (_, html) = page(&b, &app, "/").await;
    assert!(html.contains("data-colour=\"red\"") && html.contains("与确诊病例同一航班"), "{html}");
    push("cleared", "隔离期满").await;
    let (_, html) = page(&b, &app, "/history").await;
    assert!(
        html.contains("data-colour=\"green\"") && html.contains("密切接触者") && html.contains("隔离期满"),
        "{html}"
    );
    // The scan scope cannot push status records.
    let r = api().post(app.url(&format!("{BASE}/api/status"))).bearer_auth(&st);
    assert_eq!(r.json(&json!({ "id_number": ZHANG_ID, "status": "confirmed" })).send().await.unwrap().status(), 403);

    // Without the scan permission: no token for the scope, or refused.
    let stranger = app.confidential().await;
    let r = client_token(&app, &stranger, "health_code.scan").await;
    if r.status() == 200 {
        let t = json(r).await["access_token"].as_str().unwrap().to_string();
        assert_eq!(scan(&app, &t, &c, "x").await.status(), 403);
    } else {
        assert_eq!(r.status(), 400);
    }
    let (user_tok, _) = tokens_for(&app, &stranger, "zhang_san", "openid").await;
    assert_eq!(scan(&app, user_tok["access_token"].as_str().unwrap(), &c, "x").await.status(), 403);

    // An app permitted the code scope shows its user's code (E4 generation
    // permission); switched off, it cannot.
    let code_app = app.confidential().await;
    permit(&app, &code_app, "health_code").await;
    let (tok, _) = tokens_for(&app, &code_app, "zhang_san", "openid health_code").await;
    let at = tok["access_token"].as_str().unwrap().to_string();
    let fetch = || api().get(app.url(&format!("{BASE}/api/code?place=app"))).bearer_auth(&at).send();
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 200);
    let code = json(r).await;
    assert_eq!((code["colour"].as_str(), code["name"].as_str()), (Some("green"), Some("张*")), "{code}");
    assert_eq!(jwt_claims(code["payload"].as_str().unwrap())["cid"], jwt_claims(&c)["cid"], "the same current code");
    assert_eq!(scanned(&app, &st, code["payload"].as_str().unwrap()).await["valid"], true);
    idp::domain::plugins::plugin_access::deny(&app.state.store, &code_app.id, "health_code", app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(fetch().await.unwrap().status(), 403);

    // Switched off by the administrator: the very next scan is refused.
    assert!(
        idp::domain::plugins::plugin_access::deny(
            &app.state.store,
            &scanner.id,
            "health_code.scan",
            app.state.clock.now()
        )
        .await
        .unwrap()
    );
    let r = scan(&app, &st, &c, "gate-1").await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["error"], "insufficient_scope");
}
both!(health_code_rotation_tamper_expiry_permission, super::rotation_and_scanning);

/// E2: the offline code carries its generation time and a 7-day validity
/// in the signed payload; the scanner accepts it on day 7, refuses on day 8.
async fn offline_code(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(&app, "zhang_san").await;
    let (scanner, st) = app_with(&app, "health_code.scan").await;

    let (status, html) = page(&b, &app, "/offline").await;
    assert_eq!(status, 200);
    assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo"), "{html}");
    let payload = payload_in(&html);
    let claims = jwt_claims(&payload);
    let gen_at = claims["gen"].as_i64().unwrap();
    assert_eq!(claims["until"].as_i64().unwrap(), gen_at + 7 * 86_400);
    let shown: i64 = between(&html, "class=\"generated\" data-at=\"", "\"").parse().unwrap();
    assert_eq!(shown, gen_at, "the generation time on the page is the payload's");

    let r = b.http.get(app.url(&format!("{BASE}/offline.png"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));

    let ok = scanned(&app, &st, &payload).await;
    assert_eq!((ok["valid"].clone(), ok["offline"].clone()), (json!(true), json!(true)), "{ok}");
    assert_eq!(ok["valid_until"], gen_at + 7 * 86_400);
    // Day 7 (a minute before the end): still valid, though online code ids rotated.
    app.state.clock.advance(7 * 86_400 - 60);
    let st = renewed(&app, &scanner, "health_code.scan").await;
    assert_eq!(scanned(&app, &st, &payload).await["valid"], true);
    // Day 8: refused.
    app.state.clock.advance(120);
    let r = scanned(&app, &st, &payload).await;
    assert_eq!((r["valid"].clone(), r["reason"].clone()), (json!(false), json!("expired")), "{r}");
}
both!(health_code_offline_code_seven_days, super::offline_code);

/// Posts the kin form; returns the status and the page (or the redirect).
async fn kin_post(app: &TestApp, b: &Browser, fields: &[(&str, &str)]) -> (u16, String) {
    let html = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    let r = b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    match location(&r) {
        Some(to) => (status, to),
        None => (status, r.text().await.unwrap()),
    }
}

/// The kin form, then (once the verifier passed the relative) the
/// commitment page accepted; where that led.
async fn bind(app: &TestApp, b: &Browser, name: &str, id: &str) -> (u16, String) {
    let mut form = vec![("action", "bind"), ("name", name), ("id_number", id), ("relation", "other")];
    let card = crate::face_gates::kin_card(app, id);
    form.extend(card.iter().map(|(k, v)| (*k, v.as_str())));
    let (status, page) = kin_post(app, b, &form).await;
    if status != 200 || !page.contains("id=\"kin-commitment\"") {
        return (status, page);
    }
    let r = crate::face_gates::accept_kin_commitment(app, b, &page).await;
    let status = r.status().as_u16();
    match location(&r) {
        Some(to) => (status, to),
        None => (status, r.text().await.unwrap()),
    }
}

/// The relative's face checked through the guardian's app (the account
/// signed in as `guardian`, as a real app does it: read the gate's ticket,
/// `POST /api/identity/face` with the ticket, confirm), then the guardian's
/// page continues; returns where that led.
async fn pass_face(app: &TestApp, b: &Browser, gate_url: &str, guardian: &str) -> reqwest::Response {
    crate::face_gates::pass_kin_face(app, b, gate_url, guardian).await.1
}

/// The sandbox verifier's built-in identities plus `relatives` (name, ID
/// number) whose face checks pass: a real verifier knows every resident,
/// the sandbox only its fixture.
fn relatives_known(config: &mut idp::config::Config, dir: &std::path::Path, relatives: &[(&str, &str)]) {
    let mut text = idp::ports::verifier::sandbox::BUILTIN_FIXTURE.to_string();
    for (name, number) in relatives {
        text.push_str(&format!(
            "\n[[identities]]\nname = \"{name}\"\ndoc_type = \"resident_id\"\nnumber = \"{number}\"\nid = \"pass\"\nface = \"pass\"\n"
        ));
    }
    let path = dir.join("kin-identities.toml");
    std::fs::write(&path, text).unwrap();
    config.verifier.fixture = Some(path);
}

/// Binds a relative aged 7+ through the relative's face check.
async fn bind_with_face(app: &TestApp, b: &Browser, name: &str, id: &str) -> String {
    let (status, to) = bind(app, b, name, id).await;
    assert_eq!(status, 303, "a face check for the relative: {to}");
    let to = if to.starts_with('/') { app.url(&to) } else { to };
    assert!(to.contains("/face?gate="), "{to}");
    pass_face(app, b, &to, "guardian").await.text().await.unwrap()
}

/// Kinship relation ids on the plugin's switcher, in page order.
fn relation_ids(html: &str) -> Vec<String> {
    html.split("?for=").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
}

/// E2: each kin rule at its boundary through the provider's
/// pages, then the kinship code and the relative's test results.
async fn kinship(backend: Backend) {
    // Before the app exists: its clock starts unshifted, like this one.
    let today = delegation::today(idp::clock::Clock::default().now());
    let born_years_ago = |years: u32, plus_days: u64| {
        let d =
            today.checked_sub_months(Months::new(12 * years)).unwrap().checked_add_days(Days::new(plus_days)).unwrap();
        d.format("%Y%m%d").to_string()
    };
    // Ages 16/17 and 59/60 from the ID number and today's date.
    let sixteen = id_born(&born_years_ago(17, 1), 11);
    let seventeen = id_born(&born_years_ago(17, 0), 12);
    let fifty_nine = id_born(&born_years_ago(60, 1), 13);
    let sixty = id_born(&born_years_ago(60, 0), 14);
    // Ages 0–6: a child of five, and toddlers of three to fill eight slots.
    let child = id_born(&born_years_ago(5, 0), 15);
    let toddlers: Vec<String> = (20..25).chain([30]).map(|i| id_born(&born_years_ago(3, 0), i)).collect();
    // The authority knows them all (the verifier checks every binding).
    let mut known = vec![("小红", sixteen.as_str()), ("老王", sixty.as_str()), ("小明", child.as_str())];
    known.extend(toddlers.iter().map(|t| ("幼儿", t.as_str())));
    let app =
        spawn_plugins(backend, &[HEALTH], |c, plugins| relatives_known(c, plugins.parent().unwrap(), &known)).await;
    citizen(&app, "guardian", "李四", &id_born("19800101", 1)).await;
    let b = signed_in(&app, "guardian").await;
    for refused in [&seventeen, &fifty_nine] {
        let (status, html) = bind(&app, &b, "某某", refused).await;
        assert_eq!(status, 400);
        assert!(html.contains("暂时只支持绑定16岁以下及60岁以上的亲属"), "{refused}: {html}");
    }
    let html = bind_with_face(&app, &b, "小红", &sixteen).await;
    assert!(html.contains("绑定成功"), "{html}");
    let html = bind_with_face(&app, &b, "老王", &sixty).await;
    assert!(html.contains("绑定成功"), "{html}");
    // A wrong ID number (bad check digit).
    let mut wrong = sixteen.clone();
    wrong.replace_range(17.., if sixteen.ends_with('0') { "1" } else { "0" });
    let (status, html) = bind(&app, &b, "小红", &wrong).await;
    assert_eq!(status, 400);
    assert!(html.contains("请输入正确的身份证号"), "{html}");
    // Ages 0–6 need no face check.
    let (status, html) = bind(&app, &b, "小明", &child).await;
    assert_eq!(status, 200, "no face check at 5: {html}");

    // The 9th relative is refused.
    for t in &toddlers[..5] {
        let (status, _) = bind(&app, &b, "幼儿", t).await;
        assert_eq!(status, 200);
    }
    let (status, html) = bind(&app, &b, "幼儿", &toddlers[5]).await;
    assert_eq!(status, 400);
    assert!(html.contains("每个用户最多可绑定8位亲属"), "{html}");

    // The 4th binder of one relative is refused.
    for i in 0..2 {
        citizen(&app, &format!("other{i}"), "赵六", &id_born("19850505", 40 + i)).await;
        let bi = signed_in(&app, &format!("other{i}")).await;
        assert_eq!(bind(&app, &bi, "小明", &child).await.0, 200, "binder {}", i + 2);
    }
    citizen(&app, "other3", "赵六", &id_born("19850505", 50)).await;
    let b4 = signed_in(&app, "other3").await;
    let (status, html) = bind(&app, &b4, "小明", &child).await;
    assert_eq!(status, 400);
    assert!(html.contains("该亲属已被3位用户绑定"), "{html}");

    // The kinship code: switch to a relative's code, scan it.
    let (_, html) = page(&b, &app, "/").await;
    let ids = relation_ids(&html);
    assert_eq!(ids.len(), 8, "{html}");
    let (status, kin_html) = page(&b, &app, &format!("/?for={}", ids[0])).await;
    assert_eq!(status, 200);
    assert!(kin_html.contains("data-type=\"kin\""), "{kin_html}");
    let (_, st) = app_with(&app, "health_code.scan").await;
    let ok = scanned(&app, &st, &payload_in(&kin_html)).await;
    assert_eq!((ok["valid"].clone(), ok["code_type"].clone()), (json!(true), json!("kin")), "{ok}");
    // Someone else's relation id shows nothing.
    assert_eq!(page(&b4, &app, &format!("/?for={}", ids[0])).await.0, 404);

    // Nucleic-acid results pushed by a lab, readable by the guardian.
    let (_, lab) = app_with(&app, "health_code.lab").await;
    let r = api().post(app.url(&format!("{BASE}/api/lab-results"))).bearer_auth(&lab);
    let r = r.json(&json!({ "id_number": sixty, "result": "negative", "lab": "拉萨市人民医院" })).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let (_, html) = page(&b, &app, "/tests").await;
    assert!(html.contains("拉萨市人民医院") && html.contains("阴性") && html.contains("老*"), "{html}");
    assert!(!page(&b4, &app, "/tests").await.1.contains("拉萨市人民医院"), "not the relative of another user");

    // Unbinding: refused at 23 h 59 m, done at 24 h (the latest binding is
    // the first on the list; the session has idled out, so sign in again).
    let (_, html) = page(&b, &app, "/").await;
    let newest = relation_ids(&html)[0].clone();
    app.state.clock.advance(24 * 3600 - 60);
    let b = signed_in(&app, "guardian").await;
    let (status, html) = kin_post(&app, &b, &[("action", "unbind"), ("id", &newest)]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("绑定亲属24小时后才能解绑"), "{html}");
    app.state.clock.advance(60);
    let (status, html) = kin_post(&app, &b, &[("action", "unbind"), ("id", &newest)]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("已解绑"), "{html}");
    let (_, html) = page(&b, &app, "/").await;
    assert_eq!(relation_ids(&html).len(), 7);
    assert!(!relation_ids(&html).contains(&newest));
}
both!(health_code_kinship_rules_at_boundaries, super::kinship);

/// E5, E6: one active style per type, statistics equal to the logged
/// events, log filters, the admin pages with SVG charts, the community.
async fn administration(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(&app, "zhang_san").await;
    let (scanner, st) = app_with(&app, "health_code.scan").await;

    // Styles: setting a new one retires the old.
    let style = |bg: &str| json!({ "code_type": "personal", "background": bg, "colour": "#222222", "icon": "⛑" });
    let r = admin_post(&app, "/admin/styles", style("#ffffff")).await;
    assert_eq!(r.status(), 201);
    let first = json(r).await["id"].as_str().unwrap().to_string();
    let second =
        json(admin_post(&app, "/admin/styles", style("#e8f5e9")).await).await["id"].as_str().unwrap().to_string();
    admin_post(
        &app,
        "/admin/styles",
        json!({ "code_type": "enterprise", "background": "#eef4ff", "colour": "#000000", "icon": "" }),
    )
    .await;
    assert_eq!(
        admin_post(&app, "/admin/styles", json!({ "code_type": "personal", "background": "red" })).await.status(),
        400
    );
    let list = admin_get(&app, "/admin/styles.json").await;
    let personal: Vec<&Value> =
        list["styles"].as_array().unwrap().iter().filter(|s| s["code_type"] == "personal").collect();
    assert_eq!(personal.len(), 2);
    let active: Vec<&str> =
        personal.iter().filter(|s| s["active"] == true).map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(active, [second.as_str()], "exactly one active personal style, the newest");
    assert!(personal.iter().any(|s| s["id"] == first.as_str() && s["active"] == false));

    // Shows and scans, each logged.
    let mut payload = String::new();
    for _ in 0..3 {
        let (_, html) = page(&b, &app, "/").await;
        assert!(html.contains(&format!("data-style=\"{second}\"")), "the active style is drawn");
        payload = payload_in(&html);
    }
    for place in ["东门", "东门", "西门"] {
        assert_eq!(json(scan(&app, &st, &payload, place).await).await["valid"], true);
    }
    assert_eq!(json(scan(&app, &st, "garbage", "西门").await).await["valid"], false);

    let stats = admin_get(&app, "/admin/stats.json").await;
    assert_eq!(stats["issued"]["total"], 1, "{stats}");
    assert_eq!(stats["shown"]["total"], 3, "{stats}");
    assert_eq!(stats["shown"]["by_type"]["personal"], 3);
    assert_eq!(stats["scanned"]["total"], 3, "successful scans: {stats}");
    let today = stats["daily"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (today["shown"].clone(), today["scanned"].clone(), today["issued"].clone()),
        (json!(3), json!(3), json!(1))
    );

    let logs = admin_get(&app, "/admin/logs.json?kind=scan").await;
    assert_eq!(logs["events"].as_array().unwrap().len(), 4, "refused scans are logged too");
    let logs =
        admin_get(&app, &format!("/admin/logs.json?kind=scan&app={}&place=%E4%B8%9C%E9%97%A8", scanner.id)).await;
    assert_eq!(logs["events"].as_array().unwrap().len(), 2);
    assert!(logs["events"].as_array().unwrap().iter().all(|e| e["at"].as_i64().unwrap() > 0));
    let ops = admin_get(&app, "/admin/logs.json?kind=operation").await;
    assert_eq!(ops["events"].as_array().unwrap().iter().filter(|e| e["code_type"] == "style_set").count(), 3);

    // The admin pages: charts drawn as SVG, the code list with search.
    let r = api().get(app.url(&format!("{BASE}/admin/stats"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("<svg") && html.contains("data-series=") && html.contains("class=\"share\""), "{html}");
    assert!(html.contains("data-metric=\"shown\">亮码次数 <strong>3</strong>"), "{html}");
    let codes = admin_get(&app, "/admin/codes.json?q=%E5%BC%A0").await;
    assert_eq!(codes["codes"].as_array().unwrap().len(), 1);
    assert!(codes["codes"][0]["number"].as_str().unwrap().starts_with("GR"));
    assert_eq!(admin_get(&app, "/admin/codes.json?q=nobody").await["codes"].as_array().unwrap().len(), 0);
    let r = api().get(app.url(&format!("{BASE}/admin/codes"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("110***********002X"));
    let r = api().get(app.url(&format!("{BASE}/admin/stats"))).bearer_auth(&st).send().await.unwrap();
    assert_eq!(r.status(), 401, "an app token is not the admin token");

    // Numbering rules apply to codes issued afterwards.
    let r = admin_post(
        &app,
        "/admin/categories",
        json!({ "code_type": "personal", "name": "个人健康码", "prefix": "XZ", "digits": 6 }),
    )
    .await;
    assert_eq!(r.status(), 201);
    citizen(&app, "li_si_2", "李四", &id_born("19800101", 1)).await;
    let b2 = signed_in(&app, "li_si_2").await;
    page(&b2, &app, "/").await;
    let codes = admin_get(&app, "/admin/codes.json?q=%E6%9D%8E").await;
    let number = codes["codes"][0]["number"].as_str().unwrap();
    assert!(number.starts_with("XZ") && number.len() == 2 + 8 + 6, "{number}");

    // E6: the community by fuzzy search, on the code profile.
    let (_, html) = page(&b, &app, "/profile?q=%E9%98%B3%E5%85%89%E5%9B%AD").await;
    assert!(html.contains("<option value=\"阳光花园\"") && !html.contains("翠湖花园"), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("community", "阳光花园"),
        ("building", "3"),
        ("unit", "2"),
        ("room", "401"),
        ("plate", ""),
    ];
    let r = b.http.post(app.url(&format!("{BASE}/profile"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bad = [("csrf", csrf.as_str()), ("community", "不存在小区"), ("building", "3"), ("unit", "2"), ("room", "401")];
    assert_eq!(b.http.post(app.url(&format!("{BASE}/profile"))).form(&bad).send().await.unwrap().status(), 400);
    let (_, html) = page(&b, &app, "/").await;
    assert!(html.contains("阳光花园 3-2-401"), "{html}");
}
both!(health_code_styles_statistics_logs_community, super::administration);

/// 003 §2.1.4: with `face_max_age` set, a session without a fresh face
/// check is sent to the provider's face check (D2: the person's app
/// verifies the face, the browser session gains the face factor) instead of
/// seeing a code; after it the code shows, until the check is too old.
async fn face_check_configured(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |c, _| {
        let settings: toml::Table = toml::from_str("face_max_age = 300").unwrap();
        c.plugins.settings.insert("health-code".into(), toml::Value::Table(settings));
    })
    .await;
    let uid = app.user("facer_hc").await;
    crate::scan::bind_sandbox_identity(&app, &uid).await;
    let b = signed_in(&app, "facer_hc").await;
    for path in ["/", "/offline", "/offline.png"] {
        let (status, html) = page(&b, &app, path).await;
        assert_eq!(status, 403, "{path}");
        let back = if path == "/" { "%2F" } else { "%2Foffline" };
        let link = format!("href=\"/scan/face?next=%2Fplugins%2Fhealth-code{back}\"");
        assert!(html.contains("data-face=\"required\"") && html.contains(&link), "{html}");
        assert!(!html.contains("class=\"payload\""), "no code without the face check");
    }
    // The rest of the profile needs none.
    assert_eq!(page(&b, &app, "/history").await.0, 200);

    // The face check returns to the code page, not to /account.
    let (_, html) = page(&b, &app, "/").await;
    let face = format!("/scan/face{}", between(&html, "href=\"/scan/face", "\"").replace("&amp;", "&"));
    let back = crate::scan::face_via_app_at(&app, &b, "facer_hc", &face, None).await;
    assert_eq!(back, app.url(&format!("{BASE}/")));
    let (status, html) = page(&b, &app, "/").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("class=\"payload\""));
    app.state.clock.advance(301);
    assert_eq!(page(&b, &app, "/").await.0, 403, "the face check is too old now");

    // Only local account and plugin paths: anything else is ignored and
    // the check ends on /account as before (no open redirect).
    for evil in [
        "https://evil.example/plugins/x",
        "//evil.example/plugins/x",
        "/\\evil.example",
        "/plugins/x/../../authorize",
        "/plugins/x%2F%2Fevil.example",
        "/administrator",
        "/authorize",
    ] {
        let q: String = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let path = format!("/scan/face?next={q}");
        let html = b.http.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        assert_eq!(hidden(&html, "next"), None, "{evil}: {html}");
        assert!(!html.contains("evil.example"), "{evil}");
        let to = crate::scan::face_via_app_at(&app, &b, "facer_hc", &path, None).await;
        assert_eq!(to, app.url("/account"), "{evil}");
    }
    // Posted with the form directly, a forged return path is ignored too.
    for forged in ["//evil.example/", "https://evil.example/", "/plugins/../admin"] {
        let to = crate::scan::face_via_app_at(&app, &b, "facer_hc", "/scan/face", Some(forged)).await;
        assert_eq!(to, app.url("/account"), "{forged}");
    }
    // A valid one given straight to the face check works the same way.
    let to = crate::scan::face_via_app_at(&app, &b, "facer_hc", "/scan/face?next=%2Faccount%2Fkin", None).await;
    assert_eq!(to, app.url("/account/kin"));
}
both!(health_code_face_check_when_configured, super::face_check_configured);

/// E3: the enterprise code of a legal person the user represents, read
/// through the host's relations; nobody else can open it.
async fn enterprise_code(backend: Backend) {
    use idp::domain::delegation::enterprises::{self, NewEnterprise};
    use idp::domain::delegation::uscc::Uscc;
    use idp::domain::identity::users::{IdNumber, PhoneNumber};
    const USCC: &str = "91440300708461136T";
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    citizen(&app, "wang_wu_1", "王五", &id_born("19900101", 3)).await;
    let new = NewEnterprise {
        uscc: Uscc::parse(USCC).unwrap(),
        name: "示例科技有限公司".into(),
        region: "540102".into(),
        representative_name: "张三".into(),
        representative_id_number: IdNumber::parse(ZHANG_ID).unwrap().into(),
        representative_phone: PhoneNumber::parse("13900000009").unwrap(),
        password: "corp1234".into(),
    };
    enterprises::create(&app.state.store, &app.state.passwords, new, "test", app.state.clock.now()).await.unwrap();
    let b = signed_in(&app, "zhang_san").await;
    let (_, html) = page(&b, &app, "/").await;
    assert!(html.contains(&format!("?enterprise={USCC}")) && html.contains("示例科技有限公司"), "{html}");
    let (status, html) = page(&b, &app, &format!("/?enterprise={USCC}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-type=\"enterprise\""), "{html}");
    let (_, st) = app_with(&app, "health_code.scan").await;
    let ok = scanned(&app, &st, &payload_in(&html)).await;
    assert_eq!((ok["code_type"].as_str(), ok["name"].as_str()), (Some("enterprise"), Some("示例科技有限公司")), "{ok}");
    let other = signed_in(&app, "wang_wu_1").await;
    assert_eq!(page(&other, &app, &format!("/?enterprise={USCC}")).await.0, 404);
    let codes = admin_get(&app, "/admin/codes.json?type=enterprise").await;
    assert!(codes["codes"][0]["number"].as_str().unwrap().starts_with("QY"), "{codes}");
}
both!(health_code_enterprise_code, super::enterprise_code);
