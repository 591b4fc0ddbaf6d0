//! Scan-to-login (D1) and the app-mediated face check (D2), over HTTP with
//! two clients: the browser (cookies, pages, SSE) and the citizen app
//! (bearer token with the administrator-granted `scan_login` scope).
use crate::both;
use crate::support::*;
use std::time::Duration;

/// A citizen app: a public client permitted `scan_login`, signed in as `user`.
pub struct CitizenApp {
    pub token: String,
}

async fn app_client(app: &TestApp, permitted: bool) -> TestClient {
    let client = app
        .client(|c| {
            c.public = true;
            c.auth_method = Some(idp::domain::clients::AuthMethod::None);
            c.skip_consent = true;
        })
        .await;
    if permitted {
        idp::domain::plugins::plugin_access::allow(&app.state.store, &client.id, "scan_login", app.state.clock.now())
            .await
            .unwrap();
    }
    client
}

async fn sign_in_app(app: &TestApp, client: &TestClient, user: &str, scope: &str) -> CitizenApp {
    let p = pkce();
    let url =
        auth_url(app, client, &[("scope", scope), ("code_challenge", &p.challenge), ("code_challenge_method", "S256")]);
    let code = Browser::new().run(app, &url, user, PASSWORD).await.code();
    let tokens = json(redeem(app, client, &code, Some(&p.verifier)).await).await;
    CitizenApp { token: tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}")).to_string() }
}

pub async fn citizen(app: &TestApp, user: &str) -> CitizenApp {
    let client = app_client(app, true).await;
    sign_in_app(app, &client, user, "openid profile offline_access scan_login").await
}

impl CitizenApp {
    pub async fn read(&self, app: &TestApp, ticket: &str) -> reqwest::Response {
        api().get(app.url(&format!("/api/scan/tickets/{ticket}"))).bearer_auth(&self.token).send().await.unwrap()
    }
    pub async fn decide(&self, app: &TestApp, ticket: &str, what: &str, body: serde_json::Value) -> reqwest::Response {
        api()
            .post(app.url(&format!("/api/scan/tickets/{ticket}/{what}")))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
    async fn confirm(&self, app: &TestApp, ticket: &str) -> reqwest::Response {
        self.decide(app, ticket, "confirm", serde_json::json!({})).await
    }
}

pub fn attr(html: &str, name: &str) -> String {
    let needle = format!("{name}=\"");
    let start = html.find(&needle).unwrap_or_else(|| panic!("no {name} in page")) + needle.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

/// The browser side: a pending authorization request at `rp`, on the scan tab.
pub struct Waiting {
    pub browser: Browser,
    pub req: String,
    pub ticket: String,
    pub csrf: String,
}

async fn open_scan_tab(app: &TestApp, rp: &TestClient) -> Waiting {
    open_scan_tab_in(app, rp, Browser::new()).await
}

/// The scan tab opened in `browser`.
pub async fn open_scan_tab_in(app: &TestApp, rp: &TestClient, browser: Browser) -> Waiting {
    let res = browser.http.get(auth_url(app, rp, &[])).send().await.unwrap();
    let login = location(&res).unwrap();
    let req = query_of(&login)["req"].clone();
    let page = browser.http.get(app.url(&format!("/login/scan?req={req}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg"), "the QR code is inline SVG");
    let ticket = attr(&html, "data-ticket");
    assert!(ticket.len() >= 32, "ticket ids carry at least 128 random bits");
    assert!(
        html.replace("&#x2F;", "/").contains(&app.url(&format!("/scan/t/{ticket}"))),
        "the QR URL is on the page as text"
    );
    Waiting { browser, req, ticket, csrf: hidden(&html, "csrf").unwrap() }
}

impl Waiting {
    async fn status(&self, app: &TestApp) -> String {
        let res = self.browser.http.get(app.url(&format!("/scan/status?t={}", self.ticket))).send().await.unwrap();
        json(res).await["status"].as_str().unwrap().to_string()
    }
    async fn complete(&self, app: &TestApp) -> reqwest::Response {
        self.browser
            .http
            .post(app.url("/scan/complete"))
            .form(&[("t", self.ticket.as_str()), ("csrf", self.csrf.as_str())])
            .send()
            .await
            .unwrap()
    }
    /// Opens the SSE stream; returns a reader of `status` values.
    async fn events(&self, app: &TestApp) -> Events {
        let res = self.browser.http.get(app.url(&format!("/scan/events?t={}", self.ticket))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        Events { res, buf: String::new() }
    }
}

pub struct Events {
    res: reqwest::Response,
    buf: String,
}

impl Events {
    /// The SSE stream of `ticket`, as the waiting page of `browser` opens it.
    pub async fn open(app: &TestApp, browser: &Browser, ticket: &str) -> Events {
        let res = browser.http.get(app.url(&format!("/scan/events?t={ticket}"))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        Events { res, buf: String::new() }
    }
    pub async fn next(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let v: serde_json::Value = serde_json::from_str(data).unwrap();
                    return v["status"].as_str().unwrap().to_string();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.res.chunk()).await.expect("event in time");
            let chunk = chunk.unwrap().expect("stream still open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn happy_path(b: Backend) {
    let app = spawn(b).await;
    let sub = app.user("scanner1").await;
    let rp = app.confidential().await;
    let phone = citizen(&app, "scanner1").await;
    let pc = open_scan_tab(&app, &rp).await;
    let mut events = pc.events(&app).await;
    assert_eq!(events.next().await, "pending");

    let read = phone.read(&app, &pc.ticket).await;
    assert_eq!(read.status(), 200);
    let t = json(read).await;
    assert_eq!(t["purpose"], "login");
    assert_eq!(t["client"]["name"], "Test RP", "the app shows which site is asking");
    assert_eq!(t["browser"]["ip"], "127.0.0.1");
    assert_eq!(t["browser"]["location"], "本地网络", "in the app's language, Chinese by default");
    assert_eq!(t["browser"]["location_kind"], "local");
    assert_eq!(events.next().await, "scanned");
    assert_eq!(pc.status(&app).await, "scanned");

    assert_eq!(phone.confirm(&app, &pc.ticket).await.status(), 200);
    assert_eq!(events.next().await, "confirmed");

    let done = pc.complete(&app).await;
    assert_eq!(done.status(), 303);
    let next = location(&done).unwrap();
    assert!(next.contains(&format!("/authorize/resume?req={}", pc.req)), "{next}");
    let end = pc.browser.run(&app, &next, "nobody", "unused").await;
    let tokens = json(redeem(&app, &rp, &end.code(), None).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = app.state.tokens.verify_own(id_token, "JWT", false).expect("a valid, signed ID token");
    assert_eq!(claims["sub"], sub.as_str(), "the browser is signed in as the app's user");
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["mca", "swk"]));
    let info = api().get(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await;
    assert_eq!(json(info.unwrap()).await["sub"], sub.as_str());

    // Replay: the ticket finished once; neither the browser nor the app can reuse it.
    let again = pc.complete(&app).await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("已使用"));
    let res = phone.confirm(&app, &pc.ticket).await;
    assert_eq!(res.status(), 409);
    assert_eq!(json(res).await["error"], "ticket_unavailable");
}
both!(scan_confirm_signs_the_browser_in_once, super::happy_path);

async fn deny_and_expiry(b: Backend) {
    let app = spawn(b).await;
    app.user("scanner2").await;
    let rp = app.confidential().await;
    let phone = citizen(&app, "scanner2").await;

    let pc = open_scan_tab(&app, &rp).await;
    assert_eq!(phone.read(&app, &pc.ticket).await.status(), 200);
    let res = phone.decide(&app, &pc.ticket, "deny", serde_json::json!({})).await;
    assert_eq!(json(res).await["status"], "denied");
    assert_eq!(pc.status(&app).await, "denied");
    let res = pc.complete(&app).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("已在手机上取消"));
    assert_eq!(phone.confirm(&app, &pc.ticket).await.status(), 409, "a denied ticket cannot be confirmed");

    // Expiry: two minutes unscanned, then nothing works.
    let pc = open_scan_tab(&app, &rp).await;
    let mut events = pc.events(&app).await;
    assert_eq!(events.next().await, "pending");
    app.state.clock.advance(121);
    app.state.scan_waiters.wake(&pc.ticket);
    assert_eq!(events.next().await, "expired");
    let res = phone.read(&app, &pc.ticket).await;
    assert_eq!(res.status(), 410);
    assert_eq!(json(res).await["error"], "expired_ticket");
    assert_eq!(pc.status(&app).await, "expired");
    assert_eq!(pc.complete(&app).await.status(), 400);

    // A ticket scanned but not decided in time expires too.
    let pc = open_scan_tab(&app, &rp).await;
    assert_eq!(phone.read(&app, &pc.ticket).await.status(), 200);
    app.state.clock.advance(121);
    assert_eq!(phone.confirm(&app, &pc.ticket).await.status(), 410);
    assert_eq!(phone.read(&app, &"A".repeat(32)).await.status(), 404);
}
both!(scan_deny_and_expiry, super::deny_and_expiry);

async fn second_device_and_other_browser(b: Backend) {
    let app = spawn(b).await;
    let sub = app.user("scanner3").await;
    app.user("intruder3").await;
    let rp = app.confidential().await;
    let phone = citizen(&app, "scanner3").await;
    let same_user_other_phone = citizen(&app, "scanner3").await;
    let attacker = citizen(&app, "intruder3").await;
    let pc = open_scan_tab(&app, &rp).await;

    assert_eq!(phone.read(&app, &pc.ticket).await.status(), 200);
    assert_eq!(phone.read(&app, &pc.ticket).await.status(), 200, "the same device may show it again");
    for other in [&same_user_other_phone, &attacker] {
        let res = other.read(&app, &pc.ticket).await;
        assert_eq!(res.status(), 409);
        assert_eq!(json(res).await["error"], "ticket_unavailable");
        assert_eq!(other.confirm(&app, &pc.ticket).await.status(), 409, "only the scanning device decides");
    }
    assert_eq!(phone.confirm(&app, &pc.ticket).await.status(), 200);

    // Another browser (say, a phishing page's) cannot finish or even watch it.
    let thief = Browser::new();
    let page = thief.http.get(app.url("/login/scan")).send().await.unwrap().text().await.unwrap();
    let thief_csrf = hidden(&page, "csrf").unwrap();
    let res = thief
        .http
        .post(app.url("/scan/complete"))
        .form(&[("t", pc.ticket.as_str()), ("csrf", thief_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(thief.http.get(app.url("/scan/events?t=") + &pc.ticket).send().await.unwrap().status() == 404);
    let status = thief.http.get(app.url(&format!("/scan/status?t={}", pc.ticket))).send().await.unwrap();
    assert_eq!(status.status(), 404);

    // The right browser still finishes it.
    let done = pc.complete(&app).await;
    assert_eq!(done.status(), 303);
    let end = pc.browser.run(&app, &location(&done).unwrap(), "nobody", "unused").await;
    let tokens = json(redeem(&app, &rp, &end.code(), None).await).await;
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"], sub.as_str());
}
both!(scan_second_device_and_other_browser_refused, super::second_device_and_other_browser);

async fn scope_is_required(b: Backend) {
    let app = spawn(b).await;
    app.user("scanner4").await;
    let rp = app.confidential().await;
    let pc = open_scan_tab(&app, &rp).await;

    // A client the administrator never permitted: the scope is dropped.
    let unpermitted = app_client(&app, false).await;
    let phone = sign_in_app(&app, &unpermitted, "scanner4", "openid scan_login").await;
    let res = phone.read(&app, &pc.ticket).await;
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    assert_eq!(json(res).await["error"], "insufficient_scope");

    // Permitted, but the token was not asked for it.
    let permitted = app_client(&app, true).await;
    let phone = sign_in_app(&app, &permitted, "scanner4", "openid profile").await;
    assert_eq!(phone.read(&app, &pc.ticket).await.status(), 403);

    // Permission revoked after the token was issued: refused at once.
    let phone = sign_in_app(&app, &permitted, "scanner4", "openid scan_login").await;
    idp::domain::plugins::plugin_access::deny(&app.state.store, &permitted.id, "scan_login", app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(phone.read(&app, &pc.ticket).await.status(), 403);

    // No token, a bad token.
    let res = api().get(app.url(&format!("/api/scan/tickets/{}", pc.ticket))).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = api().get(app.url(&format!("/api/scan/tickets/{}", pc.ticket))).bearer_auth("x.y.z").send().await;
    assert_eq!(res.unwrap().status(), 401);
    assert_eq!(pc.status(&app).await, "pending", "none of that touched the ticket");
}
both!(scan_needs_the_admin_granted_scope, super::scope_is_required);

async fn confirm_deny_race(b: Backend) {
    let app = spawn(b).await;
    app.user("scanner5").await;
    let rp = app.confidential().await;
    let phone = citizen(&app, "scanner5").await;
    for _ in 0..3 {
        let pc = open_scan_tab(&app, &rp).await;
        assert_eq!(phone.read(&app, &pc.ticket).await.status(), 200);
        let mut calls = Vec::new();
        for i in 0..10 {
            let what = if i % 2 == 0 { "confirm" } else { "deny" };
            calls.push(phone.decide(&app, &pc.ticket, what, serde_json::json!({})));
        }
        let results = futures_util::future::join_all(calls).await;
        let winners: Vec<_> = results.iter().filter(|r| r.status() == 200).collect();
        assert_eq!(winners.len(), 1, "exactly one decision wins");
        assert!(results.iter().all(|r| r.status() == 200 || r.status() == 409));
        let final_status = pc.status(&app).await;
        assert!(final_status == "confirmed" || final_status == "denied");
    }
}
both!(scan_concurrent_confirm_and_deny_have_one_outcome, super::confirm_deny_race);

/// A decision taken through another node (here: straight in the database,
/// so this node's API never wakes the waiter) still reaches the browser.
async fn decision_from_another_node(b: Backend) {
    let app = spawn(b).await;
    let sub = app.user("scanner6").await;
    let rp = app.confidential().await;
    let pc = open_scan_tab(&app, &rp).await;
    let mut events = pc.events(&app).await;
    assert_eq!(events.next().await, "pending");
    let other_node = idp::domain::authn::scan::AppCaller {
        user_id: sub,
        client_id: "elsewhere".into(),
        grant_id: "grant-on-node-b".into(),
        acr: "urn:idp:loa:1".into(),
        amr: vec!["pwd".into()],
    };
    let now = app.state.clock.now();
    idp::domain::authn::scan::scan(&app.state.store, &pc.ticket, &other_node, now).await.unwrap();
    assert_eq!(events.next().await, "scanned");
    let decision = idp::domain::authn::scan::Decision::Confirm { face_passed: None };
    let now = app.state.clock.now();
    idp::domain::authn::scan::decide(&app.state.store, &pc.ticket, &other_node, decision, now).await.unwrap();
    assert_eq!(events.next().await, "confirmed");
}
both!(scan_waiter_sees_other_nodes, super::decision_from_another_node);

/// Binds a sandbox identity that passes the authority and face checks.
pub async fn bind_sandbox_identity(app: &TestApp, user_id: &str) {
    use idp::domain::identity::documents::{Document, DocumentForm};
    let form = DocumentForm {
        doc_type: "resident_id".into(),
        name: "张三".into(),
        number: "110101199003074514".into(),
        valid_from: "2018-06-06".into(),
        valid_to: "2038-06-06".into(),
        long_term: None,
    };
    let today = idp::domain::delegation::today(app.state.clock.now());
    let doc = Document::parse(&form, today).unwrap();
    let now = app.state.clock.now();
    let r = idp::domain::identity::verify_document(&app.state.store, &app.state.verifier, user_id, &doc, now).await;
    assert!(matches!(r, Ok(idp::domain::identity::BindOutcome::Done { .. })), "{r:?}");
}

/// D2 from the test's side: the browser opens the face QR, the person's app
/// (signed in as `user`) runs the face check through the verifier and
/// confirms; the browser finishes the ticket. Returns where it went next.
pub async fn face_via_app(app: &TestApp, browser: &Browser, user: &str, req: &str) -> String {
    face_via_app_at(app, browser, user, &format!("/scan/face?req={req}"), None).await
}

/// [`face_via_app`] from the face-check page at `path` (a `next` return
/// path in its query is carried by the page's form, as a browser would;
/// `forged_next` posts that instead, as a hostile page could).
pub async fn face_via_app_at(
    app: &TestApp,
    browser: &Browser,
    user: &str,
    path: &str,
    forged_next: Option<&str>,
) -> String {
    let html = browser.http.get(app.url(path)).send().await.unwrap().text().await.unwrap();
    let ticket = attr(&html, "data-ticket");
    let csrf = hidden(&html, "csrf").unwrap();
    let next = forged_next.map(str::to_string).unwrap_or_else(|| hidden(&html, "next").unwrap_or_default());
    let phone = citizen(app, user).await;
    assert_eq!(phone.read(app, &ticket).await.status(), 200);
    let res = api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(&phone.token)
        .json(&serde_json::json!({ "face": "c2FuZGJveC1mYWNl" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = phone.decide(app, &ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200);
    let done =
        browser.http.post(app.url("/scan/complete")).form(&[("t", ticket.as_str()), ("csrf", &csrf), ("next", &next)]);
    location(&done.send().await.unwrap()).expect("finished: a redirect")
}

async fn face_check(b: Backend) {
    let app = spawn(b).await;
    let facer = app.user("facer01").await;
    bind_sandbox_identity(&app, &facer).await;
    app.user("someone_else").await;
    let rp = app.confidential().await;
    let (_, browser) = sign_in(&app, &rp, "facer01", &[]).await;
    let page = browser.http.get(app.url("/scan/face")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("人脸识别认证") && html.contains("<svg"));
    let ticket = attr(&html, "data-ticket");
    let csrf = hidden(&html, "csrf").unwrap();

    // Another person's app cannot take it.
    let other = citizen(&app, "someone_else").await;
    let res = other.read(&app, &ticket).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await["error"], "account_mismatch");

    let phone = citizen(&app, "facer01").await;
    let t = json(phone.read(&app, &ticket).await).await;
    assert_eq!(t["purpose"], "face");
    assert_eq!(t["face_required"], true);
    let res = phone.confirm(&app, &ticket).await;
    assert_eq!(res.status(), 400, "confirming a face check needs the verifier's result");
    // The app's word alone is not enough: the verifier must have passed it.
    let res = phone.decide(&app, &ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 409);
    assert_eq!(json(res).await["error"], "face_check_required");
    let res = api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(&phone.token)
        .json(&serde_json::json!({ "face": "c2FuZGJveC1mYWNl" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = phone.decide(&app, &ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200);

    let done = browser.http.post(app.url("/scan/complete")).form(&[("t", ticket.as_str()), ("csrf", &csrf)]).send();
    let done = done.await.unwrap();
    assert_eq!(done.status(), 303);
    assert!(location(&done).unwrap().ends_with("/account"));
    // The browser session now carries the face factor: a silent sign-in shows it.
    let end = browser.run(&app, &auth_url(&app, &rp, &[("prompt", "none")]), "nobody", "unused").await;
    let tokens = json(redeem(&app, &rp, &end.code(), None).await).await;
    let amr = jwt_claims(tokens["id_token"].as_str().unwrap())["amr"].clone();
    assert!(amr.as_array().unwrap().iter().any(|m| m == "face"), "{amr}");
}
both!(scan_face_check_adds_a_factor_to_the_browser_session, super::face_check);

async fn landing_and_no_script(b: Backend) {
    let app = spawn(b).await;
    let rp = app.confidential().await;
    // A phone camera opening the QR link gets "use the app", never the ticket.
    let res = api().get(app.url("/scan/t/whatever")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("请使用 App 扫码"));
    // Without JavaScript, "continue" before the phone confirmed returns to the same QR.
    let pc = open_scan_tab(&app, &rp).await;
    let res = pc.complete(&app).await;
    assert_eq!(res.status(), 303);
    let back = location(&res).unwrap();
    assert!(back.contains(&format!("t={}", pc.ticket)), "{back}");
    let html = pc.browser.http.get(back).send().await.unwrap().text().await.unwrap();
    assert_eq!(attr(&html, "data-ticket"), pc.ticket, "the same ticket is shown again");
    // The password tab still works beside it.
    let login = pc.browser.http.get(app.url(&format!("/login?req={}", pc.req))).send().await.unwrap();
    let html = login.text().await.unwrap();
    assert!(html.contains("name=\"password\"") && html.contains("扫码登录"));
}
both!(scan_landing_page_and_no_script_path, super::landing_and_no_script);
