//! Strong factors over HTTP: authenticator app (real RFC 6238
//! codes computed here from the secret the enrolment page shows), recovery
//! codes, and passkeys driven by webauthn-authenticator-rs's SoftPasskey
//! through the same JSON + form endpoints the page script uses.
//!
//! Passkey tests run the provider with the issuer `http://localhost:PORT`:
//! WebAuthn does not accept an IP address as relying party id, so with the
//! usual `http://127.0.0.1:PORT` issuer passkeys are switched off (also tested).
use crate::both;
use crate::support::*;
use idp::store::entities::audit;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

pub(crate) async fn spawn_localhost(backend: Backend) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&backend, port, &dir).await;
    config.issuer = format!("http://localhost:{port}");
    spawn_with(config, listener, dir).await
}

pub(crate) async fn citizen(app: &TestApp, username: &str, phone: &str) -> String {
    let new = idp::domain::identity::users::NewUser {
        username: username.into(),
        password: PASSWORD.into(),
        phone: Some(phone.into()),
        ..Default::default()
    };
    app.state.users.create(new).await.unwrap().sub
}

/// Signs in with the password (no authorization request): ends at /account.
pub(crate) async fn password_sign_in(app: &TestApp, username: &str) -> Browser {
    let b = Browser::new();
    let html = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", String::new()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", username.to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    b
}

pub(crate) async fn get(b: &Browser, url: String) -> (u16, String) {
    let res = b.http.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

pub(crate) async fn post(b: &Browser, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    b.http.post(url).form(form).send().await.unwrap()
}

/// SMS re-verification on the security page; returns (csrf, flow id).
pub(crate) async fn reverify(app: &TestApp, b: &Browser, phone: &str) -> (String, String) {
    let (_, html) = get(b, app.url("/account/security")).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(app, "captcha", &captcha_id).await.unwrap();
    let send = [("csrf", csrf.as_str()), ("captcha_id", &captcha_id), ("captcha", &answer), ("action", "send_code")];
    let res = post(b, app.url("/account/security"), &send).await;
    assert_eq!(res.status(), 200);
    let code = six_digits(&sink(app, "sms", phone).await.unwrap());
    let res =
        post(b, app.url("/account/security"), &[("csrf", &csrf), ("action", "verify"), ("sms_code", &code)]).await;
    assert_eq!(res.status(), 303);
    let flow = query_of(&location(&res).unwrap())["flow"].clone();
    (csrf, flow)
}

/// Switches two-step sign-in off inside a re-verified flow: these tests
/// step up password sessions, which two-step sign-in (on by default once a
/// factor is enrolled; tested in `portal.rs`) would otherwise hold.
pub(crate) async fn second_step_off(app: &TestApp, b: &Browser, csrf: &str, flow: &str) {
    let form = [("csrf", csrf), ("flow", flow), ("action", "second_step_off")];
    assert_eq!(post(b, app.url("/account/security"), &form).await.status(), 303);
}

pub(crate) async fn audited(app: &TestApp, user: &str, action: &str) -> Vec<String> {
    audit::Entity::find()
        .filter(audit::Column::UserId.eq(user))
        .filter(audit::Column::Action.eq(action))
        .all(&app.state.store)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.detail)
        .collect()
}

pub(crate) fn between<'a>(html: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    html.split(start).skip(1).filter_map(|s| s.split(end).next()).collect()
}

pub(crate) fn app_code(secret: &str, at: i64) -> String {
    let seed = totp_rs::Secret::try_from_base32(secret).unwrap();
    let t = totp_rs::Builder::new().with_secret(seed).build().unwrap();
    t.generate(at as u64).to_string()
}

async fn step_up_code(app: &TestApp, b: &Browser, code: &str) -> (u16, String) {
    let (status, html) = get(b, app.url("/mfa/totp?req=")).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(b, app.url("/mfa/totp"), &[("req", ""), ("csrf", &csrf), ("code", code)]).await;
    let status = res.status().as_u16();
    let loc = location(&res).unwrap_or_default();
    (status, if status == 303 { loc } else { res.text().await.unwrap() })
}

const L3: &str = r#"{"id_token":{"acr":{"essential":true,"values":["urn:idp:loa:3"]}}}"#;

/// Starts an authorization request that requires L3 for a browser already
/// signed in by password; returns the step-up hub's request id.
async fn step_up_hub(app: &TestApp, b: &Browser, client: &TestClient, way: &str) -> String {
    let end = b.run(app, &auth_url(app, client, &[("claims", L3)]), "", "").await;
    let End::Page(200, html) = end else { panic!("expected the step-up page, got {end:?}") };
    let html = html.replace("&#x2F;", "/");
    let start = format!("href=\"{way}?req=");
    let req = html.split(&start).nth(1).and_then(|r| r.split('"').next()).unwrap_or_else(|| panic!("{html}"));
    req.to_string()
}

/// Follows the redirects after a step-up back to the app and checks the tokens.
async fn tokens_after(app: &TestApp, b: &Browser, client: &TestClient, location: &str) -> serde_json::Value {
    let end = b.run(app, location, "", "").await;
    let tokens = json(redeem(app, client, &end.code(), None).await).await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

async fn totp_and_recovery_codes(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let sub = citizen(&app, "totp_user1", "13600001111").await;
    let b = password_sign_in(&app, "totp_user1").await;
    // Without re-verification nothing changes.
    let (_, html) = get(&b, app.url("/account/security")).await;
    assert!(html.contains("安全设置") && html.contains("captcha_id"));
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&b, app.url("/account/security"), &[("csrf", &csrf), ("action", "totp_start")]).await;
    assert_eq!(res.status(), 403);
    let (csrf, flow) = reverify(&app, &b, "13600001111").await;
    // Enrolment: a QR code (SVG data URL) and the secret as text.
    let res =
        post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "totp_start")]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("src=\"data:image&#x2F;svg+xml;base64,") || html.contains("src=\"data:image/svg+xml;base64,")
    );
    let secret = between(&html, "<code id=\"totp-secret\">", "</code>")[0].to_string();
    assert!(secret.len() >= 32, "{secret}");
    let confirm = |code: String| {
        let (csrf, flow) = (csrf.clone(), flow.clone());
        let b = &b;
        let app = &app;
        async move {
            post(
                b,
                app.url("/account/security"),
                &[("csrf", &csrf), ("flow", &flow), ("action", "totp_confirm"), ("code", &code)],
            )
            .await
        }
    };
    let now = app.state.clock.now();
    let wrong = format!("{:06}", (app_code(&secret, now).parse::<u32>().unwrap() + 1) % 1_000_000);
    let res = confirm(wrong).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("验证码错误"));
    let enrol_code = app_code(&secret, now);
    let res = confirm(enrol_code.clone()).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    second_step_off(&app, &b, &csrf, &flow).await;
    let codes: Vec<String> = between(&html, "<li><code>", "</code>").into_iter().map(String::from).collect();
    assert_eq!(codes.len(), 10, "{html}");
    assert_eq!(audited(&app, &sub, "factor_added").await, ["authenticator app"]);
    assert!(sink(&app, "sms", "13600001111").await.unwrap().contains("添加了新的登录验证方式"));
    // The secret is stored encrypted, not as shown.
    let row = idp::store::entities::totp_factor::Entity::find_by_id(sub.clone())
        .one(&app.state.store)
        .await
        .unwrap()
        .unwrap();
    assert!(row.confirmed && !row.secret_enc.contains(&secret));
    let (_, page) = get(&b, app.url("/account/security")).await;
    assert!(page.contains("身份验证器应用") && page.contains("剩余可用： 10"), "{page}");

    // Step-up with the app: the code used for enrolment is spent (RFC 6238 §5.2).
    let (status, page) = step_up_code(&app, &b, &enrol_code).await;
    assert_eq!(status, 401);
    assert!(page.contains("已使用过"));
    let (status, page) = step_up_code(&app, &b, "000000").await;
    assert!(status == 401 && page.contains("验证码错误") || app_code(&secret, now) == "000000");
    app.state.clock.advance(30);
    let fresh = app_code(&secret, app.state.clock.now());
    let (status, loc) = step_up_code(&app, &b, &fresh).await;
    assert_eq!(status, 303, "{loc}");
    assert!(loc.ends_with("/account"), "{loc}");
    let (status, _) = step_up_code(&app, &b, &fresh).await;
    assert_eq!(status, 401, "accepted once, never again in its window");
    // Two racing submissions of one fresh code: exactly one wins. The page
    // is fetched once before the race: the winner renews the session id, so
    // a page load racing it could meet the old id (a second tab's fate too).
    app.state.clock.advance(30);
    let fresh = app_code(&secret, app.state.clock.now());
    let (_, html) = get(&b, app.url("/mfa/totp?req=")).await;
    let csrf_race = hidden(&html, "csrf").unwrap();
    let steps_before = audited(&app, &sub, "step_up").await.len();
    let submit = || async {
        let res = post(&b, app.url("/mfa/totp"), &[("req", ""), ("csrf", &csrf_race), ("code", &fresh)]).await;
        (res.status().as_u16(), location(&res).unwrap_or_default())
    };
    let (a, c) = tokio::join!(submit(), submit());
    let won = |r: &(u16, String)| r.0 == 303 && r.1.ends_with("/account");
    assert_eq!([&a, &c].into_iter().filter(|r| won(r)).count(), 1, "{a:?} {c:?}");
    assert_eq!(audited(&app, &sub, "step_up").await.len(), steps_before + 1, "one step-up recorded");

    // Recovery codes: single use, typed in any case.
    app.state.clock.advance(16 * 60); // the failures above age out
    let (status, _) = step_up_code(&app, &b, &codes[0]).await;
    assert_eq!(status, 303);
    let (status, _) = step_up_code(&app, &b, &codes[0]).await;
    assert_eq!(status, 401);
    let (status, _) = step_up_code(&app, &b, &codes[1].to_uppercase().replace('-', " ")).await;
    assert_eq!(status, 303);
    assert_eq!(app.state.totp.remaining_recovery_codes(&sub).await.unwrap(), 8);
    // Guessing is throttled per account: after 5 wrong codes even a right one waits.
    for _ in 0..3 {
        step_up_code(&app, &b, "zzzzz-zzzzz").await;
    }
    let (status, _) = step_up_code(&app, &b, "zzzzz-zzzzz").await;
    assert_eq!(status, 401);
    app.state.clock.advance(30);
    let (status, page) = step_up_code(&app, &b, &app_code(&secret, app.state.clock.now())).await;
    assert_eq!(status, 429, "{page}");
    app.state.clock.advance(16 * 60);
    let (status, _) = step_up_code(&app, &b, &app_code(&secret, app.state.clock.now())).await;
    assert_eq!(status, 303, "the lock ends by itself");

    // The app asks for L3: the hub offers the app code, which ends in a
    // code at the app with acr L3 and the methods used.
    idp::domain::assurance::set_proofing_level(&app.state.store, &sub, 3).await.unwrap();
    // (a fresh password sign-in: the earlier one is older than L3's 30 minutes)
    let hb = password_sign_in(&app, "totp_user1").await;
    let req = step_up_hub(&app, &hb, &client, "/mfa/totp").await;
    app.state.clock.advance(30);
    let (_, html) = get(&hb, app.url(&format!("/mfa/totp?req={req}"))).await;
    let csrf_mfa = hidden(&html, "csrf").unwrap();
    let code = app_code(&secret, app.state.clock.now());
    let res = post(&hb, app.url("/mfa/totp"), &[("req", &req), ("csrf", &csrf_mfa), ("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let claims = tokens_after(&app, &hb, &client, &location(&res).unwrap()).await;
    assert_eq!(claims["acr"], "urn:idp:loa:3");
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert!(["pwd", "otp", "mfa"].iter().all(|m| amr.contains(&m.to_string())), "{amr:?}");

    // Removal needs a live re-verification: the old flow has expired.
    let res =
        post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "remove_totp")]).await;
    assert_eq!(res.status(), 403);
    assert!(app.state.totp.enrolled(&sub).await.unwrap());
    app.state.clock.advance(3600); // SMS per-hour limit of the earlier code
    let (csrf, flow) = reverify(&app, &b, "13600001111").await;
    let res =
        post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "remove_totp")]).await;
    assert_eq!(res.status(), 303);
    assert!(!app.state.totp.enrolled(&sub).await.unwrap());
    assert_eq!(app.state.totp.remaining_recovery_codes(&sub).await.unwrap(), 0, "codes go with the last factor");
    assert_eq!(audited(&app, &sub, "factor_removed").await, ["authenticator app"]);
    assert!(sink(&app, "sms", "13600001111").await.unwrap().contains("移除了一种登录验证方式"));
    // Another browser cannot use this browser's flow.
    let other = password_sign_in(&app, "totp_user1").await;
    let (_, html) = get(&other, app.url("/account/security")).await;
    let other_csrf = hidden(&html, "csrf").unwrap();
    let res =
        post(&other, app.url("/account/security"), &[("csrf", &other_csrf), ("flow", &flow), ("action", "totp_start")])
            .await;
    assert_eq!(res.status(), 403);
}
both!(totp_enrolment_replay_and_recovery_codes, super::totp_and_recovery_codes);

/// Registers a passkey for the signed-in browser `b`; returns the response.
pub(crate) async fn register_passkey(
    app: &TestApp,
    b: &Browser,
    key: &mut SoftPasskey,
    csrf: &str,
    flow: &str,
    name: &str,
) -> reqwest::Response {
    let res = post(b, app.url("/account/security/passkey/begin"), &[("csrf", csrf), ("flow", flow)]).await;
    assert_eq!(res.status(), 200);
    let begun: serde_json::Value = res.json().await.unwrap();
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let origin = Url::parse(&app.base).unwrap();
    let cred = key.do_registration(origin, ccr).unwrap();
    let credential = serde_json::to_string(&cred).unwrap();
    let ceremony = begun["ceremony"].as_str().unwrap();
    post(
        b,
        app.url("/account/security/passkey"),
        &[("csrf", csrf), ("flow", flow), ("ceremony", ceremony), ("name", name), ("credential", &credential)],
    )
    .await
}

/// Begins a passkey ceremony at `begin` and returns (ceremony, options).
pub(crate) async fn begin_auth(b: &Browser, url: String, form: &[(&str, &str)]) -> (String, RequestChallengeResponse) {
    let res = post(b, url, form).await;
    assert_eq!(res.status(), 200);
    let begun: serde_json::Value = res.json().await.unwrap();
    (begun["ceremony"].as_str().unwrap().to_string(), serde_json::from_value(begun["options"].clone()).unwrap())
}

pub(crate) fn sign(app: &TestApp, key: &mut SoftPasskey, options: RequestChallengeResponse) -> String {
    let origin = Url::parse(&app.base).unwrap();
    serde_json::to_string(&key.do_authentication(origin, options).unwrap()).unwrap()
}

/// The sign-in page of a fresh authorization request: (browser, req, csrf).
pub(crate) async fn login_page(app: &TestApp, client: &TestClient) -> (Browser, String, String) {
    let b = Browser::new();
    let res = b.http.get(auth_url(app, client, &[])).send().await.unwrap();
    let req = query_of(&location(&res).unwrap())["req"].clone();
    let (_, html) = get(&b, app.url(&format!("/login?req={req}"))).await;
    assert!(html.contains("使用通行密钥登录") && html.contains("/static/webauthn.js"));
    let csrf = hidden(&html, "csrf").unwrap();
    (b, req, csrf)
}

async fn passkeys(backend: Backend) {
    let app = spawn_localhost(backend).await;
    let client = app.confidential().await;
    let alice = citizen(&app, "passkey_alice", "13700001111").await;
    let bob = citizen(&app, "passkey_bob1", "13700002222").await;
    let mut alice_key = SoftPasskey::new(true);
    let mut bob_key = SoftPasskey::new(true);
    // Register: re-verification first, then the WebAuthn ceremony.
    let b = password_sign_in(&app, "passkey_alice").await;
    let (csrf, flow) = reverify(&app, &b, "13700001111").await;
    let res = post(&b, app.url("/account/security/passkey/begin"), &[("csrf", &csrf), ("flow", "")]).await;
    assert_eq!(res.status(), 403, "no registration without re-verification");
    let res = register_passkey(&app, &b, &mut alice_key, &csrf, &flow, "Alice 的手机").await;
    assert_eq!(res.status(), 303);
    let (_, page) = get(&b, app.url(&format!("/account/security?flow={flow}"))).await;
    assert!(page.contains("Alice 的手机"), "{page}");
    assert_eq!(audited(&app, &alice, "factor_added").await, ["passkey Alice 的手机"]);
    second_step_off(&app, &b, &csrf, &flow).await;
    let bb = password_sign_in(&app, "passkey_bob1").await;
    let (bcsrf, bflow) = reverify(&app, &bb, "13700002222").await;
    assert_eq!(register_passkey(&app, &bb, &mut bob_key, &bcsrf, &bflow, "Bob").await.status(), 303);
    second_step_off(&app, &bb, &bcsrf, &bflow).await;

    // Passwordless sign-in ends in a code at the relying app.
    let (lb, req, lcsrf) = login_page(&app, &client).await;
    let begin = app.url("/login/passkey/begin");
    let (ceremony, options) =
        begin_auth(&lb, begin.clone(), &[("csrf", &lcsrf), ("req", &req), ("username", "passkey_alice")]).await;
    let credential = sign(&app, &mut alice_key, options);
    let finish = [("req", req.as_str()), ("csrf", &lcsrf), ("ceremony", &ceremony), ("credential", &credential)];
    let res = post(&lb, app.url("/login/passkey"), &finish).await;
    assert_eq!(res.status(), 303);
    let end = lb.run(&app, &location(&res).unwrap(), "", "").await;
    let tokens = json(redeem(&app, &client, &end.code(), None).await).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], alice);
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert!(amr.contains(&"swk".to_string()) && !amr.contains(&"pwd".to_string()), "{amr:?}");
    // The ceremony was used: replaying the same answer fails.
    let res = post(&lb, app.url("/login/passkey"), &finish).await;
    assert_eq!(res.status(), 400);

    // One user's passkey cannot sign in as another: a ceremony for Bob
    // answered by Alice's key over Bob's challenge is refused.
    let (lb, req, lcsrf) = login_page(&app, &client).await;
    let (alice_ceremony, alice_options) =
        begin_auth(&lb, begin.clone(), &[("csrf", &lcsrf), ("req", &req), ("username", "passkey_alice")]).await;
    let (bob_ceremony, mut bob_options) =
        begin_auth(&lb, begin.clone(), &[("csrf", &lcsrf), ("req", &req), ("username", "passkey_bob1")]).await;
    let alice_allowed = alice_options.public_key.allow_credentials.clone();
    bob_options.public_key.allow_credentials = alice_allowed.clone();
    let forged = sign(&app, &mut alice_key, bob_options);
    let res = post(
        &lb,
        app.url("/login/passkey"),
        &[("req", &req), ("csrf", &lcsrf), ("ceremony", &bob_ceremony), ("credential", &forged)],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(get(&lb, app.url("/account")).await.0, 303, "not signed in");
    // Alice's own ceremony still works in this browser, but Bob's cannot
    // be reused for it.
    let honest = sign(&app, &mut alice_key, alice_options);
    let res = post(
        &lb,
        app.url("/login/passkey"),
        &[("req", &req), ("csrf", &lcsrf), ("ceremony", &bob_ceremony), ("credential", &honest)],
    )
    .await;
    assert_eq!(res.status(), 400, "a ceremony is taken once");
    let res = post(
        &lb,
        app.url("/login/passkey"),
        &[("req", &req), ("csrf", &lcsrf), ("ceremony", &alice_ceremony), ("credential", &honest)],
    )
    .await;
    assert_eq!(res.status(), 303);
    // An unknown account gets a decoy challenge that no authenticator holds.
    let (_, decoy) =
        begin_auth(&lb, begin.clone(), &[("csrf", &lcsrf), ("req", &req), ("username", "nobody_here")]).await;
    assert_eq!(decoy.public_key.allow_credentials.len(), 1);
    assert!(bob_key.do_authentication(Url::parse(&app.base).unwrap(), decoy).is_err());

    // Passkey as the step-up second factor of a password session.
    let sb = password_sign_in(&app, "passkey_bob1").await;
    let (status, html) = get(&sb, app.url("/mfa/passkey?req=")).await;
    assert_eq!(status, 200);
    let scsrf = hidden(&html, "csrf").unwrap();
    let (ceremony, options) = begin_auth(&sb, app.url("/mfa/passkey/begin"), &[("csrf", &scsrf), ("req", "")]).await;
    let credential = sign(&app, &mut bob_key, options);
    let res = post(
        &sb,
        app.url("/mfa/passkey"),
        &[("req", ""), ("csrf", &scsrf), ("ceremony", &ceremony), ("credential", &credential)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().ends_with("/account"));
    assert_eq!(audited(&app, &bob, "step_up").await, ["passkey Bob"]);
    // Alice's key cannot be Bob's second factor.
    let (ceremony, mut options) =
        begin_auth(&sb, app.url("/mfa/passkey/begin"), &[("csrf", &scsrf), ("req", "")]).await;
    options.public_key.allow_credentials = alice_allowed;
    let credential = sign(&app, &mut alice_key, options);
    let res = post(
        &sb,
        app.url("/mfa/passkey"),
        &[("req", ""), ("csrf", &scsrf), ("ceremony", &ceremony), ("credential", &credential)],
    )
    .await;
    assert_eq!(res.status(), 401);

    // Through the step-up hub: an app asking for L3 gets it after the passkey.
    idp::domain::assurance::set_proofing_level(&app.state.store, &bob, 3).await.unwrap();
    // (a fresh password session: the one above already used its passkey)
    let hb = password_sign_in(&app, "passkey_bob1").await;
    let req = step_up_hub(&app, &hb, &client, "/mfa/passkey").await;
    let (_, html) = get(&hb, app.url(&format!("/mfa/passkey?req={req}"))).await;
    let hcsrf = hidden(&html, "csrf").unwrap();
    let (ceremony, options) = begin_auth(&hb, app.url("/mfa/passkey/begin"), &[("csrf", &hcsrf), ("req", &req)]).await;
    let credential = sign(&app, &mut bob_key, options);
    let form = [("req", req.as_str()), ("csrf", &hcsrf), ("ceremony", &ceremony), ("credential", &credential)];
    let res = post(&hb, app.url("/mfa/passkey"), &form).await;
    assert_eq!(res.status(), 303);
    let claims = tokens_after(&app, &hb, &client, &location(&res).unwrap()).await;
    assert_eq!((claims["acr"].as_str(), claims["sub"].as_str()), (Some("urn:idp:loa:3"), Some(bob.as_str())));
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert!(["pwd", "swk", "mfa"].iter().all(|m| amr.contains(&m.to_string())), "{amr:?}");

    // Counter / clone handling as webauthn-rs reports it: two ceremonies
    // signed in one order and finished in the other — the second answer
    // carries a counter that did not increase, as a cloned key would.
    let (c1, o1) = begin_auth(&sb, app.url("/mfa/passkey/begin"), &[("csrf", &scsrf), ("req", "")]).await;
    let (c2, o2) = begin_auth(&sb, app.url("/mfa/passkey/begin"), &[("csrf", &scsrf), ("req", "")]).await;
    let older = sign(&app, &mut bob_key, o1);
    let newer = sign(&app, &mut bob_key, o2);
    let res =
        post(&sb, app.url("/mfa/passkey"), &[("req", ""), ("csrf", &scsrf), ("ceremony", &c2), ("credential", &newer)])
            .await;
    assert_eq!(res.status(), 303);
    let res =
        post(&sb, app.url("/mfa/passkey"), &[("req", ""), ("csrf", &scsrf), ("ceremony", &c1), ("credential", &older)])
            .await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("可能已被复制"));
    assert_eq!(audited(&app, &bob, "passkey_clone_suspected").await.len(), 1, "audited on the account");

    // Removing a passkey needs re-verification; afterwards it signs nobody in.
    let (_, page) = get(&bb, app.url(&format!("/account/security?flow={bflow}"))).await;
    let id = between(&page, "name=\"passkey\" value=\"", "\"")[0].to_string();
    let res =
        post(&bb, app.url("/account/security"), &[("csrf", &bcsrf), ("action", "remove_passkey"), ("passkey", &id)])
            .await;
    assert_eq!(res.status(), 403);
    let res = post(
        &bb,
        app.url("/account/security"),
        &[("csrf", &bcsrf), ("flow", &bflow), ("action", "remove_passkey"), ("passkey", &id)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(audited(&app, &bob, "factor_removed").await, ["passkey Bob"]);
    let (_, options) = begin_auth(&lb, begin, &[("csrf", &lcsrf), ("req", &req), ("username", "passkey_bob1")]).await;
    assert!(bob_key.do_authentication(Url::parse(&app.base).unwrap(), options).is_err());
}
both!(passkey_register_sign_in_step_up_and_clones, super::passkeys);

/// With an IP-address issuer passkeys are off; everything else works.
async fn no_passkeys_on_ip_issuer(backend: Backend) {
    let app = spawn(backend).await;
    app.user("ip_user01").await;
    let (status, html) = get(&Browser::new(), app.url("/login")).await;
    assert_eq!(status, 200);
    assert!(!html.contains("使用通行密钥登录"));
    let b = Browser::new();
    let (_, html) = get(&b, app.url("/login")).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&b, app.url("/login/passkey/begin"), &[("csrf", &csrf), ("username", "ip_user01")]).await;
    assert_eq!(res.status(), 404);
}
both!(passkeys_off_with_ip_issuer, super::no_passkeys_on_ip_issuer);
