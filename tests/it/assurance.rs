//! Assurance levels (B1–B7) as a relying app sees them: the `acr` in the ID
//! token follows the account's proofing and the session's factors and their
//! age; a level the app needs leads through step-up or ends in the OIDC
//! error; a voluntary one can be declined.
use crate::both;
use crate::support::*;
use idp::domain::assurance;
use idp::domain::identity::users::NewUser;

const ACR: &str = "urn:idp:loa:";

async fn citizen(app: &TestApp, username: &str, phone: &str, proofing: u8) -> String {
    let sub = app
        .state
        .users
        .create(NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            email: None,
            name: Some("赵六".into()),
            phone: Some(phone.into()),
            id_number: None,
        })
        .await
        .unwrap()
        .sub;
    // Proofing is reached through the identity pages (tests/it/identity.rs);
    // here it is the starting point.
    assurance::set_proofing_level(&app.state.store, &sub, proofing).await.unwrap();
    sub
}

async fn id_token(app: &TestApp, client: &TestClient, code: &str) -> serde_json::Value {
    let token = json(redeem(app, client, code, None).await).await;
    jwt_claims(token["id_token"].as_str().unwrap_or_else(|| panic!("no id_token: {token}")))
}

/// Follows redirects: `Ok((page URL, body))` on a provider page, `Err(client URL)`.
async fn follow(app: &TestApp, b: &Browser, mut url: String) -> Result<(String, String), String> {
    for _ in 0..8 {
        if !url.starts_with(&app.base) {
            return Err(url);
        }
        let res = b.http.get(&url).send().await.unwrap();
        match location(&res) {
            Some(next) => url = next,
            None => return Ok((url, res.text().await.unwrap())),
        }
    }
    panic!("too many redirects")
}

/// The step-up page of the request, then the SMS second factor through it.
async fn step_up_by_sms(app: &TestApp, b: &Browser, step_up_url: &str, phone: &str) -> String {
    let html = b.http.get(step_up_url).send().await.unwrap().text().await.unwrap().replace("&#x2F;", "/");
    assert!(html.contains("/step-up/factor?req="), "SMS is offered as the second factor: {html}");
    let req = query_of(step_up_url)["req"].clone();
    let page = b.http.get(app.url(&format!("/step-up/factor?req={req}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("138****0001"), "the code goes to the account's own phone, masked");
    let captcha_id = hidden(&page, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let send = [
        ("req", req.clone()),
        ("csrf", csrf.clone()),
        ("captcha_id", captcha_id),
        ("captcha", answer),
        ("action", "send_code".into()),
    ];
    let res = b.http.post(app.url("/step-up/factor/send")).form(&send).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let code = six_digits(&sink(app, "sms", phone).await.unwrap());
    // A wrong code is refused and changes nothing.
    let wrong =
        [("req", req.clone()), ("csrf", csrf.clone()), ("sms_code", "000000".into()), ("action", "verify".into())];
    let res = b.http.post(app.url("/step-up/factor")).form(&wrong).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let form = [("req", req.clone()), ("csrf", csrf), ("sms_code", code), ("action", "verify".into())];
    let res = b.http.post(app.url("/step-up/factor")).form(&form).send().await.unwrap();
    location(&res).expect("verified: back into the request")
}

async fn levels_follow_proofing_factors_and_age(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    citizen(&app, "levels_01", "13800000001", 3).await;
    let b = Browser::new();

    // Password only: a real-person account is still only L2.
    let end = b.run(&app, &auth_url(&app, &client, &[]), "levels_01", PASSWORD).await;
    let id = id_token(&app, &client, &end.code()).await;
    assert_eq!(id["acr"], format!("{ACR}2"));
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));

    // Asking for L3 voluntarily leads to step-up, which may be declined ...
    let url = auth_url(&app, &client, &[("acr_values", &format!("{ACR}3"))]);
    let (page_url, html) = follow(&app, &b, url).await.unwrap();
    assert!(page_url.starts_with(&app.url("/step-up?req=")), "{page_url}");
    assert!(html.contains("/step-up/skip"), "a voluntary level can be skipped");
    let req = query_of(&page_url)["req"].clone();
    let form = [("req", req), ("csrf", hidden(&html, "csrf").unwrap())];
    let res = b.http.post(app.url("/step-up/skip")).form(&form).send().await.unwrap();
    let end = b.run(&app, &location(&res).unwrap(), "levels_01", PASSWORD).await;
    assert_eq!(id_token(&app, &client, &end.code()).await["acr"], format!("{ACR}2"), "declined: the token says L2");

    // ... or met with a second factor: the app gets L3, the amr says how.
    let url = auth_url(&app, &client, &[("acr_values", &format!("{ACR}3"))]);
    let (page_url, _) = follow(&app, &b, url).await.unwrap();
    let back = step_up_by_sms(&app, &b, &page_url, "13800000001").await;
    let end = b.run(&app, &back, "levels_01", PASSWORD).await;
    let id = id_token(&app, &client, &end.code()).await;
    assert_eq!(id["acr"], format!("{ACR}3"));
    assert_eq!(id["amr"], serde_json::json!(["pwd", "sms", "mfa"]));

    // L4 asked for voluntarily by an L3 account: an L3 token that says so.
    let end = b.run(&app, &auth_url(&app, &client, &[("acr_values", &format!("{ACR}4"))]), "x", "x").await;
    assert_eq!(id_token(&app, &client, &end.code()).await["acr"], format!("{ACR}3"));
    // Essential: the proper error, never a weaker token.
    let claims = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{ACR}4"]}}}}}}"#);
    let end = b.run(&app, &auth_url(&app, &client, &[("claims", &claims)]), "x", "x").await;
    assert_eq!(end.params()["error"], "unmet_authentication_requirements");
    // Essential L3 is met by this session right now.
    let claims = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{ACR}3"]}}}}}}"#);
    let end = b.run(&app, &auth_url(&app, &client, &[("claims", &claims)]), "x", "x").await;
    assert_eq!(id_token(&app, &client, &end.code()).await["acr"], format!("{ACR}3"));

    // L3's factors count for 30 minutes: after that the same session is L2.
    app.state.clock.advance(31 * 60);
    let end = b.run(&app, &auth_url(&app, &client, &[]), "x", "x").await;
    assert_eq!(id_token(&app, &client, &end.code()).await["acr"], format!("{ACR}2"));
    // And an essential L3 now needs a fresh step-up, not an error.
    let (page_url, _) = follow(&app, &b, auth_url(&app, &client, &[("claims", &claims)])).await.unwrap();
    assert!(page_url.starts_with(&app.url("/step-up?req=")), "{page_url}");
}
both!(levels_follow_proofing_factors_and_age, super::levels_follow_proofing_factors_and_age);

async fn client_minimum_level(backend: Backend) {
    let app = spawn(backend).await;
    let strict = app.client(|c| c.min_level = Some(3)).await;
    citizen(&app, "levels_02", "13800000001", 2).await;
    citizen(&app, "levels_03", "13800000003", 1).await;
    let b = Browser::new();
    // An L2 account below the client's L3 minimum is led to real-person proofing.
    let end = b.run(&app, &auth_url(&app, &strict, &[]), "levels_02", PASSWORD).await;
    let html = match end {
        End::Page(200, html) => html.replace("&#x2F;", "/"),
        other => panic!("expected the step-up page, got {other:?}"),
    };
    assert!(html.contains("/identity/face?req=") && html.contains("/identity/bank-card?req="), "{html}");
    assert!(!html.contains("/step-up/skip"), "a client's minimum cannot be skipped");
    // prompt=none cannot step up.
    let res = b.http.get(auth_url(&app, &strict, &[("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "interaction_required");
    // Skipping a required level is refused: the request comes back to step-up.
    let at = html.find("/identity/face?req=").unwrap() + "/identity/face?req=".len();
    let req: String = html[at..].chars().take_while(|c| *c != '"').collect();
    let login = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form = [("req", req), ("csrf", hidden(&login, "csrf").unwrap())];
    let res = b.http.post(app.url("/step-up/skip")).form(&form).send().await.unwrap();
    let (page_url, _) = follow(&app, &b, location(&res).unwrap()).await.unwrap();
    assert!(page_url.starts_with(&app.url("/step-up?req=")), "{page_url}");
    // An account that can never get there online (L4 minimum) gets the error.
    let l4 = app.client(|c| c.min_level = Some(4)).await;
    let b = Browser::new();
    let end = b.run(&app, &auth_url(&app, &l4, &[]), "levels_03", PASSWORD).await;
    assert_eq!(end.params()["error"], "unmet_authentication_requirements");
}
both!(client_minimum_level, super::client_minimum_level);

/// A session begun with an SMS code steps up to L3 with the password
/// (`/step-up/factor`), under the sign-in throttle: wrong passwords count,
/// and once the account is locked even the right one waits out the lock.
async fn step_up_by_password_is_throttled(backend: Backend) {
    let app = crate::identity::app_with(backend, |c| {
        c.login_throttle.account_failures = 2;
        c.login_throttle.lock_seconds = 2;
    })
    .await;
    let client = app.confidential().await;
    citizen(&app, "levels_pw", "13800000009", 3).await;
    let b = Browser::new();
    let req = crate::accounts::pending_request(&app, &b, &client).await;
    let (status, _) = crate::accounts::send_code(&app, &b, "/login/sms", &req, "13800000009", &[]).await;
    assert_eq!(status, 200);
    let code = six_digits(&sink(&app, "sms", "13800000009").await.unwrap());
    let html = b.http.get(app.url(&format!("/login/sms?req={req}"))).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", req.as_str()),
        ("csrf", &hidden(&html, "csrf").unwrap()),
        ("action", "login"),
        ("phone", "13800000009"),
        ("sms_code", &code),
    ];
    let res = b.http.post(app.url("/login/sms")).form(&form).send().await.unwrap();
    let end = b.run(&app, &location(&res).unwrap(), "", "").await;
    assert_eq!(id_token(&app, &client, &end.code()).await["amr"], serde_json::json!(["sms"]));

    let url = auth_url(&app, &client, &[("acr_values", &format!("{ACR}3"))]);
    let (page_url, html) = follow(&app, &b, url).await.unwrap();
    assert!(html.replace("&#x2F;", "/").contains("/step-up/factor?req="), "the password is offered: {html}");
    let req = query_of(&page_url)["req"].clone();
    let page = b.http.get(app.url(&format!("/step-up/factor?req={req}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("type=\"password\""), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let try_password = |password: &'static str| {
        let form = [("req", req.clone()), ("csrf", csrf.clone()), ("password", password.to_string())];
        let b = &b;
        let app = &app;
        async move {
            let res = b.http.post(app.url("/step-up/factor")).form(&form).send().await.unwrap();
            (res.status().as_u16(), location(&res), res.text().await.unwrap())
        }
    };
    for _ in 0..2 {
        let (status, _, body) = try_password("Wrong-horse-1").await;
        assert_eq!(status, 401);
        assert!(body.contains("密码错误，请重新输入"), "{body}");
    }
    let (status, _, body) = try_password("Wrong-horse-1").await;
    assert_eq!(status, 429, "the third wrong try is over the limit");
    assert!(body.contains("登录失败次数过多"), "{body}");
    let (status, _, _) = try_password(PASSWORD).await;
    assert_eq!(status, 429, "locked: not even the right password is checked");
    app.state.clock.advance(3);
    let (status, back, _) = try_password(PASSWORD).await;
    assert_eq!(status, 303);
    let end = b.run(&app, &back.unwrap(), "", "").await;
    let id = id_token(&app, &client, &end.code()).await;
    assert_eq!(id["acr"], format!("{ACR}3"));
    let amr = id["amr"].as_array().unwrap();
    assert!(amr.contains(&"sms".into()) && amr.contains(&"pwd".into()), "{amr:?}");
}
both!(step_up_by_password_is_throttled_both, super::step_up_by_password_is_throttled);
