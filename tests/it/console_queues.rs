//! The console as an OIDC client of the provider (sign-in refused without
//! L3 and a strong factor, state / code bound to the browser, sign-out),
//! the reviewers' queues (representative and phone changes, kin-binding
//! reports, feedback) each decided once, the FAQ, enterprises by credit
//! code, and the roles over all of them (issue 15, G3) — over HTTP.
use crate::both;
use crate::console::{audited, console, console_authorize, csrf_of, staff_account, to_callback};
use crate::delegation::{USCC, enterprise};
use crate::face_gates::ZHANG;
use crate::factors::{citizen, get, password_sign_in, post};
use crate::support::*;
use idp::domain::staff::Role;
use idp::store::entities::{delegation as delegation_e, kin_report, session};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

/// Whether `/admin` opens for this browser (else it starts a sign-in).
async fn in_console(app: &TestApp, b: &Browser) -> bool {
    b.http.get(app.url("/admin")).send().await.unwrap().status() == 200
}

async fn oidc_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let (admin_id, secret) = staff_account(&app, "console_boss", "13700000101", Role::PlatformAdmin, &[]).await;
    // The console's client is the provider's own and cannot be edited from the console.
    let c = app.state.clients.find("idp-console").await.unwrap().unwrap();
    assert_eq!(c.redirect_uris, vec![app.url("/admin/callback")]);
    assert_eq!((c.min_level, c.skip_consent, c.is_public()), (Some(3), true, true));

    // L3 reached with a password and an SMS code: no strong factor, so the
    // callback opens no console session and sends to the console's step-up.
    let b = password_sign_in(&app, "console_boss").await;
    let now = app.state.clock.now();
    let factors = format!(r#"[{{"f":"password","t":{now}}},{{"f":"sms","t":{now}}}]"#);
    session::Entity::update_many()
        .col_expr(session::Column::Factors, Expr::value(factors))
        .col_expr(session::Column::AuthTime, Expr::value(now))
        .filter(session::Column::UserId.eq(admin_id.as_str()))
        .exec(&app.state.store)
        .await
        .unwrap();
    let to = console_authorize(&app, &b).await;
    let callback = to_callback(&app, &b, to).await;
    let res = b.http.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/admin/step-up"), "{:?}", location(&res));
    assert!(!in_console(&app, &b).await, "no console session without a strong factor");
    assert!(audited(&app, "console_signed_in").await.is_empty());
    // The same code again: refused (the flow is gone, the code used).
    assert_eq!(b.http.get(&callback).send().await.unwrap().status(), 400);
    // The console's step-up page adds the authenticator app; the sign-in then succeeds.
    assert_eq!(crate::console::step_up(&app, &b, &secret).await.status(), 303);
    let to = console_authorize(&app, &b).await;
    let callback = to_callback(&app, &b, to).await;
    // A callback carrying another state, or in another browser, is refused.
    let forged = callback.replace("state=", "state=x");
    assert_eq!(b.http.get(&forged).send().await.unwrap().status(), 400);
    let to = console_authorize(&app, &b).await;
    let callback = to_callback(&app, &b, to).await;
    assert_eq!(Browser::new().http.get(&callback).send().await.unwrap().status(), 400, "no flow cookie");
    let to = console_authorize(&app, &b).await;
    let callback = to_callback(&app, &b, to).await;
    let res = b.http.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(in_console(&app, &b).await);
    let signed_in = audited(&app, "console_signed_in").await;
    assert!(signed_in.len() == 1 && signed_in[0].contains(&format!("actor=staff:{admin_id}")), "{signed_in:?}");

    // Signing out of the console ends the console session only.
    let csrf = csrf_of(&app, &b, "/admin").await;
    let res = post(&b, app.url("/admin/logout"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert!(!in_console(&app, &b).await);
    assert_eq!(audited(&app, "console_signed_out").await.len(), 1);
    assert_eq!(get(&b, app.url("/account")).await.0, 200, "the provider session stays");

    // The provider session ending ends the console session too.
    let b = console(&app, "console_boss", &secret).await;
    idp::domain::authn::sessions::revoke_all_for_user(&app.state.store, &admin_id).await.unwrap();
    assert!(!in_console(&app, &b).await);

    // A staff member below L3 is refused before any sign-in.
    let (low, _) = staff_account(&app, "console_low", "13700000102", Role::Reviewer, &[]).await;
    idp::domain::assurance::set_proofing_level(&app.state.store, &low, 2).await.unwrap();
    let b = password_sign_in(&app, "console_low").await;
    assert_eq!(get(&b, app.url("/admin")).await.0, 403);
}
both!(console_oidc_sign_in, super::oidc_sign_in);

async fn queues(backend: Backend) {
    let app = spawn(backend).await;
    let (rev_id, secret) = staff_account(&app, "queue_reviewer", "13700000201", Role::Reviewer, &[]).await;
    let now = app.state.clock.now();
    // A phone change request of an enterprise (C5).
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let change = idp::domain::delegation::enterprises::file_change(
        &app.state.store,
        &ent,
        "phone",
        ZHANG.0,
        ZHANG.1,
        "13700000299",
        now,
    )
    .await
    .unwrap();
    // A kin binding reported by another guardian.
    let guardian = citizen(&app, "kin_guardian1", "13700000202").await;
    let reporter = citizen(&app, "kin_reporter1", "13700000203").await;
    delegation_e::ActiveModel {
        id: Set("kin-d1".into()),
        kind: Set("kin".into()),
        enterprise_id: Set(None),
        principal_user_id: Set(None),
        relative_name: Set(Some("王小明".into())),
        relative_id_number: Set(Some("11010520150101001X".into())),
        relation: Set(Some("child".into())),
        grantee_user_id: Set(guardian.clone()),
        scopes: Set(String::new()),
        valid_from: Set(None),
        valid_to: Set(None),
        state: Set("active".into()),
        reason: Set(None),
        face_at: Set(None),
        agent_password_hash: Set(None),
        created_at: Set(now),
        modified_at: Set(now),
    }
    .insert(&app.state.store)
    .await
    .unwrap();
    kin_report::ActiveModel {
        id: Set("kr-1".into()),
        delegation_id: Set("kin-d1".into()),
        relative_id_number: Set("11010520150101001X".into()),
        reporter_user_id: Set(reporter.clone()),
        reason: Set("not the parent".into()),
        status: Set("pending".into()),
        created_at: Set(now),
        decided_at: Set(None),
        decided_by: Set(None),
    }
    .insert(&app.state.store)
    .await
    .unwrap();

    // A citizen sends an error report from the apps page; a bad form comes
    // back with the typed text and the message at the field.
    let cb = password_sign_in(&app, "kin_reporter1").await;
    let (status, html) = get(&cb, app.url("/feedback?from=/account/apps&kind=error_report")).await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"page\" value=\"&#x2F;account&#x2F;apps\""), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let form = |kind: &'static str, body: &'static str| {
        vec![("csrf", csrf.clone()), ("kind", kind.into()), ("page", "/account/apps".into()), ("body", body.into())]
    };
    let res = cb.http.post(app.url("/feedback")).form(&form("complaint", "typed text kept")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("data-key=\"feedback_kind_rule\"") && html.contains("typed text kept"));
    let res = cb.http.post(app.url("/feedback")).form(&form("error_report", "   ")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = cb.http.post(app.url("/feedback")).form(&form("error_report", "应用列表缺了一个")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/account/feedback?sent=1"));
    let (_, html) = get(&cb, app.url("/account/feedback?sent=1")).await;
    assert!(html.contains("id=\"feedback-sent\"") && html.contains("应用列表缺了一个"));
    assert!(html.contains("data-status=\"pending\""));
    // The frame links the FAQ and the feedback form (with the page) everywhere.
    let (_, html) = get(&cb, app.url("/account/apps")).await;
    assert!(html.contains("id=\"frame-faq\"") && html.contains("id=\"frame-feedback\""), "{html}");

    let b = console(&app, "queue_reviewer", &secret).await;
    let operator = format!("staff:{rev_id}");

    // The change request: listed masked, decided once, the applicant told by SMS.
    let (status, html) = get(&b, app.url("/admin/changes")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("data-change=\"{change}\"")) && html.contains("137****0299"), "{html}");
    assert!(!html.contains("13700000299"), "masked");
    let csrf = hidden(&html, "csrf").unwrap();
    let path = format!("/admin/changes/{change}");
    let res = post(&b, app.url(&path), &[("csrf", &csrf), ("action", "reject"), ("reason", "")]).await;
    assert_eq!(res.status(), 400, "a rejection needs a reason");
    let res = post(&b, app.url(&path), &[("csrf", &csrf), ("action", "approve"), ("reason", "")]).await;
    assert_eq!(res.status(), 200);
    let e = idp::domain::delegation::enterprises::find(&app.state.store, &ent).await.unwrap().unwrap();
    assert_eq!(e.representative_phone, "13700000299");
    assert!(sink(&app, "sms", "13700000299").await.is_some(), "the applicant hears the outcome");
    let res = post(&b, app.url(&path), &[("csrf", &csrf), ("action", "reject"), ("reason", "late")]).await;
    assert_eq!(res.status(), 404, "decided once");
    let approved = audited(&app, "enterprise_change_approved").await;
    assert!(approved.len() == 1 && approved[0].contains(&operator), "{approved:?}");

    // The kin report: the binding removed, decided once, the reporter told.
    let (status, html) = get(&b, app.url("/admin/kin-reports")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-report=\"kr-1\"") && !html.contains("11010520150101001X"), "{html}");
    let res = post(&b, app.url("/admin/kin-reports/kr-1"), &[("csrf", &csrf), ("action", "remove")]).await;
    assert_eq!(res.status(), 200);
    let d = delegation_e::Entity::find_by_id("kin-d1".to_string()).one(&app.state.store).await.unwrap().unwrap();
    assert_eq!(d.state, "revoked");
    assert!(sink(&app, "sms", "13700000203").await.is_some(), "the reporter hears the outcome");
    let res = post(&b, app.url("/admin/kin-reports/kr-1"), &[("csrf", &csrf), ("action", "dismiss")]).await;
    assert_eq!(res.status(), 404, "decided once");
    assert!(audited(&app, "kin_report_removed").await[0].contains(&operator));

    // Feedback: answered once; the citizen reads the answer.
    let (status, html) = get(&b, app.url("/admin/feedback")).await;
    assert_eq!(status, 200);
    let id = html.split("data-feedback=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert!(html.contains("&#x2F;account&#x2F;apps"), "the page it came from: {html}");
    let path = format!("/admin/feedback/{id}");
    assert_eq!(post(&b, app.url(&path), &[("csrf", &csrf), ("reason", " ")]).await.status(), 400);
    let res = post(&b, app.url(&path), &[("csrf", &csrf), ("reason", "已修复，谢谢")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(post(&b, app.url(&path), &[("csrf", &csrf), ("reason", "again")]).await.status(), 404);
    let (_, html) = get(&cb, app.url("/account/feedback")).await;
    assert!(html.contains(&format!("id=\"answer-{id}\"")) && html.contains("已修复，谢谢"), "{html}");
    assert!(audited(&app, "feedback_answered").await[0].contains(&format!("actor=staff:{rev_id}")));

    // The FAQ: a category and a question made in the console, found by search.
    let faq = |form: Vec<(&'static str, String)>| b.http.post(app.url("/admin/faq")).form(&form).send();
    let res = faq(vec![("csrf", csrf.clone()), ("action", "save_category".into()), ("name", "账号与登录".into())])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let cat = html.split("data-category=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let q = vec![
        ("csrf", csrf.clone()),
        ("action", "save_item".into()),
        ("category", cat.clone()),
        ("question", "忘记密码怎么办？".into()),
        ("answer", "在登录页点击“忘记密码”。".into()),
    ];
    assert_eq!(faq(q.clone()).await.unwrap().status(), 200);
    let mut bad = q.clone();
    bad[4].1 = String::new();
    assert_eq!(faq(bad).await.unwrap().status(), 400, "an answer is required");
    let (status, html) = get(&Browser::new(), app.url("/faq?q=忘记")).await;
    assert_eq!(status, 200);
    assert!(html.contains("忘记密码怎么办？") && html.contains(&format!("data-category=\"{cat}\"")));
    let (_, html) = get(&Browser::new(), app.url("/faq?q=nothing-like-this")).await;
    assert!(html.contains("id=\"faq-none\"") && !html.contains("忘记密码怎么办？"));
    let res =
        faq(vec![("csrf", csrf.clone()), ("action", "delete_category".into()), ("id", cat.clone())]).await.unwrap();
    assert_eq!(res.status(), 200);
    let (_, html) = get(&Browser::new(), app.url("/faq")).await;
    assert!(!html.contains("忘记密码怎么办？"), "deleted with its category");
}
both!(console_queues_decided_once, super::queues);

async fn roles(backend: Backend) {
    let app = spawn(backend).await;
    let now = app.state.clock.now();
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let change = idp::domain::delegation::enterprises::file_change(
        &app.state.store,
        &ent,
        "phone",
        ZHANG.0,
        ZHANG.1,
        "13700000399",
        now,
    )
    .await
    .unwrap();
    let (_, secret) = staff_account(&app, "role_auditor", "13700000301", Role::Auditor, &[]).await;
    let aud = console(&app, "role_auditor", &secret).await;
    let csrf = csrf_of(&app, &aud, "/admin").await;
    // An auditor reads people and enterprises, and changes nothing.
    for path in ["/admin/changes", "/admin/kin-reports", "/admin/feedback", "/admin/faq"] {
        assert_eq!(get(&aud, app.url(path)).await.0, 403, "{path}");
    }
    let decide = [("csrf", csrf.as_str()), ("action", "approve"), ("reason", "")];
    assert_eq!(post(&aud, app.url(&format!("/admin/changes/{change}")), &decide).await.status(), 403);
    assert_eq!(
        post(&aud, app.url("/admin/kin-reports/x"), &[("csrf", &csrf), ("action", "remove")]).await.status(),
        403
    );
    assert_eq!(post(&aud, app.url("/admin/feedback/x"), &[("csrf", &csrf), ("reason", "hi")]).await.status(), 403);
    let faq = [("csrf", csrf.as_str()), ("action", "save_category"), ("name", "x")];
    assert_eq!(post(&aud, app.url("/admin/faq"), &faq).await.status(), 403);
    let e = idp::domain::delegation::enterprises::find(&app.state.store, &ent).await.unwrap().unwrap();
    assert_eq!(e.representative_phone, "13900000009", "nothing changed");
    // Enterprises by credit code, masked; a malformed code is told at the field.
    let (status, html) = get(&aud, app.url(&format!("/admin/enterprises?uscc={USCC}"))).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("data-enterprise=\"{ent}\"")) && html.contains("139****0009"), "{html}");
    assert!(!html.contains(ZHANG.1) && !html.contains("13900000009"), "masked");
    let (status, html) = get(&aud, app.url("/admin/enterprises?uscc=91440300708461136A")).await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"uscc-error\""));
    // The console's own client cannot be changed, not even by a platform admin.
    let (_, secret) = staff_account(&app, "role_boss", "13700000302", Role::PlatformAdmin, &[]).await;
    let boss = console(&app, "role_boss", &secret).await;
    let boss_csrf = csrf_of(&app, &boss, "/admin").await;
    let res = post(&boss, app.url("/admin/apps/idp-console"), &[("csrf", &boss_csrf), ("action", "disable")]).await;
    assert_eq!(res.status(), 403);
    assert!(!app.state.clients.find("idp-console").await.unwrap().unwrap().disabled);
    // A reviewer decides queues but cannot grant roles.
    let (_, secret) = staff_account(&app, "role_reviewer", "13700000303", Role::Reviewer, &[]).await;
    let rev = console(&app, "role_reviewer", &secret).await;
    assert_eq!(get(&rev, app.url("/admin/changes")).await.0, 200);
    let csrf = csrf_of(&app, &rev, "/admin").await;
    let decide = [("csrf", csrf.as_str()), ("action", "approve"), ("reason", "")];
    let grant = [("csrf", csrf.as_str()), ("action", "grant"), ("login", "role_reviewer"), ("role", "platform_admin")];
    assert_eq!(post(&rev, app.url("/admin/staff"), &grant).await.status(), 403);
    let res = post(&rev, app.url(&format!("/admin/changes/{change}")), &decide).await;
    assert_eq!(res.status(), 200);
    // A plain citizen has no console.
    citizen(&app, "role_citizen", "13700000304").await;
    let b = password_sign_in(&app, "role_citizen").await;
    assert_eq!(get(&b, app.url("/admin/changes")).await.0, 403);
}
both!(console_queue_roles, super::roles);
