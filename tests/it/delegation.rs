//! Legal persons, agents and delegation (C1–C6, E2) over HTTP: credit-code
//! checks, agent registration → approval by the representative (face
//! check) → the agent's sign-in → `act` and `legal_person` in the relying
//! app's tokens; revocation ending refresh tokens; token exchange only with
//! an active grant; a foreign representative cannot approve; racing
//! approve/revoke ends consistent; person grants expire by date; kin limits.
use crate::both;
use crate::face_gates::{AgentsPage, CHEN, LI, ZHANG, gate_page, pass_face, real_person, ticket_status};
use crate::scan::citizen;
use crate::support::*;
use idp::domain::delegation::enterprises::{self, NewEnterprise};
use idp::domain::delegation::{self, Party};
use idp::domain::identity::users::{IdNumber, NewUser, PhoneNumber};
use idp::domain::{delegation::kin, delegation::uscc::Uscc};

pub const USCC: &str = "91440300708461136T";
const USCC_B: &str = "91110108551385082Q";
pub const ENT_PASSWORD: &str = "corp1234";
/// The agent password set at C2 registration (his enterprise-login password).
const AGENT_PASSWORD: &str = "Agent-2026";

/// A valid ID number born on `yyyymmdd`, varied by `seq`.
pub fn id_born(date: &str, seq: u32) -> String {
    let body = format!("110101{date}{:03}", seq % 1000);
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

pub async fn person(app: &TestApp, username: &str, name: &str, id: &str, phone: &str) -> String {
    app.state
        .users
        .create(NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            email: None,
            name: Some(name.into()),
            phone: Some(phone.into()),
            id_number: Some(id.into()),
        })
        .await
        .unwrap()
        .sub
}

pub async fn enterprise(app: &TestApp, uscc: &str, rep_name: &str, rep_id: &str) -> String {
    enterprises::create(
        &app.state.store,
        &app.state.passwords,
        NewEnterprise {
            uscc: Uscc::parse(uscc).unwrap(),
            name: "示例科技有限公司".into(),
            region: "540102".into(),
            representative_name: rep_name.into(),
            representative_id_number: IdNumber::parse(rep_id).unwrap().into(),
            representative_phone: PhoneNumber::parse("13900000009").unwrap(),
            password: ENT_PASSWORD.into(),
        },
        "test",
        app.state.clock.now(),
    )
    .await
    .unwrap()
    .id
}

/// Follows provider redirects, consenting when asked, until the client or a
/// page that is neither (returned as `Err((url, status, body))`).
pub async fn follow(app: &TestApp, b: &Browser, mut url: String) -> Result<String, (String, u16, String)> {
    for _ in 0..12 {
        if !url.starts_with(&app.base) {
            return Ok(url);
        }
        let res = b.http.get(&url).send().await.unwrap();
        if let Some(next) = location(&res) {
            url = if next.starts_with('/') { app.url(&next) } else { next };
            continue;
        }
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        if url.contains("/consent") && status == 200 {
            let form = [
                ("req", hidden(&body, "req").unwrap()),
                ("csrf", hidden(&body, "csrf").unwrap()),
                ("decision", "allow".into()),
            ];
            let res = b.http.post(app.url("/consent")).form(&form).send().await.unwrap();
            url = location(&res).unwrap();
            continue;
        }
        return Err((url, status, body));
    }
    panic!("too many redirects")
}

/// Enterprise sign-in through an authorization request of `client`;
/// returns the code. `face` is (the person's app account, a stranger's)
/// when a face check is due.
async fn enterprise_sign_in(
    app: &TestApp,
    b: &Browser,
    client: &TestClient,
    form: &[(&str, &str)],
    face: Option<(&str, &str)>,
) -> Result<String, (u16, String)> {
    let next = start_enterprise_sign_in(app, b, client, form).await?;
    let next = match face {
        Some((phone_user, stranger)) => {
            assert!(next.contains("/face?gate="), "first sign-in waits for the face check: {next}");
            let (view, done) = pass_face(app, b, &next, phone_user, stranger).await;
            assert_eq!(view["purpose"], "face");
            assert_eq!(view["detail"]["action"], "enterprise_login");
            assert_eq!(view["detail"]["enterprise"]["name"], "示例科技有限公司");
            location(&done).expect("the sign-in continues by itself")
        }
        None => next,
    };
    finish_enterprise_sign_in(app, b, next).await
}

pub async fn finish_enterprise_sign_in(app: &TestApp, b: &Browser, next: String) -> Result<String, (u16, String)> {
    let end = follow(app, b, next).await.unwrap_or_else(|e| panic!("{e:?}"));
    Ok(query_of(&end)["code"].clone())
}

/// Posts the enterprise sign-in form of an authorization request of
/// `client`; returns where it leads (a face gate, or on to the client).
pub async fn start_enterprise_sign_in(
    app: &TestApp,
    b: &Browser,
    client: &TestClient,
    form: &[(&str, &str)],
) -> Result<String, (u16, String)> {
    let scope = [("scope", "openid legal_person offline_access")];
    let login_url = match follow(app, b, auth_url(app, client, &scope)).await {
        Err((url, 200, _)) => url,
        other => panic!("expected the sign-in page, got {other:?}"),
    };
    let req = query_of(&login_url)["req"].clone();
    let page = b.http.get(app.url(&format!("/login/enterprise?req={req}"))).send().await.unwrap().text().await.unwrap();
    let mut fields: Vec<(&str, String)> = vec![("req", req.clone()), ("csrf", hidden(&page, "csrf").unwrap())];
    fields.extend(form.iter().map(|(k, v)| (*k, v.to_string())));
    // A solved graphic captcha goes along: after two failures it is asked
    // for (A3), and these tests are about what follows the password.
    let captcha = app.state.captcha.create().await.unwrap();
    fields.push(("captcha", sink(app, "captcha", &captcha.id).await.unwrap()));
    fields.push(("captcha_id", captcha.id));
    let res = b.http.post(app.url("/login/enterprise")).form(&fields).send().await.unwrap();
    match location(&res) {
        Some(next) => Ok(next),
        None => Err((res.status().as_u16(), res.text().await.unwrap())),
    }
}

pub async fn tokens(app: &TestApp, client: &TestClient, code: &str) -> serde_json::Value {
    json(redeem(app, client, code, None).await).await
}

async fn refresh(app: &TestApp, client: &TestClient, rt: &str) -> reqwest::Response {
    api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, client: &TestClient, token: &str, target: (&str, &str)) -> reqwest::Response {
    api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            target,
        ])
        .send()
        .await
        .unwrap()
}

async fn exchange_client(app: &TestApp) -> TestClient {
    exchange_client_with(app, None).await
}

/// The exchange client, with a back-channel logout endpoint when given.
async fn exchange_client_with(app: &TestApp, backchannel: Option<String>) -> TestClient {
    app.client(|c| {
        c.grant_types = Some(vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "urn:ietf:params:oauth:grant-type:token-exchange".into(),
        ]);
        c.backchannel_logout_uri = backchannel;
    })
    .await
}

async fn credit_codes(backend: Backend) {
    let app = spawn(backend).await;
    let b = Browser::new();
    let page = b.http.get(app.url("/login/enterprise")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("我是法定代表人") && page.contains("我是代理人"));
    let csrf = hidden(&page, "csrf").unwrap();
    for (code, status, message) in [
        ("91440300708461136A", 400, "校验位错误"),
        ("9144030070846113", 400, "应为18位"),
        (USCC, 401, "统一社会信用代码或密码错误"),
    ] {
        let form = [("csrf", csrf.as_str()), ("uscc", code), ("password", "whatever1")];
        let res = b.http.post(app.url("/login/enterprise")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), status, "{code}");
        assert!(res.text().await.unwrap().contains(message), "{code}");
    }
}
both!(credit_code_checks, super::credit_codes);

/// C2 over HTTP: the whole form, SMS, the agent's face check in his own
/// app (`agent_user`, the account holding his real-name identity) → pending.
async fn register_agent(app: &TestApp, agent: (&str, &str), phone: &str, rep: (&str, &str), agent_user: &str) {
    let (agent_name, agent_id) = agent;
    let (rep_name, rep_id) = rep;
    let b = Browser::new();
    let page = b.http.get(app.url("/register/agent")).send().await.unwrap().text().await.unwrap();
    // The agent password (C2 rule) he will type at this enterprise's login.
    assert!(page.contains("name=\"password\"") && page.contains("name=\"password2\""), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let mut form: Vec<(&str, String)> = vec![
        ("csrf", csrf.clone()),
        ("region", "拉萨市城关区".into()),
        ("uscc", USCC.into()),
        ("name", agent_name.into()),
        ("id_number", agent_id.into()),
        ("gender", "male".into()),
        ("ethnicity", "藏族".into()),
        ("phone", phone.into()),
        ("rep_name", rep_name.into()),
        ("rep_id_number", rep_id.into()),
        ("rep_phone", "13900000009".into()),
        ("password", AGENT_PASSWORD.into()),
        ("password2", AGENT_PASSWORD.into()),
        ("agree", "yes".into()),
        // C2: the document's validity (the sandbox agent's card is long-term).
        ("id_valid_from", "2013-01-01".into()),
        ("long_term", "on".into()),
    ];
    let mut send = form.clone();
    send.extend([("captcha_id", captcha_id), ("captcha", answer), ("action", "send_code".into())]);
    assert_eq!(b.http.post(app.url("/register/agent")).form(&send).send().await.unwrap().status(), 200);
    let code = six_digits(&sink(app, "sms", phone).await.unwrap());
    // A representative not on record: "法人信息不匹配" (C5).
    let mut wrong = form.clone();
    wrong[8] = ("rep_name", "王某".into());
    wrong.extend([("sms_code", code.clone()), ("action", "submit".into())]);
    let res = b.http.post(app.url("/register/agent")).form(&wrong).send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("法人信息不匹配"));
    // Too short, one kind only, or not confirmed: the form again with the
    // message and the other fields kept; no face gate opens.
    for (pw, pw2, message) in [
        ("ab1", "ab1", "6-15位字符，必须由数字、字母或符号两种以上组成"),
        ("abcdefgh", "abcdefgh", "6-15位字符，必须由数字、字母或符号两种以上组成"),
        (AGENT_PASSWORD, "Agent-2027", "两次输入的密码不一致"),
    ] {
        let mut weak = form.clone();
        weak[11] = ("password", pw.into());
        weak[12] = ("password2", pw2.into());
        weak.extend([("sms_code", code.clone()), ("action", "submit".into())]);
        let res = b.http.post(app.url("/register/agent")).form(&weak).send().await.unwrap();
        assert_eq!(res.status(), 400, "{pw}");
        assert!(location(&res).is_none());
        let html = res.text().await.unwrap();
        assert!(html.contains(message) && html.contains(agent_id) && html.contains(rep_name), "{html}");
        assert!(!html.contains(&format!("value=\"{pw}\"")), "a password is never echoed back");
    }
    form.extend([("sms_code", code), ("action", "submit".into())]);
    let res = b.http.post(app.url("/register/agent")).form(&form).send().await.unwrap();
    let gate = location(&res).expect("the agent's face check comes next");
    let page = gate_page(&b, &gate).await;
    assert!(page.html.contains("注册为企业代理人") && page.html.contains("示例科技有限公司"), "{}", page.html);
    let (view, done) = pass_face(app, &b, &gate, agent_user, "reg_stranger").await;
    assert_eq!(view["detail"]["action"], "register_agent");
    assert!(!view.to_string().contains("password") && !view.to_string().contains("argon2"), "{view}");
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("等待法定代表人审核"));
}

async fn agent_lifecycle(backend: Backend) {
    let app = spawn(backend).await;
    let (bc_url, logouts) = crate::logout::backchannel_receiver().await;
    let client = exchange_client_with(&app, Some(bc_url)).await;
    let rep = real_person(&app, "rep_zhang", ZHANG).await;
    let agent = real_person(&app, "agent_chen", CHEN).await;
    app.user("reg_stranger").await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    register_agent(&app, (CHEN.0, CHEN.1), "13800000021", (ZHANG.0, ZHANG.1), "agent_chen").await;
    // Nothing was created by the refused forms: one pending delegation.
    let d = delegation::agent_delegation(&app.state.store, &ent, &agent).await.unwrap().unwrap();
    assert_eq!(d.state, "pending");

    // A pending agent cannot sign in yet (with the password set at
    // registration).
    let agent_form = [("uscc", USCC), ("role", "agent"), ("agent", CHEN.1), ("password", AGENT_PASSWORD)];
    let b_agent = Browser::new();
    let refused = enterprise_sign_in(&app, &b_agent, &client, &agent_form, None).await.unwrap_err();
    // (refused like any wrong password: no answer tells a right password)
    assert!(refused.1.contains("统一社会信用代码或密码错误"), "{refused:?}");

    // The representative's first sign-in needs his face check.
    let rep_b = Browser::new();
    let rep_form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let code = enterprise_sign_in(&app, &rep_b, &client, &rep_form, Some(("rep_zhang", "agent_chen"))).await.unwrap();
    let t = tokens(&app, &client, &code).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], ent);
    assert_eq!(id["act"]["sub"], rep);
    assert_eq!(id["legal_person"]["role"], "representative");
    assert_eq!(id["legal_person"]["uscc"], USCC);

    // Agent management: approving needs the representative's face check.
    let list = AgentsPage::open(&app, &rep_b).await;
    assert!(list.html.contains("待审核") && list.html.contains(CHEN.0));
    let res = list.act(&app, &rep_b, "approve", &d.id, None).await;
    let gate = location(&res).unwrap();
    // The page and the app say what is approved: the agent (masked) and the enterprise.
    let page = gate_page(&rep_b, &gate).await;
    assert!(page.html.contains("审核通过代理人") && page.html.contains("陈*"), "{}", page.html);
    // The representative denies in the app first: the agent stays pending.
    let phone = citizen(&app, "rep_zhang").await;
    let view = json(phone.read(&app, &page.ticket).await).await;
    assert_eq!(view["purpose"], "approval");
    assert_eq!(view["detail"]["agent"]["name"], "陈*");
    assert_eq!(view["detail"]["enterprise"]["uscc"], USCC);
    assert_eq!(phone.decide(&app, &page.ticket, "deny", serde_json::json!({})).await.status(), 200);
    assert_eq!(ticket_status(&app, &rep_b, &page.ticket).await, "denied");
    let res = page.complete(&app, &rep_b).await;
    assert_eq!(res.status(), 400);
    assert_eq!(delegation::find(&app.state.store, &d.id).await.unwrap().unwrap().state, "pending");
    // A fresh code on the same page; this time the face check and confirm.
    let (view, approved) = pass_face(&app, &rep_b, &gate, "rep_zhang", "agent_chen").await;
    assert_eq!(view["purpose"], "approval");
    assert!(location(&approved).unwrap().contains("agents_approved"));
    assert_eq!(delegation::find(&app.state.store, &d.id).await.unwrap().unwrap().state, "active");

    // For this enterprise his own account's password is not the agent
    // password: refused like any wrong password.
    let own_form = [("uscc", USCC), ("role", "agent"), ("agent", CHEN.1), ("password", PASSWORD)];
    let refused = enterprise_sign_in(&app, &Browser::new(), &client, &own_form, None).await.unwrap_err();
    assert!(refused.1.contains("统一社会信用代码或密码错误"), "{refused:?}");
    // The agent signs in (first time: face check) with the registration
    // password and the app sees who acts for whom.
    let code =
        enterprise_sign_in(&app, &b_agent, &client, &agent_form, Some(("agent_chen", "rep_zhang"))).await.unwrap();
    let t = tokens(&app, &client, &code).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], ent);
    assert_eq!(id["act"], serde_json::json!({ "sub": agent }));
    assert_eq!(id["legal_person"]["role"], "agent");
    assert_eq!(id["legal_person"]["name"], "示例科技有限公司");
    assert!(id.get("name").is_none(), "the agent's own profile is not released under the enterprise");
    let agent_sid = id["sid"].as_str().unwrap().to_string();
    let at = t["access_token"].as_str().unwrap().to_string();
    let info = json(api().get(app.url("/userinfo")).bearer_auth(&at).send().await.unwrap()).await;
    assert_eq!(info["sub"], ent);
    assert_eq!(info["act"]["sub"], agent);
    assert_eq!(info["legal_person"]["uscc"], USCC);
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let r = json(refresh(&app, &client, &rt).await).await;
    let rt = r["refresh_token"].as_str().unwrap().to_string();
    // Second sign-in: no face check any more.
    let code = enterprise_sign_in(&app, &Browser::new(), &client, &agent_form, None).await.unwrap();
    assert!(!code.is_empty());

    // Token exchange from the agent's own (citizen) token.
    let own = tokens(&app, &client, &sign_in_with(&app, &client, "agent_chen", PASSWORD).await).await;
    let own_at = own["access_token"].as_str().unwrap();
    let res = exchange(&app, &client, own_at, ("legal_person", USCC)).await;
    assert_eq!(res.status(), 200);
    let ex = json(res).await;
    assert_eq!(ex["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    let claims = jwt_claims(ex["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], ent);
    assert_eq!(claims["act"]["sub"], agent);
    let delegated = ex["access_token"].as_str().unwrap().to_string();
    // No exchange for an enterprise the person may not act for.
    let other_rep = id_born("19700101", 33);
    enterprise(&app, USCC_B, "赵其他", &other_rep).await;
    let res = exchange(&app, &client, own_at, ("legal_person", USCC_B)).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_target");
    // Another client cannot exchange this client's token.
    let other = exchange_client(&app).await;
    let res = exchange(&app, &other, own_at, ("legal_person", USCC)).await;
    assert_eq!(json(res).await["error"], "invalid_grant");

    // Revocation ends the agent's sessions and refresh tokens at once.
    let res = AgentsPage::open(&app, &rep_b).await.act(&app, &rep_b, "revoke", &d.id, None).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("已撤销"));
    let res = refresh(&app, &client, &rt).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = api().get(app.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = api().get(app.url("/userinfo")).bearer_auth(&delegated).send().await.unwrap();
    assert_eq!(res.status(), 401, "exchanged tokens die with the delegation");
    let res = exchange(&app, &client, own_at, ("legal_person", USCC)).await;
    assert_eq!(json(res).await["error"], "invalid_target");
    let refused = enterprise_sign_in(&app, &b_agent, &client, &agent_form, None).await.unwrap_err();
    assert!(refused.1.contains("统一社会信用代码或密码错误"), "{refused:?}");
    // The app is told of the agent's ended session by the `sub` it knew
    // that session by: the enterprise, not the agent's own account.
    let mut told = None;
    for _ in 0..50 {
        told = logouts.lock().unwrap().iter().find_map(|t| {
            let c = app.state.tokens.verify_own(t, "logout+jwt", false)?;
            (c["sid"] == agent_sid.as_str()).then_some(c)
        });
        if told.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let told = told.expect("back-channel logout for the agent's session");
    assert_eq!(told["sub"], ent.as_str(), "the enterprise's sub, as in the ID token");
}
both!(agent_registration_approval_tokens_revocation, super::agent_lifecycle);

/// A citizen sign-in with a password, returning the code.
async fn sign_in_with(app: &TestApp, client: &TestClient, login: &str, password: &str) -> String {
    let b = Browser::new();
    b.run(app, &auth_url(app, client, &[]), login, password).await.code()
}

async fn foreign_and_racing(backend: Backend) {
    let app = spawn(backend).await;
    let now = app.state.clock.now();
    real_person(&app, "rep_a1", ZHANG).await;
    real_person(&app, "rep_b1", LI).await;
    let ent_a = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let ent_b = enterprise(&app, USCC_B, LI.0, LI.1).await;
    let agent = app.user("agent_x1").await;
    let d =
        enterprises::add_agent(&app.state.store, &ent_a, &agent, idp::domain::audit::Actor::Enterprise(&ent_a), now)
            .await
            .unwrap()
            .unwrap();
    // B's representative session cannot approve A's agent.
    let client = app.confidential().await;
    let b = Browser::new();
    let form = [("uscc", USCC_B), ("role", "representative"), ("password", ENT_PASSWORD)];
    enterprise_sign_in(&app, &b, &client, &form, Some(("rep_b1", "rep_a1"))).await.unwrap();
    let list = AgentsPage::open(&app, &b).await;
    for action in ["approve", "revoke", "reject"] {
        assert_eq!(list.act(&app, &b, action, &d.id, Some("x")).await.status(), 409, "{action}");
    }
    assert!(!delegation::activate(&app.state.store, &d.id, &Party::Enterprise(&ent_b), None, now).await.unwrap());
    // Two sessions of the representative approving and revoking at once,
    // many times: each ends either active-then-revoked or revoked, never
    // active after a successful revoke.
    for _ in 0..8 {
        let agent = app.user(&random_name("ag")).await;
        let d = enterprises::add_agent(
            &app.state.store,
            &ent_a,
            &agent,
            idp::domain::audit::Actor::Enterprise(&ent_a),
            now,
        )
        .await
        .unwrap()
        .unwrap();
        let db1 = app.state.store.clone();
        let db2 = app.state.store.clone();
        let (id1, id2, e1, e2) = (d.id.clone(), d.id.clone(), ent_a.clone(), ent_a.clone());
        let approve =
            tokio::spawn(async move { delegation::activate(&db1, &id1, &Party::Enterprise(&e1), None, now).await });
        let revoke =
            tokio::spawn(async move { delegation::revoke(&db2, &id2, &Party::Enterprise(&e2), None, now).await });
        let approved = approve.await.unwrap().unwrap();
        let revoked = revoke.await.unwrap().unwrap().is_some();
        let end = delegation::find(&app.state.store, &d.id).await.unwrap().unwrap();
        assert!(revoked, "revocation applies to pending and active alike");
        assert_eq!(end.state, "revoked", "approved={approved}");
    }
}
both!(foreign_representative_and_racing_changes, super::foreign_and_racing);

async fn person_grants_expire(backend: Backend) {
    let app = spawn(backend).await;
    let client = exchange_client(&app).await;
    let alice = person(&app, "alice_p", "王甲", &id_born("19800202", 51), "13800000051").await;
    let bob = person(&app, "bob_pp", "李乙", &id_born("19850303", 52), "13800000052").await;
    // Alice grants Bob for today only, through her page.
    let b = Browser::new();
    sign_in_with_browser(&app, &b, &client, "alice_p").await;
    // Granting needs a fresh re-verification (SMS), like a factor change.
    crate::factors::reverify(&app, &b, "13800000051").await;
    let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let today = delegation::today(app.state.clock.now()).to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "grant"),
        ("grantee", "13800000052"),
        ("valid_from", today.as_str()),
        ("valid_to", today.as_str()),
        ("scopes", "openid profile"),
    ];
    let res = b.http.post(app.url("/account/authorisations")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let d = delegation::granted_by(&app.state.store, &alice, delegation::Kind::Person).await.unwrap().remove(0);
    assert_eq!(d.state, "pending");
    // Bob's token cannot be exchanged before he confirms.
    let bob_at = tokens(&app, &client, &sign_in_with(&app, &client, "bob_pp", PASSWORD).await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(json(exchange(&app, &client, &bob_at, ("delegation", &d.id)).await).await["error"], "invalid_target");
    // Bob confirms in his "received" list.
    let bb = Browser::new();
    sign_in_with_browser(&app, &bb, &client, "bob_pp").await;
    let page = bb.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("授权我的") && page.contains("待审核"));
    let csrf = hidden(&page, "csrf").unwrap();
    let res = bb
        .http
        .post(app.url("/account/authorisations"))
        .form(&[("csrf", csrf.as_str()), ("action", "accept"), ("id", d.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ex = exchange(&app, &client, &bob_at, ("delegation", &d.id)).await;
    assert_eq!(ex.status(), 200);
    let claims = jwt_claims(json(ex).await["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], alice);
    assert_eq!(claims["act"]["sub"], bob);
    // Two days later the grant has expired (Bob's own token has too: he
    // signs in again, so only the delegation is in question).
    app.state.clock.advance(2 * 24 * 3600);
    let bob_at = tokens(&app, &client, &sign_in_with(&app, &client, "bob_pp", PASSWORD).await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(json(exchange(&app, &client, &bob_at, ("delegation", &d.id)).await).await["error"], "invalid_target");
    // (the old sessions have timed out meanwhile: sign in again)
    let b = Browser::new();
    sign_in_with_browser(&app, &b, &client, "alice_p").await;
    let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-state=\"expired\""), "{page}");
}
both!(person_grant_expires_by_date, super::person_grants_expire);

pub async fn sign_in_with_browser(app: &TestApp, b: &Browser, client: &TestClient, login: &str) {
    b.run(app, &auth_url(app, client, &[]), login, PASSWORD).await.code();
}

async fn kin_rules(backend: Backend) {
    let app = spawn(backend).await;
    let now = app.state.clock.now();
    let today = delegation::today(now);
    let born = |years_ago: i32| {
        use chrono::Datelike;
        format!("{:04}{:02}{:02}", today.year() - years_ago, 1, 1)
    };
    // The kin form's rules with a card of the legal term for the age.
    let check = |name: &str, id: &str, relation: &str| {
        kin::check(name, id, relation, &crate::face_gates::kin_card_term(&app, id), now)
    };
    let mut guardians = Vec::new();
    for i in 0..4 {
        guardians.push(app.user(&format!("guard{i}x")).await);
    }
    let child =
        crate::sec_kin::proven(&app, &guardians[0], check("小明", &id_born(&born(5), 1), "child").unwrap()).await;
    assert!(!child.needs_face(), "ages 0–6 need no face check");
    let teen = check("小红", &id_born(&born(12), 2), "child").unwrap();
    assert_eq!(
        kin::bind(&app.state.store, &guardians[0], None, &teen, false, now).await.unwrap().unwrap_err(),
        kin::KinRefusal::FaceRequired
    );
    assert_eq!(check("某", &id_born(&born(30), 3), "other").unwrap_err().message_key(), "kin_age");
    // Three guardians at most, even racing.
    let mut tasks = Vec::new();
    for g in guardians.clone() {
        let db = app.state.store.clone();
        let child = child.clone();
        tasks.push(tokio::spawn(async move { kin::bind(&db, &g, None, &child, false, now).await }));
    }
    // Exactly three win; the fourth is refused by the rule, never by a
    // database error (on SQLite a deferred read-then-write transaction
    // would fail with "database is locked" instead of waiting its turn).
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(r)) => assert_eq!(r, kin::KinRefusal::TooManyGuardians),
            Err(e) => panic!("a racing bind failed on the database: {e}"),
        }
    }
    assert_eq!(ok, 3, "three guardians at most, and every free slot is taken");
    // Eight relatives per user at most.
    let g = app.user("bigfamily").await;
    for i in 0..8 {
        let r = crate::sec_kin::proven(&app, &g, check("老人", &id_born(&born(70), 100 + i), "parent").unwrap()).await;
        kin::bind(&app.state.store, &g, None, &r, true, now).await.unwrap().unwrap();
    }
    let r = crate::sec_kin::proven(&app, &g, check("老人", &id_born(&born(70), 200), "parent").unwrap()).await;
    assert_eq!(
        kin::bind(&app.state.store, &g, None, &r, true, now).await.unwrap().unwrap_err(),
        kin::KinRefusal::TooManyRelatives
    );
    // Unbinding only after 24 hours.
    let list = kin::relatives_of(&app.state.store, &g, now).await.unwrap();
    assert_eq!(list.len(), 8);
    assert_eq!(list[0].masked_name, "老*");
    assert_eq!(
        kin::unbind(&app.state.store, &g, &list[0].relation_id, now).await.unwrap(),
        Err(kin::KinRefusal::TooEarlyToUnbind)
    );
    assert_eq!(kin::unbind(&app.state.store, &g, &list[0].relation_id, now + 24 * 3600).await.unwrap(), Ok(()));
}
both!(kin_rules_and_limits, super::kin_rules);
