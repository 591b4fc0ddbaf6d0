//! Enterprise sign-in and delegation security over HTTP: a
//! session made from an enterprise credential is no personal session (C1);
//! granting a person-to-person delegation needs a fresh re-verification
//! (C6); the enterprise lockout is keyed on what the attacker cannot vary,
//! asks for a captcha once risky, counts agent guesses against the citizen
//! lockout and answers every failure alike (A3); token exchange waits for
//! the first-sign-in face check (C1); a pending agent cannot accept
//! himself through the person-to-person page (C3/C6).
use crate::both;
use crate::delegation::{ENT_PASSWORD, USCC, enterprise, id_born, person, tokens};
use crate::face_gates::ZHANG;
use crate::support::*;
use idp::domain::delegation::enterprises;
use idp::domain::delegation::{self, Kind};
use idp::store::entities::enterprise as enterprise_e;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// The representative's account (matching the record) and the enterprise,
/// its first-sign-in face check done unless `face_pending`.
async fn setup(app: &TestApp, face_pending: bool) -> (String, String) {
    let rep = person(app, "rep_sec", ZHANG.0, ZHANG.1, "13800000071").await;
    let ent = enterprise(app, USCC, ZHANG.0, ZHANG.1).await;
    if !face_pending {
        enterprise_e::Entity::update_many()
            .col_expr(enterprise_e::Column::RepresentativeFaceAt, Expr::value(app.state.clock.now()))
            .filter(enterprise_e::Column::Id.eq(ent.as_str()))
            .exec(&app.state.store)
            .await
            .unwrap();
    }
    (rep, ent)
}

/// An agent of `ent` in `state` (no C2 password: his account's password),
/// face check done unless `face_pending`; (account id, delegation id).
async fn agent(
    app: &TestApp,
    ent: &str,
    username: &str,
    seq: u32,
    active: bool,
    face_pending: bool,
) -> (String, String) {
    let user = person(app, username, "陈一", &id_born("19800101", seq), &format!("1380000{:04}", 100 + seq)).await;
    let now = app.state.clock.now();
    let d = enterprises::add_agent(&app.state.store, ent, &user, idp::domain::audit::Actor::Enterprise(ent), now)
        .await
        .unwrap()
        .unwrap();
    if active {
        assert!(
            delegation::activate(&app.state.store, &d.id, &delegation::Party::Enterprise(ent), None, now)
                .await
                .unwrap()
        );
    }
    if !face_pending {
        delegation::mark_face(&app.state.store, &d.id, now).await.unwrap();
    }
    (user, d.id)
}

/// The error paragraph of a page (what the person is told).
fn error_of(html: &str) -> String {
    let start = html.find("<p class=\"error\"").unwrap_or_else(|| panic!("no error in {html}"));
    let end = html[start..].find("</p>").unwrap() + start;
    html[start..end].to_string()
}

/// The enterprise sign-in form, with no app waiting; with `solve`, a
/// solved graphic captcha goes along (checked only once sign-in is risky).
async fn enterprise_post(app: &TestApp, b: &Browser, form: &[(&str, &str)], solve: bool) -> (u16, String, String) {
    let page = b.http.get(app.url("/login/enterprise")).send().await.unwrap().text().await.unwrap();
    let mut fields: Vec<(&str, String)> = vec![("req", String::new()), ("csrf", hidden(&page, "csrf").unwrap())];
    fields.extend(form.iter().map(|(k, v)| (*k, v.to_string())));
    if solve {
        let c = app.state.captcha.create().await.unwrap();
        let answer = sink(app, "captcha", &c.id).await.unwrap();
        fields.push(("captcha_id", c.id));
        fields.push(("captcha", answer));
    }
    let res = b.http.post(app.url("/login/enterprise")).form(&fields).send().await.unwrap();
    let status = res.status().as_u16();
    let next = location(&res).unwrap_or_default();
    (status, next, res.text().await.unwrap())
}

fn rep_form(password: &str) -> Vec<(&'static str, String)> {
    vec![("uscc", USCC.into()), ("role", "representative".into()), ("password", password.into())]
}

async fn post_rep(app: &TestApp, b: &Browser, password: &str, agent: &str, solve: bool) -> (u16, String, String) {
    let f = rep_form(password);
    let mut form: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("agent", agent));
    enterprise_post(app, b, &form, solve).await
}

const PERSONAL_PAGES: [&str; 8] = [
    "/account",
    "/step-up/factor",
    "/account/profile",
    "/account/authorisations",
    "/account/kin",
    "/account/security",
    "/identity",
    "/identity/verify",
];

/// Finding 1: the enterprise password (or an agent's enterprise login)
/// opens the enterprise pages, never the person's own ones.
async fn enterprise_session_is_not_personal(backend: Backend) {
    let app = spawn(backend).await;
    let (rep, _) = setup(&app, false).await;
    let b = Browser::new();
    let (status, next, _) = post_rep(&app, &b, ENT_PASSWORD, "", true).await;
    assert_eq!(status, 303);
    assert_eq!(b.http.get(app.url("/enterprise/agents")).send().await.unwrap().status(), 200);
    for path in PERSONAL_PAGES {
        let res = b.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
        let html = res.text().await.unwrap();
        assert_eq!(link_href(&html, "personal-sign-in").as_deref(), Some("/login"), "{path}: {html}");
        assert_eq!(link_href(&html, "enterprise-back").as_deref(), Some("/enterprise/agents"), "{path}");
    }
    assert!(next.ends_with("/enterprise/agents"), "an enterprise session lands on the enterprise page: {next}");
    // No C6 grant (which would exchange into tokens with his `sub`), no kin.
    let page = b.http.get(app.url("/enterprise/agents")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let grant = [
        ("csrf", csrf.as_str()),
        ("action", "grant"),
        ("grantee", "13800000072"),
        ("valid_from", "2020-01-01"),
        ("valid_to", "2099-01-01"),
        ("scopes", "openid profile"),
    ];
    person(&app, "grantee_sec", "李四", &id_born("19900101", 72), "13800000072").await;
    let res = b.http.post(app.url("/account/authorisations")).form(&grant).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(delegation::granted_by(&app.state.store, &rep, Kind::Person).await.unwrap().is_empty());
    let kin = [("csrf", csrf.as_str()), ("action", "unbind"), ("id", "x")];
    assert_eq!(b.http.post(app.url("/account/kin")).form(&kin).send().await.unwrap().status(), 403);
    let sec = [("csrf", csrf.as_str()), ("action", "send_code")];
    assert_eq!(b.http.post(app.url("/account/security")).form(&sec).send().await.unwrap().status(), 403);
    let unlink = [("csrf", csrf.as_str()), ("link", "x")];
    assert_eq!(b.http.post(app.url("/account/upstreams/unlink")).form(&unlink).send().await.unwrap().status(), 403);

    // An agent's enterprise session likewise; his way back is his page.
    let (_, _) = agent(&app, &enterprise_id(&app).await, "agent_sec", 73, true, false).await;
    let ab = Browser::new();
    let form = [("uscc", USCC), ("role", "agent"), ("agent", "agent_sec"), ("password", PASSWORD)];
    let (status, next, _) = enterprise_post(&app, &ab, &form, true).await;
    assert_eq!(status, 303);
    assert!(next.ends_with("/enterprise/agent/password"), "{next}");
    let res = ab.http.get(app.url("/account/authorisations")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert_eq!(link_href(&html, "enterprise-back").as_deref(), Some("/enterprise/agent/password"));

    // The citizen sign-in in the same browser ends the acting: personal again.
    let html = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form =
        [("csrf", hidden(&html, "csrf").unwrap()), ("username", "rep_sec".into()), ("password", PASSWORD.into())];
    assert_eq!(b.http.post(app.url("/login")).form(&form).send().await.unwrap().status(), 303);
    assert_eq!(b.http.get(app.url("/account")).send().await.unwrap().status(), 200);
    assert_eq!(b.http.get(app.url("/enterprise/agents")).send().await.unwrap().status(), 403);
}
both!(enterprise_session_reaches_no_personal_page, super::enterprise_session_is_not_personal);

async fn enterprise_id(app: &TestApp) -> String {
    enterprises::find_by_uscc(&app.state.store, USCC).await.unwrap().unwrap().id
}

/// Finding 1 (C6): granting someone the right to act as me needs a fresh
/// re-verification, like a factor change.
async fn grant_needs_reverification(backend: Backend) {
    let app = spawn(backend).await;
    let alice = person(&app, "alice_sec", "王甲", &id_born("19800202", 81), "13800000081").await;
    person(&app, "bob_sec", "李乙", &id_born("19850303", 82), "13800000082").await;
    let b = crate::factors::password_sign_in(&app, "alice_sec").await;
    let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    assert_eq!(link_href(&page, "authorise-reverify").as_deref(), Some("/account/security"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let today = delegation::today(app.state.clock.now()).to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "grant"),
        ("grantee", "13800000082"),
        ("valid_from", today.as_str()),
        ("valid_to", today.as_str()),
        ("scopes", "openid profile"),
    ];
    let res = b.http.post(app.url("/account/authorisations")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400, "a signed-in session alone cannot grant");
    let html = res.text().await.unwrap();
    assert!(error_of(&html).contains("短信验证码验证身份"), "{html}");
    assert!(delegation::granted_by(&app.state.store, &alice, Kind::Person).await.unwrap().is_empty());
    // Re-verified by SMS (security page): now it grants.
    crate::factors::reverify(&app, &b, "13800000081").await;
    let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    assert!(link_href(&page, "authorise-reverify").is_none());
    let res = b.http.post(app.url("/account/authorisations")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(delegation::granted_by(&app.state.store, &alice, Kind::Person).await.unwrap().len(), 1);
    // The re-verification belongs to that browser only.
    let other = crate::factors::password_sign_in(&app, "alice_sec").await;
    let page = other.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let mut form = form;
    form[0].1 = csrf.as_str();
    let res = other.http.post(app.url("/account/authorisations")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400);
}
both!(person_grant_needs_fresh_reverification, super::grant_needs_reverification);

/// Finding 9: the grantee's "accept" is for person-to-person delegations
/// only; a pending agent cannot approve himself there.
async fn pending_agent_cannot_accept_himself(backend: Backend) {
    let app = spawn(backend).await;
    let (_, ent) = setup(&app, false).await;
    let (_, d) = agent(&app, &ent, "agent_self", 91, false, false).await;
    let b = crate::factors::password_sign_in(&app, "agent_self").await;
    for action in ["accept", "decline"] {
        let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
        let csrf = hidden(&page, "csrf").unwrap();
        let form = [("csrf", csrf.as_str()), ("action", action), ("id", d.as_str())];
        let res = b.http.post(app.url("/account/authorisations")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 400, "{action}");
        assert_eq!(delegation::find(&app.state.store, &d).await.unwrap().unwrap().state, "pending", "{action}");
    }
    // He still cannot sign in for the enterprise.
    let form = [("uscc", USCC), ("role", "agent"), ("agent", "agent_self"), ("password", PASSWORD)];
    assert_eq!(enterprise_post(&app, &Browser::new(), &form, true).await.0, 401);
}
both!(pending_agent_cannot_accept_himself_as_grantee, super::pending_agent_cannot_accept_himself);

/// Finding 2: the representative's lockout is per credit code, whatever
/// the (unused) agent field says; a captcha is asked once risky.
async fn representative_lockout(backend: Backend) {
    let app = spawn(backend).await;
    setup(&app, false).await;
    let b = Browser::new();
    let mut statuses = Vec::new();
    let mut captcha_shown = Vec::new();
    for i in 0..6 {
        let (s, _, html) = post_rep(&app, &b, "wrong-pass1", &format!("someone{i}"), true).await;
        statuses.push(s);
        captcha_shown.push(hidden(&html, "captcha_id").is_some());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "varying the agent field gets no fresh counter");
    assert_eq!(captcha_shown, [false, true, true, true, true, true], "the page asks for a captcha after two failures");
    let (s, _, _) = post_rep(&app, &b, ENT_PASSWORD, "another", true).await;
    assert_eq!(s, 429, "locked: not even the right password opens it");
    // The credit code in another spelling is the same enterprise, the same lock.
    let lower = USCC.to_lowercase();
    let form = [("uscc", lower.as_str()), ("role", "representative"), ("password", ENT_PASSWORD)];
    assert_eq!(enterprise_post(&app, &Browser::new(), &form, true).await.0, 429);
}
both!(representative_lockout_per_credit_code_with_captcha, super::representative_lockout);

/// Finding 2: once risky, a missing captcha is refused (and counted).
async fn captcha_required_when_risky(backend: Backend) {
    let app = spawn(backend).await;
    setup(&app, false).await;
    let b = Browser::new();
    assert_eq!(post_rep(&app, &b, "wrong-pass1", "", false).await.0, 401);
    let (s, _, html) = post_rep(&app, &b, "wrong-pass1", "", false).await;
    assert_eq!(s, 401);
    assert!(hidden(&html, "captcha_id").is_some(), "the page asks for the captcha: {html}");
    // The right password without the captcha: refused.
    let (s, _, html) = post_rep(&app, &b, ENT_PASSWORD, "", false).await;
    assert_eq!(s, 400);
    assert!(error_of(&html).contains("图形验证码"), "{html}");
    // With it: in.
    let (s, next, _) = post_rep(&app, &b, ENT_PASSWORD, "", true).await;
    assert_eq!(s, 303, "{next}");
}
both!(enterprise_captcha_once_risky, super::captcha_required_when_risky);

/// Finding 2: the agent path is no password oracle for citizens: a right
/// and a wrong citizen password of a non-agent get the same answer, and
/// the guesses count against the citizen's own lockout.
async fn agent_path_is_no_oracle(backend: Backend) {
    let app = spawn(backend).await;
    let (_, ent) = setup(&app, false).await;
    person(&app, "bob_oracle", "李乙", &id_born("19850303", 95), "13800000095").await;
    let (_, revoked) = agent(&app, &ent, "agent_gone", 96, true, false).await;
    delegation::revoke(&app.state.store, &revoked, &delegation::Party::Enterprise(&ent), None, app.state.clock.now())
        .await
        .unwrap()
        .unwrap();
    let answer = |login: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let form = [("uscc", USCC), ("role", "agent"), ("agent", login), ("password", password)];
            let (s, _, html) = enterprise_post(app, &Browser::new(), &form, true).await;
            (s, error_of(&html))
        }
    };
    let wrong = answer("bob_oracle", "not-his-password").await;
    let right = answer("bob_oracle", PASSWORD).await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, right, "a right citizen password reads like a wrong one");
    assert_eq!(answer("13800000095", PASSWORD).await, wrong, "by phone too");
    assert_eq!(answer("agent_gone", PASSWORD).await, wrong, "a revoked agent");
    assert_eq!(answer("nobody_at_all", PASSWORD).await, wrong, "no such account");
    let other = "91110108551385082Q";
    let form = [("uscc", other), ("role", "agent"), ("agent", "bob_oracle"), ("password", PASSWORD)];
    let (s, _, html) = enterprise_post(&app, &Browser::new(), &form, true).await;
    assert_eq!((s, error_of(&html)), wrong, "an unknown credit code");
    // Four tries on bob's account so far through the enterprise login
    // (wrong, right, by phone, other credit code): the fifth locks his
    // citizen sign-in.
    let b = Browser::new();
    let form = [("uscc", USCC), ("role", "agent"), ("agent", "bob_oracle"), ("password", "guess-again")];
    let (s, _, html) = enterprise_post(&app, &b, &form, true).await;
    assert_eq!(s, 401, "{html}");
    let html = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form =
        [("csrf", hidden(&html, "csrf").unwrap()), ("username", "bob_oracle".into()), ("password", PASSWORD.into())];
    let res = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 429, "enterprise-login guesses count against the citizen lockout");
}
both!(agent_path_gives_one_answer_and_counts_for_the_citizen, super::agent_path_is_no_oracle);

async fn exchange(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("legal_person", USCC),
        ])
        .send()
        .await
        .unwrap()
}

/// Finding 8: token exchange for an enterprise waits for the person's
/// first-sign-in face check, as the web sign-in does; and an enterprise
/// session's tokens never exchange into anything.
async fn exchange_waits_for_face_check(backend: Backend) {
    let app = spawn(backend).await;
    let client = app
        .client(|c| {
            c.grant_types = Some(vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ])
        })
        .await;
    let (_, ent) = setup(&app, true).await;
    let (_, d) = agent(&app, &ent, "agent_ex", 97, true, true).await;
    let own = |login: &'static str| {
        let (app, client) = (&app, &client);
        async move {
            let b = Browser::new();
            let code = b.run(app, &auth_url(app, client, &[]), login, PASSWORD).await.code();
            tokens(app, client, &code).await["access_token"].as_str().unwrap().to_string()
        }
    };
    let rep_at = own("rep_sec").await;
    let agent_at = own("agent_ex").await;
    for at in [&rep_at, &agent_at] {
        let res = exchange(&app, &client, at).await;
        assert_eq!(res.status(), 400);
        let body = json(res).await;
        assert_eq!(body["error"], "invalid_grant", "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("face check"), "{body}");
    }
    // Face checks done: both may exchange.
    enterprise_e::Entity::update_many()
        .col_expr(enterprise_e::Column::RepresentativeFaceAt, Expr::value(app.state.clock.now()))
        .filter(enterprise_e::Column::Id.eq(ent.as_str()))
        .exec(&app.state.store)
        .await
        .unwrap();
    delegation::mark_face(&app.state.store, &d, app.state.clock.now()).await.unwrap();
    for at in [&rep_at, &agent_at] {
        let res = exchange(&app, &client, at).await;
        assert_eq!(res.status(), 200);
        assert_eq!(jwt_claims(json(res).await["access_token"].as_str().unwrap())["sub"], ent);
    }
    // The enterprise session's own token (sub = the enterprise) exchanges
    // into nothing, not even for the same enterprise.
    let b = Browser::new();
    let form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let next = crate::delegation::start_enterprise_sign_in(&app, &b, &client, &form).await.unwrap();
    let code = crate::delegation::finish_enterprise_sign_in(&app, &b, next).await.unwrap();
    let t = tokens(&app, &client, &code).await;
    let ent_at = t["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(ent_at)["sub"], ent);
    assert_eq!(json(exchange(&app, &client, ent_at).await).await["error"], "invalid_grant");
}
both!(token_exchange_waits_for_the_first_face_check, super::exchange_waits_for_face_check);

/// Finding 1 on the plugin entry: a plugin's user page is personal (the
/// plugin sees the person as its subject), so an enterprise session gets
/// the same refusal there.
async fn plugin_user_page_is_personal(backend: Backend) {
    let app = crate::plugin_kit::spawn_plugins(backend, &[crate::plugin_kit::EXAMPLE], |_, _| {}).await;
    setup(&app, false).await;
    let b = Browser::new();
    assert_eq!(post_rep(&app, &b, ENT_PASSWORD, "", true).await.0, 303);
    let res = b.http.get(app.url("/plugins/example/hello")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(link_href(&res.text().await.unwrap(), "personal-sign-in").is_some());
    // The same person signed in as a citizen sees it.
    let p = crate::factors::password_sign_in(&app, "rep_sec").await;
    assert_eq!(p.http.get(app.url("/plugins/example/hello")).send().await.unwrap().status(), 200);
}
both!(plugin_user_page_refuses_enterprise_sessions, super::plugin_user_page_is_personal);
