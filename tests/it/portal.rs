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
    let res = post(b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "totp_start")]).await;
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
    let res = post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "second_step_off")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(crate::factors::audited(&app, &sub, "second_step_off").await.len(), 1);
    let (q, res) = password_only(&app, "two_step1").await;
    assert!(location(&res).unwrap().ends_with("/account"));
    assert!(signed_in(&app, &q).await);
    // And on again.
    let res = post(&b, app.url("/account/security"), &[("csrf", &csrf), ("flow", &flow), ("action", "second_step_on")])
        .await;
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
