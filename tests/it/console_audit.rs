//! The console's audit and statistics (issue 15, G2) and the admin JSON
//! API, over HTTP on both databases: the hash chain verifies and an edited
//! or deleted row breaks it (page, API, `idp audit verify`); audit search
//! and CSV export; statistics of a seeded month equal the counted truth;
//! the API's roles, CSRF rule and its OpenAPI document.
use crate::both;
use crate::console::{console, csrf_of, staff_account};
use crate::factors::{citizen, get, post};
use crate::ops::idp_cmd;
use crate::support::*;
use idp::domain::audit::{self, Actor, Break, Event, Outcome};
use idp::domain::staff::Role;
use idp::store::entities::audit as audit_row;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set};
use std::collections::{BTreeMap, BTreeSet};

const DAY: i64 = 86_400;
/// The platform counts China Standard Time days (UTC+8).
const BEIJING: i64 = 8 * 3600;

/// The Beijing date of an instant.
fn label(t: i64) -> String {
    chrono::DateTime::from_timestamp(t + BEIJING, 0).unwrap().format("%Y-%m-%d").to_string()
}

async fn row_at(app: &TestApp, seq: i64) -> audit_row::Model {
    audit_row::Entity::find().filter(audit_row::Column::Seq.eq(seq)).one(&app.state.store).await.unwrap().unwrap()
}

/// Calls the API as a staff browser; POSTs carry the CSRF header.
async fn api_call(
    app: &TestApp,
    b: &Browser,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = app.url(path);
    let req = if method == "get" {
        b.http.get(url)
    } else {
        let (_, s) = api_get(app, b, "/admin/api/v1/session").await;
        let csrf = s["csrf"].as_str().unwrap_or_default().to_string();
        b.http.post(url).header("x-csrf-token", csrf).json(&body.unwrap_or_else(|| serde_json::json!({})))
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn api_get(app: &TestApp, b: &Browser, path: &str) -> (u16, serde_json::Value) {
    let res = b.http.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn chain(backend: Backend) {
    let app = spawn(backend).await;
    let (_, secret) = staff_account(&app, "chain_auditor", "13710000001", Role::Auditor, &[]).await;
    let client = app.confidential().await;
    citizen(&app, "chain_citizen", "13710000002").await;
    // Real events: a sign-in through the code flow, a failed password.
    sign_in(&app, &client, "chain_citizen", &[]).await;
    // Racing writers (transactions and single statements) never fork it.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = app.state.store.clone();
        let now = app.state.clock.now();
        tasks.push(tokio::spawn(async move {
            let txn = idp::store::begin_write(&store).await.unwrap();
            let subject = format!("race:{i}");
            audit::record(&txn, Event::new("race_test", Actor::Operator("t"), &subject), now).await.unwrap();
            audit::record(&txn, Event::new("race_test", Actor::Operator("t"), &subject), now).await.unwrap();
            txn.commit().await.unwrap();
            idp::domain::identity::accounts::audit(&store, None, "race_single", "x", None, now).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = audit::verify(&app.state.store).await.unwrap();
    assert!(v.ok(), "{v:?}");
    assert!(v.rows >= 24, "{v:?}");
    assert_eq!(v.head_seq, v.rows);

    // The auditor checks from the console: it verifies (and is audited).
    let b = console(&app, "chain_auditor", &secret).await;
    let csrf = csrf_of(&app, &b, "/admin/audit").await;
    let res = post(&b, app.url("/admin/audit/verify"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"audit-verify-ok\""), "{html}");

    // Someone edits a row in the database: the chain names it.
    let victim = row_at(&app, 3).await;
    let mut edit = victim.clone().into_active_model();
    edit.detail = Set(format!("{} (edited)", victim.detail));
    edit.update(&app.state.store).await.unwrap();
    let v = audit::verify(&app.state.store).await.unwrap();
    let broken = v.broken.clone().unwrap();
    assert_eq!((broken.seq, broken.reason, broken.id.as_deref()), (3, Break::Edited, Some(victim.id.as_str())));
    let res = post(&b, app.url("/admin/audit/verify"), &[("csrf", &csrf)]).await;
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"audit-verify-broken\"") && html.contains(&format!("data-row=\"{}\"", victim.id)));
    let (status, v) = api_call(&app, &b, "post", "/admin/api/v1/audit/verify", None).await;
    assert_eq!(status, 200);
    assert_eq!(v["broken"]["reason"], "edited");
    assert_eq!(v["broken"]["id"], victim.id.as_str());
    // The command line says the same and fails.
    let out = idp_cmd(&app.dir, &app.database_url).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&victim.id) && err.contains("edited") && err.contains("seq 3"), "{err}");
    // Put back, it verifies again.
    let mut back = victim.clone().into_active_model();
    back.detail = Set(victim.detail.clone());
    back.update(&app.state.store).await.unwrap();
    assert!(audit::verify(&app.state.store).await.unwrap().ok());

    // A deleted row: the next one is named as following a gap.
    let gone = row_at(&app, 5).await;
    let next = row_at(&app, 6).await;
    audit_row::Entity::delete_by_id(gone.id.clone()).exec(&app.state.store).await.unwrap();
    let broken = audit::verify(&app.state.store).await.unwrap().broken.unwrap();
    assert_eq!((broken.seq, broken.reason, broken.id), (5, Break::Missing, Some(next.id.clone())));
    let out = idp_cmd(&app.dir, &app.database_url).args(["audit", "verify", "--json"]).output().unwrap();
    assert!(!out.status.success());
    gone.into_active_model().insert(&app.state.store).await.unwrap();
    // The last rows deleted: the head still names them.
    let last =
        audit_row::Entity::find().order_by_desc(audit_row::Column::Seq).one(&app.state.store).await.unwrap().unwrap();
    audit_row::Entity::delete_by_id(last.id.clone()).exec(&app.state.store).await.unwrap();
    let broken = audit::verify(&app.state.store).await.unwrap().broken.unwrap();
    assert_eq!(broken.reason, Break::Truncated);
    last.into_active_model().insert(&app.state.store).await.unwrap();
    let out = idp_cmd(&app.dir, &app.database_url).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit chain verifies"));
    // Every check was itself audited, by whom it was made.
    let checks = audit_row::Entity::find()
        .filter(audit_row::Column::Action.eq("audit_verified"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(checks.iter().any(|r| r.detail.contains("actor=operator:cli") && r.detail.contains("reason=edited")));
    assert!(checks.iter().any(|r| r.detail.starts_with("outcome=success actor=staff:")));
}
both!(console_audit_chain_verifies_and_names_broken_rows, super::chain);

async fn search_export(backend: Backend) {
    let app = spawn(backend).await;
    let (_, secret) = staff_account(&app, "export_auditor", "13720000001", Role::Auditor, &[]).await;
    let (_, rsecret) = staff_account(&app, "export_reviewer", "13720000002", Role::Reviewer, &[]).await;
    let store = &app.state.store;
    let now = app.state.clock.now();
    // Beijing midnight today.
    let today = now - (now + BEIJING).rem_euclid(DAY);
    let ev = |action: &'static str, actor: Actor<'static>, subject: &'static str| Event::new(action, actor, subject);
    audit::record(store, ev("consent_granted", Actor::User("p1"), "client:app-one"), today - 3 * DAY).await.unwrap();
    audit::record(store, ev("token_exchange", Actor::User("p2"), "user:p2").detail("client=app-one"), today - 2 * DAY)
        .await
        .unwrap();
    audit::record(store, ev("client_updated", Actor::Staff("s9"), "client:app-two"), today - DAY).await.unwrap();
    audit::record(store, ev("staff_search", Actor::Staff("s9"), "user:p1"), today - DAY).await.unwrap();
    // Free text a spreadsheet would run, with commas and quotes.
    let nasty = "=HYPERLINK(\"http://evil.example\",\"x\"), -2+3 @SUM";
    idp::domain::identity::accounts::audit(store, Some("p1"), "profile_edit", nasty, Some("10.0.0.1"), today - DAY)
        .await
        .unwrap();
    let b = console(&app, "export_auditor", &secret).await;
    let rows = |html: &str| html.matches("<tr data-action=").count();
    let (_, html) = get(&b, app.url("/admin/audit?person=p1")).await;
    assert_eq!(rows(&html), 3, "p1 acted twice and was searched once: {html}");
    let (_, html) = get(&b, app.url("/admin/audit?client=app-one")).await;
    assert_eq!(rows(&html), 2, "{html}");
    let (_, html) = get(&b, app.url(&format!("/admin/audit?client=app-two&from={}", label(today - DAY)))).await;
    assert_eq!(rows(&html), 1);
    let (_, html) = get(&b, app.url(&format!("/admin/audit?client=app-one&to={}", label(today - 3 * DAY)))).await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("data-action=\"consent_granted\""));
    let (status, page) = api_get(&app, &b, "/admin/api/v1/audit?person=p1&event=profile_edit").await;
    assert_eq!(status, 200);
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);

    // Export of the filtered set, escaped and defused.
    let csrf = csrf_of(&app, &b, "/admin/audit").await;
    let res = post(&b, app.url("/admin/audit/export"), &[("csrf", &csrf), ("person", "p1")]).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let csv = res.text().await.unwrap();
    let csv = csv.strip_prefix('\u{feff}').unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "time,seq,action,account,ip,detail");
    assert_eq!(lines.len(), 4, "{csv}");
    let line = lines.iter().find(|l| l.contains("profile_edit")).unwrap();
    assert!(line.ends_with(",p1,10.0.0.1,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\"), -2+3 @SUM\""), "{line}");
    let exported =
        audit_row::Entity::find().filter(audit_row::Column::Action.eq("audit_exported")).all(store).await.unwrap();
    assert_eq!(exported.len(), 1);
    assert!(exported[0].detail.contains("rows=3") && exported[0].detail.contains("person=p1"));
    assert!(exported[0].detail.contains(" actor=staff:"));
    // A forged export (no CSRF token) is refused; a reviewer may not export.
    let res = post(&b, app.url("/admin/audit/export"), &[("csrf", "forged"), ("person", "p1")]).await;
    assert_eq!(res.status(), 403);
    let r = console(&app, "export_reviewer", &rsecret).await;
    let csrf = csrf_of(&app, &r, "/admin/step-up").await;
    let res = post(&r, app.url("/admin/audit/export"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(api_get(&app, &r, "/admin/api/v1/audit").await.0, 403);
}
both!(console_audit_search_and_csv_export, super::search_export);

/// What the test did, per (day, metric, dim); `""` dim = metric total.
#[derive(Default)]
struct Truth(BTreeMap<(String, String, String), i64>);

impl Truth {
    fn add(&mut self, at: i64, metric: &str, dim: &str) {
        *self.0.entry((label(at), metric.into(), String::new())).or_default() += 1;
        if !dim.is_empty() {
            *self.0.entry((label(at), metric.into(), dim.into())).or_default() += 1;
        }
    }
    fn get(&self, day: &str, metric: &str, dim: &str) -> i64 {
        self.0.get(&(day.to_string(), metric.to_string(), dim.to_string())).copied().unwrap_or(0)
    }
}

async fn month(backend: Backend) {
    let app = spawn(backend).await;
    let (_, secret) = staff_account(&app, "stats_auditor", "13730000001", Role::Auditor, &[]).await;
    let client = app.confidential().await;
    citizen(&app, "stats_citizen", "13730000002").await;
    let store = &app.state.store;
    let mut truth = Truth::default();
    app.state.clock.advance(DAY);
    let first = app.state.clock.now();
    for d in 0..30i64 {
        let now = app.state.clock.now();
        // Sign-ins by method and level, failures, locks, registrations.
        for i in 0..(d % 4 + 1) {
            let (method, level) = if i % 2 == 0 { ("password", 1) } else { ("passkey", 3) };
            let detail = format!("method={method} level={level} amr=x");
            let e = Event::new("sign_in", Actor::User("someone"), "session:s").detail(&detail);
            audit::record(store, e, now).await.unwrap();
            truth.add(now, "sign_in", &format!("method={method} level={level}"));
        }
        for _ in 0..(d % 3) {
            let e = Event::new("sign_in", Actor::Anonymous, "login:name:x").outcome(Outcome::Failure);
            audit::record(store, e, now).await.unwrap();
            truth.add(now, "sign_in_failure", "");
        }
        if d % 5 == 0 {
            let e = Event::new("sign_in", Actor::Anonymous, "login:name:x").outcome(Outcome::Locked);
            audit::record(store, e, now).await.unwrap();
            truth.add(now, "lockout", "");
        }
        for _ in 0..(d % 2) {
            idp::domain::identity::accounts::audit(store, Some("new"), "register", "phone verified by SMS", None, now)
                .await
                .unwrap();
            truth.add(now, "registration", "");
        }
        // Identity checks by kind and outcome, where every check is recorded.
        for (kind, outcome) in [("face", "pass"), ("bank_card", if d % 3 == 0 { "mismatch" } else { "pass" })] {
            idp::domain::identity::record(store, Some("someone"), kind, "s", outcome, None, None, now).await.unwrap();
            truth.add(now, "verification", &format!("kind={kind} outcome={outcome}"));
        }
        // SMS through the real sender: over five an hour to one phone is refused.
        let sends = if d == 7 { 7 } else { 1 };
        for _ in 0..sends {
            let r = app
                .state
                .sms_codes
                .send("13730000099", idp::ports::sms::SmsPurpose::Login, "10.1.1.1", |c| c.into())
                .await;
            truth.add(now, if r.is_ok() { "sms_sent" } else { "sms_refused" }, "");
        }
        // A real sign-in to an app through the code flow on some days.
        if d % 10 == 3 {
            sign_in(&app, &client, "stats_citizen", &[]).await;
            truth.add(now, "sign_in_app", &format!("client={}", client.id));
            truth.add(now, "sign_in", "");
        }
        app.state.clock.advance(DAY);
    }
    let last = app.state.clock.now() - DAY;
    assert_eq!(truth.get(&label(first + 7 * DAY), "sms_refused", ""), 2, "the limit refused two");

    let b = console(&app, "stats_auditor", &secret).await;
    let (from, to) = (label(first), label(last));
    let (status, r) = api_get(&app, &b, &format!("/admin/api/v1/stats?from={from}&to={to}")).await;
    assert_eq!(status, 200, "{r}");
    let days: Vec<String> = r["days"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect();
    assert_eq!(days.len(), 30);
    for s in r["totals"].as_array().unwrap() {
        let metric = s["metric"].as_str().unwrap();
        for (i, day) in days.iter().enumerate() {
            assert_eq!(s["counts"][i].as_i64().unwrap(), truth.get(day, metric, ""), "{metric} on {day}");
        }
    }
    let mut dims = BTreeSet::new();
    for s in r["series"].as_array().unwrap() {
        let (metric, dim) = (s["metric"].as_str().unwrap(), s["dim"].as_str().unwrap());
        if metric == "sign_in" && !dim.starts_with("method=passkey") {
            continue; // the real sign-in's own level
        }
        for (i, day) in days.iter().enumerate() {
            assert_eq!(s["counts"][i].as_i64().unwrap(), truth.get(day, metric, dim), "{metric} {dim} on {day}");
        }
        dims.insert(format!("{metric} {dim}"));
    }
    assert!(dims.contains(&format!("sign_in_app client={}", client.id)), "{dims:?}");
    assert!(dims.contains("verification kind=bank_card outcome=mismatch"));

    // The page shows the same numbers beside its charts, and the CSV too.
    let (status, html) = get(&b, app.url(&format!("/admin/stats?from={from}&to={to}"))).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<figure class=\"stats-chart\"").count(), 8);
    assert!(html.contains("<svg") && !html.contains("<script>"));
    let d7 = label(first + 7 * DAY);
    let row = html.split(&format!("<tr data-day=\"{d7}\">")).nth(1).unwrap().split("</tr>").next().unwrap();
    for metric in ["sign_in", "sign_in_failure", "sms_sent", "sms_refused", "verification"] {
        let cell = format!("<td data-metric=\"{metric}\">{}</td>", truth.get(&d7, metric, ""));
        assert!(row.contains(&cell), "{cell} in {row}");
    }
    let res = b.http.get(app.url(&format!("/admin/stats.csv?from={from}&to={to}"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    assert!(csv.contains(&format!("\r\n{d7},sms_refused,,2\r\n")), "{csv}");
    // A range the page cannot draw is refused with a message.
    let (status, html) = get(&b, app.url(&format!("/admin/stats?from={to}&to={from}"))).await;
    assert_eq!(status, 400, "{html}");
    let (status, _) = get(&b, app.url("/admin/stats?from=2020-01-01&to=2026-01-01")).await;
    assert_eq!(status, 400);
}
both!(console_statistics_match_a_seeded_month, super::month);

async fn admin_api(backend: Backend) {
    let app = spawn(backend).await;
    let mine = app.confidential().await;
    let other = app.confidential().await;
    let (_, asecret) = staff_account(&app, "api_auditor", "13740000001", Role::Auditor, &[]).await;
    let (_, msecret) = staff_account(&app, "api_app_admin", "13740000002", Role::AppAdmin, &[&mine.id]).await;
    let (rid, rsecret) = staff_account(&app, "api_reviewer", "13740000003", Role::Reviewer, &[]).await;
    let (_, psecret) = staff_account(&app, "api_platform", "13740000004", Role::PlatformAdmin, &[]).await;
    let target = citizen(&app, "api_citizen", "13740000005").await;

    // The document describes exactly the routes the router serves.
    let doc: serde_json::Value =
        api().get(app.url("/admin/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut described = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            described.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> =
        idp::web::admin::api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(described, served);
    // And the server answers each one (no session: 401, never 404 / 405),
    // also when only a bearer token is offered.
    for (method, path) in &served {
        let url = app.url(&path.replace("{id}", "x"));
        let req = if method == "get" { api().get(url) } else { api().post(url).json(&serde_json::json!({})) };
        let res = req.bearer_auth("not-a-staff-session").send().await.unwrap();
        assert_eq!(res.status(), 401, "{method} {path}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["error"], "login_required");
    }

    // An auditor reads everything and changes nothing.
    let aud = console(&app, "api_auditor", &asecret).await;
    let (status, s) = api_get(&app, &aud, "/admin/api/v1/session").await;
    assert_eq!((status, s["roles"][0].as_str()), (200, Some("auditor")));
    let (status, v) = api_get(&app, &aud, "/admin/api/v1/apps").await;
    assert_eq!(status, 200);
    assert!(v["apps"].as_array().unwrap().len() >= 2);
    assert!(v.to_string().find("secret_hash").is_none());
    assert_eq!(api_get(&app, &aud, "/admin/api/v1/people?q=api_citizen").await.0, 200);
    assert_eq!(api_get(&app, &aud, "/admin/api/v1/stats").await.0, 200);
    for path in [
        format!("/admin/api/v1/apps/{}/disable", mine.id),
        format!("/admin/api/v1/apps/{}/rotate-secret", mine.id),
        format!("/admin/api/v1/people/{target}/suspend"),
        "/admin/api/v1/appeals/ap-x/decide".to_string(),
    ] {
        let (status, v) = api_call(&app, &aud, "post", &path, Some(serde_json::json!({ "approve": true }))).await;
        assert_eq!((status, v["error"].as_str()), (403, Some("forbidden")), "{path}");
    }
    let body = serde_json::json!({ "name": "x", "redirect_uris": ["https://x.example/cb"] });
    assert_eq!(api_call(&app, &aud, "post", "/admin/api/v1/apps", Some(body.clone())).await.0, 403);
    assert!(!app.state.clients.find(&mine.id).await.unwrap().unwrap().disabled);

    // CSRF: a change without the header, or as a form, is refused.
    let pa = console(&app, "api_platform", &psecret).await;
    let url = app.url(&format!("/admin/api/v1/people/{target}/suspend"));
    let res = pa.http.post(&url).json(&serde_json::json!({ "reason": "x" })).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let (_, s) = api_get(&app, &pa, "/admin/api/v1/session").await;
    let csrf = s["csrf"].as_str().unwrap();
    let res = pa.http.post(&url).header("x-csrf-token", csrf).form(&[("reason", "x")]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(!app.state.users.find(&target).await.unwrap().unwrap().disabled);
    // The platform admin suspends and restores through the same use case.
    let (status, v) = api_call(
        &app,
        &pa,
        "post",
        &format!("/admin/api/v1/people/{target}/suspend"),
        Some(serde_json::json!({ "reason": "fraud" })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(app.state.users.find(&target).await.unwrap().unwrap().disabled);
    let (status, _) = api_call(
        &app,
        &pa,
        "post",
        &format!("/admin/api/v1/people/{target}/restore"),
        Some(serde_json::json!({ "reason": "ok" })),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!app.state.users.find(&target).await.unwrap().unwrap().disabled);
    let suspended = audit_row::Entity::find()
        .filter(audit_row::Column::Action.eq("account_suspended"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(suspended.iter().any(|r| r.detail.contains(" actor=staff:")), "{suspended:?}");
    let (status, created) = api_call(&app, &pa, "post", "/admin/api/v1/apps", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["client_secret"].as_str().unwrap().len() >= 32);
    // Sensitive changes need a fresh strong factor.
    app.state.clock.advance(idp::domain::staff::SENSITIVE_MAX_AGE + 60);
    let (status, v) = api_call(&app, &pa, "post", &format!("/admin/api/v1/people/{target}/sign-out"), None).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("step_up_required")));

    // An app admin manages their app and no other.
    let adm = console(&app, "api_app_admin", &msecret).await;
    let (_, v) = api_get(&app, &adm, "/admin/api/v1/apps").await;
    let ids: Vec<&str> = v["apps"].as_array().unwrap().iter().map(|a| a["client_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine.id.as_str()]);
    assert_eq!(api_get(&app, &adm, &format!("/admin/api/v1/apps/{}", other.id)).await.0, 403);
    for action in ["disable", "rotate-secret"] {
        let (status, _) =
            api_call(&app, &adm, "post", &format!("/admin/api/v1/apps/{}/{action}", other.id), None).await;
        assert_eq!(status, 403, "{action}");
    }
    assert!(!app.state.clients.find(&other.id).await.unwrap().unwrap().disabled);
    let (status, _) = api_call(&app, &adm, "post", &format!("/admin/api/v1/apps/{}/disable", mine.id), None).await;
    assert_eq!(status, 200);
    assert!(app.state.clients.find(&mine.id).await.unwrap().unwrap().disabled);
    let (status, v) =
        api_call(&app, &adm, "post", &format!("/admin/api/v1/apps/{}/rotate-secret", mine.id), None).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["client_secret"].as_str().unwrap().len() >= 32);
    assert_eq!(api_get(&app, &adm, "/admin/api/v1/audit").await.0, 403);

    // A reviewer decides appeals, and cannot grant roles or touch people.
    let rev = console(&app, "api_reviewer", &rsecret).await;
    assert_eq!(api_get(&app, &rev, "/admin/api/v1/appeals?status=all").await.0, 200);
    let (status, _) = api_call(
        &app,
        &rev,
        "post",
        "/admin/api/v1/staff/grant",
        Some(serde_json::json!({ "login": "api_reviewer", "role": "platform_admin" })),
    )
    .await;
    assert_eq!(status, 403);
    let held = idp::domain::staff::load(&app.state.store, &rid).await.unwrap().unwrap();
    assert_eq!(held.roles, vec![Role::Reviewer]);
    assert_eq!(api_get(&app, &rev, "/admin/api/v1/staff").await.0, 403);
    let (status, _) = api_call(&app, &rev, "post", &format!("/admin/api/v1/people/{target}/suspend"), None).await;
    assert_eq!(status, 403);
}
both!(console_admin_api_roles_and_openapi, super::admin_api);
