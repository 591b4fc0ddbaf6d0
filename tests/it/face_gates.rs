//! Face gates opened through the app (D2 with C1–C3 and E2), over HTTP with
//! a browser side and an app side (an OIDC public client with `scan_login`,
//! and the reference `citizen-app` binary): the gate page's QR, the app's
//! view of what is asked, the verifier's face check, the confirm that opens
//! the gate only for the person it waits for, the page continuing by itself.
use crate::both;
use crate::delegation::{
    ENT_PASSWORD, USCC, enterprise, finish_enterprise_sign_in, sign_in_with_browser, start_enterprise_sign_in, tokens,
};
use crate::scan::{CitizenApp, Events, attr, citizen};
use crate::support::*;
use idp::domain::delegation;
use idp::domain::{delegation::enterprises, delegation::kin};

/// Sandbox identities whose real-name and face checks pass (the verifier's
/// built-in fixture): (name, ID number, valid from, valid to or long-term).
pub const ZHANG: (&str, &str, &str, &str) = ("张三", "110101199003074514", "2018-06-06", "2038-06-06");
pub const LI: (&str, &str, &str, &str) = ("李秀", "11010519491231002X", "2000-01-01", "");
pub const CHEN: (&str, &str, &str, &str) = ("陈一", "110101196606060097", "2013-01-01", "");
/// The sandbox's child (born 2023-05-01): passes the real-name check, never
/// asked for a face (B7).
pub const BABY: (&str, &str) = ("小宝", "110101202305010027");

/// An account that completed the real-name step with a sandbox identity
/// (name and ID number now on the account, as after the identity page).
pub async fn real_person(app: &TestApp, username: &str, who: (&str, &str, &str, &str)) -> String {
    use idp::domain::identity::documents::{Document, DocumentForm};
    let user = app.user(username).await;
    let form = DocumentForm {
        doc_type: "resident_id".into(),
        name: who.0.into(),
        number: who.1.into(),
        valid_from: who.2.into(),
        valid_to: who.3.into(),
        long_term: who.3.is_empty().then(|| "on".to_string()),
    };
    let now = app.state.clock.now();
    let doc = Document::parse(&form, delegation::today(now)).unwrap();
    let r = idp::domain::identity::verify_document(&app.state.store, &app.state.verifier, &user, &doc, now).await;
    assert!(matches!(r, Ok(idp::domain::identity::BindOutcome::Done { .. })), "{r:?}");
    user
}

/// A face gate's page in the browser: its scan ticket and CSRF token.
pub struct GatePage {
    pub ticket: String,
    pub csrf: String,
    pub html: String,
}

impl GatePage {
    /// The browser continues the gated step after the app's decision.
    pub async fn complete(&self, app: &TestApp, b: &Browser) -> reqwest::Response {
        let form = [("t", self.ticket.as_str()), ("csrf", self.csrf.as_str())];
        b.http.post(app.url("/scan/complete")).form(&form).send().await.unwrap()
    }
}

/// The representative's agent list (`/enterprise/agents`) as this browser
/// sees it, with the CSRF token its forms carry.
pub struct AgentsPage {
    pub html: String,
    csrf: String,
}

impl AgentsPage {
    pub async fn open(app: &TestApp, b: &Browser) -> AgentsPage {
        let html = b.http.get(app.url("/enterprise/agents")).send().await.unwrap().text().await.unwrap();
        let csrf = hidden(&html, "csrf").unwrap_or_else(|| panic!("no form on the agent list: {html}"));
        AgentsPage { html, csrf }
    }

    /// Posts one of the list's actions (approve, reject, revoke,
    /// require_password) for delegation `id`, with a reason when given.
    pub async fn act(
        &self,
        app: &TestApp,
        b: &Browser,
        action: &str,
        id: &str,
        reason: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("csrf", self.csrf.as_str()), ("id", id)];
        form.extend(reason.map(|r| ("reason", r)));
        let path = format!("/enterprise/agents/{}", action.replace('_', "-"));
        b.http.post(app.url(&path)).form(&form).send().await.unwrap()
    }
}

pub async fn gate_page(b: &Browser, gate_url: &str) -> GatePage {
    let res = b.http.get(gate_url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{gate_url}");
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg"), "the gate page shows the scan QR");
    GatePage { ticket: attr(&html, "data-ticket"), csrf: hidden(&html, "csrf").unwrap(), html }
}

pub async fn ticket_status(app: &TestApp, b: &Browser, ticket: &str) -> String {
    let res = b.http.get(app.url(&format!("/scan/status?t={ticket}"))).send().await.unwrap();
    json(res).await["status"].as_str().unwrap().to_string()
}

/// The app's face check through the verifier (`POST /api/identity/face`).
pub async fn app_face_check(app: &TestApp, phone: &CitizenApp) {
    let res = api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(&phone.token)
        .json(&serde_json::json!({ "face": "c2FuZGJveC1mYWNl" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// The browser waits at a face gate; the app of `phone_user` (signed in as
/// an OIDC public client with `scan_login`) reads the ticket, runs the face
/// check through the verifier and confirms; the browser's page sees it and
/// completes the ticket. Before that, the page cannot continue, and the app
/// of `stranger` (another real-name person) cannot take the ticket.
/// Returns the app's view of the ticket and the completion's response.
pub async fn pass_face(
    app: &TestApp,
    b: &Browser,
    gate_url: &str,
    phone_user: &str,
    stranger: &str,
) -> (serde_json::Value, reqwest::Response) {
    let url = if gate_url.starts_with('/') { app.url(gate_url) } else { gate_url.to_string() };
    let page = gate_page(b, &url).await;
    let gate = query_of(&url)["gate"].clone();
    let early =
        b.http.post(app.url("/face")).form(&[("gate", gate.as_str()), ("csrf", page.csrf.as_str())]).send().await;
    assert_eq!(early.unwrap().status(), 409, "no continuing before the app's face check");
    let res = citizen(app, stranger).await.read(app, &page.ticket).await;
    assert_eq!(res.status(), 403, "another person's app cannot take the gate's ticket");
    // The page follows the ticket without reloading (SSE, as scan.js does).
    let mut events = Events::open(app, b, &page.ticket).await;
    assert_eq!(events.next().await, "pending");
    let phone = citizen(app, phone_user).await;
    let view = json(phone.read(app, &page.ticket).await).await;
    assert_eq!(view["face_required"], true, "{view}");
    assert_eq!(events.next().await, "scanned");
    // The app's word alone opens no gate: the verifier must have passed
    // this person's face moments ago (a pass of the last minutes counts).
    let user = app.state.users.find_by_login(phone_user).await.unwrap().unwrap().id;
    let now = app.state.clock.now();
    if !idp::domain::identity::recent_face_pass(&app.state.store, &user, now).await.unwrap() {
        let res = phone.decide(app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
        assert_eq!(json(res).await["error"], "face_check_required");
    }
    app_face_check(app, &phone).await;
    let res = phone.decide(app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(events.next().await, "confirmed");
    assert_eq!(ticket_status(app, b, &page.ticket).await, "confirmed");
    // Browser-bound: another browser (with its own valid CSRF token) cannot
    // finish this browser's gate.
    let other = Browser::new();
    let html = other.http.get(app.url("/enterprise/change")).send().await.unwrap().text().await.unwrap();
    let other_csrf = hidden(&html, "csrf").unwrap();
    let res = other
        .http
        .post(app.url("/scan/complete"))
        .form(&[("t", page.ticket.as_str()), ("csrf", other_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "another browser cannot complete the ticket");
    assert_eq!(ticket_status(app, b, &page.ticket).await, "confirmed", "and it stays usable here");
    // A reload of the gate page now offers "continue" instead of a new code.
    let reload = b.http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(reload.contains("action=\"/face\"") && !reload.contains("data-ticket"), "{reload}");
    let done = page.complete(app, b).await;
    // Single use: the same ticket cannot finish the step twice.
    let again = page.complete(app, b).await;
    assert_eq!(again.status(), 400);
    (view, done)
}

/// The kin form's card fields for a relative's ID card issued a month ago
/// (or at birth, if later) with the legal term for the holder's age —
/// the first of 5, 10, 20 years or long-term the documents accept
/// (long-term for a number the documents refuse).
pub fn kin_card(app: &TestApp, id_number: &str) -> Vec<(&'static str, String)> {
    use idp::domain::identity::documents::{Document, DocumentForm};
    let today = delegation::today(app.state.clock.now());
    let birth = chrono::NaiveDate::parse_from_str(&id_number[6..14], "%Y%m%d").unwrap();
    let start = birth.max(today - chrono::Duration::days(30));
    let years =
        |y: i32| start.with_year(start.year() + y).unwrap_or(start + chrono::Duration::days(365 * i64::from(y)));
    use chrono::Datelike;
    let ends = [Some(years(5)), Some(years(10)), Some(years(20)), None];
    let end = ends
        .into_iter()
        .find(|end| {
            let form = DocumentForm {
                doc_type: "resident_id".into(),
                name: "某某".into(),
                number: id_number.into(),
                valid_from: start.to_string(),
                valid_to: end.map(|d| d.to_string()).unwrap_or_default(),
                long_term: end.is_none().then(|| "on".to_string()),
            };
            Document::parse(&form, today).is_ok()
        })
        .unwrap_or(None); // no term fits a wrong number: the form refuses the number first
    let mut fields = vec![("valid_from", start.to_string())];
    match end {
        Some(end) => fields.push(("valid_to", end.to_string())),
        None => fields.push(("long_term", "on".to_string())),
    }
    fields
}

/// [`kin_card`] as the domain's card term (for the tests that call
/// `kin::check` directly).
pub fn kin_card_term(app: &TestApp, id_number: &str) -> kin::CardTerm {
    let mut term = kin::CardTerm::default();
    for (k, v) in kin_card(app, id_number) {
        match k {
            "valid_from" => term.valid_from = v,
            "valid_to" => term.valid_to = v,
            _ => term.long_term = Some(v),
        }
    }
    term
}

/// The kin form's commitment page: the guardian accepts the
/// commitment shown after the verifier's check; the page's own hidden
/// fields are sent back with "I accept" ticked.
pub async fn accept_kin_commitment(app: &TestApp, b: &Browser, page: &str) -> reqwest::Response {
    assert!(page.contains("id=\"kin-commitment\""), "the commitment page: {page}");
    let field = |k: &str| hidden(page, k).unwrap_or_default();
    let mut form: Vec<(&str, String)> = ["csrf", "version", "name", "id_number", "relation", "valid_from", "valid_to"]
        .into_iter()
        .map(|k| (k, field(k)))
        .collect();
    if page.contains("type=\"hidden\" name=\"long_term\"") {
        form.push(("long_term", "on".into()));
    }
    form.push(("accept", "on".into()));
    form.push(("action", "commit".into()));
    b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap()
}

/// Sends the kin form (action `bind`) with a card of the legal term.
pub async fn post_kin_form(
    app: &TestApp,
    b: &Browser,
    name: &str,
    id_number: &str,
    relation: &str,
) -> reqwest::Response {
    let page = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let card = kin_card(app, id_number);
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("action", "bind"),
        ("name", name),
        ("id_number", id_number),
        ("relation", relation),
    ];
    form.extend(card.iter().map(|(k, v)| (*k, v.as_str())));
    b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap()
}

/// Opens a kin gate from the guardian's browser (a relative older than
/// six): the form, the verifier's check, the accepted commitment.
pub async fn open_kin_gate(app: &TestApp, b: &Browser, name: &str, id_number: &str, relation: &str) -> String {
    let res = post_kin_form(app, b, name, id_number, relation).await;
    assert_eq!(res.status(), 200, "verified: the commitment page follows");
    let page = res.text().await.unwrap();
    let res = accept_kin_commitment(app, b, &page).await;
    let gate = location(&res).expect("a relative older than six passes a face check first");
    assert!(gate.contains("/face?gate="), "{gate}");
    if gate.starts_with('/') { app.url(&gate) } else { gate }
}

/// The guardian's app checks the face of the relative standing in front of
/// the phone, for the kin gate behind `ticket` (`POST /api/identity/face`
/// with the ticket).
pub async fn relative_face(app: &TestApp, phone: &CitizenApp, ticket: &str, sample: &str) -> reqwest::Response {
    api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(&phone.token)
        .json(&serde_json::json!({ "face": sample, "ticket": ticket }))
        .send()
        .await
        .unwrap()
}

/// A live-capture sample ("sandbox-face") and one the sandbox fails for
/// liveness ("NOT-LIVE…"), base64.
const LIVE: &str = "c2FuZGJveC1mYWNl";
const NOT_LIVE: &str = "Tk9ULUxJVkUtc2FtcGxl";

/// The app side of a kin gate as a real client does it: the guardian's app
/// reads the gate page's ticket, checks the relative's face through the
/// verifier and confirms; the guardian's browser then completes the
/// ticket. Returns the app's view and the completion's response.
pub async fn pass_kin_face(
    app: &TestApp,
    b: &Browser,
    gate_url: &str,
    guardian: &str,
) -> (serde_json::Value, reqwest::Response) {
    let page = gate_page(b, gate_url).await;
    let phone = citizen(app, guardian).await;
    let view = json(phone.read(app, &page.ticket).await).await;
    assert_eq!(view["face_required"], true, "{view}");
    let res = relative_face(app, &phone, &page.ticket, LIVE).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = phone.decide(app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = page.complete(app, b).await;
    (view, done)
}

/// E2 over HTTP: binding a relative older than six waits for the
/// relative's face, checked through the guardian's app (the relative needs
/// no account: an elder or a child stands in front of the guardian's
/// phone). Only the gate owner's app reads the ticket; the confirm needs a
/// verifier pass of exactly this relative; the page then continues.
async fn kin_face_through_the_app(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let guardian = app.user("guardian_k").await;
    // The relative's own account (she has one here) is not the one asked.
    real_person(&app, "elder_li", LI).await;
    let b = Browser::new();
    sign_in_with_browser(&app, &b, &client, "guardian_k").await;
    let gate = open_kin_gate(&app, &b, LI.0, LI.1, "parent").await;
    assert!(kin::relatives_of(&app.state.store, &guardian, app.state.clock.now()).await.unwrap().is_empty());
    let page = gate_page(&b, &gate).await;
    // The page speaks of the kin binding, not of a sign-in.
    assert!(page.html.contains("亲属人脸识别已通过，正在绑定…"), "{}", page.html);
    assert!(!page.html.contains("已确认，正在登录"), "{}", page.html);
    let gate_id = query_of(&gate)["gate"].clone();
    let early =
        b.http.post(app.url("/face")).form(&[("gate", gate_id.as_str()), ("csrf", page.csrf.as_str())]).send().await;
    assert_eq!(early.unwrap().status(), 409, "no continuing before the app's face check");

    // Another app account — even the relative's own — can neither read the
    // ticket nor run the relative's face check for it.
    let relative_phone = citizen(&app, "elder_li").await;
    assert_eq!(relative_phone.read(&app, &page.ticket).await.status(), 403);
    let res = relative_face(&app, &relative_phone, &page.ticket, LIVE).await;
    assert_eq!(json(res).await["error"], "account_mismatch");

    let phone = citizen(&app, "guardian_k").await;
    let view = json(phone.read(&app, &page.ticket).await).await;
    assert_eq!(view["face_required"], true, "{view}");
    assert_eq!(view["detail"]["action"], "kin_bind");
    assert_eq!(view["detail"]["relation"], "parent");
    assert_eq!(view["detail"]["person"], "**************002X");
    let confirm = || phone.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true }));
    // The app's word alone opens nothing.
    assert_eq!(json(confirm().await).await["error"], "face_check_required");
    // A face pass for someone else: another relative's gate (陈一, 60).
    let other = open_kin_gate(&app, &b, CHEN.0, CHEN.1, "parent").await;
    let other = gate_page(&b, &other).await;
    assert_eq!(relative_face(&app, &phone, &other.ticket, LIVE).await.status(), 200);
    assert_eq!(json(confirm().await).await["error"], "face_check_required", "a pass for 陈一 opens no gate for 李秀");
    // A failed check (not a live capture) is recorded and opens nothing.
    let res = relative_face(&app, &phone, &page.ticket, NOT_LIVE).await;
    assert_eq!(res.status(), 422);
    assert_eq!(json(res).await["result"], "liveness_failed");
    assert_eq!(json(confirm().await).await["error"], "face_check_required");
    // The relative's face passes: the confirm opens the gate.
    assert_eq!(json(relative_face(&app, &phone, &page.ticket, LIVE).await).await["result"], "pass");
    let res = confirm().await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(ticket_status(&app, &b, &page.ticket).await, "confirmed");
    // The gate is open now: a further face check for it is refused.
    let res = relative_face(&app, &phone, &page.ticket, LIVE).await;
    assert_eq!(res.status(), 403);
    let done = page.complete(&app, &b).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("绑定成功"));
    let list = kin::relatives_of(&app.state.store, &guardian, app.state.clock.now()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id_number, LI.1);
    // Recorded like every verification, under the guardian, masked; the
    // relative's face pass never counts as the guardian's own.
    use idp::store::entities::verification;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rows = verification::Entity::find()
        .filter(verification::Column::UserId.eq(guardian.as_str()))
        .all(&app.state.store)
        .await
        .unwrap();
    let kin_rows: Vec<_> = rows.iter().filter(|r| r.kind == "kin_face").collect();
    assert_eq!(kin_rows.len(), 3, "{rows:?}");
    assert!(kin_rows.iter().all(|r| !r.subject.contains(LI.1) && !r.subject.contains(CHEN.1)), "{rows:?}");
    assert!(
        !idp::domain::identity::recent_face_pass(&app.state.store, &guardian, app.state.clock.now()).await.unwrap()
    );
}
both!(kin_binding_face_check_through_the_app, super::kin_face_through_the_app);

/// E2 with the relative's card: the kin form asks for its validity under
/// the identity page's rules. An expired card is refused with the
/// documents' message — no face gate opens, nothing is bound — for an
/// elder (who would need a face check) and for a child of six (who needs
/// none: the card rules stay the same). A valid card then binds.
async fn kin_expired_card_refused(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let guardian = app.user("guardian_e").await;
    let b = Browser::new();
    sign_in_with_browser(&app, &b, &client, "guardian_e").await;
    let today = delegation::today(app.state.clock.now());
    // A six-year-old whose card was issued at birth (5 years): expired.
    use chrono::Datelike;
    let birth = today.with_year(today.year() - 6).unwrap() - chrono::Duration::days(10);
    let child = crate::delegation::id_born(&birth.format("%Y%m%d").to_string(), 7);
    let child_end = birth.with_year(birth.year() + 5).unwrap().to_string();
    let post = |name: &'static str, id: String, from: String, to: String| {
        let b = &b;
        let app = &app;
        async move {
            let page = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
            let csrf = hidden(&page, "csrf").unwrap();
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("action", "bind"),
                ("name", name),
                ("id_number", id.as_str()),
                ("relation", "child"),
                ("valid_from", from.as_str()),
                ("valid_to", to.as_str()),
            ];
            if to.is_empty() {
                form.push(("long_term", "on"));
            }
            let res = b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap();
            (res.status().as_u16(), location(&res), res.text().await.unwrap())
        }
    };
    // 李秀 (76) with a card that ended in 2020.
    let (status, to, html) = post(LI.0, LI.1.into(), "2000-01-01".into(), "2020-01-01".into()).await;
    assert_eq!((status, to), (400, None), "refused on the form, no face gate: {html}");
    assert!(html.contains("证件已过期，请使用有效期内的证件。"), "{html}");
    let (status, to, html) = post("小明", child.clone(), birth.to_string(), child_end.clone()).await;
    assert_eq!((status, to), (400, None), "{html}");
    assert!(html.contains("证件已过期，请使用有效期内的证件。"), "{html}");
    // A long-term card is not a child's: the term rule holds at 0–6 too.
    let (status, _, html) = post("小明", child.clone(), birth.to_string(), String::new()).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("有效期与证件规定不符"), "{html}");
    assert!(kin::relatives_of(&app.state.store, &guardian, app.state.clock.now()).await.unwrap().is_empty());
    use idp::store::entities::face_gate as gate_e;
    use sea_orm::EntityTrait;
    assert!(gate_e::Entity::find().all(&app.state.store).await.unwrap().is_empty(), "no gate was opened");
    // A child with a valid card (issued last month, 5 years) binds with no
    // face check — after the verifier's name + ID check (the sandbox knows
    // 小宝, not the generated number) and the accepted commitment.
    let from = today - chrono::Duration::days(30);
    let to = from.with_year(from.year() + 5).unwrap().to_string();
    let (status, _, html) = post("小明", child.clone(), from.to_string(), to.clone()).await;
    assert_eq!(status, 400, "unknown to the authority: {html}");
    assert!(html.contains("亲属姓名与身份证号核验未通过"), "{html}");
    let (status, _, html) = post(BABY.0, BABY.1.into(), from.to_string(), to).await;
    assert_eq!(status, 200, "{html}");
    let done = accept_kin_commitment(&app, &b, &html).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("绑定成功"));
    let list = kin::relatives_of(&app.state.store, &guardian, app.state.clock.now()).await.unwrap();
    assert_eq!(list.iter().map(|r| r.id_number.as_str()).collect::<Vec<_>>(), [BABY.1]);
}
both!(kin_expired_card_refused_nothing_bound, super::kin_expired_card_refused);

/// Runs the reference app binary (`citizen-app`) against the test server.
async fn citizen_app_cli(app: &TestApp, client_id: &str, state: &std::path::Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_citizen-app"));
    cmd.arg("--issuer").arg(&app.base).arg(format!("--client-id={client_id}")).arg("--state").arg(state).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "citizen-app {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The reference app does the app side of C1 and C3: it signs in (public
/// client, PKCE, `scan_login`), scans the gate's QR URL, shows what the face
/// check is for (which agent, for which enterprise), runs the verifier's face
/// check with `--face PHOTO` and confirms; the browser continues.
async fn citizen_app_opens_gates(backend: Backend) {
    let app = spawn(backend).await;
    let rp = app.confidential().await;
    real_person(&app, "rep_cli", ZHANG).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let agent = app.user("agent_cli").await;
    let d = enterprises::add_agent(
        &app.state.store,
        &ent,
        &agent,
        idp::domain::audit::Actor::Enterprise(&ent),
        app.state.clock.now(),
    )
    .await
    .unwrap()
    .unwrap();
    let phone = app
        .client(|c| {
            c.public = true;
            c.auth_method = Some(idp::domain::clients::AuthMethod::None);
            c.skip_consent = true;
            c.redirect_uris = vec!["http://127.0.0.1/callback".into()];
        })
        .await;
    idp::domain::plugins::plugin_access::allow(&app.state.store, &phone.id, "scan_login", app.state.clock.now())
        .await
        .unwrap();
    let state = app.dir.join("citizen-app.json");
    let photo = app.dir.join("face.jpg");
    std::fs::write(&photo, b"sandbox face sample").unwrap();
    let photo = photo.display().to_string();
    let out =
        citizen_app_cli(&app, &phone.id, &state, &["login", "--username", "rep_cli", "--password", PASSWORD]).await;
    assert!(out.contains("signed in as rep_cli"), "{out}");

    // C1: the representative's first sign-in.
    let b = Browser::new();
    let form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let gate = start_enterprise_sign_in(&app, &b, &rp, &form).await.unwrap();
    let page = gate_page(&b, &gate).await;
    let qr = app.url(&format!("/scan/t/{}", page.ticket));
    assert!(page.html.replace("&#x2F;", "/").contains(&qr), "the QR URL is on the page");
    // Without a photo the app refuses to confirm a face gate.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_citizen-app"));
    cmd.arg("--issuer").arg(&app.base).arg(format!("--client-id={}", phone.id)).arg("--state").arg(&state);
    cmd.args(["scan", qr.as_str(), "--yes"]);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--face PHOTO"));
    let out = citizen_app_cli(&app, &phone.id, &state, &["scan", &qr, "--yes", "--face", &photo]).await;
    assert!(out.contains("first sign-in for 示例科技有限公司"), "{out}");
    assert!(out.contains("Face check: pass") && out.contains("confirmed"), "{out}");
    let done = page.complete(&app, &b).await;
    let code = finish_enterprise_sign_in(&app, &b, location(&done).unwrap()).await.unwrap();
    let id = jwt_claims(tokens(&app, &rp, &code).await["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], ent);

    // C3: approving the agent; the app names who is approved for whom.
    let res = AgentsPage::open(&app, &b).await.act(&app, &b, "approve", &d.id, None).await;
    let page = gate_page(&b, &location(&res).unwrap()).await;
    let qr = app.url(&format!("/scan/t/{}", page.ticket));
    let out = citizen_app_cli(&app, &phone.id, &state, &["scan", &qr, "--yes", "--face", &photo]).await;
    assert!(out.contains("approve agent 王* ") && out.contains("for 示例科技有限公司 (91440300708461136T)"), "{out}");
    let done = page.complete(&app, &b).await;
    assert!(location(&done).unwrap().contains("agents_approved"));
    assert_eq!(delegation::find(&app.state.store, &d.id).await.unwrap().unwrap().state, "active");
}
both!(citizen_app_binary_opens_face_gates, super::citizen_app_opens_gates);

/// Two sessions of the representative, over HTTP: one finishes an approval
/// the app confirmed while the other revokes the same agent at that moment.
/// Whatever the order, the agent ends revoked (revocation applies to pending
/// and active alike) and cannot sign in; the approving page says either
/// "approved" or "changed meanwhile", never an error. And a rejected
/// agent cannot sign in.
async fn approve_and_revoke_race(backend: Backend) {
    let app = spawn(backend).await;
    let rp = app.confidential().await;
    real_person(&app, "rep_race", ZHANG).await;
    app.user("nobody_r").await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let s1 = Browser::new();
    let gate = start_enterprise_sign_in(&app, &s1, &rp, &form).await.unwrap();
    let (_, done) = pass_face(&app, &s1, &gate, "rep_race", "nobody_r").await;
    finish_enterprise_sign_in(&app, &s1, location(&done).unwrap()).await.unwrap();
    let s2 = Browser::new();
    let next = start_enterprise_sign_in(&app, &s2, &rp, &form).await.unwrap();
    finish_enterprise_sign_in(&app, &s2, next).await.unwrap();
    // A rejected agent (with a reason) cannot sign in for the enterprise.
    let rejected = app.user("rejected_a").await;
    let d = enterprises::add_agent(
        &app.state.store,
        &ent,
        &rejected,
        idp::domain::audit::Actor::Enterprise(&ent),
        app.state.clock.now(),
    )
    .await
    .unwrap()
    .unwrap();
    let list = AgentsPage::open(&app, &s2).await;
    assert_eq!(list.act(&app, &s2, "reject", &d.id, Some(" ")).await.status(), 409);
    let res = list.act(&app, &s2, "reject", &d.id, Some("材料不全")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("材料不全"));
    let agent_form = [("uscc", USCC), ("role", "agent"), ("agent", "rejected_a"), ("password", PASSWORD)];
    let refused = start_enterprise_sign_in(&app, &Browser::new(), &rp, &agent_form).await.unwrap_err();
    assert!(refused.1.contains("统一社会信用代码或密码错误"), "one answer for every refusal: {refused:?}");

    let phone = citizen(&app, "rep_race").await;
    app_face_check(&app, &phone).await;
    for i in 0..4 {
        let agent = app.user(&format!("racer{i}")).await;
        let d = enterprises::add_agent(
            &app.state.store,
            &ent,
            &agent,
            idp::domain::audit::Actor::Enterprise(&ent),
            app.state.clock.now(),
        )
        .await
        .unwrap()
        .unwrap();
        let res = AgentsPage::open(&app, &s1).await.act(&app, &s1, "approve", &d.id, None).await;
        let page = gate_page(&s1, &location(&res).unwrap()).await;
        assert_eq!(phone.read(&app, &page.ticket).await.status(), 200);
        let res = phone.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
        assert_eq!(res.status(), 200);
        let list = AgentsPage::open(&app, &s2).await;
        let (finished, revoked) = tokio::join!(page.complete(&app, &s1), list.act(&app, &s2, "revoke", &d.id, None));
        let finished = location(&finished).unwrap_or_default();
        assert!(finished.contains("agents_approved") || finished.contains("agents_changed_meanwhile"), "{finished}");
        assert_eq!(revoked.status(), 200, "revocation applies to pending and active alike");
        assert_eq!(delegation::find(&app.state.store, &d.id).await.unwrap().unwrap().state, "revoked");
    }
}
both!(approve_and_revoke_at_once_end_revoked, super::approve_and_revoke_race);

/// `serve --demo` seeds an enterprise (credentials printed once): its
/// representative signs in for it through the demo relying party, the
/// citizen app (the demo's `citizen-app` client) opens the face gate, the
/// demo shows the enterprise as `sub` and the representative as `act`, and
/// the approved demo agent is listed.
async fn demo_enterprise(backend: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let config = config_for(&backend, port, &dir).await;
    let pre = idp::build_state(config.clone(), true).await.unwrap();
    idp::demo::seed(&pre).await.unwrap().expect("first seed creates the demo");
    let e = idp::demo::seed_enterprise(&pre).await.unwrap().expect("and the demo enterprise");
    assert!(idp::demo::seed_enterprise(&pre).await.unwrap().is_none(), "printed only once");
    let app = spawn_with(config, listener, dir).await;
    let state = app.dir.join("citizen-app.json");
    let login = ["login", "--username", &e.representative.0, "--password", &e.representative.1];
    citizen_app_cli(&app, idp::demo::DEMO_CITIZEN_APP_ID, &state, &login).await;

    let b = Browser::new();
    let res = b.http.get(app.url("/demo")).send().await.unwrap();
    let authorize = location(&res).unwrap();
    let login_page = location(&b.http.get(&authorize).send().await.unwrap()).unwrap();
    let req = query_of(&login_page)["req"].clone();
    let login_page = if login_page.starts_with('/') { app.url(&login_page) } else { login_page };
    let html = b.http.get(&login_page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("/login/enterprise?req={req}")), "the sign-in page links the legal-person tab");
    let page = b.http.get(app.url(&format!("/login/enterprise?req={req}"))).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", req.as_str()),
        ("csrf", &hidden(&page, "csrf").unwrap()),
        ("uscc", &e.uscc),
        ("role", "representative"),
        ("password", &e.password),
    ];
    let res = b.http.post(app.url("/login/enterprise")).form(&form).send().await.unwrap();
    let gate = gate_page(&b, &location(&res).expect("first sign-in: the face gate")).await;
    let qr = app.url(&format!("/scan/t/{}", gate.ticket));
    let photo = app.dir.join("face.jpg");
    std::fs::write(&photo, b"sandbox face sample").unwrap();
    let scan = ["scan", &qr, "--yes", "--face", &photo.display().to_string()];
    let out = citizen_app_cli(&app, idp::demo::DEMO_CITIZEN_APP_ID, &state, &scan).await;
    assert!(out.contains(&format!("first sign-in for {}", e.name)), "{out}");
    let done = gate.complete(&app, &b).await;
    match crate::delegation::follow(&app, &b, location(&done).unwrap()).await {
        Err((url, 200, body)) if url.contains("/demo/callback") => {
            let ent =
                idp::domain::delegation::enterprises::find_by_uscc(&app.state.store, &e.uscc).await.unwrap().unwrap();
            assert!(
                body.contains(&format!("&quot;sub&quot;: &quot;{}&quot;", ent.id)),
                "sub is the enterprise: {body}"
            );
            let rep = app.state.users.find_by_login(&e.representative.0).await.unwrap().unwrap();
            let acting = body.split("id=\"acting\">").nth(1).expect("the demo shows who acts");
            let acting = acting.split("</pre>").next().unwrap().replace("&quot;", "\"");
            let acting: serde_json::Value = serde_json::from_str(&acting).unwrap();
            assert_eq!(acting["act"]["sub"], rep.id.as_str());
            assert_eq!(acting["sub"], ent.id.as_str());
        }
        other => panic!("the demo did not complete: {other:?}"),
    }
    let agents = b.http.get(app.url("/enterprise/agents")).send().await.unwrap().text().await.unwrap();
    assert!(agents.contains("李*") || agents.contains("李秀"), "{agents}");
    assert!(agents.contains("data-state=\"active\"") || agents.contains("已通过"), "{agents}");
}
both!(demo_enterprise_representative_signs_in, super::demo_enterprise);
