//! The appointments plugin (码上预约, G3) over HTTP: the administrator
//! defines a service and its slots; citizens book with their identity,
//! see, cancel and show their booking code; the service's scanner app
//! checks it in once; relying apps read bookings with the consented
//! scope; and two bookings racing for the last place have one winner.
use crate::both;
use crate::plugin_kit::*;
use crate::support::*;
use idp::domain::identity::users::NewUser;
use serde_json::{Value, json};

const BASE: &str = "/plugins/appointments";

async fn citizen(app: &TestApp, username: &str, name: &str, id_number: &str) {
    let user = NewUser {
        username: username.into(),
        password: PASSWORD.into(),
        name: Some(name.into()),
        id_number: Some(id_number.into()),
        ..Default::default()
    };
    app.state.users.create(user).await.unwrap();
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    api().post(app.url(&format!("{BASE}{path}"))).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap()
}

/// A slot `hours` from now, half an hour long, with `capacity` places; its id.
async fn slot(app: &TestApp, hours: i64, capacity: i64) -> String {
    let start = app.state.clock.now() + hours * 3600;
    let r = admin_post(
        app,
        "/admin/slots",
        json!({ "service": "passport", "start": start, "end": start + 1800, "capacity": capacity }),
    )
    .await;
    assert_eq!(r.status(), 200);
    json(r).await["slot"]["id"].as_str().unwrap().to_string()
}

async fn page(b: &Browser, app: &TestApp, path: &str) -> (u16, String) {
    let r = b.http.get(app.url(&format!("{BASE}{path}"))).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// POSTs a form with the CSRF token; status and Location (or the page).
async fn post(b: &Browser, app: &TestApp, csrf: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", csrf));
    let r = b.http.post(app.url(&format!("{BASE}{path}"))).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    match location(&r) {
        Some(to) => (status, to),
        None => (status, r.text().await.unwrap()),
    }
}

async fn csrf_of(b: &Browser, app: &TestApp) -> String {
    let (status, html) = page(b, app, "/service?id=passport").await;
    assert_eq!(status, 200, "{html}");
    hidden(&html, "csrf").unwrap()
}

async fn book(b: &Browser, app: &TestApp, csrf: &str, slot: &str) -> (u16, String) {
    post(b, app, csrf, "/book", &[("service", "passport"), ("slot", slot), ("for", "self")]).await
}

fn code_of(location: &str) -> String {
    location.split("code=").nth(1).unwrap().to_string()
}

fn between<'a>(html: &'a str, start: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("{start} not in {html}")) + start.len();
    html[i..].split('<').next().unwrap()
}

fn error_key(html: &str) -> &str {
    between(html, "data-error=\"").split('"').next().unwrap()
}

async fn check_in(app: &TestApp, token: &str, body: Value) -> Value {
    let r = api().post(app.url(&format!("{BASE}/api/check-in"))).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn setup(backend: Backend) -> TestApp {
    let app = spawn_plugins(backend, &[APPOINT], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", "11010519491231002X").await;
    citizen(&app, "lisi_99", "李四", "110105199001011232").await;
    // Admin only; both names required.
    let service = json!({ "id": "passport", "name": { "zh-CN": "出入境证件办理", "en": "Passport office" }, "place": "政务服务中心 3 号窗口" });
    let r = api().post(app.url(&format!("{BASE}/admin/services"))).json(&service).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = admin_post(&app, "/admin/services", json!({ "id": "bad", "name": { "zh-CN": "x", "en": "" } })).await;
    assert_eq!(r.status(), 400);
    assert_eq!(admin_post(&app, "/admin/services", service).await.status(), 200);
    let r = admin_post(&app, "/admin/slots", json!({ "service": "nope", "start": 1, "end": 2, "capacity": 1 })).await;
    assert_eq!(r.status(), 404);
    app
}

async fn book_show_scan_cancel(backend: Backend) {
    let app = setup(backend).await;
    let first = slot(&app, 24, 2).await;
    let second = slot(&app, 48, 1).await;
    let rp = app.confidential().await;
    let scanner = app.confidential().await;
    let stranger = app.confidential().await;
    permit(&app, &rp, "appointments").await;
    permit(&app, &scanner, "appointments.scan").await;
    let (_, zs) = tokens_for(&app, &rp, "zhang_san", "openid").await;
    let (_, ls) = tokens_for(&app, &rp, "lisi_99", "openid").await;

    // The home page lists the service; the service page its open slots.
    let (status, html) = page(&zs, &app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-service=\"passport\"") && html.contains("出入境证件办理"), "{html}");
    let (_, html) = page(&zs, &app, "/service?id=passport").await;
    assert!(html.contains(&format!("data-slot=\"{first}\" data-left=\"2\"")), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();

    // Book: no CSRF, no booking; then with it, the booking page.
    let r = zs.http.post(app.url(&format!("{BASE}/book"))).form(&[("service", "passport"), ("slot", first.as_str())]);
    assert_eq!(r.send().await.unwrap().status(), 403);
    let (status, to) = book(&zs, &app, &csrf, &first).await;
    assert_eq!(status, 303, "{to}");
    let code = code_of(&to);
    let (_, html) = page(&zs, &app, &format!("/booking?code={code}")).await;
    assert_eq!(between(&html, "<code class=\"booking-code\">"), code);
    assert!(html.contains("<svg") && html.contains("张*") && html.contains("data-status=\"booked\""), "{html}");
    let ticket = between(&html, "<code class=\"ticket\">").to_string();
    // Once per person and slot; another person's booking is not shown to her.
    let (status, html) = book(&zs, &app, &csrf, &first).await;
    assert_eq!((status, error_key(&html)), (409, "already_booked"));
    assert_eq!(page(&ls, &app, &format!("/booking?code={code}")).await.0, 404);
    let (_, html) = page(&zs, &app, "/service?id=passport").await;
    assert!(html.contains(&format!("data-slot=\"{first}\" data-left=\"1\"")), "{html}");
    // A relation that is not hers is refused.
    let (status, html) =
        post(&zs, &app, &csrf, "/book", &[("service", "passport"), ("slot", &second), ("for", "rel-x")]).await;
    assert_eq!((status, error_key(&html)), (403, "unknown_relative"));

    // English.
    let r = zs.http.get(app.url(&format!("{BASE}/booking?code={code}"))).header("accept-language", "en");
    let html = r.send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("Passport office") && html.contains("Booking code") && html.contains("Cancel the appointment"),
        "{html}"
    );

    // A relying app reads bookings with the consented scope only.
    let (tok, _) = tokens_for(&app, &rp, "zhang_san", "openid appointments").await;
    let id = jwt_claims(tok["id_token"].as_str().unwrap());
    assert_eq!(id["appointments"][0]["code"], code.as_str(), "{id}");
    let at = tok["access_token"].as_str().unwrap().to_string();
    let r = api().get(app.url(&format!("{BASE}/api/bookings"))).bearer_auth(&at).send().await.unwrap();
    let list = json(r).await;
    assert_eq!(list["appointments"][0]["status"], "booked", "{list}");
    let (tok, _) = tokens_for(&app, &stranger, "zhang_san", "openid appointments").await;
    let r = api().get(app.url(&format!("{BASE}/api/bookings")));
    let r = r.bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 403, "a client without permission cannot read bookings");

    // The scanner app checks the ticket in, once; a user's token cannot.
    let r = api().post(app.url(&format!("{BASE}/api/check-in"))).bearer_auth(&at).json(&json!({ "ticket": ticket }));
    assert_eq!(r.send().await.unwrap().status(), 403);
    let st = json(client_token(&app, &scanner, "appointments.scan").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = check_in(&app, &st, json!({ "ticket": ticket })).await;
    assert_eq!((ok["valid"].clone(), ok["booking"]["code"].clone()), (json!(true), json!(code)), "{ok}");
    assert_eq!(check_in(&app, &st, json!({ "ticket": ticket })).await["reason"], "used");
    assert_eq!(check_in(&app, &st, json!({ "ticket": "not.a.jwt" })).await["reason"], "invalid");
    let (_, html) = page(&zs, &app, &format!("/booking?code={code}")).await;
    assert!(html.contains("data-status=\"checked_in\"") && !html.contains("<svg"), "{html}");
    let (status, html) = post(&zs, &app, &csrf, "/cancel", &[("code", &code)]).await;
    assert_eq!((status, error_key(&html)), (409, "not_cancellable"));

    // Cancel gives the place back: 李四 then takes the one place of the second slot.
    let (status, to) = book(&zs, &app, &csrf, &second).await;
    assert_eq!(status, 303);
    let code2 = code_of(&to);
    let (_, html2) = page(&zs, &app, &format!("/booking?code={code2}")).await;
    let ticket2 = between(&html2, "<code class=\"ticket\">").to_string();
    let ls_csrf = csrf_of(&ls, &app).await;
    let (status, html) = book(&ls, &app, &ls_csrf, &second).await;
    assert_eq!((status, error_key(&html)), (409, "slot_full"));
    assert_eq!(post(&ls, &app, &ls_csrf, "/cancel", &[("code", &code2)]).await.0, 404, "not hers to cancel");
    let (status, to) = post(&zs, &app, &csrf, "/cancel", &[("code", &code2)]).await;
    assert_eq!((status, to), (303, app.url(&format!("{BASE}/"))));
    let (_, html) = page(&zs, &app, "/").await;
    assert!(html.contains(&format!("data-code=\"{code2}\" data-status=\"cancelled\"")), "{html}");
    assert_eq!(check_in(&app, &st, json!({ "ticket": ticket2 })).await["reason"], "cancelled");
    assert_eq!(book(&ls, &app, &ls_csrf, &second).await.0, 303);

    // Started slots can be neither booked nor cancelled.
    let soon = slot(&app, 1, 5).await;
    let (status, to) = book(&zs, &app, &csrf, &soon).await;
    assert_eq!(status, 303);
    let code3 = code_of(&to);
    app.state.clock.advance(3600 + 60);
    let (status, html) = book(&ls, &app, &ls_csrf, &soon).await;
    assert_eq!((status, error_key(&html)), (409, "slot_past"));
    let (status, html) = post(&zs, &app, &csrf, "/cancel", &[("code", &code3)]).await;
    assert_eq!((status, error_key(&html)), (409, "slot_past"));
    let (_, html) = page(&zs, &app, "/service?id=passport").await;
    assert!(
        !html.contains(&format!("data-slot=\"{soon}\"")) && html.contains(&format!("data-slot=\"{first}\"")),
        "{html}"
    );

    let r = api().get(app.url(&format!("{BASE}/admin/services"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let listed = json(r).await;
    assert_eq!(listed["services"][0]["slots"][2]["taken"], 1, "{listed}");
}
both!(appointments_book_show_scan_cancel, super::book_show_scan_cancel);

/// Two citizens racing for the last place of a slot: exactly one wins,
/// every round, and the counter never passes the capacity.
async fn last_place_race(backend: Backend) {
    let app = setup(backend).await;
    let rp = app.confidential().await;
    let (_, zs) = tokens_for(&app, &rp, "zhang_san", "openid").await;
    let (_, ls) = tokens_for(&app, &rp, "lisi_99", "openid").await;
    for round in 0..4 {
        let id = slot(&app, 24 + round, 1).await;
        let (zc, lc) = (csrf_of(&zs, &app).await, csrf_of(&ls, &app).await);
        let (a, b) = tokio::join!(book(&zs, &app, &zc, &id), book(&ls, &app, &lc, &id));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [303, 409], "round {round}: {a:?} {b:?}");
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(error_key(loser), "slot_full");
    }
    let r = api().get(app.url(&format!("{BASE}/admin/services"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let listed = json(r).await;
    for s in listed["services"][0]["slots"].as_array().unwrap() {
        assert_eq!(s["taken"], 1, "{listed}");
    }
}
both!(appointments_last_place_race, super::last_place_race);
