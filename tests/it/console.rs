//! The operator console (issue 15) over HTTP: the gate (staff role, L3, a
//! fresh authenticator-app code), what each role may and may not do,
//! suspend / restore, apps, appeals, the audit viewer and statistics.
use crate::both;
use crate::factors::{app_code, citizen, get, password_sign_in, post};
use crate::support::*;
use crate::tokens::refresh;
use idp::domain::staff::{self, Granter, Role};
use idp::store::entities::{appeal, audit};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

/// An account with `role`, real-person proofed (L3) and an enrolled
/// authenticator app; returns (account id, TOTP secret).
async fn staff_account(app: &TestApp, username: &str, phone: &str, role: Role, apps: &[&str]) -> (String, String) {
    let id = citizen(app, username, phone).await;
    idp::domain::assurance::set_proofing_level(&app.state.store, &id, 3).await.unwrap();
    let now = app.state.clock.now();
    if apps.is_empty() {
        staff::grant(&app.state.store, &app.state.users, Granter::Cli("test"), username, role, None, now)
            .await
            .unwrap();
    }
    for a in apps {
        staff::grant(&app.state.store, &app.state.users, Granter::Cli("test"), username, role, Some(a), now)
            .await
            .unwrap();
    }
    let enrolment = app.state.totp.start(&id, username, now).await.unwrap().unwrap();
    let code = app_code(&enrolment.secret, now);
    app.state.totp.confirm(&id, username, &code, now).await.unwrap().unwrap();
    // These staff turned two-step sign-in off, so a password alone signs
    // them in and the console's own step-up is what is tested here.
    idp::store::entities::second_step_pref::ActiveModel {
        user_id: Set(id.clone()),
        required: Set(false),
        updated_at: Set(now),
    }
    .insert(&app.state.store)
    .await
    .unwrap();
    (id, enrolment.secret)
}

/// Types a fresh app code on the console's step-up page.
async fn step_up(app: &TestApp, b: &Browser, secret: &str) -> reqwest::Response {
    app.state.clock.advance(30);
    let (status, html) = get(b, app.url("/admin/step-up")).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let code = app_code(secret, app.state.clock.now());
    post(b, app.url("/admin/step-up"), &[("csrf", &csrf), ("code", &code)]).await
}

/// A staff browser past the console's gate.
async fn console(app: &TestApp, username: &str, secret: &str) -> Browser {
    let b = password_sign_in(app, username).await;
    let res = b.http.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/admin/step-up"));
    let res = step_up(app, &b, secret).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/admin"));
    let (status, html) = get(&b, app.url("/admin")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"admin-nav\""));
    b
}

async fn csrf_of(app: &TestApp, b: &Browser, path: &str) -> String {
    let (status, html) = get(b, app.url(path)).await;
    assert_eq!(status, 200, "{path}: {html}");
    hidden(&html, "csrf").unwrap()
}

async fn audited(app: &TestApp, action: &str) -> Vec<String> {
    audit::Entity::find()
        .filter(audit::Column::Action.eq(action))
        .all(&app.state.store)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.detail)
        .collect()
}

async fn gate_and_roles(backend: Backend) {
    let app = spawn(backend).await;
    let mine = app.confidential().await;
    let other = app.confidential().await;
    // Not staff: refused. Staff below L3: refused.
    citizen(&app, "plain_user1", "13700000001").await;
    let b = password_sign_in(&app, "plain_user1").await;
    assert_eq!(get(&b, app.url("/admin")).await.0, 403);
    // Nobody signed in: sent to sign in.
    let res = Browser::new().http.get(app.url("/admin/people")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/login"));
    let (low, _) = staff_account(&app, "low_auditor", "13700000002", Role::Auditor, &[]).await;
    idp::domain::assurance::set_proofing_level(&app.state.store, &low, 2).await.unwrap();
    let b = password_sign_in(&app, "low_auditor").await;
    assert_eq!(get(&b, app.url("/admin")).await.0, 403);

    // An auditor reads, and changes nothing.
    let (_, secret) = staff_account(&app, "the_auditor", "13700000003", Role::Auditor, &[]).await;
    let target = citizen(&app, "some_citizen", "13700000004").await;
    let aud = console(&app, "the_auditor", &secret).await;
    assert_eq!(get(&aud, app.url("/admin/audit")).await.0, 200);
    assert_eq!(get(&aud, app.url("/admin/stats")).await.0, 200);
    let (status, html) = get(&aud, app.url("/admin/people?q=some_citizen")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("data-user=\"{target}\"")) && html.contains("137****0004"), "{html}");
    assert!(!html.contains("13700000004"), "search results are masked");
    let csrf = csrf_of(&app, &aud, "/admin/step-up").await;
    assert_eq!(get(&aud, app.url(&format!("/admin/people/{target}"))).await.0, 200);
    let res = post(
        &aud,
        app.url(&format!("/admin/people/{target}")),
        &[("csrf", &csrf), ("action", "suspend"), ("reason", "test")],
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = post(
        &aud,
        app.url(&format!("/admin/people/{target}")),
        &[("csrf", &csrf), ("action", "unmask"), ("reason", "curious")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(get(&aud, app.url("/admin/staff")).await.0, 403);
    assert_eq!(get(&aud, app.url("/admin/appeals")).await.0, 403);
    let res = post(&aud, app.url(&format!("/admin/apps/{}", mine.id)), &[("csrf", &csrf), ("action", "rotate")]).await;
    assert_eq!(res.status(), 403);

    // A reviewer cannot grant roles.
    let (_, secret) = staff_account(&app, "the_reviewer", "13700000005", Role::Reviewer, &[]).await;
    let rev = console(&app, "the_reviewer", &secret).await;
    assert_eq!(get(&rev, app.url("/admin/appeals")).await.0, 200);
    let csrf = csrf_of(&app, &rev, "/admin/step-up").await;
    let res = post(
        &rev,
        app.url("/admin/staff"),
        &[("csrf", &csrf), ("action", "grant"), ("login", "the_reviewer"), ("role", "platform_admin")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(staff::load(&app.state.store, &target).await.unwrap().is_none());
    assert_eq!(get(&rev, app.url("/admin/audit")).await.0, 403);

    // An app admin touches only the app assigned.
    let (_, secret) = staff_account(&app, "the_app_admin", "13700000006", Role::AppAdmin, &[&mine.id]).await;
    let adm = console(&app, "the_app_admin", &secret).await;
    let (status, html) = get(&adm, app.url("/admin/apps")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("data-app=\"{}\"", mine.id)) && !html.contains(&format!("data-app=\"{}\"", other.id))
    );
    assert_eq!(get(&adm, app.url(&format!("/admin/apps/{}", other.id))).await.0, 403);
    let csrf = csrf_of(&app, &adm, &format!("/admin/apps/{}", mine.id)).await;
    let res = post(&adm, app.url(&format!("/admin/apps/{}", other.id)), &[("csrf", &csrf), ("action", "rotate")]).await;
    assert_eq!(res.status(), 403);
    let res = post(
        &adm,
        app.url("/admin/apps"),
        &[("csrf", &csrf), ("name", "Mine too"), ("redirect_uris", "https://x.example/cb")],
    )
    .await;
    assert_eq!(res.status(), 403, "an app admin cannot register apps");
    // Rotating its own secret: shown once, the old one stops working.
    let res = post(&adm, app.url(&format!("/admin/apps/{}", mine.id)), &[("csrf", &csrf), ("action", "rotate")]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let secret = html.split("<code id=\"client-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let cc = |s: String| {
        let id = mine.id.clone();
        let url = app.url("/token");
        async move {
            api().post(url).basic_auth(&id, Some(s)).form(&[("grant_type", "client_credentials")]).send().await.unwrap()
        }
    };
    assert_eq!(cc(mine.secret.clone().unwrap()).await.status(), 401);
    assert_eq!(cc(secret).await.status(), 200);
    // Editing its settings.
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "save"),
        ("name", "Renamed app"),
        ("redirect_uris", "http://127.0.0.1:9/cb\nhttps://app.example/cb"),
        ("post_logout_redirect_uris", ""),
        ("scopes", "openid profile"),
        ("min_level", "2"),
        ("skip_consent", "1"),
    ];
    let res = post(&adm, app.url(&format!("/admin/apps/{}", mine.id)), &form).await;
    assert_eq!(res.status(), 200);
    let c = app.state.clients.find(&mine.id).await.unwrap().unwrap();
    assert_eq!(
        (c.name.as_str(), c.allowed_scopes.as_str(), c.min_level, c.skip_consent),
        ("Renamed app", "openid profile", Some(2), true)
    );
    assert_eq!(c.redirect_uris.len(), 2);
    let bad = [("csrf", csrf.as_str()), ("action", "save"), ("name", "x"), ("redirect_uris", "javascript:alert(1)")];
    assert_eq!(post(&adm, app.url(&format!("/admin/apps/{}", mine.id)), &bad).await.status(), 400);
    // Every change names the staff member.
    let (admin_id, _) = (app.state.users.find_by_login("the_app_admin").await.unwrap().unwrap().id, ());
    let rotated = audited(&app, "client_secret_rotated").await;
    assert!(
        rotated.iter().all(|d| d.contains(&format!("actor=staff:{admin_id}"))) && rotated.len() == 1,
        "{rotated:?}"
    );
    // A form without its CSRF token is refused.
    let res = post(&adm, app.url(&format!("/admin/apps/{}", mine.id)), &[("action", "rotate")]).await;
    assert_eq!(res.status(), 403);
}
both!(console_gate_and_roles, super::gate_and_roles);

async fn suspend_restore(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let (admin_id, secret) = staff_account(&app, "platform_boss", "13700000010", Role::PlatformAdmin, &[]).await;
    let target = app.user("suspend_me1").await;
    // The citizen holds a refresh token.
    let (code, _) = sign_in(&app, &client, "suspend_me1", &[]).await;
    let tokens = json(redeem(&app, &client, &code, None).await).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let b = console(&app, "platform_boss", &secret).await;
    let page = format!("/admin/people/{target}");
    let csrf = csrf_of(&app, &b, &page).await;
    // Suspending needs a reason.
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "suspend"), ("reason", "")]).await;
    assert_eq!(res.status(), 400);
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "suspend"), ("reason", "fraud report 42")]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("data-state=\"suspended\""));
    let res = refresh(&app, &client, &rt).await;
    assert_eq!(json(res).await["error"], "invalid_grant", "refresh tokens end at once");
    // Sign-in is refused with its own message once the password is right.
    let b2 = Browser::new();
    let end = b2.run(&app, &auth_url(&app, &client, &[]), "suspend_me1", PASSWORD).await;
    let End::Page(401, html) = end else { panic!("{end:?}") };
    assert!(html.contains(&app.state.pages.text("zh-CN", "login_suspended")), "{html}");
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "suspend_me1", "Wrong-pass-9").await;
    let End::Page(401, html) = end else { panic!("{end:?}") };
    assert!(!html.contains(&app.state.pages.text("zh-CN", "login_suspended")), "a wrong password tells nothing");
    let suspended = audited(&app, "account_suspended").await;
    assert_eq!(suspended.len(), 1);
    assert!(
        suspended[0].contains(&format!("actor=staff:{admin_id}"))
            && suspended[0].contains(&format!("subject=user:{target}"))
    );
    // The unmasked view wants a reason and is audited.
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "unmask"), ("reason", "")]).await;
    assert_eq!(res.status(), 400);
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "unmask"), ("reason", "ticket 42 check")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(audited(&app, "staff_unmasked").await.len(), 1);
    // A sensitive action after the factor went stale: step up again first.
    app.state.clock.advance(idp::domain::staff::SENSITIVE_MAX_AGE + 1);
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "restore"), ("reason", "")]).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().contains("/admin/step-up?fresh=1"));
    assert_eq!(step_up(&app, &b, &secret).await.status(), 303);
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "restore"), ("reason", "")]).await;
    assert_eq!(res.status(), 200);
    // (The two refused attempts above ask for a captcha until their window ends.)
    app.state.clock.advance(app.state.config.login_throttle.lock_seconds + 1);
    let (code, _) = sign_in(&app, &client, "suspend_me1", &[]).await;
    assert_eq!(redeem(&app, &client, &code, None).await.status(), 200);
    assert_eq!(step_up(&app, &b, &secret).await.status(), 303);
    // Force sign-out ends the new sessions but leaves the account usable.
    let res = post(&b, app.url(&page), &[("csrf", &csrf), ("action", "sign_out"), ("reason", "")]).await;
    assert_eq!(res.status(), 200);
    assert!(audited(&app, "staff_signed_out").await[0].contains("sessions=1"));
    // A platform admin grants roles in the console.
    let csrf = csrf_of(&app, &b, "/admin/staff").await;
    let res = post(
        &b,
        app.url("/admin/staff"),
        &[("csrf", &csrf), ("action", "grant"), ("login", "suspend_me1"), ("role", "auditor")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let s = staff::load(&app.state.store, &target).await.unwrap().unwrap();
    assert_eq!(s.roles, vec![Role::Auditor]);
    // And registers an app, whose secret is shown once.
    let csrf = csrf_of(&app, &b, "/admin/apps").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "New portal"),
        ("redirect_uris", "https://portal.example/cb"),
        ("scopes", "openid profile"),
    ];
    let res = post(&b, app.url("/admin/apps"), &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"client-secret\""));
    assert_eq!(audited(&app, "staff_app_created").await.len(), 1);
}
both!(console_suspend_restore_and_admin, super::suspend_restore);

async fn appeals_audit_stats(backend: Backend) {
    let app = spawn(backend).await;
    let (_, secret) = staff_account(&app, "the_reviewer2", "13700000020", Role::Reviewer, &[]).await;
    let holder = citizen(&app, "phone_holder", "13700000021").await;
    let appellant = citizen(&app, "appellant_1", "13700000022").await;
    let now = app.state.clock.now();
    appeal::ActiveModel {
        id: Set("ap-1".into()),
        kind: Set("phone".into()),
        claimed_value: Set("13700000021".into()),
        name: Set("张三".into()),
        id_number: Set("11010519491231002X".into()),
        contact_phone: Set("13700000023".into()),
        details: Set("my number".into()),
        appellant_user_id: Set(Some(appellant.clone())),
        status: Set("pending".into()),
        reason: Set(None),
        decided_by: Set(None),
        created_at: Set(now),
        decided_at: Set(None),
    }
    .insert(&app.state.store)
    .await
    .unwrap();
    let b = console(&app, "the_reviewer2", &secret).await;
    let (status, html) = get(&b, app.url("/admin/appeals")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-appeal=\"ap-1\""));
    let csrf = hidden(&html, "csrf").unwrap();
    // A rejection needs a reason.
    let res = post(&b, app.url("/admin/appeals/ap-1"), &[("csrf", &csrf), ("action", "reject"), ("reason", "")]).await;
    assert_eq!(res.status(), 400);
    let res = post(&b, app.url("/admin/appeals/ap-1"), &[("csrf", &csrf), ("action", "approve"), ("reason", "")]).await;
    assert_eq!(res.status(), 200);
    let u = app.state.users.find(&appellant).await.unwrap().unwrap();
    assert_eq!(u.phone.as_deref(), Some("13700000021"), "the phone moved to the appellant");
    assert_eq!(app.state.users.find(&holder).await.unwrap().unwrap().phone, None);
    assert!(sink(&app, "sms", "13700000023").await.unwrap().contains("ap-1"));
    // Decided once.
    let res =
        post(&b, app.url("/admin/appeals/ap-1"), &[("csrf", &csrf), ("action", "reject"), ("reason", "no")]).await;
    assert_eq!(res.status(), 404);

    // Statistics of seeded days match the count; the audit viewer filters.
    let (_, secret) = staff_account(&app, "the_auditor2", "13700000030", Role::Auditor, &[]).await;
    let today = now - now.rem_euclid(86_400);
    let seed = [
        (today - 2 * 86_400 + 5, "sign_in", 3),
        (today - 86_400 + 7, "register", 2),
        (today - 86_400 + 9, "identity_face", 4),
    ];
    for (at, action, n) in seed {
        for i in 0..n {
            let detail = format!("outcome=success actor=user:seed{i} subject=session:s{i}");
            idp::domain::identity::accounts::audit(&app.state.store, None, action, &detail, None, at).await.unwrap();
        }
    }
    let failure = "outcome=failure actor=anonymous subject=login:name:x";
    idp::domain::identity::accounts::audit(&app.state.store, None, "sign_in", failure, None, today - 2 * 86_400 + 9)
        .await
        .unwrap();
    let b = console(&app, "the_auditor2", &secret).await;
    let (status, html) = get(&b, app.url("/admin/stats?days=7")).await;
    assert_eq!(status, 200);
    let day = |offset: i64| {
        let label =
            chrono::DateTime::from_timestamp(today - offset * 86_400, 0).unwrap().format("%Y-%m-%d").to_string();
        html.split(&format!("data-day=\"{label}\"")).nth(1).unwrap().split("</tr>").next().unwrap().to_string()
    };
    assert!(day(2).contains("<td class=\"n-sign-ins\">3</td>") && day(2).contains("<td>1</td>"), "{}", day(2));
    assert!(
        day(1).contains("<td class=\"n-registrations\">2</td>")
            && day(1).contains("<td class=\"n-verifications\">4</td>")
    );
    let (status, html) = get(&b, app.url("/admin/audit?event=appeal_approved")).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("data-action=\"appeal_approved\"").count(), 1);
    assert!(!html.contains("data-action=\"register\""));
    let (_, html) = get(&b, app.url("/admin/audit?actor=user:seed1")).await;
    assert_eq!(html.matches("<tr data-action=").count(), 3, "{html}");
    let (_, html) = get(&b, app.url("/admin/audit?subject=appeal:ap-1")).await;
    assert_eq!(html.matches("<tr data-action=").count(), 1);
}
both!(console_appeals_audit_and_stats, super::appeals_audit_stats);

/// The first admin comes from `idp staff grant`; `list` and `revoke` see
/// the same rows the console does.
async fn staff_cli(backend: Backend) {
    let app = spawn(backend).await;
    let id = app.user("first_admin1").await;
    let run = |args: &[&str]| crate::ops::idp_cmd(&app.dir, &app.database_url).args(args).output().unwrap();
    let out = run(&["staff", "grant", "first_admin1", "platform_admin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = staff::load(&app.state.store, &id).await.unwrap().unwrap();
    assert_eq!(s.roles, vec![Role::PlatformAdmin]);
    let out = run(&["staff", "grant", "first_admin1", "app_admin"]);
    assert!(!out.status.success(), "app_admin needs --app");
    assert!(!run(&["staff", "grant", "first_admin1", "emperor"]).status.success());
    assert!(!run(&["staff", "grant", "nobody_here1", "auditor"]).status.success());
    let out = run(&["staff", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["role"], "platform_admin");
    assert!(run(&["staff", "revoke", "first_admin1", "platform_admin"]).status.success());
    assert!(staff::load(&app.state.store, &id).await.unwrap().is_none());
    assert_eq!(audited(&app, "staff_granted").await.len(), 1);
    assert!(audited(&app, "staff_revoked").await[0].contains("actor=operator:cli"));
}
both!(console_staff_cli, super::staff_cli);
