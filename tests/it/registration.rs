//! Dynamic client registration (RFC 7591 / 7592), signed userinfo and JWT
//! introspection responses (RFC 9701), PS256, and codes bound to a DPoP key
//! with `dpop_jkt` (RFC 9449 §10) — issue 17, driven over HTTP.
use crate::both;
use crate::support::*;
use idp::crypto::jws::{self, Alg};
use idp::crypto::{b64url, b64url_decode};
use idp::domain::clients::AuthMethod;
use p256::ecdsa::SigningKey;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A provider with registration open (https redirect URIs only).
async fn open_app(b: Backend) -> TestApp {
    crate::identity::app_with(b, |c| c.protocol.registration.enabled = true).await
}

/// What the administrator hands out (`idp client initial-token`).
async fn initial_token(app: &TestApp, uses: i64, ttl: i64) -> String {
    let now = app.state.clock.now();
    idp::domain::clients::registration::issue_initial_token(&app.state.store, &app.state.hasher, "test", uses, ttl, now)
        .await
        .unwrap()
        .token
}

async fn register(app: &TestApp, token: Option<&str>, metadata: &Value) -> reqwest::Response {
    let mut req = api().post(app.url("/oauth/register")).json(metadata);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn error_of(res: reqwest::Response, status: u16) -> String {
    assert_eq!(res.status(), status);
    json(res).await["error"].as_str().unwrap_or_default().to_string()
}

fn rp(extra: Value) -> Value {
    let mut m = json!({"client_name": "市民服务", "redirect_uris": ["https://rp.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile email offline_access"});
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
        m.extend(extra);
    }
    m
}

/// Introspects `token` as `client` (client_secret_basic), with `accept`.
async fn introspect(app: &TestApp, client: &TestClient, token: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req =
        api().post(app.url("/introspect")).basic_auth(&client.id, client.secret.as_deref()).form(&[("token", token)]);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    req.send().await.unwrap()
}

async fn registration_lifecycle(b: Backend) {
    let app = open_app(b).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["registration_endpoint"], app.url("/oauth/register"));

    // Without an initial access token, or with one never issued: refused.
    assert_eq!(error_of(register(&app, None, &rp(json!({}))).await, 401).await, "invalid_token");
    assert_eq!(error_of(register(&app, Some("made-up"), &rp(json!({}))).await, 401).await, "invalid_token");

    let single = initial_token(&app, 1, 3600).await;
    // What the policy refuses spends nothing.
    let plugin_scope = rp(json!({"scope": "openid health_code"}));
    assert_eq!(error_of(register(&app, Some(&single), &plugin_scope).await, 400).await, "invalid_client_metadata");
    let admin_scope = rp(json!({"scope": "openid scan_login"}));
    assert_eq!(error_of(register(&app, Some(&single), &admin_scope).await, 400).await, "invalid_client_metadata");
    let plain_http = rp(json!({"redirect_uris": ["http://rp.example/cb"]}));
    assert_eq!(error_of(register(&app, Some(&single), &plain_http).await, 400).await, "invalid_redirect_uri");
    let fragment = rp(json!({"redirect_uris": ["https://rp.example/cb#x"]}));
    assert_eq!(error_of(register(&app, Some(&single), &fragment).await, 400).await, "invalid_redirect_uri");
    let no_alg = rp(json!({"id_token_signed_response_alg": "none"}));
    assert_eq!(error_of(register(&app, Some(&single), &no_alg).await, 400).await, "invalid_client_metadata");
    let implicit = rp(json!({"response_types": ["token"]}));
    assert_eq!(error_of(register(&app, Some(&single), &implicit).await, 400).await, "invalid_client_metadata");
    let cc = rp(json!({"grant_types": ["client_credentials"]}));
    assert_eq!(error_of(register(&app, Some(&single), &cc).await, 400).await, "invalid_client_metadata");
    let res = api()
        .post(app.url("/oauth/register"))
        .bearer_auth(&single)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res, 400).await, "invalid_client_metadata");

    // Registered.
    let res = register(&app, Some(&single), &rp(json!({}))).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let reg = json(res).await;
    let id = reg["client_id"].as_str().unwrap().to_string();
    let secret = reg["client_secret"].as_str().unwrap().to_string();
    let rat = reg["registration_access_token"].as_str().unwrap().to_string();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_string();
    assert_eq!(uri, app.url(&format!("/oauth/register/{id}")));
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(reg["scope"], "openid profile email offline_access");
    assert_eq!(reg["client_name"], "市民服务");
    assert!(reg["client_id_issued_at"].as_i64().unwrap() > 0);
    let client =
        TestClient { id: id.clone(), secret: Some(secret.clone()), redirect_uri: "https://rp.example/cb".into() };
    assert_eq!(json(introspect(&app, &client, "x", None).await).await["active"], false, "the secret works");

    // The single-use token is spent.
    assert_eq!(error_of(register(&app, Some(&single), &rp(json!({}))).await, 401).await, "invalid_token");
    // A two-use token registers twice, then no more; an expired one never.
    let double = initial_token(&app, 2, 3600).await;
    assert_eq!(register(&app, Some(&double), &rp(json!({}))).await.status(), 201);
    assert_eq!(register(&app, Some(&double), &rp(json!({}))).await.status(), 201);
    assert_eq!(error_of(register(&app, Some(&double), &rp(json!({}))).await, 401).await, "invalid_token");
    let short = initial_token(&app, 5, 60).await;
    app.state.clock.advance(61);
    assert_eq!(error_of(register(&app, Some(&short), &rp(json!({}))).await, 401).await, "invalid_token");

    // Read (RFC 7592 §2.1): only with the registration access token.
    let res = api().get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let read = json(res).await;
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["redirect_uris"], json!(["https://rp.example/cb"]));
    assert!(read.get("client_secret").is_none(), "only a digest is kept");
    let res = api().get(&uri).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(api().get(&uri).bearer_auth(&single).send().await.unwrap().status(), 401);
    assert_eq!(api().get(&uri).send().await.unwrap().status(), 401);
    // An administrator's client is not managed this way.
    let admin = app.confidential().await;
    let res = api().get(app.url(&format!("/oauth/register/{}", admin.id))).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // Update (RFC 7592 §2.2): full replacement, same policy, secret kept.
    let mut changed = rp(json!({"client_name": "市民服务 2", "redirect_uris": ["https://rp.example/cb2"]}));
    changed["client_id"] = id.clone().into();
    let res = api().put(&uri).bearer_auth("wrong").json(&changed).send().await.unwrap();
    assert_eq!(error_of(res, 401).await, "invalid_token");
    let mut with_server_field = changed.clone();
    with_server_field["registration_access_token"] = rat.clone().into();
    let res = api().put(&uri).bearer_auth(&rat).json(&with_server_field).send().await.unwrap();
    assert_eq!(error_of(res, 400).await, "invalid_request");
    let mut plugin = changed.clone();
    plugin["scope"] = "openid health_code".into();
    let res = api().put(&uri).bearer_auth(&rat).json(&plugin).send().await.unwrap();
    assert_eq!(error_of(res, 400).await, "invalid_client_metadata");
    let res = api().put(&uri).bearer_auth(&rat).json(&changed).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let updated = json(res).await;
    assert_eq!(updated["client_name"], "市民服务 2");
    assert_eq!(updated["redirect_uris"], json!(["https://rp.example/cb2"]));
    assert!(updated.get("client_secret").is_none(), "the secret did not change");
    assert_eq!(updated["client_id_issued_at"], reg["client_id_issued_at"]);
    assert_eq!(json(introspect(&app, &client, "x", None).await).await["active"], false);
    let old_redirect = auth_url(&app, &client, &[]);
    let res = api().get(old_redirect).send().await.unwrap();
    assert_eq!(res.status(), 400, "the old redirect URI is gone");

    // Delete (RFC 7592 §2.3): then the client is unknown everywhere.
    assert_eq!(api().delete(&uri).bearer_auth("wrong").send().await.unwrap().status(), 401);
    assert_eq!(api().delete(&uri).bearer_auth(&rat).send().await.unwrap().status(), 204);
    assert_eq!(error_of(introspect(&app, &client, "x", None).await, 401).await, "invalid_client");
    assert_eq!(api().get(&uri).bearer_auth(&rat).send().await.unwrap().status(), 401);
    assert_eq!(api().delete(&uri).bearer_auth(&rat).send().await.unwrap().status(), 401);
}
both!(registration_initial_tokens_policy_and_management, super::registration_lifecycle);

async fn registration_off(b: Backend) {
    let app = spawn(b).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert!(doc.get("registration_endpoint").is_none());
    let token = initial_token(&app, 1, 3600).await;
    assert_eq!(error_of(register(&app, Some(&token), &rp(json!({}))).await, 403).await, "access_denied");
}
both!(registration_is_off_by_default, super::registration_off);

/// Redirect URIs on listed hosts only; loopback only when allowed.
async fn registration_hosts(b: Backend) {
    let app = crate::identity::app_with(b, |c| {
        c.protocol.registration.enabled = true;
        c.protocol.registration.redirect_hosts = vec!["rp.gov.cn".into()];
    })
    .await;
    let token = initial_token(&app, 5, 3600).await;
    let elsewhere = rp(json!({}));
    assert_eq!(error_of(register(&app, Some(&token), &elsewhere).await, 400).await, "invalid_redirect_uri");
    let loopback = rp(json!({"redirect_uris": ["http://127.0.0.1:9/cb"]}));
    assert_eq!(error_of(register(&app, Some(&token), &loopback).await, 400).await, "invalid_redirect_uri");
    let listed = rp(json!({"redirect_uris": ["https://rp.gov.cn/cb"]}));
    assert_eq!(register(&app, Some(&token), &listed).await.status(), 201);
}
both!(registration_redirect_hosts_policy, super::registration_hosts);

/// A JWKS of the provider, fetched as a client would.
async fn provider_key(app: &TestApp, kid: &str) -> jws::PublicKey {
    let jwks = json(api().get(app.url("/jwks")).send().await.unwrap()).await;
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("kid in the JWKS").clone();
    jws::PublicKey::from_jwk(&jwk).unwrap()
}

/// Verifies a JWT the provider signed against its published JWKS; the
/// header and the claims.
async fn verified(app: &TestApp, token: &str, alg: Alg) -> (Value, Value) {
    let parsed = jws::parse(token).expect("a JWS");
    assert_eq!(parsed.header.alg, alg.name());
    let key = provider_key(app, parsed.header.kid.as_deref().unwrap()).await;
    assert!(key.verifies(alg, parsed.signing_input.as_bytes(), &parsed.signature), "verifies with the JWKS");
    let header: Value = serde_json::from_slice(&b64url_decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    (header, parsed.payload.clone())
}

async fn signed_responses(b: Backend) {
    let app = open_app(b).await;
    app.user("signed_user").await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert!(doc["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!("PS256")));
    assert!(doc["userinfo_signing_alg_values_supported"].as_array().unwrap().contains(&json!("PS256")));
    assert!(doc["introspection_signing_alg_values_supported"].as_array().unwrap().contains(&json!("ES256")));
    let token = initial_token(&app, 1, 3600).await;
    let metadata = rp(json!({"id_token_signed_response_alg": "PS256", "userinfo_signed_response_alg": "PS256",
        "introspection_signed_response_alg": "ES256"}));
    let res = register(&app, Some(&token), &metadata).await;
    assert_eq!(res.status(), 201);
    let reg = json(res).await;
    assert_eq!(reg["userinfo_signed_response_alg"], "PS256");
    let client = TestClient {
        id: reg["client_id"].as_str().unwrap().into(),
        secret: reg["client_secret"].as_str().map(String::from),
        redirect_uri: "https://rp.example/cb".into(),
    };
    let (code, _) = sign_in(&app, &client, "signed_user", &[]).await;
    let res = redeem(&app, &client, &code, None).await;
    assert_eq!(res.status(), 200);
    let tokens = json(res).await;
    let (_, id_claims) = verified(&app, tokens["id_token"].as_str().unwrap(), Alg::Ps256).await;
    let at = tokens["access_token"].as_str().unwrap();

    // Signed userinfo: application/jwt, iss and aud, the ID token's sub.
    let res = api().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwt");
    let body = res.text().await.unwrap();
    let (_, claims) = verified(&app, &body, Alg::Ps256).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert!(claims["email"].is_string());

    // JWT introspection by the client's setting (ES256).
    let res = introspect(&app, &client, at, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/token-introspection+jwt");
    let (header, claims) = verified(&app, &res.text().await.unwrap(), Alg::Es256).await;
    assert_eq!(header["typ"], "token-introspection+jwt");
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(claims["token_introspection"]["sub"], id_claims["sub"]);

    // Another client: JSON unless it asks with Accept (RS256 by default).
    let rs = app.confidential().await;
    let res = introspect(&app, &rs, at, None).await;
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(json(res).await["active"], true);
    let res = introspect(&app, &rs, at, Some("application/token-introspection+jwt")).await;
    assert_eq!(res.headers()["content-type"], "application/token-introspection+jwt");
    let (_, claims) = verified(&app, &res.text().await.unwrap(), Alg::Rs256).await;
    assert_eq!(claims["aud"], rs.id.as_str());
    assert_eq!(claims["token_introspection"]["active"], true);
    let res = introspect(&app, &rs, "not-a-token", Some("application/token-introspection+jwt")).await;
    let (_, claims) = verified(&app, &res.text().await.unwrap(), Alg::Rs256).await;
    assert_eq!(claims["token_introspection"]["active"], false);

    // A plain client still gets JSON userinfo.
    let (code, _) = sign_in(&app, &rs, "signed_user", &[]).await;
    let t = json(redeem(&app, &rs, &code, None).await).await;
    let res = api().get(app.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
}
both!(signed_userinfo_and_jwt_introspection_verify_with_the_jwks, super::signed_responses);

/// An RSA key of a client, with its public JWK.
fn rsa_key(kid: &str) -> (rsa::RsaPrivateKey, Value) {
    use rsa::traits::PublicKeyParts;
    let k = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let jwk = json!({"kty": "RSA", "kid": kid, "n": b64url(&k.n().to_bytes_be()), "e": b64url(&k.e().to_bytes_be())});
    (k, jwk)
}

fn ps256(k: &rsa::RsaPrivateKey, kid: &str, claims: &Value) -> String {
    let signer = jws::PrivateKey::Ps256(Box::new(rsa::pss::BlindedSigningKey::new(k.clone())));
    jws::sign(&signer, Alg::Ps256, kid, "JWT", claims)
}

fn assertion_claims(app: &TestApp, client_id: &str) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": app.base, "exp": app.state.clock.now() + 60,
        "jti": idp::crypto::random_token(12)})
}

async fn introspect_with_assertion(app: &TestApp, assertion: &str) -> reqwest::StatusCode {
    api()
        .post(app.url("/introspect"))
        .form(&[("token", "x"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)])
        .send()
        .await
        .unwrap()
        .status()
}

/// PS256 client assertions (and RS256 still), keys registered by value
/// or — for a registered client — fetched from its `jwks_uri`.
async fn ps256_assertions(b: Backend) {
    let app = crate::identity::app_with(b, |c| {
        c.protocol.registration.enabled = true;
        c.protocol.registration.allow_loopback = true;
    })
    .await;
    let (k, jwk) = rsa_key("r1");
    let client = app
        .client(|c| {
            c.auth_method = Some(AuthMethod::PrivateKeyJwt);
            c.jwks = Some(json!({"keys": [jwk.clone()]}));
        })
        .await;
    let claims = assertion_claims(&app, &client.id);
    assert_eq!(introspect_with_assertion(&app, &ps256(&k, "r1", &claims)).await, 200);
    // The same key under RS256.
    let rs = jws::PrivateKey::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(k.clone())));
    let claims = assertion_claims(&app, &client.id);
    assert_eq!(introspect_with_assertion(&app, &jws::sign(&rs, Alg::Rs256, "r1", "JWT", &claims)).await, 200);
    // A key that says it is for RS256 only is not used for PS256.
    let (k2, mut jwk2) = rsa_key("r2");
    jwk2["alg"] = "RS256".into();
    let pinned = app
        .client(|c| {
            c.auth_method = Some(AuthMethod::PrivateKeyJwt);
            c.jwks = Some(json!({"keys": [jwk2]}));
        })
        .await;
    let claims = assertion_claims(&app, &pinned.id);
    assert_eq!(introspect_with_assertion(&app, &ps256(&k2, "r2", &claims)).await, 401);

    // Registered with a jwks_uri served by the client.
    let set = json!({"keys": [jwk]});
    let keys = axum::Router::new().route("/jwks", axum::routing::get(move || async move { axum::Json(set) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://127.0.0.1:{}/jwks", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, keys).await });
    let token = initial_token(&app, 2, 3600).await;
    let both_keys = rp(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri,
        "jwks": {"keys": []}}));
    assert_eq!(error_of(register(&app, Some(&token), &both_keys).await, 400).await, "invalid_client_metadata");
    let metadata = rp(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri,
        "token_endpoint_auth_signing_alg": "PS256"}));
    let res = register(&app, Some(&token), &metadata).await;
    assert_eq!(res.status(), 201);
    let reg = json(res).await;
    assert!(reg.get("client_secret").is_none());
    let id = reg["client_id"].as_str().unwrap().to_string();
    let claims = assertion_claims(&app, &id);
    assert_eq!(introspect_with_assertion(&app, &ps256(&k, "r1", &claims)).await, 200);
    let (stranger, _) = rsa_key("r1");
    let claims = assertion_claims(&app, &id);
    assert_eq!(introspect_with_assertion(&app, &ps256(&stranger, "r1", &claims)).await, 401);
}
both!(ps256_client_assertions_and_jwks_uri, super::ps256_assertions);

fn ec_key() -> (SigningKey, Value) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256",
        "x": b64url(&point.x().unwrap()[..]), "y": b64url(&point.y().unwrap()[..])});
    (key, jwk)
}

/// A DPoP proof (RFC 9449 §4.2) by `key` for `htm htu`.
fn proof(key: &(SigningKey, Value), htm: &str, htu: &str, now: i64) -> String {
    let header = json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": key.1});
    let claims = json!({"jti": idp::crypto::random_token(12), "htm": htm, "htu": htu, "iat": now});
    let mut out = b64url(header.to_string().as_bytes());
    out.push('.');
    out.push_str(&b64url(claims.to_string().as_bytes()));
    let sig = jws::PrivateKey::Es256(key.0.clone()).sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&sig));
    out
}

fn jkt(key: &(SigningKey, Value)) -> String {
    jws::thumbprint(&key.1).unwrap()
}

async fn dpop_jkt(b: Backend) {
    let app = spawn(b).await;
    app.user("jkt_user").await;
    let client = app.public_client().await;
    let (mine, other) = (ec_key(), ec_key());
    let token_ep = app.url("/token");
    let pkce = pkce();
    let url = auth_url(
        &app,
        &client,
        &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256"), ("dpop_jkt", &jkt(&mine))],
    );
    let code = Browser::new().run(&app, &url, "jkt_user", PASSWORD).await.code();
    // Another key, or none at all: refused, and the code is not spent.
    let now = app.state.clock.now();
    let res = redeem_request(&app, &client, &code, Some(&pkce.verifier))
        .header("DPoP", proof(&other, "POST", &token_ep, now))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res, 400).await, "invalid_dpop_proof");
    let res = redeem(&app, &client, &code, Some(&pkce.verifier)).await;
    assert_eq!(error_of(res, 400).await, "invalid_dpop_proof");
    let res = redeem_request(&app, &client, &code, Some(&pkce.verifier))
        .header("DPoP", proof(&mine, "POST", &token_ep, now))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    assert_eq!(t["token_type"], "DPoP");
    assert_eq!(jwt_claims(t["access_token"].as_str().unwrap())["cnf"]["jkt"], jkt(&mine));

    // Not a thumbprint: an error at the client's redirect URI.
    let res = api().get(auth_url(&app, &client, &[("dpop_jkt", "short")])).send().await.unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "invalid_request");

    // Through PAR: the proof sent with the push binds the code.
    let conf = app.confidential().await;
    let pkce = crate::support::pkce();
    let pushed = |extra: Vec<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("redirect_uri", conf.redirect_uri.clone()),
            ("scope", "openid".into()),
            ("state", "st-jkt".into()),
            ("code_challenge", pkce.challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        form.extend(extra);
        form
    };
    let par = app.url("/par");
    let push = |form: Vec<(&'static str, String)>, dpop: String| {
        api().post(&par).basic_auth(&conf.id, conf.secret.as_deref()).header("DPoP", dpop).form(&form).send()
    };
    // A dpop_jkt naming another key than the proof's.
    let res = push(pushed(vec![("dpop_jkt", jkt(&other))]), proof(&mine, "POST", &par, now)).await.unwrap();
    assert_eq!(error_of(res, 400).await, "invalid_dpop_proof");
    let res = push(pushed(vec![]), proof(&mine, "POST", &par, now)).await.unwrap();
    assert_eq!(res.status(), 201);
    let request_uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut().append_pair("client_id", &conf.id).append_pair("request_uri", &request_uri);
    let code = Browser::new().run(&app, u.as_str(), "jkt_user", PASSWORD).await.code();
    let res = redeem_request(&app, &conf, &code, Some(&pkce.verifier))
        .header("DPoP", proof(&other, "POST", &token_ep, now))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res, 400).await, "invalid_dpop_proof");
    let res = redeem_request(&app, &conf, &code, Some(&pkce.verifier))
        .header("DPoP", proof(&mine, "POST", &token_ep, now))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["token_type"], "DPoP");
}
both!(dpop_jkt_binds_the_code_to_the_key, super::dpop_jkt);

/// `sector_identifier_uri` at registration, checked as for the
/// administrator's clients: it must list every redirect URI.
async fn registration_sector(b: Backend) {
    let app = open_app(b).await;
    let uris = vec!["https://a.rp.example/cb".to_string(), "https://b.rp.example/cb".to_string()];
    let listed = uris.clone();
    let doc = axum::Router::new()
        .route("/all.json", axum::routing::get(move || async move { axum::Json(listed) }))
        .route("/one.json", axum::routing::get(|| async { axum::Json(vec!["https://a.rp.example/cb"]) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, doc).await });
    let token = initial_token(&app, 3, 3600).await;
    let two_hosts = rp(json!({"redirect_uris": uris, "subject_type": "pairwise"}));
    assert_eq!(error_of(register(&app, Some(&token), &two_hosts).await, 400).await, "invalid_client_metadata");
    let mut missing = two_hosts.clone();
    missing["sector_identifier_uri"] = format!("{base}/one.json").into();
    assert_eq!(error_of(register(&app, Some(&token), &missing).await, 400).await, "invalid_client_metadata");
    let mut ok = two_hosts.clone();
    ok["sector_identifier_uri"] = format!("{base}/all.json").into();
    let res = register(&app, Some(&token), &ok).await;
    assert_eq!(res.status(), 201);
    let reg = json(res).await;
    assert_eq!(reg["subject_type"], "pairwise");
    assert_eq!(reg["sector_identifier_uri"], format!("{base}/all.json"));
}
both!(registration_checks_the_sector_identifier_uri, super::registration_sector);
