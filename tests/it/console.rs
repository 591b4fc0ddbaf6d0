//! The operator console (issue 15) over HTTP: the gate (staff role, L3, a
//! fresh authenticator-app code), what each role may and may not do,
//! suspend / restore, apps, appeals, the audit viewer and statistics.
use crate::both;
use crate::factors::{
    app_code, begin_auth, citizen, get, password_sign_in, post, register_passkey, reverify, sign, spawn_localhost,
};
use crate::support::*;
use crate::tokens::refresh;
use idp::domain::staff::{self, Granter, Role};
use idp::store::entities::{appeal, audit};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

/// An account with `role`, real-person proofed (L3) and an enrolled
/// authenticator app, two-step sign-in off; returns (account id, TOTP secret).
pub(crate) async fn staff_account(
    app: &TestApp,
    username: &str,
    phone: &str,
    role: Role,
    apps: &[&str],
) -> (String, String) {
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
pub(crate) async fn step_up(app: &TestApp, b: &Browser, secret: &str) -> reqwest::Response {
    app.state.clock.advance(30);
    let (status, html) = get(b, app.url("/admin/step-up")).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let code = app_code(secret, app.state.clock.now());
    post(b, app.url("/admin/step-up"), &[("csrf", &csrf), ("code", &code)]).await
}

/// A staff browser past the console's gate, signed in as the console's
/// OIDC client: password at the provider, then `/admin`.
pub(crate) async fn console(app: &TestApp, username: &str, secret: &str) -> Browser {
    let b = password_sign_in(app, username).await;
    console_sign_in(app, &b, secret).await;
    b
}

fn absolute(app: &TestApp, url: String) -> String {
    if url.starts_with('/') { app.url(&url) } else { url }
}

/// `/admin` without a console session: the authorization request of the
/// console's client (PKCE, state, nonce, L3, max_age); the provider's own
/// step-up asks for the authenticator app (the session has only a
/// password); the code comes back to `/admin/callback`, which opens the
/// console session.
pub(crate) async fn console_sign_in(app: &TestApp, b: &Browser, secret: &str) {
    let to = console_authorize(app, b).await;
    let res = b.http.get(&to).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let step = absolute(app, location(&res).unwrap());
    assert!(step.starts_with(&app.url("/step-up?req=")), "the provider asks for L3: {step}");
    let req = query_of(&step)["req"].clone();
    app.state.clock.advance(30);
    let (status, html) = get(b, app.url(&format!("/mfa/totp?req={req}"))).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let code = app_code(secret, app.state.clock.now());
    let res = post(b, app.url("/mfa/totp"), &[("req", &req), ("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let callback = to_callback(app, b, location(&res).unwrap()).await;
    let res = b.http.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).unwrap().ends_with("/admin"));
    let (status, html) = get(b, app.url("/admin")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"admin-nav\""));
}

/// `/admin` answered with the console's authorization request; checks it.
pub(crate) async fn console_authorize(app: &TestApp, b: &Browser) -> String {
    let res = b.http.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = absolute(app, location(&res).unwrap());
    assert!(to.starts_with(&app.url("/authorize?")), "{to}");
    let q = query_of(&to);
    assert_eq!(q["client_id"], "idp-console");
    assert_eq!(q["redirect_uri"], app.url("/admin/callback"));
    assert_eq!(q["acr_values"], "urn:idp:loa:3");
    assert_eq!((q["response_type"].as_str(), q["code_challenge_method"].as_str()), ("code", "S256"));
    assert_eq!(q["max_age"], app.state.config.assurance.l3_max_age.to_string());
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32 && q["code_challenge"].len() == 43);
    to
}

/// Follows the provider's redirects until the console's callback URL.
pub(crate) async fn to_callback(app: &TestApp, b: &Browser, from: String) -> String {
    let mut url = absolute(app, from);
    for _ in 0..6 {
        if url.starts_with(&app.url("/admin/callback?")) {
            return url;
        }
        let res = b.http.get(&url).send().await.unwrap();
        let status = res.status();
        url = match location(&res) {
            Some(l) => absolute(app, l),
            None => panic!("{url}: {status} {}", res.text().await.unwrap()),
        };
    }
    panic!("never reached the console's callback: {url}");
}

pub(crate) async fn csrf_of(app: &TestApp, b: &Browser, path: &str) -> String {
    let (status, html) = get(b, app.url(path)).await;
    assert_eq!(status, 200, "{path}: {html}");
    hidden(&html, "csrf").unwrap()
}

pub(crate) async fn audited(app: &TestApp, action: &str) -> Vec<String> {
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
    // Nobody signed in: the console's sign-in through the provider starts.
    let res = Browser::new().http.get(app.url("/admin/people")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res).unwrap();
    assert!(to.starts_with(&app.url("/authorize?")) && to.contains("client_id=idp-console"), "{to}");
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
    // Rotating its own secret: shown once, the old one still works during the grace period (see app_lifecycle).
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
    assert_eq!(cc(mine.secret.clone().unwrap()).await.status(), 200);
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

/// A staff member whose strong factor went stale steps up with a passkey on
/// the provider's own page, comes back to the console and may act; a
/// return address outside our own pages is ignored.
async fn passkey_step_up(backend: Backend) {
    let app = spawn_localhost(backend).await;
    let (_, secret) = staff_account(&app, "passkey_boss", "13700000031", Role::PlatformAdmin, &[]).await;
    let target = app.user("sign_me_out1").await;
    let b = console(&app, "passkey_boss", &secret).await;
    let (csrf, flow) = reverify(&app, &b, "13700000031").await;
    let mut key = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    assert_eq!(register_passkey(&app, &b, &mut key, &csrf, &flow, "Boss key").await.status(), 303);
    let page = format!("/admin/people/{target}");
    for next in ["/admin", "//evil.example/admin"] {
        app.state.clock.advance(staff::SENSITIVE_MAX_AGE + 1);
        let csrf = csrf_of(&app, &b, &page).await;
        let act = [("csrf", csrf.as_str()), ("action", "sign_out"), ("reason", "")];
        let res = post(&b, app.url(&page), &act).await;
        assert_eq!(res.status(), 303);
        assert!(location(&res).unwrap().contains("/admin/step-up?fresh=1"));
        let (status, html) = get(&b, app.url("/admin/step-up?fresh=1")).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("href=\"/mfa/passkey?next=/admin\""), "{html}");
        let (status, html) = get(&b, app.url(&format!("/mfa/passkey?next={next}"))).await;
        assert_eq!(status, 200, "{html}");
        let own = next == "/admin";
        assert_eq!(hidden(&html, "next").is_some(), own, "only our own pages are carried on");
        let csrf = hidden(&html, "csrf").unwrap();
        let (ceremony, options) = begin_auth(&b, app.url("/mfa/passkey/begin"), &[("csrf", &csrf)]).await;
        let credential = sign(&app, &mut key, options);
        let form = [("csrf", csrf.as_str()), ("next", next), ("ceremony", &ceremony), ("credential", &credential)];
        let res = post(&b, app.url("/mfa/passkey"), &form).await;
        assert_eq!(res.status(), 303);
        let to = location(&res).unwrap();
        assert_eq!(to, app.url(if own { "/admin" } else { "/account" }));
        // The passkey in the same SSO session makes the console fresh.
        let res = post(&b, app.url(&page), &act).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    assert_eq!(audited(&app, "staff_signed_out").await.len(), 2);
}
both!(console_passkey_step_up, super::passkey_step_up);

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
    let seed = [(today - 2 * 86_400 + 5, "sign_in", 3), (today - 86_400 + 7, "register", 2)];
    // Identity checks are counted where every check is recorded.
    for i in 0..4 {
        let subject = format!("face s{i}");
        idp::domain::identity::record(&app.state.store, None, "face", &subject, "pass", None, None, today - 86_400 + 9)
            .await
            .unwrap();
    }
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
    let cell = |metric: &str, n: u64| format!("<td data-metric=\"{metric}\">{n}</td>");
    assert!(day(2).contains(&cell("sign_in", 3)) && day(2).contains(&cell("sign_in_failure", 1)), "{}", day(2));
    assert!(day(1).contains(&cell("registration", 2)) && day(1).contains(&cell("verification", 4)), "{}", day(1));
    let (status, html) = get(&b, app.url("/admin/audit?event=appeal_approved")).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("data-action=\"appeal_approved\"").count(), 1);
    assert!(!html.contains("data-action=\"register\""));
    let (_, html) = get(&b, app.url("/admin/audit?actor=user:seed1")).await;
    assert_eq!(html.matches("<tr data-action=").count(), 2, "{html}");
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

/// Apps in the console (G1): disable / enable (authorize and the token
/// endpoint refuse a disabled app), the previous secret during the grace
/// period after a rotation, plugin scopes granted and revoked at once, and
/// the JWK Set of a private_key_jwt app — each audited with the staff id.
async fn app_lifecycle(backend: Backend) {
    let app = crate::plugin_kit::spawn_plugins(backend, &[crate::plugin_kit::EXAMPLE], |_, _| {}).await;
    let mine = app.confidential().await;
    let (admin_id, secret) = staff_account(&app, "apps_admin", "13700000021", Role::PlatformAdmin, &[]).await;
    let adm = console(&app, "apps_admin", &secret).await;
    let path = format!("/admin/apps/{}", mine.id);
    let csrf = csrf_of(&app, &adm, &path).await;
    let act = |action: &'static str, extra: Vec<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf.clone()), ("action", action.to_string())];
        form.extend(extra);
        adm.http.post(app.url(&path)).form(&form).send()
    };
    let cc = |s: String| {
        let id = mine.id.clone();
        let url = app.url("/token");
        async move {
            api().post(url).basic_auth(&id, Some(s)).form(&[("grant_type", "client_credentials")]).send().await.unwrap()
        }
    };
    let old = mine.secret.clone().unwrap();
    assert_eq!(cc(old.clone()).await.status(), 200);

    // Disabled: the token endpoint answers invalid_client, /authorize sends
    // unauthorized_client back to the registered redirect URI.
    let res = act("disable", vec![]).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"app-disabled\""));
    let res = cc(old.clone()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_client");
    let res = Browser::new().http.get(auth_url(&app, &mine, &[])).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res).unwrap();
    assert!(to.starts_with(&mine.redirect_uri), "{to}");
    let q = query_of(&to);
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("unauthorized_client", "st-123"));
    assert_eq!(act("enable", vec![]).await.unwrap().status(), 200);
    assert_eq!(cc(old.clone()).await.status(), 200);
    assert_eq!(audited(&app, "client_disabled").await.len(), 1);
    assert!(audited(&app, "client_enabled").await[0].contains(&format!("actor=staff:{admin_id}")));

    // A plugin scope granted and revoked at once; unknown scopes refused.
    let res = act("allow_scope", vec![("scope", "example".into())]).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("data-scope=\"example\" data-granted=\"1\""));
    let permitted = || idp::domain::plugins::plugin_access::permitted(&app.state.store, &mine.id);
    assert_eq!(permitted().await.unwrap(), vec!["example".to_string()]);
    assert!(audited(&app, "client_scope_allowed").await[0].contains(&format!("actor=staff:{admin_id}")));
    assert_eq!(act("deny_scope", vec![("scope", "example".into())]).await.unwrap().status(), 200);
    assert!(permitted().await.unwrap().is_empty());
    assert_eq!(act("allow_scope", vec![("scope", "nonexistent".into())]).await.unwrap().status(), 400);
    assert!(permitted().await.unwrap().is_empty());

    // Keys of a private_key_jwt app: a public key set is stored, a private
    // part refused; a secret app has no keys to set.
    let keyed = app
        .client(|c| {
            c.auth_method = Some(idp::domain::clients::AuthMethod::PrivateKeyJwt);
            c.jwks = Some(serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "old",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}));
        })
        .await;
    let kpath = format!("/admin/apps/{}", keyed.id);
    let (status, html) = get(&adm, app.url(&kpath)).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"app-jwks\""));
    let new_key = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"new","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    let send_jwks = |p: String, jwks: String| {
        adm.http.post(app.url(&p)).form(&[("csrf", csrf.clone()), ("action", "jwks".into()), ("jwks", jwks)]).send()
    };
    assert_eq!(send_jwks(kpath.clone(), new_key.into()).await.unwrap().status(), 200);
    let c = app.state.clients.find(&keyed.id).await.unwrap().unwrap();
    assert_eq!(c.keys()[0]["kid"], "new");
    let private = new_key.replace("\"kid\"", "\"d\":\"AAAA\",\"kid\"");
    assert_eq!(send_jwks(kpath.clone(), private).await.unwrap().status(), 400);
    assert_eq!(send_jwks(kpath.clone(), "not json".into()).await.unwrap().status(), 400);
    assert_eq!(send_jwks(path.clone(), new_key.into()).await.unwrap().status(), 400, "a secret app has no keys");
    let c = app.state.clients.find(&keyed.id).await.unwrap().unwrap();
    assert_eq!(c.keys()[0]["kid"], "new");
    assert_eq!(audited(&app, "client_jwks_updated").await.len(), 1);

    // Rotation: the old secret keeps working for 24 h, then only the new one.
    let res = act("rotate", vec![]).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"secret-grace\""));
    let new = html.split("<code id=\"client-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert_eq!(cc(old.clone()).await.status(), 200, "old secret during the grace period");
    assert_eq!(cc(new.clone()).await.status(), 200);
    app.state.clock.advance(24 * 3600 - 60);
    assert_eq!(cc(old.clone()).await.status(), 200);
    app.state.clock.advance(61);
    assert_eq!(cc(old).await.status(), 401, "grace over");
    assert_eq!(cc(new).await.status(), 200);
}
both!(console_app_lifecycle, super::app_lifecycle);

/// Resetting a person's factors after an identity check: the check and a
/// reason are required, the authenticator app and recovery codes go, every
/// session and refresh token ends, and the reset is audited.
async fn reset_factors(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let (admin_id, secret) = staff_account(&app, "reset_boss", "13700000030", Role::PlatformAdmin, &[]).await;
    // A citizen with an authenticator app and a refresh token.
    let (target, _) = staff_account(&app, "lost_phone1", "13700000031", Role::Auditor, &[]).await;
    staff::revoke(&app.state.store, &app.state.users, Granter::Cli("test"), "lost_phone1", Role::Auditor, None, 0)
        .await
        .unwrap();
    let (code, _) = sign_in(&app, &client, "lost_phone1", &[]).await;
    let rt = json(redeem(&app, &client, &code, None).await).await["refresh_token"].as_str().unwrap().to_string();
    let b = console(&app, "reset_boss", &secret).await;
    let page = format!("/admin/people/{target}");
    let (status, html) = get(&b, app.url(&page)).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"reset-factors\""));
    let csrf = hidden(&html, "csrf").unwrap();
    let reset = |check: &'static str, reason: &'static str| {
        let form = vec![
            ("csrf", csrf.clone()),
            ("action", "reset_factors".into()),
            ("check", check.into()),
            ("reason", reason.into()),
        ];
        b.http.post(app.url(&page)).form(&form).send()
    };
    assert_eq!(reset("", "lost phone, ticket 7").await.unwrap().status(), 400, "the identity check is required");
    assert_eq!(reset("in_person", "").await.unwrap().status(), 400, "a reason is required");
    assert!(app.state.totp.enrolled(&target).await.unwrap());
    let res = reset("in_person", "lost phone, ticket 7").await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(!app.state.totp.enrolled(&target).await.unwrap(), "the authenticator app is gone");
    assert_eq!(json(refresh(&app, &client, &rt).await).await["error"], "invalid_grant");
    let done = audited(&app, "staff_factors_reset").await;
    assert_eq!(done.len(), 1);
    assert!(
        done[0].contains(&format!("actor=staff:{admin_id}"))
            && done[0].contains("check=in_person")
            && done[0].contains("totp=1"),
        "{done:?}"
    );
    // The account stays usable with its password.
    let (code, _) = sign_in(&app, &client, "lost_phone1", &[]).await;
    assert_eq!(redeem(&app, &client, &code, None).await.status(), 200);
}
both!(console_reset_factors, super::reset_factors);

/// Plugins in the console: a platform admin sees health and scopes,
/// disables and enables a plugin, and opens its admin pages with the staff
/// session instead of the shared token — each audited with the staff id;
/// other staff are refused.
async fn plugins_in_console(backend: Backend) {
    let app = crate::plugin_kit::spawn_plugins(backend, &[crate::plugin_kit::EXAMPLE], |_, _| {}).await;
    let (admin_id, secret) = staff_account(&app, "plugin_boss", "13700000041", Role::PlatformAdmin, &[]).await;
    let b = console(&app, "plugin_boss", &secret).await;
    let (status, html) = get(&b, app.url("/admin/plugins")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-plugin=\"example\" data-enabled=\"true\" data-healthy=\"true\""), "{html}");
    // (Tera escapes the slashes of the link; a browser reads them back.)
    assert!(html.contains("href=\"&#x2F;plugins&#x2F;example&#x2F;admin&#x2F;visits\""), "{html}");
    // The plugin's admin route opens with the staff session.
    let res = b.http.get(app.url("/plugins/example/admin/visits")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let calls = audited(&app, "plugin_admin_call").await;
    assert!(calls.len() == 1 && calls[0].contains(&format!("actor=staff:{admin_id}")), "{calls:?}");
    // Disabled from the console: its routes are gone; enabled again.
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&b, app.url("/admin/plugins/example"), &[("csrf", &csrf), ("action", "disable")]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("data-enabled=\"false\""));
    assert!(audited(&app, "plugin_disabled").await[0].contains(&format!("actor=staff:{admin_id}")));
    assert_eq!(b.http.get(app.url("/plugins/example/admin/visits")).send().await.unwrap().status(), 404);
    let res = post(&b, app.url("/admin/plugins/example"), &[("csrf", &csrf), ("action", "enable")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(b.http.get(app.url("/plugins/example/admin/visits")).send().await.unwrap().status(), 200);
    assert_eq!(post(&b, app.url("/admin/plugins/nope"), &[("csrf", &csrf), ("action", "enable")]).await.status(), 404);
    // Other staff: no plugin administration, no plugin admin pages.
    let (_, secret) = staff_account(&app, "plugin_auditor", "13700000042", Role::Auditor, &[]).await;
    let aud = console(&app, "plugin_auditor", &secret).await;
    assert_eq!(get(&aud, app.url("/admin/plugins")).await.0, 403);
    assert_eq!(aud.http.get(app.url("/plugins/example/admin/visits")).send().await.unwrap().status(), 403);
    let res = post(&aud, app.url("/admin/plugins/example"), &[("csrf", &csrf), ("action", "disable")]).await;
    assert_eq!(res.status(), 403);
    // The shared token still works for scripts; without either, 401.
    assert_eq!(api().get(app.url("/plugins/example/admin/visits")).send().await.unwrap().status(), 401);
}
both!(console_plugins, super::plugins_in_console);
