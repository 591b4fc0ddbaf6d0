//! Managing sign-in factors on an account without a phone: the
//! security page re-verifies with the password, an authenticator-app code
//! or a passkey instead of an SMS code; an account with a phone still has
//! to use SMS.
use crate::both;
use crate::factors::*;
use crate::support::*;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

async fn reverify_with(app: &TestApp, b: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    let (_, html) = get(b, app.url("/account/security")).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str()), ("action", "reverify")];
    form.extend_from_slice(fields);
    post(b, app.url("/account/security"), &form).await
}

fn flow_of(res: &reqwest::Response) -> String {
    query_of(&location(res).expect("redirect into the re-verified flow"))["flow"].clone()
}

async fn without_phone(backend: Backend) {
    let app = spawn_localhost(backend).await;
    app.user("nophone_1").await;
    let b = password_sign_in(&app, "nophone_1").await;
    let (_, html) = get(&b, app.url("/account/security")).await;
    assert!(html.contains("此账号未绑定手机") && !html.contains("captcha_id"), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    assert_eq!(
        post(&b, app.url("/account/security"), &[("csrf", &csrf), ("action", "totp_start")]).await.status(),
        403
    );

    // Password: a wrong one is refused, the right one opens the flow.
    let res = reverify_with(&app, &b, &[("method", "password"), ("password", "not-the-password")]).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("验证未通过"));
    let res = reverify_with(&app, &b, &[("method", "password"), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), 303);
    let flow = flow_of(&res);
    // Inside it: enrol an authenticator app and a passkey.
    let form = [("csrf", csrf.as_str()), ("flow", &flow), ("action", "totp_start")];
    let res = post(&b, app.url("/account/security"), &form).await;
    assert_eq!(res.status(), 200);
    let secret = between(&res.text().await.unwrap(), "<code id=\"totp-secret\">", "</code>")[0].to_string();
    let now = app.state.clock.now();
    let form =
        [("csrf", csrf.as_str()), ("flow", &flow), ("action", "totp_confirm"), ("code", &app_code(&secret, now))];
    assert_eq!(post(&b, app.url("/account/security"), &form).await.status(), 200);
    let mut key = SoftPasskey::new(true);
    assert_eq!(register_passkey(&app, &b, &mut key, &csrf, &flow, "key").await.status(), 303);
    second_step_off(&app, &b, &csrf, &flow).await;

    // Another browser: an app code re-verifies (the enrolment's step is
    // spent, the next one passes, a replay does not).
    let b2 = password_sign_in(&app, "nophone_1").await;
    let next = app_code(&secret, now + 30);
    let res = reverify_with(&app, &b2, &[("method", "totp"), ("code", &next)]).await;
    assert_eq!(res.status(), 303);
    let res = reverify_with(&app, &b2, &[("method", "totp"), ("code", &next)]).await;
    assert_eq!(res.status(), 400, "a used code does not verify twice");

    // A third: the passkey, through a step-up ceremony of this browser.
    let b3 = password_sign_in(&app, "nophone_1").await;
    let (_, html) = get(&b3, app.url("/account/security")).await;
    assert!(html.contains("使用通行密钥验证"), "{html}");
    let csrf3 = hidden(&html, "csrf").unwrap();
    let (ceremony, options) = begin_auth(&b3, app.url("/mfa/passkey/begin"), &[("csrf", &csrf3), ("req", "")]).await;
    let credential = sign(&app, &mut key, options);
    let res =
        reverify_with(&app, &b3, &[("method", "passkey"), ("ceremony", &ceremony), ("credential", &credential)]).await;
    assert_eq!(res.status(), 303);
    let flow3 = flow_of(&res);
    // The flow it opened manages factors: remove the app.
    let form = [("csrf", csrf3.as_str()), ("flow", &flow3), ("action", "remove_totp")];
    assert_eq!(post(&b3, app.url("/account/security"), &form).await.status(), 303);
    let (_, page) = get(&b3, app.url(&format!("/account/security?flow={flow3}"))).await;
    assert!(page.contains("totp_start"), "the app is gone: {page}");
    // A ceremony answered a second time does not verify again.
    let res =
        reverify_with(&app, &b3, &[("method", "passkey"), ("ceremony", &ceremony), ("credential", &credential)]).await;
    assert_eq!(res.status(), 400);

    // Password guessing here counts against the sign-in throttle.
    let mut locked = false;
    for _ in 0..12 {
        let res = reverify_with(&app, &b3, &[("method", "password"), ("password", "guess")]).await;
        if res.status() == 429 {
            locked = true;
            break;
        }
        assert_eq!(res.status(), 400);
    }
    assert!(locked, "repeated wrong passwords lock");

    // An account with a phone re-verifies by SMS only.
    citizen(&app, "hasphone_1", "13600009999").await;
    let p = password_sign_in(&app, "hasphone_1").await;
    let res = reverify_with(&app, &p, &[("method", "password"), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), 400);
    let (_, page) = get(&p, app.url("/account/security")).await;
    assert!(page.contains("captcha_id") && !page.contains("此账号未绑定手机"));
}
both!(reverify_without_phone, super::without_phone);
