//! Enterprise operations by staff (C5, C3 by the CLI): phone and
//! representative change requests filed on the web, decided in the CLI
//! queue, the applicant told by SMS; agents added from the CLI.
use crate::both;
use crate::delegation::{USCC, enterprise};
use crate::face_gates::{LI, ZHANG, real_person};
use crate::support::*;
use idp::domain::{delegation, delegation::enterprises};

fn idp_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    TestAppPaths { dir: app.dir.clone(), db: app.database_url.clone() }.run(args)
}

async fn cli(app: &TestApp, args: &[&str]) -> String {
    let app_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (dir, db) = (app.dir.clone(), app.database_url.clone());
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = app_args.iter().map(String::as_str).collect();
        TestAppPaths { dir, db }.run(&refs)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "idp {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

struct TestAppPaths {
    dir: std::path::PathBuf,
    db: String,
}

impl TestAppPaths {
    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IDP_DATA_DIR", &self.dir)
            .env("IDP_DATABASE_URL", &self.db)
            .env("IDP_MASTER_KEY", "7f".repeat(32))
            .env("IDP_LOG", "warn")
            .args(args)
            .output()
            .unwrap()
    }
}

/// Files a change request on `/enterprise/change`; returns (status, body).
async fn file(app: &TestApp, form: &[(&str, &str)]) -> (u16, String) {
    let b = Browser::new();
    let page = b.http.get(app.url("/enterprise/change")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let res = b.http.post(app.url("/enterprise/change")).form(&fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn filed_id(body: &str) -> String {
    let start = body.find("id=\"change-id\">").expect("a filed request shows its number") + 15;
    body[start..].split('<').next().unwrap().to_string()
}

async fn change_requests(backend: Backend) {
    let app = spawn(backend).await;
    real_person(&app, "rep_ops", ZHANG).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    // A phone change naming someone else as representative: "法人信息不匹配".
    let wrong = [("kind", "phone"), ("uscc", USCC), ("name", LI.0), ("id_number", LI.1), ("phone", "13900000077")];
    let (status, body) = file(&app, &wrong).await;
    assert_eq!(status, 409);
    assert!(body.contains("法人信息不匹配"));
    let phone =
        [("kind", "phone"), ("uscc", USCC), ("name", ZHANG.0), ("id_number", ZHANG.1), ("phone", "13900000077")];
    let (status, body) = file(&app, &phone).await;
    assert_eq!(status, 200);
    let phone_req = filed_id(&body);
    let rep =
        [("kind", "representative"), ("uscc", USCC), ("name", LI.0), ("id_number", LI.1), ("phone", "13900000078")];
    let (status, body) = file(&app, &rep).await;
    assert_eq!(status, 200);
    let rep_req = filed_id(&body);

    // The staff queue lists both; deciding tells each applicant by SMS.
    let queue = cli(&app, &["enterprise", "requests", "--json"]).await;
    assert!(queue.contains(&phone_req) && queue.contains(&rep_req), "{queue}");
    let out = cli(&app, &["enterprise", "approve", &phone_req]).await;
    assert!(out.contains("approved"));
    let sms = sink(&app, "sms", "13900000077").await.expect("the applicant is told");
    assert!(sms.contains(&phone_req) && sms.contains("已审核通过"), "{sms}");
    let e = idp::domain::delegation::enterprises::find(&app.state.store, &ent).await.unwrap().unwrap();
    assert_eq!(e.representative_phone, "13900000077");
    let refused = idp_cli(&app, &["enterprise", "reject", &rep_req, "--reason", " "]);
    assert!(!refused.status.success(), "a rejection must say why");
    cli(&app, &["enterprise", "reject", &rep_req, "--reason", "营业执照照片不清晰"]).await;
    let sms = sink(&app, "sms", "13900000078").await.expect("the applicant is told");
    assert!(sms.contains("未通过审核") && sms.contains("营业执照照片不清晰"), "{sms}");
    // Decided once: a second decision finds nothing pending.
    assert!(!idp_cli(&app, &["enterprise", "approve", &rep_req]).status.success());
    let e = idp::domain::delegation::enterprises::find(&app.state.store, &ent).await.unwrap().unwrap();
    assert_eq!(e.representative_name, ZHANG.0, "a rejected change leaves the record");
    // An approved representative change moves the record to the new person's
    // real-name account, whose first sign-in needs a face check again.
    let li = real_person(&app, "new_rep", LI).await;
    let (status, body) = file(&app, &rep).await;
    assert_eq!(status, 200);
    cli(&app, &["enterprise", "approve", &filed_id(&body)]).await;
    let e = idp::domain::delegation::enterprises::find(&app.state.store, &ent).await.unwrap().unwrap();
    assert_eq!((e.representative_name.as_str(), e.representative_id_number.as_str()), (LI.0, LI.1));
    assert_eq!(e.representative_user_id.as_deref(), Some(li.as_str()));
    assert!(e.representative_face_at.is_none());
}
both!(change_requests_decided_by_staff_with_sms, super::change_requests);

async fn cli_agents(backend: Backend) {
    let app = spawn(backend).await;
    real_person(&app, "rep_cli2", ZHANG).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let pending = app.user("agent_p").await;
    let approved = app.user("agent_a").await;
    cli(&app, &["enterprise", "add-agent", "--uscc", USCC, "--agent", "agent_p"]).await;
    cli(&app, &["enterprise", "add-agent", "--uscc", USCC, "--agent", "agent_a", "--approved"]).await;
    let state = |u: String| {
        let db = app.state.store.clone();
        let ent = ent.clone();
        async move { delegation::agent_delegation(&db, &ent, &u).await.unwrap().unwrap().state }
    };
    assert_eq!(state(pending).await, "pending");
    assert_eq!(state(approved).await, "active");
    let again = idp_cli(&app, &["enterprise", "add-agent", "--uscc", USCC, "--agent", "agent_a"]);
    assert!(!again.status.success(), "an agent is added once");
    let bad = idp_cli(&app, &["enterprise", "add-agent", "--uscc", "91440300708461136A", "--agent", "agent_a"]);
    assert!(!bad.status.success());
    // C2: an operator sets the agent's enterprise-login password (the rule holds).
    let set = |pw: &'static str| {
        idp_cli(&app, &["enterprise", "agent-password", "--uscc", USCC, "--agent", "agent_a", "--password", pw])
    };
    let weak = set("abcdefgh");
    assert!(!weak.status.success() && String::from_utf8_lossy(&weak.stderr).contains("6–15"));
    assert!(set("Ops-2026").status.success());
    let users = &app.state.users;
    let (db, pw) = (&app.state.store, &app.state.passwords);
    let now = app.state.clock.now();
    let signed = enterprises::sign_in_agent_with_password(db, users, pw, USCC, "agent_a", "Ops-2026", now).await;
    assert!(signed.unwrap().is_ok(), "the new password opens the enterprise login");
    let own = enterprises::sign_in_agent_with_password(db, users, pw, USCC, "agent_a", PASSWORD, now).await;
    assert!(own.unwrap().is_err(), "his account's password no longer does");
    let none = idp_cli(
        &app,
        &["enterprise", "agent-password", "--uscc", USCC, "--agent", "nobody_x", "--password", "Ops-2026"],
    );
    assert!(!none.status.success());
}
both!(cli_adds_agents, super::cli_agents);
