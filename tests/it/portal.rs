//! The portal (issue 19): two-step sign-in a citizen can switch, and the
//! personal centre's pages reachable by navigation. Asserts on element ids
//! and locale keys, not on Chinese copy.
use crate::both;
use crate::factors::{app_code, between, citizen, get, password_sign_in, post, reverify};
use crate::support::*;

/// Enrols an authenticator app for the signed-in browser; returns the
/// secret, the csrf and the re-verification flow.
async fn enrol_app(app: &TestApp, b: &Browser, phone: &str) -> (String, String, String) {
    let (csrf, flow) = reverify(app, b, phone).await;
    let res =
        post(b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "totp_start")]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let secret = between(&html, "<code id=\"totp-secret\">", "</code>")[0].to_string();
    let code = app_code(&secret, app.state.clock.now());
    let form = [("csrf", csrf.as_str()), ("flow", &flow), ("action", "totp_confirm"), ("code", &code)];
    let res = post(b, app.url("/account/security"), &form).await;
    assert_eq!(res.status(), 200);
    (secret, csrf, flow)
}

/// Posts the password form in a fresh browser; returns it and the answer.
async fn password_only(app: &TestApp, username: &str) -> (Browser, reqwest::Response) {
    let b = Browser::new();
    let html = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", String::new()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", username.to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
    (b, res)
}

async fn signed_in(app: &TestApp, b: &Browser) -> bool {
    let res = b.http.get(app.url("/account")).send().await.unwrap();
    res.status() == 200
}

async fn two_step_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let sub = citizen(&app, "two_step1", "13600002222").await;
    let b = password_sign_in(&app, "two_step1").await;
    // Before any strong factor the switch cannot be used and password alone signs in.
    let (_, html) = get(&b, app.url("/account/security")).await;
    assert!(html.contains("id=\"second-step\"") && !html.contains("id=\"second-step-state\""));
    let (secret, csrf, flow) = enrol_app(&app, &b, "13600002222").await;
    // On by default once the app is enrolled.
    let (_, html) = get(&b, app.url(&format!("/account/security?flow={flow}"))).await;
    assert!(html.contains("data-state=\"on\""), "{html}");

    // Password alone: no session, the second-factor page instead.
    app.state.clock.advance(30);
    let (p, res) = password_only(&app, "two_step1").await;
    assert_eq!(res.status(), 303);
    let to = location(&res).unwrap();
    assert!(to.contains("/mfa/totp?hold="), "{to}");
    assert!(!signed_in(&app, &p).await, "a password alone must not sign in");
    let (status, html) = get(&p, to.clone()).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"second-step-hint\""));
    let hold = hidden(&html, "hold").unwrap();
    let pcsrf = hidden(&html, "csrf").unwrap();
    // A wrong code: still nothing.
    let now = app.state.clock.now();
    let wrong = format!("{:06}", (app_code(&secret, now).parse::<u32>().unwrap() + 1) % 1_000_000);
    let res = post(&p, app.url("/mfa/totp"), &[("hold", &hold), ("csrf", &pcsrf), ("code", &wrong)]).await;
    assert_eq!(res.status(), 401);
    assert!(!signed_in(&app, &p).await);
    // The hold is bound to its browser.
    let other = Browser::new();
    let (status, _) = get(&other, to.clone()).await;
    assert_eq!(status, 400);
    // The right code finishes the sign-in with both factors.
    let code = app_code(&secret, now);
    let res = post(&p, app.url("/mfa/totp"), &[("hold", &hold), ("csrf", &pcsrf), ("code", &code)]).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/account"));
    assert!(signed_in(&app, &p).await);
    let detail = crate::factors::audited(&app, &sub, "sign_in").await;
    assert!(detail.iter().any(|d| d.contains("amr=") && d.contains("otp") && d.contains("pwd")), "{detail:?}");
    // A hold is used once.
    let res = post(&p, app.url("/mfa/totp"), &[("hold", &hold), ("csrf", &pcsrf), ("code", &code)]).await;
    assert_eq!(res.status(), 400);

    // Turning it off needs the re-verification flow.
    let res = post(&b, app.url("/account/security"), &[("csrf", &csrf), ("action", "second_step_off")]).await;
    assert_eq!(res.status(), 403);
    let (_, still) = password_only(&app, "two_step1").await;
    assert!(location(&still).unwrap().contains("hold="));
    let res =
        post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "second_step_off")])
            .await;
    assert_eq!(res.status(), 303);
    assert_eq!(crate::factors::audited(&app, &sub, "second_step_off").await.len(), 1);
    let (q, res) = password_only(&app, "two_step1").await;
    assert!(location(&res).unwrap().ends_with("/account"));
    assert!(signed_in(&app, &q).await);
    // And on again.
    let res =
        post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "second_step_on")]).await;
    assert_eq!(res.status(), 303);
    let (_, res) = password_only(&app, "two_step1").await;
    assert!(location(&res).unwrap().contains("hold="));
}
both!(two_step_sign_in_is_real, super::two_step_sign_in);

/// Within an authorization request the request continues after the
/// second step.
async fn two_step_sms_and_request(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    citizen(&app, "two_step2", "13600003333").await;
    let b = password_sign_in(&app, "two_step2").await;
    let (secret, _, _) = enrol_app(&app, &b, "13600003333").await;
    app.state.clock.advance(30);
    // Password sign-in inside an authorization request.
    let p = Browser::new();
    let res = p.http.get(auth_url(&app, &client, &[])).send().await.unwrap();
    let login = location(&res).unwrap();
    let req = query_of(&login)["req"].clone();
    let html = p.http.get(login).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", req.clone()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", "two_step2".to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = p.http.post(app.url("/login")).form(&form).send().await.unwrap();
    let to = location(&res).unwrap();
    assert!(to.contains("/mfa/totp?hold="), "{to}");
    let (_, html) = get(&p, to).await;
    let (hold, csrf) = (hidden(&html, "hold").unwrap(), hidden(&html, "csrf").unwrap());
    let code = app_code(&secret, app.state.clock.now());
    let res = post(&p, app.url("/mfa/totp"), &[("hold", &hold), ("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().contains(&format!("/authorize/resume?req={req}")));
}
both!(two_step_within_a_request, super::two_step_sms_and_request);

/// One frame on every page: the signed-in person, the menu to every
/// personal page, the language switch and sign-out; the home page and the
/// personal centre link every personal page; errors have a way back.
async fn frame(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    app.user("frame_user").await;
    let (_, b) = sign_in(&app, &client, "frame_user", &[]).await;
    let (status, html) = get(&b, app.url("/account")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"frame-user\">王*<"), "{html}");
    for id in [
        "nav-account",
        "nav-security",
        "nav-identity",
        "nav-apps",
        "nav-sessions",
        "nav-history",
        "nav-kin",
        "nav-authorisations",
        "nav-health-code",
        "nav-e-certificate",
        "nav-enterprise",
        "frame-sign-out",
        "lang-en",
        "account-kin",
        "account-e-certificate",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id} missing");
    }
    assert!(!html.contains("user:"), "no internal ids shown");
    // Every menu entry leads to a page (or its sign-in), never a 404.
    for path in ["/account/security", "/identity", "/account/apps", "/account/sessions", "/account/history"] {
        let (status, page) = get(&b, app.url(path)).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("id=\"frame-menu\""), "{path} has the frame");
    }
    let (_, home) = get(&b, app.url("/")).await;
    assert!(home.contains("id=\"home-services\"") && home.contains("id=\"home-kin\""));

    // The language switch sets the cookie and comes back.
    let res = b.http.get(app.url("/lang?to=en&back=%2Faccount%2Fsessions")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/account/sessions"));
    let (_, html) = get(&b, app.url("/account/sessions")).await;
    assert!(html.contains("<html lang=\"en\">") && html.contains("id=\"lang-zh\""));
    let res = b.http.get(app.url("/lang?to=en&back=https://evil.example/")).send().await.unwrap();
    assert!(location(&res).unwrap().starts_with(&app.base), "only local pages are returned to");

    // Themed errors with a way back.
    let (status, html) = get(&b, app.url("/no-such-page")).await;
    assert_eq!(status, 404);
    assert!(html.contains("id=\"back-home\"") && html.contains("id=\"back-account\""));
    // `/authorize` looks the viewer up only for its error pages (its
    // redirects skip the lookup), and they still show who is signed in.
    let (status, html) = get(&b, app.url("/authorize?client_id=no-such-app&response_type=code")).await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"frame-user\">王*<") && html.contains("id=\"back-home\""), "{html}");
    let anonymous = Browser::new();
    let (_, html) = get(&anonymous, app.url("/")).await;
    assert!(html.contains("id=\"frame-sign-in\"") && !html.contains("id=\"frame-user\""));
    let (_, html) = get(&anonymous, app.url("/authorize?client_id=no-such-app&response_type=code")).await;
    assert!(html.contains("id=\"frame-sign-in\"") && !html.contains("id=\"frame-user\""));
}
both!(one_frame_with_navigation, super::frame);

/// 我的应用, devices and sign-in history, in words and local time.
async fn console(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let sub = app.user("console_user").await;
    let (_, b) = sign_in(&app, &client, "console_user", &[]).await;

    // My apps: the app by name, what it may read in words, revoke.
    let (_, html) = get(&b, app.url("/account/apps")).await;
    assert!(html.contains(&format!("data-client=\"{}\"", client.id)), "{html}");
    assert!(html.contains("Test RP"));
    assert!(html.contains(&app.state.pages.text("zh-CN", "scope_openid")));
    assert!(!html.contains("scope_"), "no raw keys");
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&b, app.url("/account/apps"), &[("csrf", &csrf), ("client_id", &client.id)]).await;
    assert_eq!(res.status(), 303);
    let (_, html) = get(&b, app.url("/account/apps")).await;
    assert!(html.contains("id=\"apps-empty\""));
    assert_eq!(crate::factors::audited(&app, &sub, "consent_revoked").await.len(), 1);
    let res = post(&b, app.url("/account/apps"), &[("csrf", "forged"), ("client_id", &client.id)]).await;
    assert_eq!(res.status(), 403);

    // Devices: two browsers; sign out the other one from here.
    let other = password_sign_in(&app, "console_user").await;
    let (_, html) = get(&b, app.url("/account/sessions")).await;
    assert_eq!(html.matches("<tr class=\"device").count(), 2, "{html}");
    assert_eq!(html.matches("id=\"this-device\"").count(), 1);
    assert!(html.contains("id=\"end-others\""));
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&b, app.url("/account/sessions"), &[("csrf", &csrf), ("action", "others")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(get(&other, app.url("/account")).await.0, 303, "the other device is signed out");
    assert_eq!(get(&b, app.url("/account")).await.0, 200, "this one is not");
    // Another person's session cannot be named.
    let stranger_sub = app.user("console_other").await;
    let stranger = password_sign_in(&app, "console_other").await;
    let sid = idp::domain::authn::sessions::live_for_user(&app.state.store, &stranger_sub, app.state.clock.now())
        .await
        .unwrap()[0]
        .sid
        .clone();
    let res = post(&b, app.url("/account/sessions"), &[("csrf", &csrf), ("action", "one"), ("sid", &sid)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(get(&stranger, app.url("/account")).await.0, 200, "not ended");

    // History: sign-ins in words and local time, no Unix seconds.
    let (_, html) = get(&b, app.url("/account/history")).await;
    assert!(html.contains("data-action=\"sign_in\"") && html.contains("data-action=\"session_ended\""));
    assert!(html.contains(&app.state.pages.text("zh-CN", "method_password")));
    assert!(!html.contains(&app.state.clock.now().to_string()[..6]), "no timestamps");
    assert!(html.contains("年"), "a date in the locale");
}
both!(account_console, super::console);

/// The SMS forms (issue 19): "send" has its own route and keeps what was
/// typed, starts the countdown, errors stand at their field, and the
/// captcha can be refreshed without a reload.
async fn sms_forms(backend: Backend) {
    use crate::accounts::{send_code, sms_count};
    let app = spawn(backend).await;
    let b = Browser::new();
    // The old "action=send_code" on the form's own route sends nothing now.
    let html = b.http.get(app.url("/register")).send().await.unwrap().text().await.unwrap();
    assert!(html.replace("&#x2F;", "/").contains("formaction=\"/register/send\""), "{html}");
    assert!(html.contains("id=\"captcha-refresh\"") && html.contains("/static/portal.js"));
    let old = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("captcha_id", hidden(&html, "captcha_id").unwrap()),
        ("captcha", "whatever".to_string()),
        ("phone", "13711110001".to_string()),
        ("action", "send_code".to_string()),
    ];
    b.http.post(app.url("/register")).form(&old).send().await.unwrap();
    assert_eq!(sms_count(&app, "13711110001").await, 0);
    // A send keeps the username and phone and starts the countdown.
    let typed = [("username", "keeper_001")];
    let (status, html) = send_code(&app, &b, "/register", "", "13711110001", &typed).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(sms_count(&app, "13711110001").await, 1);
    assert!(html.contains("value=\"keeper_001\"") && html.contains("value=\"13711110001\""), "{html}");
    assert!(html.contains("data-wait=\"60\""), "the button counts down: {html}");
    // A wrong captcha: the error stands at the captcha, not at the top.
    let fresh = b.http.get(app.url("/register")).send().await.unwrap().text().await.unwrap();
    let wrong = [
        ("csrf", hidden(&fresh, "csrf").unwrap()),
        ("captcha_id", hidden(&fresh, "captcha_id").unwrap()),
        ("captcha", "wrong".to_string()),
        ("phone", "13711110002".to_string()),
        ("username", "keeper_002".to_string()),
    ];
    let res = b.http.post(app.url("/register/send")).form(&wrong).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"captcha-error\"") && !html.contains("class=\"error\""), "{html}");
    assert!(html.contains("value=\"keeper_002\"") && html.contains("data-wait=\"0\""));
    // A wrong code: the typed code stays, the error is at the code field.
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", "keeper_001".to_string()),
        ("phone", "13711110001".to_string()),
        ("sms_code", "000000".to_string()),
        ("password", "Secret-123".to_string()),
        ("password2", "Secret-123".to_string()),
        ("agree", "yes".to_string()),
    ];
    let res = b.http.post(app.url("/register")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"sms_code-error\"") && html.contains("value=\"000000\""), "{html}");
    // Mismatched passwords: at the second password field.
    let mut form = form.to_vec();
    form[5].1 = "Secret-124".to_string();
    let html = b.http.post(app.url("/register")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"password2-error\""), "{html}");
    // SMS sign-in: an unknown phone is refused at the phone field.
    let (status, html) = send_code(&app, &b, "/login/sms", "", "13711119999", &[]).await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"phone-error\"") && html.contains("value=\"13711119999\""), "{html}");
    // "换一张": a fresh captcha as JSON, never cached.
    let res = b.http.get(app.url("/captcha")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let c: serde_json::Value = res.json().await.unwrap();
    let id = c["id"].as_str().unwrap().to_string();
    assert!(c["image"].as_str().unwrap().starts_with("data:image/"));
    assert!(sink(&app, "captcha", &id).await.is_some(), "a real, answerable captcha");
    // The page script is served from the same origin.
    let js = b.http.get(app.url("/static/portal.js")).send().await.unwrap().text().await.unwrap();
    assert!(js.contains("data-captcha-refresh") && js.contains("data-wait"));
}
both!(sms_forms_behave, super::sms_forms);

/// Forgot password asks for the captcha once: step 1's captcha sends the
/// first code; step 2 only offers a resend (behind a new captcha) and keeps
/// the typed code after a mismatch.
async fn forgot_one_captcha(backend: Backend) {
    use crate::accounts::{reset_start, sms_count};
    let app = spawn(backend).await;
    let owner = idp::domain::identity::users::NewUser {
        username: "onecaptcha1".into(),
        password: PASSWORD.into(),
        phone: Some("15011112222".into()),
        ..Default::default()
    };
    app.state.users.create(owner).await.unwrap();
    let b = Browser::new();
    let flow = reset_start(&app, &b, "onecaptcha1").await;
    assert_eq!(sms_count(&app, "15011112222").await, 1, "the first code goes out with step 1's captcha");
    let res = b.http.get(app.url(&format!("/forgot/verify?flow={flow}&sent=1"))).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("data-wait=\"60\"") && html.contains("class=\"info\""), "{html}");
    assert!(html.contains("<details class=\"resend\" id=\"forgot-resend\">"), "resend is folded away: {html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [("flow", flow.clone()), ("csrf", csrf.clone()), ("sms_code", "000000".to_string())];
    let res = b.http.post(app.url("/forgot/verify")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("value=\"000000\""), "the typed code stays: {html}");
    // The right code moves on.
    let code = six_digits(&sink(&app, "sms", "15011112222").await.unwrap());
    let form = [("flow", flow.clone()), ("csrf", csrf), ("sms_code", code)];
    let res = b.http.post(app.url("/forgot/verify")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
}
both!(forgot_asks_captcha_once, super::forgot_one_captcha);
