//! The agent's enterprise-login password (C2) over HTTP: the signed-in
//! agent changes it (wrong current refused and throttled, weak refused, the
//! other sessions and refresh tokens end); "forgot password" by SMS answers
//! the same for any credit code/phone pair, its code works once — two racing
//! resets, one wins — and revoked agents get none; the representative can
//! require a new password.
use crate::both;
use crate::delegation::{
    ENT_PASSWORD, USCC, enterprise, finish_enterprise_sign_in, id_born, person, start_enterprise_sign_in, tokens,
};
use crate::face_gates::{AgentsPage, ZHANG, real_person};
use crate::support::*;
use idp::domain::delegation::{self, DelegationState, Kind, NewDelegation};
use idp::store::entities::enterprise as enterprise_e;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const OLD: &str = "Agent-2026";
const NEW: &str = "Fresh-2027";
const RULE: &str = "6-15位字符，必须由数字、字母或符号两种以上组成";
const SAME_ANSWER: &str = "如该统一社会信用代码与手机号属于本企业的代理人，验证码已发送至该手机";
/// A registered credit code of no enterprise in these tests.
const USCC_OTHER: &str = "91110108551385082Q";

/// An account with `phone` that is an agent of `ent` in `state`, with the
/// C2 password `OLD` and its first-sign-in face check done; its delegation id.
async fn agent(app: &TestApp, ent: &str, username: &str, phone: &str, state: DelegationState) -> String {
    // A distinct valid ID number per phone.
    let seq: u32 = phone[phone.len() - 3..].parse().unwrap();
    let user = person(app, username, "陈一", &id_born("19800101", seq), phone).await;
    let now = app.state.clock.now();
    let d = delegation::insert(
        &app.state.store,
        NewDelegation {
            kind: Kind::Agent,
            enterprise_id: Some(ent.into()),
            principal_user_id: None,
            relative_name: None,
            relative_id_number: None,
            relation: None,
            grantee_user_id: user,
            scopes: String::new(),
            valid_from: None,
            valid_to: None,
            state,
            agent_password_hash: Some(app.state.passwords.hash(OLD.into()).await.unwrap()),
        },
        now,
    )
    .await
    .unwrap();
    delegation::mark_face(&app.state.store, &d.id, now).await.unwrap();
    d.id
}

async fn refreshing_client(app: &TestApp) -> TestClient {
    app.client(|c| c.grant_types = Some(vec!["authorization_code".into(), "refresh_token".into()])).await
}

/// Signs in as agent (by phone) in `b`: the tokens, or the refusal page.
async fn agent_sign_in(
    app: &TestApp,
    b: &Browser,
    client: &TestClient,
    phone: &str,
    password: &str,
) -> Result<serde_json::Value, (u16, String)> {
    let form = [("uscc", USCC), ("role", "agent"), ("agent", phone), ("password", password)];
    let next = start_enterprise_sign_in(app, b, client, &form).await?;
    let code = finish_enterprise_sign_in(app, b, next).await?;
    Ok(tokens(app, client, &code).await)
}

async fn refresh_error(app: &TestApp, client: &TestClient, t: &serde_json::Value) -> serde_json::Value {
    let rt = t["refresh_token"].as_str().expect("a refresh token");
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    json(res).await["error"].clone()
}

/// Posts the change form in `b` (a fresh CSRF token from the page).
async fn change(app: &TestApp, b: &Browser, current: &str, new: &str, new2: &str) -> (u16, String) {
    let page = b.http.get(app.url("/enterprise/agent/password")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap_or_else(|| panic!("{page}"));
    let form = [("csrf", csrf.as_str()), ("current", current), ("password", new), ("password2", new2)];
    let res = b.http.post(app.url("/enterprise/agent/password")).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn change_page_status(app: &TestApp, b: &Browser) -> u16 {
    b.http.get(app.url("/enterprise/agent/password")).send().await.unwrap().status().as_u16()
}

async fn agent_changes_password(backend: Backend) {
    let app = spawn(backend).await;
    let client = refreshing_client(&app).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let phone = "13800000061";
    agent(&app, &ent, "agent_pw1", phone, DelegationState::Active).await;
    // Without an agent session there is no change page.
    assert_eq!(change_page_status(&app, &Browser::new()).await, 303);
    let citizen = Browser::new();
    citizen.run(&app, &auth_url(&app, &client, &[]), "agent_pw1", PASSWORD).await.code();
    assert_eq!(change_page_status(&app, &citizen).await, 403, "a citizen session acts for no enterprise");

    let (b1, b2) = (Browser::new(), Browser::new());
    let t1 = agent_sign_in(&app, &b1, &client, phone, OLD).await.unwrap();
    let t2 = agent_sign_in(&app, &b2, &client, phone, OLD).await.unwrap();
    let page = b1.http.get(app.url("/enterprise/agent/password")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("示例科技有限公司") && page.contains(USCC), "{page}");
    // No CSRF token: refused.
    let res = b1
        .http
        .post(app.url("/enterprise/agent/password"))
        .form(&[("current", OLD), ("password", NEW), ("password2", NEW)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Wrong current, weak or unconfirmed new: refused with the message, nothing changed.
    for (current, new, new2, status, message) in [
        ("Wrong-000", NEW, NEW, 400, "当前密码错误"),
        (OLD, "abc12", "abc12", 400, RULE),
        (OLD, "abcdefgh", "abcdefgh", 400, RULE),
        (OLD, NEW, "Fresh-2028", 400, "两次输入的密码不一致"),
        (OLD, OLD, OLD, 409, "新密码不能与当前密码相同"),
    ] {
        let (s, html) = change(&app, &b1, current, new, new2).await;
        assert_eq!(s, status, "{new}: {html}");
        assert!(html.contains(message), "{html}");
        assert!(!html.contains(&format!("value=\"{new}\"")), "passwords are never echoed");
    }
    assert!(agent_sign_in(&app, &Browser::new(), &client, phone, OLD).await.is_ok(), "still the old password");

    let (s, html) = change(&app, &b1, OLD, NEW, NEW).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("密码已修改"), "{html}");
    assert!(sink(&app, "sms", phone).await.unwrap().contains("代理人登录密码已修改"));
    // This browser stays; the other session and every refresh token end.
    assert_eq!(change_page_status(&app, &b1).await, 200);
    assert_eq!(change_page_status(&app, &b2).await, 303);
    assert_eq!(refresh_error(&app, &client, &t1).await, "invalid_grant");
    assert_eq!(refresh_error(&app, &client, &t2).await, "invalid_grant");
    let refused = agent_sign_in(&app, &Browser::new(), &client, phone, OLD).await.unwrap_err();
    assert!(refused.1.contains("统一社会信用代码或密码错误"), "{refused:?}");
    agent_sign_in(&app, &Browser::new(), &client, phone, NEW).await.unwrap();

    // Wrong current passwords count in the sign-in throttle: locked after 5.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(change(&app, &b1, "Wrong-000", "Other-2029", "Other-2029").await.0);
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429]);
    let (s, html) = change(&app, &b1, NEW, "Other-2029", "Other-2029").await;
    assert_eq!(s, 429, "locked even with the right one: {html}");
    assert!(html.contains("登录失败次数过多"));
}
both!(agent_changes_password_other_sessions_end, super::agent_changes_password);

/// Opens the reset page in `b` and posts `form` (+ CSRF and the captcha
/// solved); returns (status, body).
async fn reset_post(app: &TestApp, b: &Browser, form: &[(&str, &str)]) -> (u16, String) {
    let page = b.http.get(app.url("/login/enterprise/forgot")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf), ("captcha_id", &captcha_id), ("captcha", &answer)];
    fields.extend_from_slice(form);
    let res = b.http.post(app.url("/login/enterprise/forgot")).form(&fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn send_code(app: &TestApp, uscc: &str, phone: &str) -> (u16, String) {
    reset_post(app, &Browser::new(), &[("action", "send_code"), ("uscc", uscc), ("phone", phone)]).await
}

async fn reset_with(app: &TestApp, phone: &str, code: &str, password: &str) -> (u16, String) {
    let form = [
        ("action", "reset"),
        ("uscc", USCC),
        ("phone", phone),
        ("sms_code", code),
        ("password", password),
        ("password2", password),
    ];
    reset_post(app, &Browser::new(), &form).await
}

async fn reset_by_sms(backend: Backend) {
    let app = spawn(backend).await;
    let client = refreshing_client(&app).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let (phone, revoked, rejected, nobody) = ("13800000071", "13800000072", "13800000073", "13800000074");
    agent(&app, &ent, "agent_rs1", phone, DelegationState::Active).await;
    agent(&app, &ent, "agent_rs2", revoked, DelegationState::Revoked).await;
    agent(&app, &ent, "agent_rs3", rejected, DelegationState::Rejected).await;
    let login = Browser::new();
    let page = login.http.get(app.url("/login/enterprise")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("href=\"/login/enterprise/forgot\""), "the sign-in page offers the reset");
    let before = agent_sign_in(&app, &login, &client, phone, OLD).await.unwrap();

    // The same answer for an agent, a revoked or rejected one, an unknown
    // phone and an unknown enterprise; only the agent's phone gets a code.
    for (uscc, p) in [(USCC, phone), (USCC, revoked), (USCC, rejected), (USCC, nobody), (USCC_OTHER, phone)] {
        let (s, html) = send_code(&app, uscc, p).await;
        assert_eq!(s, 200, "{uscc} {p}: {html}");
        assert!(html.contains(SAME_ANSWER), "{html}");
    }
    let sent = sink(&app, "sms", phone).await.expect("the agent's code");
    for p in [revoked, rejected, nobody] {
        assert!(sink(&app, "sms", p).await.is_none(), "no code for {p}");
    }
    let code = six_digits(&sent);
    // Revoked and rejected agents cannot reset (no code of theirs works).
    for p in [revoked, rejected] {
        let (s, _) = reset_with(&app, p, &code, NEW).await;
        assert_eq!(s, 400);
    }
    // A weak password: the rule, the typed fields kept, the code not used up.
    let weak = [
        ("action", "reset"),
        ("uscc", USCC),
        ("phone", phone),
        ("sms_code", code.as_str()),
        ("password", "abcdefgh"),
        ("password2", "abcdefgh"),
    ];
    let (s, html) = reset_post(&app, &Browser::new(), &weak).await;
    assert_eq!(s, 400);
    assert!(html.contains(RULE) && html.contains(&format!("value=\"{USCC}\"")) && html.contains(phone), "{html}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, html) = reset_with(&app, phone, wrong, NEW).await;
    assert_eq!(s, 400);
    assert!(html.contains("短信验证码错误或已失效"), "{html}");

    // Two resets racing with the one code: exactly one wins.
    let (a, b) = tokio::join!(reset_with(&app, phone, &code, NEW), reset_with(&app, phone, &code, "Loser-2029"));
    let mut outcomes = [a.0, b.0];
    outcomes.sort();
    assert_eq!(outcomes, [200, 400], "{a:?} {b:?}");
    let (winner, loser) = if a.0 == 200 { (NEW, "Loser-2029") } else { ("Loser-2029", NEW) };
    assert!(if a.0 == 200 { &a.1 } else { &b.1 }.contains("密码已重设"));
    // The code is spent.
    let (s, _) = reset_with(&app, phone, &code, "Again-2030").await;
    assert_eq!(s, 400);
    // The old password and whatever it opened are gone.
    assert_eq!(change_page_status(&app, &login).await, 303);
    assert_eq!(refresh_error(&app, &client, &before).await, "invalid_grant");
    assert!(agent_sign_in(&app, &Browser::new(), &client, phone, OLD).await.is_err());
    assert!(agent_sign_in(&app, &Browser::new(), &client, phone, loser).await.is_err());
    agent_sign_in(&app, &Browser::new(), &client, phone, winner).await.unwrap();
}
both!(agent_reset_by_sms_once_enumeration_safe, super::reset_by_sms);

async fn representative_requires_new_password(backend: Backend) {
    let app = spawn(backend).await;
    let client = refreshing_client(&app).await;
    real_person(&app, "rep_pw", ZHANG).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    // The representative's first-sign-in face check is another test's matter.
    enterprise_e::Entity::update_many()
        .col_expr(enterprise_e::Column::RepresentativeFaceAt, Expr::value(app.state.clock.now()))
        .filter(enterprise_e::Column::Id.eq(ent.as_str()))
        .exec(&app.state.store)
        .await
        .unwrap();
    let phone = "13800000081";
    let d = agent(&app, &ent, "agent_rq1", phone, DelegationState::Active).await;
    let b_agent = Browser::new();
    let t = agent_sign_in(&app, &b_agent, &client, phone, OLD).await.unwrap();

    let rep = Browser::new();
    let form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let next = start_enterprise_sign_in(&app, &rep, &client, &form).await.unwrap();
    finish_enterprise_sign_in(&app, &rep, next).await.unwrap();
    let list = AgentsPage::open(&app, &rep).await;
    assert!(list.html.contains("要求重设密码"), "{}", list.html);
    let res = list.act(&app, &rep, "require_password", &d, None).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("已清除该代理人的登录密码") && html.contains("待重设密码"), "{html}");
    assert!(sink(&app, "sms", phone).await.unwrap().contains("要求您重设"));
    // The agent's sessions and tokens ended; the old password opens nothing.
    assert_eq!(change_page_status(&app, &b_agent).await, 303);
    assert_eq!(refresh_error(&app, &client, &t).await, "invalid_grant");
    assert!(agent_sign_in(&app, &Browser::new(), &client, phone, OLD).await.is_err());
    // Nor his account's own password (the cleared one is no fallback).
    assert!(agent_sign_in(&app, &Browser::new(), &client, phone, PASSWORD).await.is_err());
    // The reset path still works for him.
    send_code(&app, USCC, phone).await;
    let code = six_digits(&sink(&app, "sms", phone).await.unwrap());
    assert_eq!(reset_with(&app, phone, &code, NEW).await.0, 200);
    agent_sign_in(&app, &Browser::new(), &client, phone, NEW).await.unwrap();
    // Revoked agents cannot be cleared again.
    let list = AgentsPage::open(&app, &rep).await;
    assert!(
        delegation::revoke(&app.state.store, &d, &delegation::Party::Enterprise(&ent), None, 0)
            .await
            .unwrap()
            .is_some()
    );
    let res = list.act(&app, &rep, "require_password", &d, None).await;
    assert_eq!(res.status(), 409);
}
both!(representative_requires_agent_new_password, super::representative_requires_new_password);
