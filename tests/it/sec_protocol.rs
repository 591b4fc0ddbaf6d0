//! Issue 13 over HTTP: claims asked for individually are released only
//! within the client's allowed scopes and with the user's consent (OIDC
//! Core §5.5); the face API needs the admin-granted `scan_login` as the
//! scan API does; tokens under an expired delegation stop at every API;
//! plugin-signed JWTs have their own key, not the ID/access token key.
use crate::both;
use crate::health_code::{ZHANG_ID, app_with, page, payload_in, scanned};
use crate::plugin_kit::*;
use crate::support::*;
use idp::crypto::jws::Alg;
use idp::domain::delegation::{self, Kind, NewDelegation};
use idp::domain::tokens::UserContext;
use idp::domain::tokens::grants::{self, NewGrant};
use idp::store::entities::user;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};

/// Every claim the finding named, for both targets.
const ASK_ALL: &str = r#"{"userinfo":{"phone_number":null,"email":null,"name":null,"ethnicity":null,"gender":null},
"id_token":{"phone_number":{"essential":true},"email":null,"name":null,"ethnicity":null,"gender":null}}"#;
const PERSONAL: [&str; 5] = ["phone_number", "email", "name", "ethnicity", "gender"];

/// Gives the account a phone and profile fields beside its e-mail and name.
async fn with_profile(app: &TestApp, user_id: &str) {
    let u = user::Entity::find_by_id(user_id.to_owned()).one(&app.state.store).await.unwrap().unwrap();
    let mut m: user::ActiveModel = u.into();
    m.phone = Set(Some("13800000077".into()));
    m.profile = Set(Some(json!({"gender": "male", "ethnicity": "汉族"}).to_string()));
    m.update(&app.state.store).await.unwrap();
}

/// Where a signed-in browser's authorization request goes first.
async fn first_stop(b: &Browser, url: &str) -> String {
    location(&b.http.get(url).send().await.unwrap()).unwrap()
}

/// Allows on the consent page at `consent_url`, follows to the client and
/// returns the code.
async fn allow(app: &TestApp, b: &Browser, consent_url: &str) -> String {
    let html = b.http.get(consent_url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", hidden(&html, "req").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("decision", "allow".to_string()),
    ];
    let res = b.http.post(app.url("/consent")).form(&form).send().await.unwrap();
    let mut url = location(&res).unwrap();
    while url.starts_with(&app.base) {
        url = location(&b.http.get(&url).send().await.unwrap()).unwrap();
    }
    query_of(&url)["code"].clone()
}

async fn id_and_userinfo(app: &TestApp, client: &TestClient, code: &str) -> (Value, Value) {
    let t = json(redeem(app, client, code, None).await).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    let info = json(userinfo(app, t["access_token"].as_str().unwrap()).await).await;
    (id, info)
}

/// Finding 4: a client allowed only `openid` gets none of the person's
/// claims by naming them in `claims`, and is not even sent to consent.
async fn claims_outside_allowed_scopes(b: Backend) {
    let app = spawn(b).await;
    let uid = app.user("claims_u1").await;
    with_profile(&app, &uid).await;
    let client = app.client(|c| c.scopes = Some("openid".into())).await;
    let browser = Browser::new();
    browser.run(&app, &auth_url(&app, &client, &[("scope", "openid")]), "claims_u1", PASSWORD).await.code();

    let url = auth_url(&app, &client, &[("scope", "openid"), ("claims", ASK_ALL)]);
    let next = first_stop(&browser, &url).await;
    assert!(next.starts_with(&client.redirect_uri), "nothing to consent to: {next}");
    let (id, info) = id_and_userinfo(&app, &client, &query_of(&next)["code"]).await;
    for c in PERSONAL {
        assert!(id.get(c).is_none(), "{c} in the ID token: {id}");
        assert!(info.get(c).is_none(), "{c} in userinfo: {info}");
    }
    assert_eq!(info["sub"], id["sub"]);
}
both!(claims_outside_allowed_scopes_are_ignored, super::claims_outside_allowed_scopes);

/// Finding 4: claims the client may have are shown for consent and
/// released only after it; consent records them, so the same request goes
/// through and a request for another claim asks again. An essential `acr`
/// keeps its meaning.
async fn claims_need_consent(b: Backend) {
    let app = spawn(b).await;
    let uid = app.user("claims_u2").await;
    with_profile(&app, &uid).await;
    let client = app.confidential().await;
    let browser = Browser::new();
    browser.run(&app, &auth_url(&app, &client, &[("scope", "openid")]), "claims_u2", PASSWORD).await.code();

    let ask =
        r#"{"userinfo":{"email":null,"ethnicity":null,"acr":null},"id_token":{"phone_number":{"essential":true}}}"#;
    let url = auth_url(&app, &client, &[("scope", "openid"), ("claims", ask)]);
    let next = first_stop(&browser, &url).await;
    assert!(next.starts_with(&app.url("/consent?req=")), "new claims need consent: {next}");
    let html = browser.http.get(&next).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-claim=\"email\"") && html.contains("data-claim=\"phone_number\""), "{html}");
    assert!(!html.contains("data-claim=\"ethnicity\""), "no scope releases ethnicity: {html}");
    assert!(!html.contains("data-claim=\"acr\""), "acr is no personal data");
    let code = allow(&app, &browser, &next).await;
    let (id, info) = id_and_userinfo(&app, &client, &code).await;
    assert_eq!(id["phone_number"], "+8613800000077", "{id}");
    assert!(id.get("email").is_none(), "email was asked for userinfo only: {id}");
    assert_eq!(info["email"], "claims_u2@example.org", "{info}");
    assert!(info.get("ethnicity").is_none() && info.get("phone_number").is_none(), "{info}");

    // Consented: the same request needs no consent page.
    let next = first_stop(&browser, &url).await;
    assert!(next.starts_with(&client.redirect_uri), "{next}");
    // Another claim asks again; with prompt=none that is consent_required.
    let other = r#"{"userinfo":{"gender":null}}"#;
    let next = first_stop(&browser, &auth_url(&app, &client, &[("scope", "openid"), ("claims", other)])).await;
    assert!(next.starts_with(&app.url("/consent?req=")), "{next}");
    let silent = auth_url(&app, &client, &[("scope", "openid"), ("claims", other), ("prompt", "none")]);
    let next = first_stop(&browser, &silent).await;
    assert_eq!(query_of(&next)["error"], "consent_required", "{next}");

    // An essential acr in `claims` still drives step-up.
    let acr = r#"{"id_token":{"acr":{"essential":true,"values":["urn:idp:loa:3"]}}}"#;
    let next = first_stop(&browser, &auth_url(&app, &client, &[("scope", "openid"), ("claims", acr)])).await;
    assert!(next.starts_with(&app.url("/step-up?req=")), "{next}");
}
both!(individually_requested_claims_need_consent, super::claims_need_consent);

async fn face(app: &TestApp, token: &str) -> reqwest::Response {
    api()
        .post(app.url("/api/identity/face"))
        .bearer_auth(token)
        .json(&json!({ "face": "c2FuZGJveC1mYWNl" }))
        .send()
        .await
        .unwrap()
}

/// Finding 5: an ordinary relying app's user token cannot run face checks
/// in the user's name; the citizen app can, while it holds the
/// administrator's `scan_login` permission.
async fn face_api_scope(b: Backend) {
    let app = spawn(b).await;
    app.user("face_u1").await;
    let rp = app.confidential().await;
    let (code, _) = sign_in(&app, &rp, "face_u1", &[]).await;
    let rp_token = json(redeem(&app, &rp, &code, None).await).await["access_token"].as_str().unwrap().to_string();
    let res = face(&app, &rp_token).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await["error"], "insufficient_scope");

    let phone = crate::scan::citizen(&app, "face_u1").await;
    let res = face(&app, &phone.token).await;
    assert!(![401, 403].contains(&res.status().as_u16()), "{}", res.text().await.unwrap());
    // Revoking the permission takes effect at once, on the same token.
    let app_id = jwt_claims(&phone.token)["client_id"].as_str().unwrap().to_string();
    assert!(
        idp::domain::plugins::plugin_access::deny(&app.state.store, &app_id, "scan_login", app.state.clock.now())
            .await
            .unwrap()
    );
    let res = face(&app, &phone.token).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await["error"], "insufficient_scope");
}
both!(face_api_needs_scan_login_permission, super::face_api_scope);

/// Finding (smaller): a token acting under a person-to-person grant (C6)
/// stops at the plugin API, introspection and userinfo once the grant has
/// expired by date, though the token itself has not.
async fn expired_delegation(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE], |_, _| {}).await;
    let alice = app.user("deleg_alice").await;
    let bob = app.user("deleg_bob1").await;
    let client = app.confidential().await;
    permit(&app, &client, "example").await;
    let now = app.state.clock.now();
    let today = delegation::today(now).to_string();
    let d = delegation::insert(
        &app.state.store,
        NewDelegation {
            kind: Kind::Person,
            enterprise_id: None,
            principal_user_id: Some(alice.clone()),
            relative_name: None,
            relative_id_number: None,
            relation: None,
            grantee_user_id: bob.clone(),
            scopes: "profile example".into(),
            valid_from: Some(today.clone()),
            valid_to: Some(today),
            state: delegation::DelegationState::Active,
            agent_password_hash: None,
        },
        now,
    )
    .await
    .unwrap();
    // The grant a session acting under this delegation makes.
    let g = grants::create_direct(
        &app.state.store,
        NewGrant {
            client_id: client.id.clone(),
            user_id: bob.clone(),
            sid: None,
            scope: "openid profile example".into(),
            claims: None,
            nonce: None,
            auth_time: now,
            acr: "urn:idp:loa:1".into(),
            amr: vec!["pwd".into()],
            enterprise_id: None,
            delegation_id: Some(d.id.clone()),
            sector: None,
        },
        3600,
        now,
    )
    .await
    .unwrap();
    let acting = idp::domain::delegation::acting::for_grant(&app.state.store, &g, now).await.unwrap().unwrap().unwrap();
    let at = app
        .state
        .tokens
        .access_token(&client.id, "openid profile example", Some(UserContext { grant: &g, acting: Some(&acting) }))
        .unwrap()
        .token;
    let plugin_api = || api().get(app.url("/plugins/example/api/greeting")).bearer_auth(&at).send();
    let introspect = || {
        api()
            .post(app.url("/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", at.as_str())])
            .send()
    };
    assert_eq!(plugin_api().await.unwrap().status(), 200);
    assert_eq!(json(introspect().await.unwrap()).await["active"], true);
    assert_eq!(userinfo(&app, &at).await.status(), 200);

    // Two days on the grant has expired (not revoked); the token has not.
    app.state.clock.advance(2 * 24 * 3600);
    let res = plugin_api().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_token");
    assert_eq!(json(introspect().await.unwrap()).await["active"], false);
    assert_eq!(userinfo(&app, &at).await.status(), 401);
}
both!(expired_delegation_ends_tokens_at_every_api, super::expired_delegation);

fn header(jwt: &str) -> Value {
    jwt_claims(&format!("x.{}", jwt.split('.').next().unwrap()))
}

/// Finding (smaller): plugin JWTs are signed with a plugin key of their
/// own, published in the JWKS; a JWT signed with the token key is no
/// plugin JWT, and one signed with the plugin key is no access token.
async fn plugin_key(b: Backend) {
    let app = spawn_plugins(b, &[HEALTH], |_, _| {}).await;
    crate::health_code::citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let rp = app.confidential().await;
    let (tok, browser) = tokens_for(&app, &rp, "zhang_san", "openid").await;
    let (_, scanner) = app_with(&app, "health_code.scan").await;
    let (_, html) = page(&browser, &app, "/").await;
    let code = payload_in(&html);
    let (plugin_kid, token_kid) =
        (header(&code)["kid"].clone(), header(tok["id_token"].as_str().unwrap())["kid"].clone());
    assert_ne!(plugin_kid, token_kid, "plugin JWTs must not use the ID token key");
    assert_ne!(plugin_kid, header(tok["access_token"].as_str().unwrap())["kid"]);
    let jwks = json(api().get(app.url("/jwks")).send().await.unwrap()).await;
    let published = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == plugin_kid).cloned();
    let published = published.unwrap_or_else(|| panic!("plugin key {plugin_kid} not in {jwks}"));
    assert_eq!((published["use"].as_str(), published["alg"].as_str()), (Some("sig"), Some("ES256")));
    assert!(plugin_kid.as_str().unwrap().starts_with("plugin-"), "{plugin_kid}");
    assert_eq!(scanned(&app, &scanner, &code).await["valid"], true);

    // The same payload signed with the token key is refused by the plugin.
    let keys = app.state.keys.snapshot();
    let forged = keys.signer(Alg::Es256).unwrap().sign_jwt("idp-plugin+jwt", &jwt_claims(&code));
    let r = scanned(&app, &scanner, &forged).await;
    assert_eq!(r["valid"], false, "a token-key JWT passed as a plugin JWT: {r}");
    // An access token's claims signed with the plugin key are no access token.
    let forged = keys.plugin_signer().unwrap().sign_jwt("at+jwt", &jwt_claims(tok["access_token"].as_str().unwrap()));
    assert_eq!(userinfo(&app, &forged).await.status(), 401);
    // Nor is a plugin JWT an ID token hint.
    let next = first_stop(&browser, &auth_url(&app, &rp, &[("scope", "openid"), ("id_token_hint", &code)])).await;
    assert_eq!(query_of(&next)["error"], "invalid_request", "{next}");
}
both!(plugin_jwts_have_their_own_key, super::plugin_key);
