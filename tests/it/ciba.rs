//! CIBA (OpenID Client-Initiated Backchannel Authentication Core 1.0, issue
//! 17): a relying app's server asks at `/bc-authorize`; the request appears
//! in the citizen app (`GET /api/scan/requests`, then the scan API's read /
//! confirm / deny); the app's server polls `/token` with the CIBA grant, or
//! is pinged at its notification endpoint.
use crate::both;
use crate::scan::{CitizenApp, bind_sandbox_identity, citizen};
use crate::support::*;
use serde_json::{Value, json};

const GRANT: &str = "urn:openid:params:grant-type:ciba";

async fn ciba_client(app: &TestApp, ping: Option<&str>) -> TestClient {
    app.client(|c| {
        c.name = "社保查询 Pension RP".into();
        c.grant_types = Some(vec!["authorization_code".into(), GRANT.into()]);
        if let Some(endpoint) = ping {
            c.backchannel_token_delivery_mode = Some("ping".into());
            c.backchannel_client_notification_endpoint = Some(endpoint.into());
        }
    })
    .await
}

async fn bc_authorize(app: &TestApp, rp: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    api().post(app.url("/bc-authorize")).basic_auth(&rp.id, rp.secret.as_ref()).form(form).send().await.unwrap()
}

/// A started request's `auth_req_id`, after checking the answer's shape.
async fn start(app: &TestApp, rp: &TestClient, form: &[(&str, &str)]) -> String {
    let res = bc_authorize(app, rp, form).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = json(res).await;
    assert!(body["expires_in"].as_i64().unwrap() > 0, "{body}");
    assert_eq!(body["interval"], 5);
    body["auth_req_id"].as_str().unwrap().to_string()
}

async fn poll(app: &TestApp, rp: &TestClient, auth_req_id: &str) -> Value {
    let form = [("grant_type", GRANT), ("auth_req_id", auth_req_id)];
    json(api().post(app.url("/token")).basic_auth(&rp.id, rp.secret.as_ref()).form(&form).send().await.unwrap()).await
}

/// What waits for the app's person, as the app lists it.
async fn waiting(app: &TestApp, phone: &CitizenApp) -> Vec<Value> {
    let res = api().get(app.url("/api/scan/requests")).bearer_auth(&phone.token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    json(res).await["requests"].as_array().unwrap().clone()
}

/// The one waiting request's ticket id.
async fn the_request(app: &TestApp, phone: &CitizenApp) -> Value {
    let list = waiting(app, phone).await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

async fn poll_approve_deny_expire(b: Backend) {
    let app = spawn(b).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["backchannel_authentication_endpoint"], app.url("/bc-authorize"));
    assert_eq!(doc["backchannel_token_delivery_modes_supported"], json!(["poll", "ping"]));
    assert_eq!(doc["backchannel_user_code_parameter_supported"], false);
    assert!(doc["grant_types_supported"].as_array().unwrap().iter().any(|g| g == GRANT));

    let user = app.user("ciba_citizen").await;
    app.user("ciba_other").await;
    let rp = ciba_client(&app, None).await;
    let phone = citizen(&app, "ciba_citizen").await;
    let stranger = citizen(&app, "ciba_other").await;

    // A client not registered for CIBA, a hint naming nobody, no openid.
    let plain = app.confidential().await;
    let res = bc_authorize(&app, &plain, &[("scope", "openid"), ("login_hint", "ciba_citizen")]).await;
    assert_eq!(json(res).await["error"], "unauthorized_client");
    let res = bc_authorize(&app, &rp, &[("scope", "openid"), ("login_hint", "nobody_here")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "unknown_user_id");
    let res = bc_authorize(&app, &rp, &[("scope", "profile"), ("login_hint", "ciba_citizen")]).await;
    assert_eq!(json(res).await["error"], "invalid_request");
    let res = bc_authorize(&app, &rp, &[("scope", "openid")]).await;
    assert_eq!(json(res).await["error"], "invalid_request", "a hint is required");
    let long = "字".repeat(65);
    let form = [("scope", "openid"), ("login_hint", "ciba_citizen"), ("binding_message", long.as_str())];
    assert_eq!(json(bc_authorize(&app, &rp, &form).await).await["error"], "invalid_binding_message");
    let res = api()
        .post(app.url("/bc-authorize"))
        .basic_auth(&rp.id, Some("wrong"))
        .form(&[("scope", "openid"), ("login_hint", "ciba_citizen")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(waiting(&app, &phone).await.is_empty(), "refused requests leave nothing in the app");

    // Poll mode, approved in the app.
    let form = [("scope", "openid profile"), ("login_hint", "ciba_citizen"), ("binding_message", "W4SCT")];
    let id = start(&app, &rp, &form).await;
    assert_eq!(poll(&app, &rp, &id).await["error"], "authorization_pending");
    assert_eq!(poll(&app, &rp, &id).await["error"], "slow_down", "polled before the interval");
    app.state.clock.advance(11);
    assert_eq!(poll(&app, &rp, &id).await["error"], "authorization_pending");
    // The app sees who asks, the binding message, what for and from where.
    let req = the_request(&app, &phone).await;
    assert_eq!(req["purpose"], "ciba");
    assert_eq!(req["client"]["name"], "社保查询 Pension RP");
    assert_eq!(req["detail"]["binding_message"], "W4SCT");
    assert_eq!(req["browser"]["ip"], "127.0.0.1");
    assert_eq!(req["face_required"], false);
    let scopes: Vec<&str> = req["requested"].as_array().unwrap().iter().map(|r| r["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes, ["openid", "profile"]);
    assert!(req["requested"][1]["text"].as_str().is_some_and(|t| t != "scope_profile"), "{req}");
    let ticket = req["ticket"].as_str().unwrap().to_string();
    // Only the named person's app sees or takes it.
    assert!(waiting(&app, &stranger).await.is_empty());
    let res = stranger.read(&app, &ticket).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await["error"], "account_mismatch");
    assert_eq!(json(stranger.decide(&app, &ticket, "confirm", json!({})).await).await["error"], "ticket_unavailable");
    assert_eq!(phone.read(&app, &ticket).await.status(), 200);
    let res = phone.decide(&app, &ticket, "confirm", json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["status"], "confirmed");
    assert!(waiting(&app, &phone).await.is_empty(), "a decided request leaves the list");
    app.state.clock.advance(11);
    let tokens = poll(&app, &rp, &id).await;
    let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("tokens: {tokens}")).to_string();
    let claims = jwt_claims(&id_token);
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["amr"], json!(["mca", "swk"]), "approved in the app: multiple-channel");
    let info = api().get(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await;
    assert_eq!(json(info.unwrap()).await["sub"], user.as_str());
    // The auth_req_id is single use.
    app.state.clock.advance(11);
    assert_eq!(poll(&app, &rp, &id).await["error"], "invalid_grant");
    // Another client cannot redeem it, nor an unknown id.
    let other = ciba_client(&app, None).await;
    assert_eq!(poll(&app, &other, &id).await["error"], "invalid_grant");
    assert_eq!(poll(&app, &rp, "not-an-auth-req-id").await["error"], "invalid_grant");

    // The ID token it got names the person for the next request.
    let form = [("scope", "openid"), ("id_token_hint", id_token.as_str())];
    let denied = start(&app, &rp, &form).await;
    let ticket = the_request(&app, &phone).await["ticket"].as_str().unwrap().to_string();
    assert_eq!(phone.read(&app, &ticket).await.status(), 200);
    let res = phone.decide(&app, &ticket, "deny", json!({})).await;
    assert_eq!(json(res).await["status"], "denied");
    assert_eq!(poll(&app, &rp, &denied).await["error"], "access_denied");

    // Never decided: expired_token after requested_expiry, and gone from the app.
    let late =
        start(&app, &rp, &[("scope", "openid"), ("login_hint", "ciba_citizen"), ("requested_expiry", "60")]).await;
    assert_eq!(waiting(&app, &phone).await.len(), 1);
    app.state.clock.advance(61);
    assert_eq!(poll(&app, &rp, &late).await["error"], "expired_token");
    assert!(waiting(&app, &phone).await.is_empty());
}
both!(ciba_poll_approve_deny_replay_expire, super::poll_approve_deny_expire);

/// A local stand-in for the client's notification endpoint: each POST's
/// `Authorization` header and JSON body.
async fn listener() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Value)>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/ciba/notify",
        post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                tx.send((auth.to_string(), body)).ok();
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ciba/notify", socket.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(socket, router).await });
    (url, rx)
}

async fn ping_mode(b: Backend) {
    let app = spawn(b).await;
    let user = app.user("ciba_pinged").await;
    let (endpoint, mut pings) = listener().await;
    let rp = ciba_client(&app, Some(&endpoint)).await;
    let phone = citizen(&app, "ciba_pinged").await;
    let form = [("scope", "openid"), ("login_hint", "ciba_pinged")];
    let res = bc_authorize(&app, &rp, &form).await;
    assert_eq!(json(res).await["error"], "invalid_request", "ping mode needs client_notification_token");
    let form = [("scope", "openid"), ("login_hint", "ciba_pinged"), ("client_notification_token", "nt-8f3a")];
    let id = start(&app, &rp, &form).await;
    let ticket = the_request(&app, &phone).await["ticket"].as_str().unwrap().to_string();
    assert_eq!(phone.read(&app, &ticket).await.status(), 200);
    let res = phone.decide(&app, &ticket, "confirm", json!({})).await;
    assert_eq!(res.status(), 200);
    let (auth, body) = tokio::time::timeout(std::time::Duration::from_secs(10), pings.recv()).await.unwrap().unwrap();
    assert_eq!(auth, "Bearer nt-8f3a", "the client's own token authenticates the ping");
    assert_eq!(body, json!({ "auth_req_id": id }));
    let tokens = poll(&app, &rp, &id).await;
    let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("tokens: {tokens}"));
    assert_eq!(jwt_claims(id_token)["sub"], user.as_str());
    // One ping per request: reading the decided ticket again sends nothing.
    assert_eq!(phone.decide(&app, &ticket, "confirm", json!({})).await.status(), 409);
    assert!(pings.try_recv().is_err());
}
both!(ciba_ping_mode_notifies_the_client, super::ping_mode);

/// A level above L2 needs the verifier's face pass in the app, through the
/// same face rules as a face-check QR code.
async fn face_for_higher_level(b: Backend) {
    let app = spawn(b).await;
    let user = app.user("ciba_face").await;
    bind_sandbox_identity(&app, &user).await;
    let rp = ciba_client(&app, None).await;
    let phone = citizen(&app, "ciba_face").await;
    let form = [("scope", "openid"), ("login_hint", "ciba_face"), ("acr_values", "urn:idp:loa:3")];
    let id = start(&app, &rp, &form).await;
    let req = the_request(&app, &phone).await;
    assert_eq!(req["face_required"], true);
    assert_eq!(req["detail"]["acr"], "urn:idp:loa:3");
    let ticket = req["ticket"].as_str().unwrap().to_string();
    assert_eq!(phone.read(&app, &ticket).await.status(), 200);
    let res = phone.decide(&app, &ticket, "confirm", json!({})).await;
    assert_eq!(res.status(), 400, "no face result");
    let res = phone.decide(&app, &ticket, "confirm", json!({ "face_verified": true })).await;
    assert_eq!(json(res).await["error"], "face_check_required", "the app's word alone is not enough");
    let res = api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(&phone.token)
        .json(&json!({ "face": "c2FuZGJveC1mYWNl" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = phone.decide(&app, &ticket, "confirm", json!({ "face_verified": true })).await;
    assert_eq!(res.status(), 200);
    let tokens = poll(&app, &rp, &id).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap_or_else(|| panic!("tokens: {tokens}")));
    assert_eq!(claims["acr"], "urn:idp:loa:3");
    assert!(claims["amr"].as_array().unwrap().iter().any(|m| m == "face"), "{claims}");
}
both!(ciba_face_check_for_a_higher_level, super::face_for_higher_level);
