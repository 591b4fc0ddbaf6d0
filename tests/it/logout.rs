//! Sessions ending: RP-initiated logout, back-channel logout, and the
//! failed-login throttle.
use crate::both;
use crate::support::*;
use std::sync::{Arc, Mutex};

/// A relying party's back-channel endpoint that records what it receives.
pub async fn backchannel_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/bc",
        axum::routing::post(move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(f.get("logout_token").cloned().unwrap_or_default());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/bc", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn rp_initiated_and_backchannel(b: Backend) {
    let app = spawn(b).await;
    let (bc_url, received) = backchannel_receiver().await;
    let client = app.client(|c| c.backchannel_logout_uri = Some(bc_url.clone())).await;
    app.user("logout_u1").await;
    let (code, browser) = sign_in(&app, &client, "logout_u1", &[]).await;
    let t = json(redeem(&app, &client, &code, None).await).await;
    let id_token = t["id_token"].as_str().unwrap();
    let sid = jwt_claims(id_token)["sid"].as_str().unwrap().to_string();
    // Unregistered post-logout URI: error page, no redirect, still signed in.
    let mut u = url::Url::parse(&app.url("/logout")).unwrap();
    u.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/evil");
    let res = browser.http.get(u.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_none());
    // Registered URI with a matching hint: straight back to the RP with state.
    let mut u = url::Url::parse(&app.url("/logout")).unwrap();
    u.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/out")
        .append_pair("state", "bye");
    let res = browser.http.get(u.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).unwrap(), "http://127.0.0.1:9/out?state=bye");
    // Session gone: prompt=none now needs a login; tokens of the session revoked.
    let res = browser.http.get(auth_url(&app, &client, &[("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "login_required");
    let res = crate::tokens::refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    // The RP got a verifiable logout token for that session.
    let mut token = None;
    for _ in 0..50 {
        if let Some(t) = received.lock().unwrap().first().cloned() {
            token = Some(t);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = token.expect("back-channel logout delivered");
    let claims = app.state.tokens.verify_own(&token, "logout+jwt", false).expect("signed by the provider");
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["aud"], client.id);
    assert!(claims["events"].get("http://schemas.openid.net/event/backchannel-logout").is_some());
    assert!(claims.get("nonce").is_none());
}
both!(rp_initiated_and_backchannel_logout, super::rp_initiated_and_backchannel);

async fn logout_without_hint_asks_first(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("logout_u2").await;
    let (_, browser) = sign_in(&app, &client, "logout_u2", &[]).await;
    let res = browser.http.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    // Still signed in until confirmed.
    let res = browser.http.get(auth_url(&app, &client, &[("prompt", "none")])).send().await.unwrap();
    assert!(query_of(&location(&res).unwrap()).contains_key("code"));
    let form = [("csrf", hidden(&html, "csrf").unwrap()), ("confirm", "yes".into())];
    let res = browser.http.post(app.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = browser.http.get(auth_url(&app, &client, &[("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "login_required");
}
both!(logout_without_hint_asks_for_confirmation, super::logout_without_hint_asks_first);

async fn throttle(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("victim_01").await;
    let browser = Browser::new();
    let res = browser.http.get(auth_url(&app, &client, &[])).send().await.unwrap();
    let login = location(&res).unwrap();
    let html = browser.http.get(&login).send().await.unwrap().text().await.unwrap();
    let req = hidden(&html, "req").unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let attempt = |password: &'static str| {
        let form = [
            ("req", req.clone()),
            ("csrf", csrf.clone()),
            ("username", "victim_01".to_string()),
            ("password", password.to_string()),
        ];
        browser.http.post(app.url("/login")).form(&form).send()
    };
    // Unknown accounts get the same answer as wrong passwords (no enumeration).
    let form = [
        ("req", req.clone()),
        ("csrf", csrf.clone()),
        ("username", "nobody_here".to_string()),
        ("password", "x".to_string()),
    ];
    let unknown = browser.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(unknown.status(), 401);
    assert!(unknown.text().await.unwrap().contains("用户名或密码错误"));
    // Ten wrong guesses in parallel: only five are ever checked.
    let handles: Vec<_> = (0..10).map(|_| tokio::spawn(attempt("wrong-password"))).collect();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap().unwrap().status().as_u16());
    }
    // At most five attempts get past the counter (401 wrong password, or 400
    // when the attempt had become risky and carried no captcha); the rest
    // are locked out without any password check.
    let checked = statuses.iter().filter(|s| **s == 401 || **s == 400).count();
    assert_eq!(checked, 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
    // Now even the right password is refused, with a message saying when to retry.
    let res = attempt(PASSWORD).await.unwrap();
    assert_eq!(res.status(), 429);
    let body = res.text().await.unwrap();
    assert!(body.contains("分钟后再试"), "{body}");
    // Another account from the same browser is not locked.
    app.user("bystander1").await;
    let form = [
        ("req", req.clone()),
        ("csrf", csrf.clone()),
        ("username", "bystander1".to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = browser.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // Wrong CSRF token is refused before any password check.
    let form = [
        ("req", req.clone()),
        ("csrf", "x".to_string()),
        ("username", "bystander1".to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = browser.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 403);
}
both!(failed_logins_are_throttled_in_the_database, super::throttle);
