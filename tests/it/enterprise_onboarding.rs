//! Enterprise onboarding (issue 20, seed 004 §2, C1/C2/C5, E2 with A2)
//! over HTTP: an enterprise registered from the web by its representative
//! (his real-name identity, his face through the app) signs in; two
//! registrations racing for one credit code, one winner; the
//! representative's password changed and reset by SMS, other sessions
//! ending; agent registration keeping what it collects; a passport
//! holder's kin binding; the CLI creating an enterprise whose
//! representative holds a passport.
use crate::both;
use crate::delegation::{ENT_PASSWORD, USCC, enterprise, finish_enterprise_sign_in, start_enterprise_sign_in, tokens};
use crate::face_gates::{
    GatePage, LI, ZHANG, app_face_check, gate_page, pass_face, pass_kin_face, real_person, ticket_status,
};
use crate::scan::citizen;
use crate::support::*;
use idp::domain::delegation::{self, enterprises};
use idp::store::entities::{agent_registration, audit, enterprise as enterprise_e};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const NEW: &str = "Fresh-2027";
const NEWER: &str = "Reset-2028";
const REP_PHONE: &str = "13900000009";

/// A citizen browser signed in as `username` (his own session).
async fn signed_in(app: &TestApp, username: &str) -> Browser {
    let client = app.confidential().await;
    let b = Browser::new();
    b.run(app, &auth_url(app, &client, &[]), username, PASSWORD).await.code();
    b
}

/// An account that bound the sandbox passport "周游 EA1234567".
async fn passport_person(app: &TestApp, username: &str) -> String {
    use idp::domain::identity::documents::{Document, DocumentForm};
    let user = app.user(username).await;
    let form = DocumentForm {
        doc_type: "passport".into(),
        name: "周游".into(),
        number: "EA1234567".into(),
        valid_from: "2020-01-01".into(),
        valid_to: "2030-01-01".into(),
        long_term: None,
    };
    let now = app.state.clock.now();
    let doc = Document::parse(&form, delegation::today(now)).unwrap();
    let r = idp::domain::identity::verify_document(&app.state.store, &app.state.verifier, &user, &doc, now).await;
    assert!(matches!(r, Ok(idp::domain::identity::BindOutcome::Done { .. })), "{r:?}");
    user
}

/// Posts the registration form in `b` (fresh CSRF token and solved
/// captcha); `fields` are the form's own fields.
async fn post_register(app: &TestApp, b: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = b.http.get(app.url("/enterprise/register")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("captcha_id", &captcha_id), ("captcha", &answer)];
    form.extend_from_slice(fields);
    b.http.post(app.url("/enterprise/register")).form(&form).send().await.unwrap()
}

/// The registration form for credit code `uscc` with ZHANG as
/// representative; sends the SMS code to `phone` first and returns the
/// fields with it.
async fn register_fields(
    app: &TestApp,
    b: &Browser,
    uscc: &'static str,
    phone: &'static str,
) -> Vec<(&'static str, String)> {
    let fields: Vec<(&'static str, String)> = vec![
        ("uscc", uscc.into()),
        ("name", "高原数字科技有限公司".into()),
        ("region", "拉萨市城关区".into()),
        ("rep_name", ZHANG.0.into()),
        ("rep_doc_type", "resident_id".into()),
        ("rep_number", ZHANG.1.into()),
        ("rep_phone", phone.into()),
        ("agree", "yes".into()),
    ];
    let mut send: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send.push(("action", "send_code"));
    let res = post_register(app, b, &send).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let code = six_digits(&sink(app, "sms", phone).await.expect("the code to the representative's phone"));
    let mut fields = fields;
    fields.push(("sms_code", code));
    fields.push(("action", "submit".into()));
    fields
}

async fn submit(app: &TestApp, b: &Browser, fields: &[(&'static str, String)]) -> reqwest::Response {
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_register(app, b, &refs).await
}

fn with(fields: &[(&'static str, String)], key: &'static str, value: &str) -> Vec<(&'static str, String)> {
    fields.iter().map(|(k, v)| (*k, if *k == key { value.to_string() } else { v.clone() })).collect()
}

/// Sets the enterprise password on the page the face check led to.
async fn set_password(app: &TestApp, b: &Browser, url: &str, password: &str, password2: &str) -> (u16, String) {
    let url = if url.starts_with('/') { app.url(url) } else { url.to_string() };
    let page = b.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{url}");
    let page = page.text().await.unwrap();
    let form = [
        ("csrf", hidden(&page, "csrf").unwrap()),
        ("e", hidden(&page, "e").unwrap()),
        ("password", password.to_string()),
        ("password2", password2.to_string()),
    ];
    let res = b.http.post(app.url("/enterprise/register/password")).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn refreshing_client(app: &TestApp) -> TestClient {
    app.client(|c| c.grant_types = Some(vec!["authorization_code".into(), "refresh_token".into()])).await
}

/// The representative's enterprise sign-in in `b` without a face gate
/// (his face is on record); the tokens, or the refusal.
async fn rep_sign_in(
    app: &TestApp,
    b: &Browser,
    client: &TestClient,
    uscc: &str,
    password: &str,
) -> Result<serde_json::Value, (u16, String)> {
    let form = [("uscc", uscc), ("role", "representative"), ("password", password)];
    let next = start_enterprise_sign_in(app, b, client, &form).await?;
    assert!(!next.contains("/face?gate="), "no face gate is due: {next}");
    let code = finish_enterprise_sign_in(app, b, next).await?;
    Ok(tokens(app, client, &code).await)
}

async fn registered_from_the_web(backend: Backend) {
    let app = spawn(backend).await;
    let rep = real_person(&app, "rep_web", ZHANG).await;
    app.user("reg_stranger").await;
    // The enterprise sign-in page links the registration.
    let login = Browser::new().http.get(app.url("/login/enterprise")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("id=\"enterprise-register\" href=\"/enterprise/register\""), "{login}");
    // Only a signed-in citizen registers: the page sends others to sign in.
    let anon = Browser::new().http.get(app.url("/enterprise/register")).send().await.unwrap();
    assert_eq!(anon.status(), 303);

    let b = signed_in(&app, "rep_web").await;
    let page = b.http.get(app.url("/enterprise/register")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("value=\"{}\"", ZHANG.1)), "his identity is filled in: {page}");
    let fields = register_fields(&app, &b, USCC, REP_PHONE).await;
    // Someone else named as representative: refused, nothing opened.
    let res = submit(&app, &b, &with(&fields, "rep_name", LI.0)).await;
    assert_eq!(res.status(), 409);
    assert!(location(&res).is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains(&app.state.pages.text("zh-CN", "enterprise_register_rep_mismatch")), "{html}");
    assert!(html.contains("高原数字科技有限公司"), "what was typed is kept");
    // A wrong check character of the credit code.
    let res = submit(&app, &b, &with(&fields, "uscc", "91440300708461136A")).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("校验位错误"));

    let res = submit(&app, &b, &fields).await;
    let gate = location(&res).expect("the representative's face check comes next");
    assert!(gate.contains("/face?gate="), "{gate}");
    let (view, done) = pass_face(&app, &b, &gate, "rep_web", "reg_stranger").await;
    assert_eq!(view["detail"]["action"], "register_enterprise");
    assert_eq!(view["detail"]["enterprise"]["uscc"], USCC);
    let next = location(&done).expect("on to the password");
    assert!(next.contains("/enterprise/register/password?e="), "{next}");
    let e = enterprises::find_by_uscc(&app.state.store, USCC).await.unwrap().expect("registered");
    assert_eq!(e.representative_user_id.as_deref(), Some(rep.as_str()));
    assert_eq!((e.representative_name.as_str(), e.representative_phone.as_str()), (ZHANG.0, REP_PHONE));
    let audited = audit::Entity::find()
        .filter(audit::Column::Action.eq("enterprise_registered"))
        .filter(audit::Column::UserId.eq(rep.as_str()))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "the registration is audited");

    // No password yet: nothing signs in.
    let client = refreshing_client(&app).await;
    let refused = rep_sign_in(&app, &Browser::new(), &client, USCC, ENT_PASSWORD).await.unwrap_err();
    assert_eq!(refused.0, 401);
    // Step 3: C1's rule, then the password.
    let (status, html) = set_password(&app, &b, &next, "abcdefgh", "abcdefgh").await;
    assert_eq!(status, 400);
    assert!(html.contains("6-15位字符，必须由数字、字母或符号两种以上组成"));
    let (status, html) = set_password(&app, &b, &next, ENT_PASSWORD, ENT_PASSWORD).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"enterprise-registered\"") && html.contains("href=\"/login/enterprise\""), "{html}");
    // Set once: the page is gone.
    let again = b.http.get(if next.starts_with('/') { app.url(&next) } else { next.clone() }).send().await.unwrap();
    assert_eq!(again.status(), 409);

    // The enterprise signs in; the app sees the enterprise and its representative.
    let t = rep_sign_in(&app, &Browser::new(), &client, USCC, ENT_PASSWORD).await.unwrap();
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], e.id);
    assert_eq!(id["act"]["sub"], rep);
    assert_eq!(id["legal_person"]["uscc"], USCC);
    assert_eq!(id["legal_person"]["role"], "representative");
}
both!(an_enterprise_registered_from_the_web_signs_in, super::registered_from_the_web);

/// The app of `user` runs its face check and confirms the gate's ticket,
/// without the browser completing it.
async fn confirm_gate(app: &TestApp, b: &Browser, gate: &str, user: &str) -> GatePage {
    let url = if gate.starts_with('/') { app.url(gate) } else { gate.to_string() };
    let page = gate_page(b, &url).await;
    let phone = citizen(app, user).await;
    assert_eq!(phone.read(app, &page.ticket).await.status(), 200);
    app_face_check(app, &phone).await;
    let res = phone.decide(app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(ticket_status(app, b, &page.ticket).await, "confirmed");
    page
}

async fn duplicate_race(backend: Backend) {
    let app = spawn(backend).await;
    real_person(&app, "rep_race", ZHANG).await;
    for (round, (uscc, phones)) in
        [(USCC, ("13900000031", "13900000032")), ("91110108551385082Q", ("13900000033", "13900000034"))]
            .into_iter()
            .enumerate()
    {
        // Two browsers of the representative fill in the same credit code.
        let (b1, b2) = (signed_in(&app, "rep_race").await, signed_in(&app, "rep_race").await);
        let f1 = register_fields(&app, &b1, uscc, phones.0).await;
        let f2 = register_fields(&app, &b2, uscc, phones.1).await;
        let g1 = location(&submit(&app, &b1, &f1).await).expect("a gate");
        let g2 = location(&submit(&app, &b2, &f2).await).expect("a second gate: nothing is registered yet");
        let p1 = confirm_gate(&app, &b1, &g1, "rep_race").await;
        let p2 = confirm_gate(&app, &b2, &g2, "rep_race").await;
        let (r1, r2) = tokio::join!(p1.complete(&app, &b1), p2.complete(&app, &b2));
        let mut won = 0;
        for r in [r1, r2] {
            match location(&r) {
                Some(next) => {
                    assert!(next.contains("/enterprise/register/password"), "{next}");
                    won += 1;
                }
                None => {
                    assert_eq!(r.status(), 409, "round {round}");
                    assert!(r.text().await.unwrap().contains("该统一社会信用代码已注册"));
                }
            }
        }
        assert_eq!(won, 1, "round {round}: one registration wins");
        let rows = enterprise_e::Entity::find()
            .filter(enterprise_e::Column::Uscc.eq(uscc))
            .all(&app.state.store)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        // A third attempt is refused on the form, before any face check.
        let b3 = signed_in(&app, "rep_race").await;
        let f3 = register_fields(&app, &b3, uscc, phones.0).await;
        let res = submit(&app, &b3, &f3).await;
        assert_eq!(res.status(), 409);
        assert!(res.text().await.unwrap().contains("该统一社会信用代码已注册"));
    }
}
both!(duplicate_credit_code_racing_one_winner, super::duplicate_race);

async fn post_page(app: &TestApp, b: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let page = b.http.get(app.url(path)).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap_or_else(|| panic!("{page}"));
    let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    fields.extend_from_slice(form);
    let res = b.http.post(app.url(path)).form(&fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The representative's reset page (`role=representative`) with the captcha solved.
async fn reset_post(app: &TestApp, form: &[(&str, &str)]) -> (u16, String) {
    let b = Browser::new();
    let page = b.http.get(app.url("/login/enterprise/forgot?role=representative")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("法人忘记密码"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let mut fields: Vec<(&str, &str)> =
        vec![("csrf", &csrf), ("captcha_id", &captcha_id), ("captcha", &answer), ("role", "representative")];
    fields.extend_from_slice(form);
    let res = b.http.post(app.url("/login/enterprise/forgot")).form(&fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
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

async fn agents_status(app: &TestApp, b: &Browser) -> u16 {
    b.http.get(app.url("/enterprise/agents")).send().await.unwrap().status().as_u16()
}

async fn representative_password(backend: Backend) {
    let app = spawn(backend).await;
    real_person(&app, "rep_pw", ZHANG).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    // His first-sign-in face check is on record.
    enterprise_e::Entity::update_many()
        .col_expr(enterprise_e::Column::RepresentativeFaceAt, Expr::value(app.state.clock.now()))
        .filter(enterprise_e::Column::Id.eq(ent.as_str()))
        .exec(&app.state.store)
        .await
        .unwrap();
    let client = refreshing_client(&app).await;
    let (b1, b2) = (Browser::new(), Browser::new());
    rep_sign_in(&app, &b1, &client, USCC, ENT_PASSWORD).await.unwrap();
    let t2 = rep_sign_in(&app, &b2, &client, USCC, ENT_PASSWORD).await.unwrap();
    let page = b1.http.get(app.url("/enterprise/agents")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"enterprise-password-link\""), "{page}");

    // A wrong current password, a weak or unconfirmed new one: refused.
    let (s, html) =
        post_page(&app, &b1, "/enterprise/password", &[("current", "wrong-1"), ("password", NEW), ("password2", NEW)])
            .await;
    assert_eq!(s, 400);
    assert!(html.contains("当前密码错误"), "{html}");
    let (s, _) = post_page(
        &app,
        &b1,
        "/enterprise/password",
        &[("current", ENT_PASSWORD), ("password", "abcdefg"), ("password2", "abcdefg")],
    )
    .await;
    assert_eq!(s, 400);
    let (s, html) = post_page(
        &app,
        &b1,
        "/enterprise/password",
        &[("current", ENT_PASSWORD), ("password", NEW), ("password2", NEW)],
    )
    .await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("id=\"enterprise-password-changed\""), "{html}");
    // The other session and its refresh token ended; this one stays.
    assert_eq!(agents_status(&app, &b2).await, 303, "the other session ended");
    assert_eq!(refresh_error(&app, &client, &t2).await, "invalid_grant");
    assert_eq!(agents_status(&app, &b1).await, 200, "the session it was changed in stays");
    // The old password fails, the new one works.
    assert_eq!(rep_sign_in(&app, &Browser::new(), &client, USCC, ENT_PASSWORD).await.unwrap_err().0, 401);
    let t3 = rep_sign_in(&app, &Browser::new(), &client, USCC, NEW).await.unwrap();
    assert!(sink(&app, "sms", REP_PHONE).await.is_some_and(|m| m.contains("法人登录密码已修改")), "the phone is told");

    // Reset by SMS to the representative's phone on record: the same answer
    // for another phone, which gets no code.
    let other = "13900000044";
    for phone in [REP_PHONE, other] {
        let (s, html) = reset_post(&app, &[("action", "send_code"), ("uscc", USCC), ("phone", phone)]).await;
        assert_eq!(s, 200, "{html}");
        assert!(html.contains("如该手机号为本企业法定代表人预留手机号"), "{html}");
    }
    assert!(sink(&app, "sms", other).await.is_none());
    let code = six_digits(&sink(&app, "sms", REP_PHONE).await.unwrap());
    let reset = |phone: &'static str, code: String| {
        let app = &app;
        async move {
            let form = [
                ("action", "reset"),
                ("uscc", USCC),
                ("phone", phone),
                ("sms_code", code.as_str()),
                ("password", NEWER),
                ("password2", NEWER),
            ];
            reset_post(app, &form).await
        }
    };
    let (s, _) = reset(other, code.clone()).await;
    assert_eq!(s, 400, "the code is bound to the representative's phone");
    let (s, html) = reset(REP_PHONE, code.clone()).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("密码已重设"), "{html}");
    let (s, _) = reset(REP_PHONE, code).await;
    assert_eq!(s, 400, "a code works once");
    // Every representative session ended, this one too; only the new password opens.
    assert_eq!(agents_status(&app, &b1).await, 303);
    assert_eq!(refresh_error(&app, &client, &t3).await, "invalid_grant");
    assert_eq!(rep_sign_in(&app, &Browser::new(), &client, USCC, NEW).await.unwrap_err().0, 401);
    rep_sign_in(&app, &Browser::new(), &client, USCC, NEWER).await.unwrap();
    let audited = audit::Entity::find()
        .filter(audit::Column::Action.is_in(["enterprise_change_password", "enterprise_reset_password"]))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!(audited.len(), 2);
}
both!(representative_changes_and_resets_the_enterprise_password, super::representative_password);

async fn agent_details(backend: Backend) {
    let app = spawn(backend).await;
    real_person(&app, "rep_ad", ZHANG).await;
    let agent = passport_person(&app, "agent_pp").await;
    app.user("reg_stranger").await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let b = Browser::new();
    let page = b.http.get(app.url("/register/agent")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let phone = "13800000091";
    let base: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("region", "日喀则市桑珠孜区"),
        ("uscc", USCC),
        ("name", "周游"),
        ("doc_type", "passport"),
        ("id_number", "EA1234567"),
        ("id_valid_from", "2020-01-01"),
        ("id_valid_to", "2030-01-01"),
        ("gender", "female"),
        ("ethnicity", "藏族"),
        ("phone", phone),
        ("rep_name", ZHANG.0),
        ("rep_id_number", ZHANG.1),
        ("rep_phone", REP_PHONE),
        ("password", "Agent-2026"),
        ("password2", "Agent-2026"),
        ("agree", "yes"),
    ];
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(&app, "captcha", &captcha_id).await.unwrap();
    let mut send = base.clone();
    send.extend([("captcha_id", captcha_id.as_str()), ("captcha", answer.as_str()), ("action", "send_code")]);
    assert_eq!(b.http.post(app.url("/register/agent")).form(&send).send().await.unwrap().status(), 200);
    let code = six_digits(&sink(&app, "sms", phone).await.unwrap());
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let (b, app, base, code) = (&b, &app, base.clone(), code.clone());
        async move {
            let mut form: Vec<(&str, &str)> =
                base.into_iter().filter(|(k, _)| !fields.iter().any(|(f, _)| f == k)).collect();
            form.extend(fields.iter().copied().filter(|(_, v)| !v.is_empty()));
            form.extend([("sms_code", code.as_str()), ("action", "submit")]);
            b.http.post(app.url("/register/agent")).form(&form).send().await.unwrap()
        }
    };
    // What C2 asks for is required: validity, gender, a recognised ethnicity.
    for (fields, key) in [
        (vec![("id_valid_to", "")], "identity_err_dates"),
        (vec![("ethnicity", "火星族")], "agent_register_ethnicity_missing"),
        (vec![("gender", "")], "agent_register_gender_missing"),
        (vec![("id_valid_to", "2040-01-01")], "identity_err_term"),
    ] {
        let res = post(fields).await;
        assert_eq!(res.status(), 400, "{key}");
        assert!(location(&res).is_none());
        let html = res.text().await.unwrap();
        assert!(html.contains(&app.state.pages.text("zh-CN", key)), "{key}: {html}");
        assert!(html.contains("EA1234567"), "what was typed is kept");
    }
    let res = post(vec![]).await;
    let gate = location(&res).expect("the agent's face check");
    let (_, done) = pass_face(&app, &b, &gate, "agent_pp", "reg_stranger").await;
    assert_eq!(done.status(), 200);
    let d = delegation::agent_delegation(&app.state.store, &ent, &agent).await.unwrap().expect("a pending agent");
    let row = agent_registration::Entity::find_by_id(d.id.clone()).one(&app.state.store).await.unwrap().expect("kept");
    assert_eq!(
        (row.doc_type.as_str(), row.valid_from.as_str(), row.valid_to.as_deref(), row.gender.as_str()),
        ("passport", "2020-01-01", Some("2030-01-01"), "female")
    );
    assert_eq!((row.ethnicity.as_str(), row.region.as_str()), ("藏族", "日喀则市桑珠孜区"));
    assert_eq!((row.phone.as_str(), row.rep_phone.as_str()), (phone, REP_PHONE));

    // The representative sees it on the agent list.
    enterprise_e::Entity::update_many()
        .col_expr(enterprise_e::Column::RepresentativeFaceAt, Expr::value(app.state.clock.now()))
        .filter(enterprise_e::Column::Id.eq(ent.as_str()))
        .exec(&app.state.store)
        .await
        .unwrap();
    let rep_b = Browser::new();
    rep_sign_in(&app, &rep_b, &app.confidential().await, USCC, ENT_PASSWORD).await.unwrap();
    let html = rep_b.http.get(app.url("/enterprise/agents")).send().await.unwrap().text().await.unwrap();
    let start = html.find(&format!("id=\"agent-reg-{}\"", d.id)).unwrap_or_else(|| panic!("{html}"));
    let shown = &html[start..start + html[start..].find("</dl>").unwrap()];
    for expected in ["护照", "2020-01-01 – 2030-01-01", "女", "藏族", "日喀则市桑珠孜区", phone, REP_PHONE]
    {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
}
both!(agent_registration_stores_and_shows_what_it_collects, super::agent_details);

/// The kin form for a relative holding a passport.
async fn post_passport_kin(app: &TestApp, b: &Browser, birth: &str) -> reqwest::Response {
    let page = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", hidden(&page, "csrf").unwrap()),
        ("action", "bind".into()),
        ("name", "周游".into()),
        ("doc_type", "passport".into()),
        ("id_number", "ea1234567".into()),
        ("birth_date", birth.into()),
        ("valid_from", "2020-01-01".into()),
        ("valid_to", "2030-01-01".into()),
        ("relation", "child".into()),
    ];
    b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap()
}

async fn passport_kin(backend: Backend) {
    use chrono::Datelike;
    let app = spawn(backend).await;
    let guardian = app.user("guardian_pp").await;
    let b = signed_in(&app, "guardian_pp").await;
    let today = delegation::today(app.state.clock.now());
    let born = |years: i32| today.with_year(today.year() - years).unwrap_or(today).to_string();
    // A passport carries no birth date: the form must give it; the age rule counts from it.
    for (birth, key) in [("", "kin_birth_date"), (born(30).as_str(), "kin_age")] {
        let res = post_passport_kin(&app, &b, birth).await;
        assert_eq!(res.status(), 400, "{key}");
        assert!(res.text().await.unwrap().contains(&app.state.pages.text("zh-CN", key)), "{key}");
    }
    // About ten years old: older than six, so the face check follows the commitment.
    let birth = format!("{}-03-01", today.year() - 10);
    let age = delegation::kin::age_from(chrono::NaiveDate::parse_from_str(&birth, "%Y-%m-%d").unwrap(), today);
    let res = post_passport_kin(&app, &b, &birth).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"kin-commitment\""), "{page}");
    let field = |k: &str| hidden(&page, k).unwrap_or_default();
    assert_eq!(
        (field("doc_type"), field("id_number"), field("birth_date")),
        ("passport".into(), "EA1234567".into(), birth.clone())
    );
    let mut form: Vec<(&str, String)> =
        ["csrf", "version", "name", "id_number", "relation", "valid_from", "valid_to", "doc_type", "birth_date"]
            .into_iter()
            .map(|k| (k, field(k)))
            .collect();
    form.push(("accept", "on".into()));
    form.push(("action", "commit".into()));
    let res = b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap();
    let gate = location(&res).expect("the relative's face check");
    let gate = if gate.starts_with('/') { app.url(&gate) } else { gate };
    let (_, done) = pass_kin_face(&app, &b, &gate, "guardian_pp").await;
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
    let relatives = delegation::kin::relatives_of(&app.state.store, &guardian, app.state.clock.now()).await.unwrap();
    assert_eq!(relatives.len(), 1);
    assert_eq!((relatives[0].id_number.as_str(), Some(relatives[0].age)), ("EA1234567", age));
    let html = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("id=\"kin-{}\"", relatives[0].relation_id)), "{html}");
}
both!(a_passport_holder_is_bound_as_relative, super::passport_kin);

async fn cli_passport(backend: Backend) {
    let app = spawn(backend).await;
    let holder = passport_person(&app, "rep_passport").await;
    let args = |doc_type: &'static str, uscc: &'static str| {
        vec![
            "enterprise",
            "create",
            "--uscc",
            uscc,
            "--name",
            "跨境贸易有限公司",
            "--representative-name",
            "周游",
            "--representative-id",
            "ea1234567",
            "--representative-doc-type",
            doc_type,
            "--representative-phone",
            REP_PHONE,
            "--password",
            ENT_PASSWORD,
        ]
    };
    let (dir, db) = (app.dir.clone(), app.database_url.clone());
    let run = move |a: Vec<&'static str>| {
        let (dir, db) = (dir.clone(), db.clone());
        tokio::task::spawn_blocking(move || {
            let fake = TestAppLite { dir, database_url: db };
            fake.run(&a)
        })
    };
    let wrong = run(args("resident_id", USCC)).await.unwrap();
    assert!(!wrong.status.success(), "a passport number is no resident ID number");
    let out = run(args("passport", USCC)).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = enterprises::find_by_uscc(&app.state.store, USCC).await.unwrap().expect("created");
    assert_eq!(e.representative_id_number, "EA1234567");
    // The passport holder's account is the representative: the enterprise signs in and links it.
    let signed = enterprises::sign_in_representative(&app.state.store, &app.state.passwords, USCC, ENT_PASSWORD)
        .await
        .unwrap()
        .expect("signs in");
    assert_eq!(signed.user_id, holder);
    assert!(signed.face_of.as_deref() == Some("EA1234567"), "his first sign-in waits for his face");
}
both!(cli_creates_an_enterprise_with_a_passport_representative, super::cli_passport);

struct TestAppLite {
    dir: std::path::PathBuf,
    database_url: String,
}

impl TestAppLite {
    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IDP_DATA_DIR", &self.dir)
            .env("IDP_DATABASE_URL", &self.database_url)
            .env("IDP_MASTER_KEY", "7f".repeat(32))
            .env("IDP_LOG", "warn")
            .args(args)
            .output()
            .unwrap()
    }
}

/// A live-capture sample and one the sandbox fails for liveness, base64.
const LIVE_FACE: &str = "c2FuZGJveC1mYWNl";
const NOT_LIVE_FACE: &str = "Tk9ULUxJVkUtc2FtcGxl";
/// The agent password set on the C2 form.
const AGENT_PW: &str = "Agent-2026";

/// C2's form for a person (name, resident ID number, long-term card from
/// 2013 unless `valid` gives the card's dates) with
/// `phone`, representative ZHANG, SMS code sent and typed: where it leads
/// (the face gate), or the refused page.
async fn agent_form(
    app: &TestApp,
    b: &Browser,
    name: &str,
    number: &str,
    phone: &str,
    valid: Option<(&str, &str)>,
) -> Result<String, (u16, String)> {
    let page = b.http.get(app.url("/register/agent")).send().await.unwrap().text().await.unwrap();
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let form: Vec<(&str, String)> = vec![
        ("csrf", hidden(&page, "csrf").unwrap()),
        ("region", "拉萨市城关区".into()),
        ("uscc", USCC.into()),
        ("name", name.into()),
        ("id_number", number.into()),
        ("id_valid_from", valid.map_or("2013-01-01", |v| v.0).into()),
        match valid {
            Some((_, to)) => ("id_valid_to", to.into()),
            None => ("long_term", "on".into()),
        },
        ("gender", "male".into()),
        ("ethnicity", "藏族".into()),
        ("phone", phone.into()),
        ("rep_name", ZHANG.0.into()),
        ("rep_id_number", ZHANG.1.into()),
        ("rep_phone", REP_PHONE.into()),
        ("password", AGENT_PW.into()),
        ("password2", AGENT_PW.into()),
        ("agree", "yes".into()),
    ];
    let mut send = form.clone();
    send.extend([("captcha_id", captcha_id), ("captcha", answer), ("action", "send_code".into())]);
    assert_eq!(b.http.post(app.url("/register/agent")).form(&send).send().await.unwrap().status(), 200);
    let code = six_digits(&sink(app, "sms", phone).await.unwrap());
    let mut submit = form;
    submit.extend([("sms_code", code), ("action", "submit".into())]);
    let res = b.http.post(app.url("/register/agent")).form(&submit).send().await.unwrap();
    match location(&res) {
        Some(gate) if gate.starts_with('/') => Ok(app.url(&gate)),
        Some(gate) => Ok(gate),
        None => Err((res.status().as_u16(), res.text().await.unwrap())),
    }
}

/// The app that scanned a registration gate's ticket checks the agent's
/// face through the verifier (`POST /api/identity/face` with the ticket).
async fn agent_face(app: &TestApp, phone: &crate::scan::CitizenApp, ticket: &str, sample: &str) -> reqwest::Response {
    crate::face_gates::relative_face(app, phone, ticket, sample).await
}

/// Nothing of a registration was kept: no account holds the number or the
/// phone (none besides `others` who had it), no identity, no agent of the
/// enterprise, no account audit.
async fn nothing_kept(app: &TestApp, ent: &str, number: &str, phone: &str, others: usize) {
    use idp::store::entities::{identity, user};
    let db = &app.state.store;
    let ids = identity::Entity::find().filter(identity::Column::DocNumber.eq(number)).all(db).await.unwrap();
    assert!(ids.is_empty(), "no identity for {number}");
    let users = user::Entity::find().filter(user::Column::IdNumber.eq(number)).all(db).await.unwrap();
    assert!(users.is_empty(), "no account holds {number}");
    let holders = user::Entity::find().filter(user::Column::Phone.eq(phone)).all(db).await.unwrap();
    assert_eq!(holders.len(), others, "{phone}");
    assert!(delegation::agents_of(db, ent).await.unwrap().is_empty(), "no agent");
    let created = audit::Entity::find().filter(audit::Column::Action.eq("agent_account_created")).all(db).await;
    assert!(created.unwrap().is_empty());
}

/// Seed 004 (issue 20): a person with no account registers as agent. Any
/// signed-in app scans the gate's code (a colleague's here) and checks his
/// face through the verifier — exactly the name and number the form gave;
/// his account is created with the pending agent (real-name identity at
/// L3, the form's phone, no password); the representative approves; he
/// sets a personal password through "forgot password", signs in at the
/// enterprise login as agent (first sign-in face check with his own app)
/// and the ID token's `act.sub` is his new account. Wrong face or wrong
/// name: the gate stays closed and nothing is created.
async fn new_person_registers_as_agent(backend: Backend) {
    use idp::store::entities::{identity, user};
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let rep = real_person(&app, "rep_new", ZHANG).await;
    real_person(&app, "colleague", LI).await;
    app.user("stranger_new").await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let colleague = citizen(&app, "colleague").await;
    let (chen_name, chen_id) = (crate::face_gates::CHEN.0, crate::face_gates::CHEN.1);
    let phone = "13800000077";

    // Wrong name at the verifier (the number is 陈一's): the app's check
    // is refused, the confirm finds no pass, the gate stays closed.
    let b = Browser::new();
    let gate = agent_form(&app, &b, "陈二", chen_id, phone, None).await.expect("the face gate");
    let page = gate_page(&b, &gate).await;
    let view = json(colleague.read(&app, &page.ticket).await).await;
    assert_eq!(
        (view["detail"]["action"].as_str(), view["face_required"].as_bool()),
        (Some("register_agent"), Some(true))
    );
    assert_eq!(view["detail"]["agent"]["name"], "陈*", "{view}");
    let res = agent_face(&app, &colleague, &page.ticket, LIVE_FACE).await;
    assert_eq!(res.status(), 422);
    assert_eq!(json(res).await["result"], "mismatch");
    // The colleague's own face pass is no pass of the agent.
    app_face_check(&app, &colleague).await;
    let res = colleague.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(json(res).await["error"], "face_check_required");
    let res =
        b.http.post(app.url("/face")).form(&[("gate", query_of(&gate)["gate"].as_str()), ("csrf", page.csrf.as_str())]);
    assert_eq!(res.send().await.unwrap().status(), 409, "the gate stays closed");
    nothing_kept(&app, &ent, chen_id, phone, 0).await;

    // Wrong face: a capture that fails liveness, and 周九 whose face the
    // verifier does not match.
    let b = Browser::new();
    let gate = agent_form(&app, &b, chen_name, chen_id, phone, None).await.expect("the face gate");
    let page = gate_page(&b, &gate).await;
    assert_eq!(colleague.read(&app, &page.ticket).await.status(), 200);
    let res = agent_face(&app, &colleague, &page.ticket, NOT_LIVE_FACE).await;
    assert_eq!(json(res).await["result"], "liveness_failed");
    let res = colleague.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(json(res).await["error"], "face_check_required");
    let zhou = ("周九", "110101199509090079");
    let bz = Browser::new();
    let gate_z = agent_form(&app, &bz, zhou.0, zhou.1, "13800000078", Some(("2018-06-06", "2028-06-06")))
        .await
        .expect("the face gate");
    let page_z = gate_page(&bz, &gate_z).await;
    assert_eq!(colleague.read(&app, &page_z.ticket).await.status(), 200);
    let res = agent_face(&app, &colleague, &page_z.ticket, LIVE_FACE).await;
    assert_eq!(json(res).await["result"], "face_mismatch");
    let res = colleague.decide(&app, &page_z.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(json(res).await["error"], "face_check_required");
    nothing_kept(&app, &ent, zhou.1, "13800000078", 0).await;
    nothing_kept(&app, &ent, chen_id, phone, 0).await;

    // An app that does not hold the ticket cannot check the face for it.
    let other = citizen(&app, "stranger_new").await;
    let res = agent_face(&app, &other, &page.ticket, LIVE_FACE).await;
    assert_eq!(res.status(), 403);
    assert_eq!(colleague.read(&app, &page.ticket).await.status(), 200, "still the colleague's");
    assert_eq!(other.read(&app, &page.ticket).await.status(), 409, "held by the colleague's app");

    // The right face, through the app holding the ticket: the gate opens
    // and the browser's step creates his account with the pending agent.
    let res = agent_face(&app, &colleague, &page.ticket, LIVE_FACE).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["for"], "agent");
    let res = colleague.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = page.complete(&app, &b).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains(&app.state.pages.text("zh-CN", "agent_register_done")));
    let db = &app.state.store;
    let held = identity::Entity::find().filter(identity::Column::DocNumber.eq(chen_id)).one(db).await.unwrap();
    let held = held.expect("his real-name identity");
    assert_eq!(
        (held.name.as_str(), held.doc_type.as_str(), held.level, held.method.as_str()),
        (chen_name, "resident_id", 3, "face")
    );
    assert_eq!((held.valid_from.as_str(), held.valid_to.as_deref()), ("2013-01-01", None));
    let agent = held.user_id.clone();
    let u = user::Entity::find_by_id(agent.clone()).one(db).await.unwrap().unwrap();
    assert_eq!((u.phone.as_deref(), u.phone_verified, u.proofing_level), (Some(phone), true, 3));
    assert_eq!((u.name.as_deref(), u.id_number.as_deref()), (Some(chen_name), Some(chen_id)));
    assert!(!idp::domain::identity::users::has_password(&u), "no personal password yet");
    let profile: serde_json::Value = serde_json::from_str(u.profile.as_deref().unwrap_or("{}")).unwrap();
    assert_eq!((profile["gender"].as_str(), profile["ethnicity"].as_str()), (Some("male"), Some("藏族")));
    let created =
        audit::Entity::find().filter(audit::Column::Action.eq("agent_account_created")).all(db).await.unwrap();
    assert_eq!(created.len(), 1);
    let d = delegation::agent_delegation(db, &ent, &agent).await.unwrap().expect("a pending agent");
    assert_eq!(d.state, "pending");
    // The abandoned gate of the same person (liveness failure) changes nothing now.
    assert_eq!(
        identity::Entity::find().filter(identity::Column::DocNumber.eq(chen_id)).all(db).await.unwrap().len(),
        1
    );

    // The representative approves (his face through his app).
    enterprise_e::Entity::update_many()
        .col_expr(enterprise_e::Column::RepresentativeFaceAt, Expr::value(app.state.clock.now()))
        .filter(enterprise_e::Column::Id.eq(ent.as_str()))
        .exec(db)
        .await
        .unwrap();
    let rep_b = Browser::new();
    rep_sign_in(&app, &rep_b, &client, USCC, ENT_PASSWORD).await.unwrap();
    let list = crate::face_gates::AgentsPage::open(&app, &rep_b).await;
    assert!(list.html.contains(chen_name), "{}", list.html);
    let res = list.act(&app, &rep_b, "approve", &d.id, None).await;
    let gate = location(&res).unwrap();
    let (_, approved) = pass_face(&app, &rep_b, &gate, "rep_new", "stranger_new").await;
    assert!(location(&approved).unwrap().contains("agents_approved"));
    assert_ne!(rep, agent);

    // He sets a personal password through "forgot password" (his phone's
    // code and his ID number), then signs his own app in.
    let fb = Browser::new();
    let flow = crate::accounts::reset_start(&app, &fb, phone).await;
    let csrf = crate::accounts::reset_send_code(&app, &fb, &flow).await;
    let code = six_digits(&sink(&app, "sms", phone).await.unwrap());
    let verify = [
        ("flow", flow.clone()),
        ("csrf", csrf.clone()),
        ("action", "verify".to_string()),
        ("sms_code", code),
        ("id_number", chen_id.to_string()),
    ];
    assert_eq!(fb.http.post(app.url("/forgot/verify")).form(&verify).send().await.unwrap().status(), 303);
    let set = [
        ("flow", flow),
        ("csrf", csrf),
        ("action", "password".to_string()),
        ("password", PASSWORD.to_string()),
        ("password2", PASSWORD.to_string()),
    ];
    assert_eq!(fb.http.post(app.url("/forgot/password")).form(&set).send().await.unwrap().status(), 303);

    // The agent signs in for the enterprise with the agent password: the
    // first time his face through his own app (C1); `act.sub` is his account.
    let b_agent = Browser::new();
    let form = [("uscc", USCC), ("role", "agent"), ("agent", chen_id), ("password", AGENT_PW)];
    let next = start_enterprise_sign_in(&app, &b_agent, &client, &form).await.unwrap();
    assert!(next.contains("/face?gate="), "{next}");
    let (_, done) = pass_face(&app, &b_agent, &next, phone, "stranger_new").await;
    let code = finish_enterprise_sign_in(&app, &b_agent, location(&done).unwrap()).await.unwrap();
    let t = tokens(&app, &client, &code).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], ent);
    assert_eq!(id["act"]["sub"], agent);
    assert_eq!(id["legal_person"]["role"], "agent");
}
both!(a_new_person_registers_as_agent, super::new_person_registers_as_agent);

/// A phone another account has: refused before the face check; and when
/// another account takes it while the face check runs, refused at the end
/// with nothing kept. Two registrations of one new person racing: one
/// account.
async fn agent_phone_taken(backend: Backend) {
    use idp::domain::identity::users::NewUser;
    use idp::store::entities::identity;
    let app = spawn(backend).await;
    real_person(&app, "rep_pt", ZHANG).await;
    real_person(&app, "colleague_pt", LI).await;
    let ent = enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let (chen_name, chen_id) = (crate::face_gates::CHEN.0, crate::face_gates::CHEN.1);
    let taken = "13800000055";
    let owner = NewUser {
        username: "phone_owner".into(),
        password: PASSWORD.into(),
        phone: Some(taken.into()),
        ..Default::default()
    };
    app.state.users.create(owner).await.unwrap();
    let refused = agent_form(&app, &Browser::new(), chen_name, chen_id, taken, None).await.unwrap_err();
    assert_eq!(refused.0, 409);
    assert!(refused.1.contains(&app.state.pages.text("zh-CN", "agent_register_phone_taken")), "{}", refused.1);

    // Free when the form is sent, taken before the browser continues.
    let phone = "13800000056";
    let b = Browser::new();
    let gate = agent_form(&app, &b, chen_name, chen_id, phone, None).await.expect("the face gate");
    let page = gate_page(&b, &gate).await;
    let colleague = citizen(&app, "colleague_pt").await;
    assert_eq!(colleague.read(&app, &page.ticket).await.status(), 200);
    assert_eq!(agent_face(&app, &colleague, &page.ticket, LIVE_FACE).await.status(), 200);
    let res = colleague.decide(&app, &page.ticket, "confirm", serde_json::json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200);
    let late = NewUser {
        username: "late_owner".into(),
        password: PASSWORD.into(),
        phone: Some(phone.into()),
        ..Default::default()
    };
    app.state.users.create(late).await.unwrap();
    let done = page.complete(&app, &b).await;
    assert_eq!(done.status(), 409);
    assert!(done.text().await.unwrap().contains(&app.state.pages.text("zh-CN", "agent_register_phone_taken")));
    nothing_kept(&app, &ent, chen_id, phone, 1).await;

    // Two registrations of the same new person at once (each after its
    // face check): one account, one pending agent.
    let details = enterprises::AgentDetails {
        name: chen_name.into(),
        doc_type: "resident_id".into(),
        valid_from: "2013-01-01".into(),
        gender: "male".into(),
        ethnicity: "藏族".into(),
        phone: "13800000057".into(),
        ..Default::default()
    };
    let now = app.state.clock.now();
    let db = &app.state.store;
    let (r1, r2) = tokio::join!(
        enterprises::register_agent(db, &ent, chen_id, "", &details, now),
        enterprises::register_agent(db, &ent, chen_id, "", &details, now)
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(u8::from(r1.is_ok()) + u8::from(r2.is_ok()), 1, "{r1:?} {r2:?}");
    assert!(matches!((&r1, &r2), (Err("agent_exists"), Ok(_)) | (Ok(_), Err("agent_exists"))), "{r1:?} {r2:?}");
    let held = identity::Entity::find().filter(identity::Column::DocNumber.eq(chen_id)).all(db).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(delegation::agents_of(db, &ent).await.unwrap().len(), 1);
}
both!(a_taken_phone_refuses_the_new_agent, super::agent_phone_taken);
