//! The device authorization grant (RFC 8628, issue 17): a TV asks for a
//! code, a signed-in citizen approves it at `/device`, the TV polls.
use crate::both;
use crate::support::*;
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start(app: &TestApp, tv: &TestClient) -> Value {
    let res = api()
        .post(app.url("/device_authorization"))
        .basic_auth(&tv.id, tv.secret.as_ref())
        .form(&[("scope", "openid profile")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    json(res).await
}

async fn poll(app: &TestApp, tv: &TestClient, started: &Value) -> Value {
    let form = [("grant_type", GRANT), ("device_code", started["device_code"].as_str().unwrap())];
    json(api().post(app.url("/token")).basic_auth(&tv.id, tv.secret.as_ref()).form(&form).send().await.unwrap()).await
}

/// The citizen's decision on `/device` for a user code; the page's result id.
async fn decide(app: &TestApp, b: &Browser, user_code: &str, decision: &str) -> String {
    let page = b.http.get(app.url("/device")).query(&[("user_code", user_code)]).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"device-app\""), "the page names the app: {page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("user_code", user_code), ("decision", decision)];
    b.http.post(app.url("/device")).form(&form).send().await.unwrap().text().await.unwrap()
}

async fn device_grant(b: Backend) {
    let app = spawn(b).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["device_authorization_endpoint"], app.url("/device_authorization"));
    let user = app.user("tv_viewer").await;
    let tv = app.client(|c| c.grant_types = Some(vec!["authorization_code".into(), GRANT.into()])).await;
    // Not registered for the grant: refused.
    let plain = app.confidential().await;
    let res = api()
        .post(app.url("/device_authorization"))
        .basic_auth(&plain.id, plain.secret.as_ref())
        .form(&[("scope", "openid")])
        .send()
        .await;
    assert_eq!(json(res.unwrap()).await["error"], "unauthorized_client");

    let started = start(&app, &tv).await;
    let user_code = started["user_code"].as_str().unwrap().to_string();
    assert_eq!(started["verification_uri"], app.url("/device"));
    assert_eq!(poll(&app, &tv, &started).await["error"], "authorization_pending");
    assert_eq!(poll(&app, &tv, &started).await["error"], "slow_down", "polled before the interval");
    app.state.clock.advance(11);
    assert_eq!(poll(&app, &tv, &started).await["error"], "authorization_pending");

    // The citizen, signed in on the phone, enters the code (any case, no dash) and allows.
    let (_, phone) = sign_in(&app, &tv, "tv_viewer", &[]).await;
    let typed = user_code.replace('-', "").to_lowercase();
    assert!(decide(&app, &phone, &typed, "allow").await.contains("id=\"device-approved\""));
    app.state.clock.advance(11);
    let tokens = poll(&app, &tv, &started).await;
    let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("tokens: {tokens}"));
    assert_eq!(jwt_claims(id_token)["sub"], user.as_str());
    let info = api().get(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await;
    assert_eq!(json(info.unwrap()).await["sub"], user.as_str());
    // Single use: the code is spent, and cannot be approved again.
    app.state.clock.advance(11);
    assert_eq!(poll(&app, &tv, &started).await["error"], "expired_token");
    let page = phone.http.get(app.url("/device")).query(&[("user_code", &user_code)]).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("id=\"device-unknown\""));

    // Denied → access_denied; never decided → expired_token after its lifetime.
    let denied = start(&app, &tv).await;
    assert!(decide(&app, &phone, denied["user_code"].as_str().unwrap(), "deny").await.contains("id=\"device-denied\""));
    assert_eq!(poll(&app, &tv, &denied).await["error"], "access_denied");
    let late = start(&app, &tv).await;
    app.state.clock.advance(601);
    assert_eq!(poll(&app, &tv, &late).await["error"], "expired_token");
    // Another client cannot redeem this client's device code.
    let other = app.client(|c| c.grant_types = Some(vec![GRANT.into()])).await;
    assert_eq!(poll(&app, &other, &started).await["error"], "invalid_grant");
}
both!(device_grant_pending_slow_down_approve_deny_expire, super::device_grant);
