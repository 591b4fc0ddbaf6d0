//! Citizen accounts over HTTP with the development SMS sink (A1, A3, A7).
use crate::both;
use crate::support::*;
use idp::store::entities::dev_message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Count of SMS recorded for a phone.
pub(crate) async fn sms_count(app: &TestApp, phone: &str) -> usize {
    dev_message::Entity::find()
        .filter(dev_message::Column::Channel.eq("sms"))
        .filter(dev_message::Column::Recipient.eq(phone))
        .all(&app.state.store)
        .await
        .unwrap()
        .len()
}

/// Loads a form page, solves its captcha from the dev sink and asks for an
/// SMS code; returns the page HTML after the send.
pub(crate) async fn send_code(
    app: &TestApp,
    b: &Browser,
    path: &str,
    req: &str,
    phone: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let html = b.http.get(app.url(&format!("{path}?req={req}"))).send().await.unwrap().text().await.unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.expect("dev sink records captcha answers");
    let mut form = vec![
        ("req", req.to_string()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("captcha_id", captcha_id),
        ("captcha", answer),
        ("phone", phone.to_string()),
        ("action", "send_code".to_string()),
    ];
    for (k, v) in extra {
        form.push((k, v.to_string()));
    }
    // The sign-in forms post "send" to its own route.
    let target = match path {
        "/register" | "/login/sms" => format!("{path}/send"),
        _ => path.to_string(),
    };
    let res = b.http.post(app.url(&target)).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn register(app: &TestApp, b: &Browser, req: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let html = b.http.get(app.url(&format!("/register?req={req}"))).send().await.unwrap().text().await.unwrap();
    let mut form =
        vec![("req", req.to_string()), ("csrf", hidden(&html, "csrf").unwrap()), ("action", "register".to_string())];
    for (k, v) in fields {
        form.push((k, v.to_string()));
    }
    b.http.post(app.url("/register")).form(&form).send().await.unwrap()
}

/// Starts an authorization request and returns its pending id.
pub(crate) async fn pending_request(app: &TestApp, b: &Browser, client: &TestClient) -> String {
    let res = b.http.get(auth_url(app, client, &[])).send().await.unwrap();
    let loc = location(&res).unwrap();
    query_of(&loc)["req"].clone()
}

async fn registration_happy_path(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let b = Browser::new();
    let req = pending_request(&app, &b, &client).await;
    let (status, html) = send_code(&app, &b, "/register", &req, "13700001111", &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("短信验证码已发送"));
    let code = six_digits(&sink(&app, "sms", "13700001111").await.unwrap());
    let res = register(
        &app,
        &b,
        &req,
        &[
            ("username", "citizen_01"),
            ("phone", "13700001111"),
            ("sms_code", &code),
            ("password", "Secret-123"),
            ("password2", "Secret-123"),
            ("agree", "yes"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // Signed in; the real-name step is offered and may be skipped (A1).
    let offer = location(&res).unwrap();
    assert_eq!(offer, app.url(&format!("/register/real-name?req={req}")));
    let html = b.http.get(&offer).send().await.unwrap().text().await.unwrap();
    assert_eq!(link_href(&html, "verify").unwrap(), format!("/identity/verify?req={req}"));
    assert!(html.contains("暂不认证"));
    // Skipping returns to the app that asked.
    let end = b.run(&app, &offer, "", "").await;
    let t = json(redeem(&app, &client, &end.code(), None).await).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["sms"]));
    let info =
        json(api().get(app.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap())
            .await;
    assert_eq!(info["preferred_username"], "citizen_01");
    // The new password works on the password page, by username and by phone.
    for login in ["citizen_01", "13700001111"] {
        let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), login, "Secret-123").await;
        assert!(end.code().len() > 20);
    }
    // The code was single use: registering again with it fails.
    let res = register(
        &app,
        &Browser::new(),
        "",
        &[
            ("username", "citizen_02"),
            ("phone", "13700001111"),
            ("sms_code", &code),
            ("password", "Secret-123"),
            ("password2", "Secret-123"),
            ("agree", "yes"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
}
both!(registration_signs_in_and_returns_to_the_app, super::registration_happy_path);

async fn registration_rules(backend: Backend) {
    let app = spawn(backend).await;
    app.user("existing_1").await;
    let b = Browser::new();
    let base = [
        ("username", "good_name1"),
        ("phone", "13700002222"),
        ("sms_code", "000000"),
        ("password", "Secret-123"),
        ("password2", "Secret-123"),
        ("agree", "yes"),
    ];
    let with = |k: &'static str, v: &'static str| -> Vec<(&'static str, &'static str)> {
        base.iter().map(|(bk, bv)| if *bk == k { (k, v) } else { (*bk, *bv) }).collect()
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with("username", "1abcdef"), "用户名须为6-20位，以字母开头，只能包含字母、数字和下划线"),
        (with("username", "abc"), "用户名须为6-20位"),
        (with("username", "abc def1"), "只能包含字母、数字和下划线"),
        (with("phone", "12345"), "请输入正确的11位手机号码"),
        (with("password", "short1"), "密码长度须为8-20位"),
        (with("password", "onlyletters"), "密码须包含字母、数字、符号中的至少两种"),
        (with("password2", "Secret-124"), "两次输入的密码不一致"),
        (with("agree", ""), "请阅读并同意用户服务协议"),
        (base.to_vec(), "短信验证码错误或已失效"),
    ];
    for (fields, message) in cases {
        let fields: Vec<(&str, &str)> = fields.into_iter().filter(|(k, v)| !(k == &"agree" && v.is_empty())).collect();
        let res = register(&app, &b, "", &fields).await;
        assert_eq!(res.status(), 400, "{fields:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains(message), "{fields:?}: expected «{message}»");
        assert!(!body.contains("Secret-123"), "passwords are never echoed back");
    }
    // A phone that is taken is refused before any SMS is sent.
    let phone_owner = idp::domain::identity::users::NewUser {
        username: "phone_owner".into(),
        password: PASSWORD.into(),
        phone: Some("13700003333".into()),
        ..Default::default()
    };
    app.state.users.create(phone_owner).await.unwrap();
    let (status, html) = send_code(&app, &b, "/register", "", "13700003333", &[]).await;
    assert_eq!(status, 400);
    assert!(html.contains("该手机号已注册"));
    assert_eq!(sms_count(&app, "13700003333").await, 0);
    // A wrong captcha sends nothing.
    let html = b.http.get(app.url("/register")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("captcha_id", hidden(&html, "captcha_id").unwrap()),
        ("captcha", "wrong".to_string()),
        ("phone", "13700004444".to_string()),
        ("action", "send_code".to_string()),
    ];
    let res = b.http.post(app.url("/register/send")).form(&form).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("图形验证码错误"));
    assert_eq!(sms_count(&app, "13700004444").await, 0);
    // An expired SMS code is refused (the clock moves, nobody sleeps).
    send_code(&app, &b, "/register", "", "13700005555", &[]).await;
    let code = six_digits(&sink(&app, "sms", "13700005555").await.unwrap());
    app.state.clock.advance(301);
    let fields = [
        ("username", "late_user1"),
        ("phone", "13700005555"),
        ("sms_code", code.as_str()),
        ("password", "Secret-123"),
        ("password2", "Secret-123"),
        ("agree", "yes"),
    ];
    let res = register(&app, &b, "", &fields).await;
    assert_eq!(res.status(), 400);
    // Username taken.
    send_code(&app, &b, "/register", "", "13700006666", &[]).await;
    let code = six_digits(&sink(&app, "sms", "13700006666").await.unwrap());
    let fields = [
        ("username", "existing_1"),
        ("phone", "13700006666"),
        ("sms_code", code.as_str()),
        ("password", "Secret-123"),
        ("password2", "Secret-123"),
        ("agree", "yes"),
    ];
    let res = register(&app, &b, "", &fields).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("该用户名已被使用"));
}
both!(registration_rules_and_messages, super::registration_rules);

async fn sms_limits(backend: Backend) {
    let app = spawn(backend).await;
    let b = Browser::new();
    let phone = "13700007777";
    for i in 1..=5 {
        let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
        assert_eq!(status, 200, "send {i}: {html}");
    }
    let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
    assert_eq!(status, 400);
    assert!(html.contains("验证码请求过于频繁，请在") && html.contains("分钟后再试"), "A7 message");
    assert_eq!(sms_count(&app, phone).await, 5, "the 6th within the hour is not sent");
    app.state.clock.advance(3601);
    for i in 6..=10 {
        let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
        assert_eq!(status, 200, "send {i}: {html}");
        if i == 8 {
            app.state.clock.advance(10);
        }
    }
    app.state.clock.advance(3601);
    let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
    assert_eq!(status, 400, "the 11th within 24 hours is refused");
    assert!(html.contains("今日验证码请求已达上限"), "{html}");
    assert_eq!(sms_count(&app, phone).await, 10);
    // Another phone is unaffected.
    let (status, _) = send_code(&app, &b, "/register", "", "13700008888", &[]).await;
    assert_eq!(status, 200);
}
both!(sms_limits_per_hour_and_day, super::sms_limits);

async fn concurrent_registration(backend: Backend) {
    let app = spawn(backend).await;
    let b = Browser::new();
    send_code(&app, &b, "/register", "", "13700009999", &[]).await;
    let code = six_digits(&sink(&app, "sms", "13700009999").await.unwrap());
    let html = b.http.get(app.url("/register")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let mut handles = Vec::new();
    for i in 0..6 {
        let form = vec![
            ("csrf", csrf.clone()),
            ("action", "register".to_string()),
            ("username", format!("racer_{i:04}")),
            ("phone", "13700009999".to_string()),
            ("sms_code", code.clone()),
            ("password", "Secret-123".to_string()),
            ("password2", "Secret-123".to_string()),
            ("agree", "yes".to_string()),
        ];
        handles.push(tokio::spawn(b.http.post(app.url("/register")).form(&form).send()));
    }
    let mut created = 0;
    for h in handles {
        if h.await.unwrap().unwrap().status() == 303 {
            created += 1;
        }
    }
    assert_eq!(created, 1, "one phone, one account");
    let users = app.state.users.list().await.unwrap();
    assert_eq!(users.iter().filter(|u| u.phone.as_deref() == Some("13700009999")).count(), 1);
}
both!(concurrent_registrations_of_one_phone_make_one_account, super::concurrent_registration);

async fn sms_login(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let owner = idp::domain::identity::users::NewUser {
        username: "sms_user01".into(),
        password: PASSWORD.into(),
        phone: Some("13600001234".into()),
        ..Default::default()
    };
    let sub = app.state.users.create(owner).await.unwrap().sub;
    let b = Browser::new();
    let req = pending_request(&app, &b, &client).await;
    // Unknown phone: no SMS.
    let (status, html) = send_code(&app, &b, "/login/sms", &req, "13600009999", &[]).await;
    assert_eq!(status, 400);
    assert!(html.contains("该手机号尚未注册"));
    let (status, _) = send_code(&app, &b, "/login/sms", &req, "13600001234", &[]).await;
    assert_eq!(status, 200);
    let code = six_digits(&sink(&app, "sms", "13600001234").await.unwrap());
    let login = |code: String| {
        let b = &b;
        let app = &app;
        let req = req.clone();
        async move {
            let html =
                b.http.get(app.url(&format!("/login/sms?req={req}"))).send().await.unwrap().text().await.unwrap();
            let form = [
                ("req", req.clone()),
                ("csrf", hidden(&html, "csrf").unwrap()),
                ("action", "login".to_string()),
                ("phone", "13600001234".to_string()),
                ("sms_code", code),
            ];
            b.http.post(app.url("/login/sms")).form(&form).send().await.unwrap()
        }
    };
    let wrong = if code == "000000" { "111111".to_string() } else { "000000".to_string() };
    let res = login(wrong).await;
    assert_eq!(res.status(), 401);
    let res = login(code.clone()).await;
    assert_eq!(res.status(), 303);
    let end = b.run(&app, &location(&res).unwrap(), "", "").await;
    let t = json(redeem(&app, &client, &end.code(), None).await).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], sub);
    assert_eq!(id["amr"], serde_json::json!(["sms"]));
    // Five wrong tries burn a code: even the right one then fails.
    send_code(&app, &b, "/login/sms", &req, "13600001234", &[]).await;
    let code = six_digits(&sink(&app, "sms", "13600001234").await.unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert!(!app.state.sms_codes.verify("13600001234", idp::ports::sms::SmsPurpose::Login, wrong).await.unwrap());
    }
    assert!(!app.state.sms_codes.verify("13600001234", idp::ports::sms::SmsPurpose::Login, &code).await.unwrap());
}
both!(sms_code_sign_in, super::sms_login);

/// Walks the reset flow up to the verify step; returns the flow id.
pub(crate) async fn reset_start(app: &TestApp, b: &Browser, account: &str) -> String {
    let html = b.http.get(app.url("/forgot")).send().await.unwrap().text().await.unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("captcha_id", captcha_id),
        ("captcha", answer),
        ("account", account.to_string()),
        ("action", "account".to_string()),
    ];
    let res = b.http.post(app.url("/forgot")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    query_of(&location(&res).unwrap())["flow"].clone()
}

/// "Resend" on the verify step, behind a fresh captcha; returns the csrf.
pub(crate) async fn reset_resend(app: &TestApp, b: &Browser, flow: &str) -> String {
    let html = b.http.get(app.url(&format!("/forgot/verify?flow={flow}"))).send().await.unwrap().text().await.unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [("flow", flow.to_string()), ("csrf", csrf.clone()), ("captcha_id", captcha_id), ("captcha", answer)];
    let res = b.http.post(app.url("/forgot/send")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("短信验证码已发送"), "{body}");
    hidden(&body, "csrf").unwrap()
}

pub(crate) async fn reset_send_code(app: &TestApp, b: &Browser, flow: &str) -> String {
    // Step 1 sent the first code behind its captcha; step 2 says so.
    let url = app.url(&format!("/forgot/verify?flow={flow}&sent=1"));
    let body = b.http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("短信验证码已发送"), "{body}");
    hidden(&body, "csrf").unwrap()
}

async fn forgot_password(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let owner = idp::domain::identity::users::NewUser {
        username: "forgetful1".into(),
        password: PASSWORD.into(),
        phone: Some("15012347931".into()),
        ..Default::default()
    };
    app.state.users.create(owner).await.unwrap();
    // A session and a refresh token from before the reset.
    let (code, _) = sign_in(&app, &client, "forgetful1", &[]).await;
    let before = json(redeem(&app, &client, &code, None).await).await;
    let b = Browser::new();
    let flow = reset_start(&app, &b, "forgetful1").await;
    // Masked as in the manual.
    let html = b.http.get(app.url(&format!("/forgot/verify?flow={flow}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("【*********1】") && html.contains("150****7931"), "{html}");
    // The password step cannot be entered before verification.
    let res = b.http.get(app.url(&format!("/forgot/password?flow={flow}"))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // Nor can another browser continue this flow.
    let other = Browser::new();
    let res = other.http.get(app.url(&format!("/forgot/verify?flow={flow}"))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let csrf = reset_send_code(&app, &b, &flow).await;
    let code = six_digits(&sink(&app, "sms", "15012347931").await.unwrap());
    let verify =
        [("flow", flow.clone()), ("csrf", csrf.clone()), ("action", "verify".to_string()), ("sms_code", code.clone())];
    let res = b.http.post(app.url("/forgot/verify")).form(&verify).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // Replaying the verify step fails: the flow has moved on.
    let res = b.http.post(app.url("/forgot/verify")).form(&verify).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let set = |p1: &str, p2: &str| {
        [
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "password".to_string()),
            ("password", p1.to_string()),
            ("password2", p2.to_string()),
        ]
    };
    let res = b.http.post(app.url("/forgot/password")).form(&set("New-pass-1", "New-pass-2")).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("两次输入的密码不一致"));
    let res = b.http.post(app.url("/forgot/password")).form(&set("New-pass-1", "New-pass-1")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let done = b.http.get(location(&res).unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(done.contains("密码设置完成"));
    // Everything from before is revoked; the notice reached the phone.
    let res = crate::tokens::refresh(&app, &client, before["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let notices = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("15012347931"))
        .filter(dev_message::Column::Purpose.eq("notice"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(notices.iter().any(|m| m.body.contains("密码已重置")), "notice on the old channel");
    let old = Browser::new().run(&app, &auth_url(&app, &client, &[]), "forgetful1", PASSWORD).await;
    assert!(matches!(old, End::Page(401, _)), "old password refused");
    let new = Browser::new().run(&app, &auth_url(&app, &client, &[]), "forgetful1", "New-pass-1").await;
    assert!(new.code().len() > 20);
}
both!(forgot_password_four_steps, super::forgot_password);

async fn forgot_password_real_name(backend: Backend) {
    let app = spawn(backend).await;
    let owner = idp::domain::identity::users::NewUser {
        username: "realname01".into(),
        password: PASSWORD.into(),
        phone: Some("15000000013".into()),
        id_number: Some("11010519491231002X".into()),
        ..Default::default()
    };
    app.state.users.create(owner).await.unwrap();
    let b = Browser::new();
    // Found by ID number too (A4 step 1 accepts username / phone / ID).
    let flow = reset_start(&app, &b, "11010519491231002X").await;
    let csrf = reset_send_code(&app, &b, &flow).await;
    let code = six_digits(&sink(&app, "sms", "15000000013").await.unwrap());
    let attempt = |id: &str| {
        [
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "verify".to_string()),
            ("sms_code", code.clone()),
            ("id_number", id.to_string()),
        ]
    };
    let res = b.http.post(app.url("/forgot/verify")).form(&attempt("")).send().await.unwrap();
    assert_eq!(res.status(), 400, "a real-name user must give the ID number");
    let failed = app.state.pages.text("zh-CN", "forgot_verify_failed");
    assert!(res.text().await.unwrap().contains(&failed));
    let res = b.http.post(app.url("/forgot/verify")).form(&attempt("11010519491231002x")).send().await.unwrap();
    assert_eq!(res.status(), 303, "ID number (lower-case x normalised) + SMS");
}
both!(forgot_password_real_name_needs_id_number, super::forgot_password_real_name);

/// Solves the page's captcha and asks for a verification code to the
/// account's phone; returns (csrf, code).
async fn account_code(app: &TestApp, b: &Browser, path: &str, phone: &str) -> (String, String) {
    let html = b.http.get(app.url(path)).send().await.unwrap().text().await.unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let form =
        [("csrf", csrf.clone()), ("captcha_id", captcha_id), ("captcha", answer), ("action", "send_code".to_string())];
    let res = b.http.post(app.url(path)).form(&form).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("短信验证码已发送"));
    (csrf, six_digits(&sink(app, "sms", phone).await.unwrap()))
}

async fn personal_centre(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let anon = api().get(app.url("/account")).send().await.unwrap();
    assert_eq!(anon.status(), 303, "signed-in users only");
    let owner = idp::domain::identity::users::NewUser {
        username: "centre_u01".into(),
        password: PASSWORD.into(),
        phone: Some("13500001111".into()),
        ..Default::default()
    };
    app.state.users.create(owner).await.unwrap();
    let (code, b) = sign_in(&app, &client, "centre_u01", &[]).await;
    let other_session = json(redeem(&app, &client, &code, None).await).await;
    let page = b.http.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    // The phone masked as in the manual; the person's own username in full (issue 19).
    assert!(page.contains("135****1111") && page.contains("centre_u01"), "masked as in the manual");
    // Details: ethnicity from the 56 groups only.
    let html = b.http.get(app.url("/account/profile")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let res = b
        .http
        .post(app.url("/account/profile"))
        .form(&[("csrf", csrf.as_str()), ("ethnicity", "精灵族")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = b
        .http
        .post(app.url("/account/profile"))
        .form(&[("csrf", csrf.as_str()), ("ethnicity", "蒙古族"), ("gender", "female")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page = b.http.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("蒙古族"));
    // Change password: SMS + old password + new twice.
    let (csrf, code) = account_code(&app, &b, "/account/password", "13500001111").await;
    let change = |old: &str, sms: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("action", "change".to_string()),
            ("old_password", old.to_string()),
            ("sms_code", sms.to_string()),
            ("password", "Changed-99".to_string()),
            ("password2", "Changed-99".to_string()),
        ]
    };
    let res = b.http.post(app.url("/account/password")).form(&change("wrong-old-1", &code)).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("原密码错误"));
    let res = b.http.post(app.url("/account/password")).form(&change(PASSWORD, &code)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // Other sessions' tokens are gone; this browser stays signed in.
    let res = crate::tokens::refresh(&app, &client, other_session["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    assert_eq!(b.http.get(app.url("/account")).send().await.unwrap().status(), 200);
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "centre_u01", "Changed-99").await;
    assert!(end.code().len() > 20);
}
both!(personal_centre_profile_and_password, super::personal_centre);

async fn deletion(backend: Backend) {
    let app = spawn(backend).await;
    let (bc_url, received) = crate::logout::backchannel_receiver().await;
    let client = app.client(|c| c.backchannel_logout_uri = Some(bc_url.clone())).await;
    let owner = idp::domain::identity::users::NewUser {
        username: "leaving_u1".into(),
        password: PASSWORD.into(),
        phone: Some("13500002222".into()),
        id_number: Some("11010519491231002X".into()),
        ..Default::default()
    };
    let sub = app.state.users.create(owner).await.unwrap().sub;
    let (code, b) = sign_in(&app, &client, "leaving_u1", &[]).await;
    let t = json(redeem(&app, &client, &code, None).await).await;
    let (csrf, sms) = account_code(&app, &b, "/account/delete", "13500002222").await;
    // The notice must be confirmed.
    let res = b
        .http
        .post(app.url("/account/delete"))
        .form(&[("csrf", csrf.as_str()), ("action", "delete"), ("sms_code", sms.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = b
        .http
        .post(app.url("/account/delete"))
        .form(&[("csrf", csrf.as_str()), ("action", "delete"), ("sms_code", sms.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("注销完成"));
    // Tokens revoked, relying app told, account gone, cannot sign in.
    let res = crate::tokens::refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let mut delivered = false;
    for _ in 0..50 {
        if !received.lock().unwrap().is_empty() {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "back-channel logout sent to the relying app");
    assert!(app.state.users.find(&sub).await.unwrap().is_none(), "personal data deleted");
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "leaving_u1", PASSWORD).await;
    assert!(matches!(end, End::Page(401, _)));
    // The audit keeps only the pseudonymous subject.
    use idp::store::entities::audit;
    let rows = audit::Entity::find().filter(audit::Column::UserId.eq(sub.clone())).all(&app.state.store).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "account_deleted"));
    assert!(rows.iter().all(|r| !r.detail.contains("13500002222") && !r.detail.contains("leaving_u1")));
    // The phone and the ID number are free again.
    let again = idp::domain::identity::users::NewUser {
        username: "returning1".into(),
        password: PASSWORD.into(),
        phone: Some("13500002222".into()),
        id_number: Some("11010519491231002X".into()),
        ..Default::default()
    };
    assert!(app.state.users.create(again).await.is_ok());
}
both!(account_deletion_releases_phone_and_identity, super::deletion);

async fn captcha_when_risky(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    app.user("risky_user1").await;
    let b = Browser::new();
    let req = pending_request(&app, &b, &client).await;
    let post = |password: &str, captcha: Option<(String, String)>, html: &str| {
        let mut form = vec![
            ("req", req.clone()),
            ("csrf", hidden(html, "csrf").unwrap()),
            ("username", "risky_user1".to_string()),
            ("password", password.to_string()),
        ];
        if let Some((id, answer)) = captcha {
            form.push(("captcha_id", id));
            form.push(("captcha", answer));
        }
        b.http.post(app.url("/login")).form(&form).send()
    };
    let html = b.http.get(app.url(&format!("/login?req={req}"))).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("captcha_id"), "no captcha on a calm first try");
    let res = post("wrong-one-1", None, &html).await.unwrap();
    let html = res.text().await.unwrap();
    assert!(!html.contains("name=\"captcha_id\""));
    let res = post("wrong-two-2", None, &html).await.unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"captcha_id\""), "after two failures the page asks for a captcha");
    // The right password without the captcha is refused…
    let res = post(PASSWORD, None, &html).await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("图形验证码错误"));
    // …and accepted with it.
    let id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(&app, "captcha", &id).await.unwrap();
    let res = post(PASSWORD, Some((id, answer)), &html).await.unwrap();
    assert_eq!(res.status(), 303);
}
both!(password_sign_in_needs_a_captcha_when_risky, super::captcha_when_risky);

async fn change_phone(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    for (name, phone) in [("mover_u001", "13400001111"), ("holder_u01", "13400002222")] {
        let u = idp::domain::identity::users::NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            phone: Some(phone.into()),
            ..Default::default()
        };
        app.state.users.create(u).await.unwrap();
    }
    let (_, b) = sign_in(&app, &client, "mover_u001", &[]).await;
    // The second step cannot be opened without verifying the old phone.
    let res = b.http.get(app.url("/account/phone?flow=made-up")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let (csrf, code) = account_code(&app, &b, "/account/phone", "13400001111").await;
    let res = b
        .http
        .post(app.url("/account/phone"))
        .form(&[("csrf", csrf.as_str()), ("action", "verify_old"), ("sms_code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let step2 = location(&res).unwrap();
    let flow = query_of(&step2)["flow"].clone();
    let send_new = |phone: &'static str| {
        let b = &b;
        let app = &app;
        let flow = flow.clone();
        let step2 = step2.clone();
        async move {
            let html = b.http.get(&step2).send().await.unwrap().text().await.unwrap();
            let id = hidden(&html, "captcha_id").unwrap();
            let answer = sink(app, "captcha", &id).await.unwrap();
            let form = [
                ("csrf", hidden(&html, "csrf").unwrap()),
                ("flow", flow),
                ("captcha_id", id),
                ("captcha", answer),
                ("new_phone", phone.to_string()),
                ("action", "send_code".to_string()),
            ];
            b.http.post(app.url("/account/phone")).form(&form).send().await.unwrap().text().await.unwrap()
        }
    };
    // A phone that belongs to someone else is refused (one account, one phone).
    assert!(send_new("13400002222").await.contains("该手机号已注册"));
    assert!(send_new("13400003333").await.contains("短信验证码已发送"));
    let code = six_digits(&sink(&app, "sms", "13400003333").await.unwrap());
    let form = [
        ("csrf", csrf.as_str()),
        ("flow", flow.as_str()),
        ("action", "verify_new"),
        ("new_phone", "13400003333"),
        ("sms_code", code.as_str()),
    ];
    let res = b.http.post(app.url("/account/phone")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // Replaying the finished step fails; the old phone got a notice; sign in by the new phone.
    let res = b.http.post(app.url("/account/phone")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let notices = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("13400001111"))
        .filter(dev_message::Column::Purpose.eq("notice"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(notices.iter().any(|m| m.body.contains("手机号已变更")));
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "13400003333", PASSWORD).await;
    assert!(end.code().len() > 20);
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "13400001111", PASSWORD).await;
    assert!(matches!(end, End::Page(401, _)), "the old phone no longer signs in");
}
both!(change_phone_verifies_old_then_new, super::change_phone);

async fn remember_device(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    app.user("remember_u1").await;
    let sign_in_with = |remember: bool| {
        let app = &app;
        let client = &client;
        async move {
            let b = Browser::new();
            let res = b.http.get(auth_url(app, client, &[])).send().await.unwrap();
            let login = location(&res).unwrap();
            let html = b.http.get(&login).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("name=\"remember\""), "the option is offered");
            let mut form = vec![
                ("req", hidden(&html, "req").unwrap()),
                ("csrf", hidden(&html, "csrf").unwrap()),
                ("username", "remember_u1".to_string()),
                ("password", PASSWORD.to_string()),
            ];
            if remember {
                form.push(("remember", "yes".to_string()));
            }
            let res = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
            assert_eq!(res.status(), 303);
            let cookie = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .find(|c| c.starts_with("idp_session="))
                .unwrap();
            (b, cookie)
        }
    };
    let (kept, cookie) = sign_in_with(true).await;
    assert!(cookie.contains("Max-Age=2592000"), "persistent for 30 days: {cookie}");
    let (plain, cookie) = sign_in_with(false).await;
    assert!(!cookie.contains("Max-Age"), "a browser-session cookie: {cookie}");
    // Three idle hours later (idle timeout 2 h) only the remembered device is signed in.
    app.state.clock.advance(3 * 3600);
    assert_eq!(kept.http.get(app.url("/account")).send().await.unwrap().status(), 200);
    assert_eq!(plain.http.get(app.url("/account")).send().await.unwrap().status(), 303);
}
both!(remember_this_device_for_30_days, super::remember_device);

pub(crate) fn operator(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IDP_DATA_DIR", &app.dir)
        .env("IDP_DATABASE_URL", &app.database_url)
        .env("IDP_MASTER_KEY", "7f".repeat(32))
        .env("IDP_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

async fn appeals(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    for (name, phone, id) in
        [("holder_0001", "13300001111", Some("11010519491231002X")), ("appellant01", "13300002222", None)]
    {
        let u = idp::domain::identity::users::NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            phone: Some(phone.into()),
            id_number: id.map(String::from),
            ..Default::default()
        };
        app.state.users.create(u).await.unwrap();
    }
    // The appellant, signed in, says 13300001111 is really theirs.
    let (_, b) = sign_in(&app, &client, "appellant01", &[]).await;
    let file = |kind: &'static str, claimed: &'static str, contact: &'static str| {
        let b = &b;
        let app = &app;
        async move {
            let (_, html) = send_code(app, b, "/appeal", "", contact, &[]).await;
            assert!(html.contains("短信验证码已发送"), "{html}");
            let code = six_digits(&sink(app, "sms", contact).await.unwrap());
            let form = [
                ("csrf", hidden(&html, "csrf").unwrap()),
                ("action", "file".to_string()),
                ("kind", kind.to_string()),
                ("claimed_value", claimed.to_string()),
                ("name", "李四".to_string()),
                ("id_number", "110105198001010016".to_string()),
                ("phone", contact.to_string()),
                ("sms_code", code),
                ("details", "这个手机号一直是我本人在使用，注册时提示已被占用。".to_string()),
            ];
            let res = b.http.post(app.url("/appeal")).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    // (A claimed phone other than the contact phone needs its own code:
    // tests/it/sec_citizen.rs.)
    let (status, html) = file("phone", "13300009999", "13300009999").await;
    assert_eq!(status, 400);
    assert!(html.contains("该信息未被占用"));
    let (status, html) = file("phone", "13300001111", "13300001111").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("申诉已提交"));
    let (status, html) = file("phone", "13300001111", "13300001111").await;
    assert_eq!(status, 429, "a second appeal while one is pending is too frequent");
    assert!(html.contains("申诉过于频繁"));
    // The operator queue.
    let out = operator(&app, &["appeal", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert!(!operator(&app, &["appeal", "reject", &id, "--reason", ""]).status.success(), "a rejection needs a reason");
    let out = operator(&app, &["appeal", "approve", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!operator(&app, &["appeal", "approve", &id]).status.success(), "decided once");
    // Approved: the phone moved to the appellant; the outcome reached them.
    let holder = app.state.users.find_by_login("holder_0001").await.unwrap().unwrap();
    assert_eq!(holder.phone, None);
    let appellant = app.state.users.find_by_login("appellant01").await.unwrap().unwrap();
    assert_eq!(appellant.phone.as_deref(), Some("13300001111"));
    let outcome = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("13300001111"))
        .filter(dev_message::Column::Purpose.eq("notice"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(outcome.iter().any(|m| m.body.contains(&id) && m.body.contains("审核通过")));
    // A rejected appeal says why.
    let (status, _) = file("id_number", "11010519491231002X", "13300003333").await;
    assert_eq!(status, 200);
    let list: serde_json::Value =
        serde_json::from_slice(&operator(&app, &["appeal", "list", "--json"]).stdout).unwrap();
    let id2 = list[0]["id"].as_str().unwrap().to_string();
    assert!(operator(&app, &["appeal", "reject", &id2, "--reason", "材料不足"]).status.success());
    let msgs = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("13300003333"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(msgs.iter().any(|m| m.body.contains("材料不足")));
    let holder = app.state.users.find_by_login("holder_0001").await.unwrap().unwrap();
    assert!(holder.id_number.is_some(), "a rejected appeal changes nothing");
}
both!(appeals_are_filed_reviewed_and_answered, super::appeals);

async fn bind_email(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let u = idp::domain::identity::users::NewUser {
        username: "mailer_u01".into(),
        password: PASSWORD.into(),
        phone: Some("13200001111".into()),
        ..Default::default()
    };
    app.state.users.create(u).await.unwrap();
    let (_, b) = sign_in(&app, &client, "mailer_u01", &[]).await;
    let (csrf, code) = account_code(&app, &b, "/account/email", "13200001111").await;
    let res = b
        .http
        .post(app.url("/account/email"))
        .form(&[("csrf", csrf.as_str()), ("action", "verify_old"), ("sms_code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let flow = query_of(&location(&res).unwrap())["flow"].clone();
    let post = |action: &str, email: &str, code: &str| {
        let form = [
            ("csrf", csrf.clone()),
            ("flow", flow.clone()),
            ("action", action.to_string()),
            ("email", email.to_string()),
            ("sms_code", code.to_string()),
        ];
        b.http.post(app.url("/account/email")).form(&form).send()
    };
    let res = post("send_mail", "not an address", "").await.unwrap();
    assert!(res.text().await.unwrap().contains("请输入正确的邮箱地址"));
    let res = post("send_mail", "Citizen@Example.org", "").await.unwrap();
    assert!(res.text().await.unwrap().contains("验证码已发送至邮箱"));
    let mail = sink(&app, "mail", "citizen@example.org").await.expect("mail recorded by the dev sink");
    let code = six_digits(&mail);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = post("verify_mail", "citizen@example.org", wrong).await.unwrap();
    assert!(res.text().await.unwrap().contains("邮箱验证码错误"));
    let res = post("verify_mail", "citizen@example.org", &code).await.unwrap();
    assert_eq!(res.status(), 303);
    let u = app.state.users.find_by_login("mailer_u01").await.unwrap().unwrap();
    assert_eq!(u.email.as_deref(), Some("citizen@example.org"));
    assert!(u.email_verified);
    // The e-mail claim now reaches relying apps.
    let (code, _) = sign_in(&app, &client, "mailer_u01", &[]).await;
    let t = json(redeem(&app, &client, &code, None).await).await;
    let info =
        json(api().get(app.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap())
            .await;
    assert_eq!(info["email"], "citizen@example.org");
    assert_eq!(info["email_verified"], true);
}
both!(bind_email_with_sms_then_mail_code, super::bind_email);

/// The SMTP adapter really speaks SMTP: a minimal relay on loopback
/// receives the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_adapter_delivers_to_a_relay() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 relay ready\r\n").await.unwrap();
        let mut data = String::new();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    w.write_all(b"250 queued\r\n").await.unwrap();
                    // lettre pools connections: it will not send QUIT now.
                    break;
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                w.write_all(b"250 relay\r\n").await.unwrap();
            } else if upper.starts_with("DATA") {
                in_data = true;
                w.write_all(b"354 go ahead\r\n").await.unwrap();
            } else if upper.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                w.write_all(b"250 ok\r\n").await.unwrap();
            }
        }
        data
    });
    let cfg = idp::ports::mail::MailConfig {
        gateway: "smtp".into(),
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: port,
        smtp_security: "none".into(),
        from: "idp <no-reply@example.org>".into(),
        ..Default::default()
    };
    let db = idp::store::Store::new(sea_orm::Database::connect("sqlite::memory:").await.unwrap());
    let gateway = idp::ports::mail::MailGateway::from_config(&cfg, db).unwrap();
    gateway.send("citizen@example.org", "Code", "Your code is 123456", "bind_email", 0).await.unwrap();
    let data = tokio::time::timeout(std::time::Duration::from_secs(10), relay).await.unwrap().unwrap();
    assert!(data.contains("Your code is 123456"), "{data}");
    assert!(data.contains("citizen@example.org"));
    // Plain SMTP is refused off loopback.
    let mut remote = cfg.clone();
    remote.smtp_host = Some("mail.example.org".into());
    let db = idp::store::Store::new(sea_orm::Database::connect("sqlite::memory:").await.unwrap());
    assert!(idp::ports::mail::MailGateway::from_config(&remote, db).is_err());
}
