//! The audit trail is written by the use cases themselves: whichever entry
//! path drives them (sign-in page, consent page, personal centre,
//! enterprise pages and the app's face gate, the core directly, the CLI),
//! the record is there with its action, actor, subject and outcome — and
//! never a secret.
use crate::both;
use crate::delegation::{
    ENT_PASSWORD, USCC, enterprise, finish_enterprise_sign_in, id_born, person, sign_in_with_browser,
    start_enterprise_sign_in,
};
use crate::face_gates::{AgentsPage, ZHANG, app_face_check, gate_page, pass_face, real_person};
use crate::scan::citizen;
use crate::support::*;
use idp::domain::audit::Actor;
use idp::domain::{delegation, delegation::enterprises, delegation::kin};
use idp::store::entities::audit;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

async fn rows(app: &TestApp, action: &str) -> Vec<audit::Model> {
    audit::Entity::find()
        .filter(audit::Column::Action.eq(action))
        .order_by_asc(audit::Column::CreatedAt)
        .all(&app.state.store)
        .await
        .unwrap()
}

/// Whether the detail's fixed prefix or free text carries `key=value`.
fn has(row: &audit::Model, pair: &str) -> bool {
    row.detail.split(' ').any(|w| w == pair)
}

async fn sensitive_use_cases(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let alice = person(&app, "alice_au", "王甲", &id_born("19800202", 71), "13800000071").await;
    let bob = person(&app, "bob_au", "李乙", &id_born("19850303", 72), "13800000072").await;

    // A wrong password: a failed sign-in on Alice's account, with the IP.
    let b = Browser::new();
    let html = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", String::new()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", "alice_au".into()),
        ("password", "not-her-password".into()),
    ];
    let res = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let failed = rows(&app, "sign_in").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].user_id.as_deref(), Some(alice.as_str()));
    assert!(has(&failed[0], "outcome=failure"), "{failed:?}");
    assert_eq!(failed[0].ip.as_deref(), Some("127.0.0.1"));

    // The password sign-in and the consent of an authorization request.
    sign_in_with_browser(&app, &b, &client, "alice_au").await;
    let signed: Vec<_> = rows(&app, "sign_in").await.into_iter().filter(|r| has(r, "outcome=success")).collect();
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert_eq!(signed[0].user_id.as_deref(), Some(alice.as_str()));
    assert!(has(&signed[0], "method=password") && has(&signed[0], "level=1"), "{signed:?}");
    assert!(has(&signed[0], &format!("actor=user:{alice}")));
    let consent = rows(&app, "consent_granted").await;
    assert_eq!(consent.len(), 1, "{consent:?}");
    assert_eq!(consent[0].user_id.as_deref(), Some(alice.as_str()));
    assert!(has(&consent[0], &format!("subject=client:{}", client.id)) && has(&consent[0], "outcome=success"));
    assert_eq!(consent[0].ip.as_deref(), Some("127.0.0.1"));

    // A C6 authorisation Alice grants Bob on her page.
    crate::factors::reverify(&app, &b, "13800000071").await;
    let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    let today = delegation::today(app.state.clock.now()).to_string();
    let grant = [
        ("csrf", hidden(&page, "csrf").unwrap()),
        ("action", "grant".into()),
        ("grantee", "13800000072".into()),
        ("valid_from", today.clone()),
        ("valid_to", today),
        ("scopes", "openid profile".into()),
    ];
    assert_eq!(b.http.post(app.url("/account/authorisations")).form(&grant).send().await.unwrap().status(), 200);
    let d = delegation::granted_by(&app.state.store, &alice, delegation::Kind::Person).await.unwrap().remove(0);
    let created = rows(&app, "authorisation_created").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].user_id.as_deref(), Some(alice.as_str()));
    assert!(has(&created[0], &format!("subject=delegation:{}", d.id)) && has(&created[0], &format!("grantee={bob}")));

    // A kin binding (a child of five: no face check), through the core.
    let now = app.state.clock.now();
    let born = {
        use chrono::Datelike;
        format!("{:04}0101", delegation::today(now).year() - 5)
    };
    let child = id_born(&born, 7);
    let req = kin::check("小明", &child, "child", &crate::face_gates::kin_card_term(&app, &child), now).unwrap();
    let req = crate::sec_kin::proven(&app, &alice, req).await;
    let bound = kin::bind(&app.state.store, &alice, None, &req, false, now).await.unwrap().unwrap();
    let kin_rows = rows(&app, "kin_bound").await;
    assert_eq!(kin_rows.len(), 1, "{kin_rows:?}");
    assert_eq!(kin_rows[0].user_id.as_deref(), Some(alice.as_str()));
    assert!(has(&kin_rows[0], &format!("subject=delegation:{}", bound.id)) && has(&kin_rows[0], "outcome=success"));
    assert!(!kin_rows[0].detail.contains(&child), "the relative's ID number stays out of the audit");

    // An agent approved by the representative through the app's face gate.
    real_person(&app, "rep_au", ZHANG).await;
    app.user("nobody_au").await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let rep = Browser::new();
    let form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let gate = start_enterprise_sign_in(&app, &rep, &client, &form).await.unwrap();
    let (_, done) = pass_face(&app, &rep, &gate, "rep_au", "nobody_au").await;
    finish_enterprise_sign_in(&app, &rep, location(&done).unwrap()).await.unwrap();
    let acting = format!("acting=enterprise:{ent}");
    assert!(rows(&app, "sign_in").await.iter().any(|r| has(r, &acting) && has(r, "method=face")), "the first sign-in");
    let agent = app.user("agent_au").await;
    let now = app.state.clock.now();
    let d =
        enterprises::add_agent(&app.state.store, &ent, &agent, Actor::Enterprise(&ent), now).await.unwrap().unwrap();
    let phone = citizen(&app, "rep_au").await;
    app_face_check(&app, &phone).await;
    let res = AgentsPage::open(&app, &rep).await.act(&app, &rep, "approve", &d.id, None).await;
    let page = gate_page(&rep, &location(&res).unwrap()).await;
    assert_eq!(phone.read(&app, &page.ticket).await.status(), 200);
    let res = phone.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200);
    assert!(location(&page.complete(&app, &rep).await).unwrap().contains("agents_approved"));
    let approved = rows(&app, "agent_approved").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert!(has(&approved[0], &format!("actor=enterprise:{ent}")), "{approved:?}");
    assert!(has(&approved[0], &format!("subject=delegation:{}", d.id)) && has(&approved[0], "outcome=success"));
    assert!(has(&approved[0], &format!("grantee={agent}")));
    assert_eq!(rows(&app, "agent_added").await.len(), 1);

    // A client registered at the command line.
    let out = crate::ops::idp_cmd(&app.dir, &app.database_url)
        .args(["client", "create", "--name", "Audited RP", "--redirect-uri", "https://rp.example.org/cb", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = cli["client_id"].as_str().unwrap();
    let secret = cli["client_secret"].as_str().unwrap();
    let registered: Vec<_> =
        rows(&app, "client_created").await.into_iter().filter(|r| has(r, &format!("subject=client:{id}"))).collect();
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert!(has(&registered[0], "actor=operator:admin") && has(&registered[0], "outcome=success"));

    // Nothing secret anywhere in the trail.
    let all = audit::Entity::find().all(&app.state.store).await.unwrap();
    for r in &all {
        for secret in [secret, PASSWORD, ENT_PASSWORD, "not-her-password"] {
            assert!(!r.detail.contains(secret), "{r:?}");
        }
    }
}
both!(sensitive_use_cases_are_audited, super::sensitive_use_cases);

/// The CLI's `user set-password` is the core use case: one transaction
/// sets the hash, ends the person's sessions and writes `password_set`
/// naming the command line.
async fn cli_set_password(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let carol = person(&app, "carol_au", "赵丙", &id_born("19900404", 73), "13800000073").await;
    let b = Browser::new();
    sign_in_with_browser(&app, &b, &client, "carol_au").await;
    assert_eq!(b.http.get(app.url("/account")).send().await.unwrap().status(), 200);
    let out = crate::accounts::operator(&app, &["user", "set-password", "carol_au", "--password", "Another-pass-77"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let set = rows(&app, "password_set").await;
    assert_eq!(set.len(), 1, "{set:?}");
    assert_eq!(set[0].user_id.as_deref(), Some(carol.as_str()));
    assert!(set[0].detail.contains("by cli"), "{set:?}");
    assert!(!set[0].detail.contains("Another-pass-77"), "never the secret");
    assert_eq!(b.http.get(app.url("/account")).send().await.unwrap().status(), 303, "her sessions ended");
}
both!(cli_set_password_is_audited, super::cli_set_password);

/// `idp enterprise create` goes through the same founding use case as the
/// web registration and, like it, leaves an audit record — naming the
/// operator instead of a registrant.
async fn cli_enterprise_create(backend: Backend) {
    let app = spawn(backend).await;
    let args = [
        "enterprise",
        "create",
        "--uscc",
        USCC,
        "--name",
        "示例科技有限公司",
        "--representative-name",
        "张三",
        "--representative-id",
        &id_born("19800101", 11),
        "--representative-phone",
        "13900000011",
        "--password",
        ENT_PASSWORD,
        "--operator",
        "desk_wang",
    ];
    let out = crate::accounts::operator(&app, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let created = rows(&app, "enterprise_created").await;
    assert_eq!(created.len(), 1, "{created:?}");
    let detail = &created[0].detail;
    assert!(detail.contains("operator:desk_wang") && detail.contains(&format!("enterprise:{id}")), "{detail}");
    assert!(detail.contains(USCC) && !detail.contains(ENT_PASSWORD), "{detail}");
    assert!(rows(&app, "enterprise_registered").await.is_empty());
}
both!(cli_enterprise_create_is_audited, super::cli_enterprise_create);
