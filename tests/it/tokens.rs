//! The token side: code redemption rules, races, refresh rotation, client
//! authentication, client credentials, introspection and revocation.
use crate::both;
use crate::support::*;
use idp::domain::clients::AuthMethod;
use serde_json::{Value, json};

async fn code_rules(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    let other = app.confidential().await;
    app.user("qianba_01").await;
    let p = pkce();
    let (code, _) =
        sign_in(&app, &client, "qianba_01", &[("code_challenge", &p.challenge), ("code_challenge_method", "S256")])
            .await;
    // Wrong verifier, missing verifier, wrong client, wrong redirect: invalid_grant, code survives.
    let res = redeem(&app, &client, &code, Some(&pkce().verifier)).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = redeem(&app, &client, &code, None).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = redeem(&app, &other, &code, Some(&p.verifier)).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let mut wrong_uri = TestClient {
        id: client.id.clone(),
        secret: client.secret.clone(),
        redirect_uri: "http://127.0.0.1:9/other".into(),
    };
    let res = redeem(&app, &wrong_uri, &code, Some(&p.verifier)).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    wrong_uri.redirect_uri = client.redirect_uri.clone();
    // Right verifier works once.
    let res = redeem(&app, &wrong_uri, &code, Some(&p.verifier)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let first = json(res).await;
    let at = first["access_token"].as_str().unwrap().to_string();
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    let info = api().get(app.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(info.status(), 200);
    // Second redemption fails and revokes what the first produced.
    let res = redeem(&app, &client, &code, Some(&p.verifier)).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let info = api().get(app.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(info.status(), 401, "access token from the reused code is revoked");
    assert!(info.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let res = refresh(&app, &client, &rt).await;
    assert_eq!(json(res).await["error"], "invalid_grant", "refresh token from the reused code is revoked");
    // A verifier when no challenge was sent is refused.
    let (code, _) = sign_in(&app, &client, "qianba_01", &[]).await;
    let res = redeem(&app, &client, &code, Some(&pkce().verifier)).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    // Garbage codes.
    for bad in ["", "x", &"a".repeat(5000)] {
        let res = redeem(&app, &client, bad, None).await;
        assert_eq!(res.status(), 400, "{}", bad.len());
    }
}
both!(authorization_code_rules, super::code_rules);

pub async fn refresh(app: &TestApp, client: &TestClient, rt: &str) -> reqwest::Response {
    refresh_request(app, client, rt).send().await.unwrap()
}

fn refresh_request(app: &TestApp, client: &TestClient, rt: &str) -> reqwest::RequestBuilder {
    api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
}

async fn races(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("race_user1").await;
    let (code, _) = sign_in(&app, &client, "race_user1", &[]).await;
    let tasks: Vec<_> = (0..20).map(|_| redeem_request(&app, &client, &code, None)).collect();
    let results = futures_join(tasks).await;
    let wins = results.iter().filter(|s| **s == 200).count();
    assert_eq!(wins, 1, "exactly one of 20 parallel redemptions wins: {results:?}");
    // Same for one refresh token.
    let (code, _) = sign_in(&app, &client, "race_user1", &[]).await;
    let body = json(redeem(&app, &client, &code, None).await).await;
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..20).map(|_| refresh_request(&app, &client, &rt)).collect();
    let results = futures_join(tasks).await;
    let wins = results.iter().filter(|s| **s == 200).count();
    assert_eq!(wins, 1, "exactly one of 20 parallel refreshes wins: {results:?}");
}
both!(parallel_redemptions_have_one_winner, super::races);

/// Sends all requests at once, each on its own task.
async fn futures_join(requests: Vec<reqwest::RequestBuilder>) -> Vec<u16> {
    let handles: Vec<_> = requests.into_iter().map(|r| tokio::spawn(r.send())).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap().status().as_u16());
    }
    out
}

async fn refresh_rotation(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("refresh_u1").await;
    let (code, _) = sign_in(&app, &client, "refresh_u1", &[]).await;
    let first = json(redeem(&app, &client, &code, None).await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    // Narrowing scope is allowed, widening is not (and does not burn the token).
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt1), ("scope", "openid phone")])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "invalid_scope");
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt1), ("scope", "openid offline_access")])
        .send()
        .await
        .unwrap();
    let second = json(res).await;
    assert_eq!(second["scope"], "openid offline_access");
    let id2 = jwt_claims(second["id_token"].as_str().unwrap());
    assert!(id2.get("nonce").is_none(), "no nonce on refresh");
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    // Another client cannot use it.
    let other = app.confidential().await;
    assert_eq!(json(refresh(&app, &other, &rt2).await).await["error"], "invalid_grant");
    // Replaying the rotated token revokes the family, including the new one.
    assert_eq!(json(refresh(&app, &client, &rt1).await).await["error"], "invalid_grant");
    assert_eq!(json(refresh(&app, &client, &rt2).await).await["error"], "invalid_grant");
    // A password change ends refresh tokens.
    let (code, _) = sign_in(&app, &client, "refresh_u1", &[]).await;
    let third = json(redeem(&app, &client, &code, None).await).await;
    app.state.users.set_password("refresh_u1", "Another-pass-77").await.unwrap();
    assert_eq!(
        json(refresh(&app, &client, third["refresh_token"].as_str().unwrap()).await).await["error"],
        "invalid_grant"
    );
}
both!(refresh_rotation_and_reuse_detection, super::refresh_rotation);

async fn client_auth(b: Backend) {
    let app = spawn(b).await;
    let basic = app.confidential().await;
    let post = app.client(|c| c.auth_method = Some(AuthMethod::ClientSecretPost)).await;
    let cc = |id: &str| {
        vec![("grant_type".to_string(), "client_credentials".to_string()), ("client_id".to_string(), id.to_string())]
    };
    // Wrong secret: 401 invalid_client with a challenge.
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&basic.id, Some("wrong"))
        .form(&cc(&basic.id)[..1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    assert_eq!(json(res).await["error"], "invalid_client");
    // Unknown client.
    let res =
        api().post(app.url("/token")).basic_auth("ghost", Some("x")).form(&cc("ghost")[..1]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // Registered method must be used: basic client via POST body fails.
    let mut form = cc(&basic.id);
    form.push(("client_secret".into(), basic.secret.clone().unwrap()));
    let res = api().post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // client_secret_post works.
    let mut form = cc(&post.id);
    form.push(("client_secret".into(), post.secret.clone().unwrap()));
    let res = api().post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Secret in both header and body: refused.
    let res =
        api().post(app.url("/token")).basic_auth(&post.id, post.secret.as_ref()).form(&form).send().await.unwrap();
    assert_eq!(json(res).await["error"], "invalid_request");
    // Not a form body; unknown grant; missing grant.
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&basic.id, basic.secret.as_ref())
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "invalid_request");
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&basic.id, basic.secret.as_ref())
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "unsupported_grant_type");
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&basic.id, basic.secret.as_ref())
        .form(&[("grant_type", "client_credentials"), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "invalid_scope");
    // A public client cannot use client_credentials.
    let public = app.public_client().await;
    let res = api().post(app.url("/token")).form(&cc(&public.id)).send().await.unwrap();
    assert_eq!(json(res).await["error"], "unauthorized_client");
}
both!(client_authentication_rules, super::client_auth);

fn client_key() -> (p256::ecdsa::SigningKey, Value) {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
        "x": idp::crypto::b64url(&point.x().unwrap()[..]), "y": idp::crypto::b64url(&point.y().unwrap()[..])});
    (key, jwk)
}

fn assertion(key: &p256::ecdsa::SigningKey, claims: &Value) -> String {
    let signer = idp::crypto::jws::PrivateKey::Es256(key.clone());
    idp::crypto::jws::sign(&signer, idp::crypto::jws::Alg::Es256, "k1", "JWT", claims)
}

async fn private_key_jwt(b: Backend) {
    let app = spawn(b).await;
    let (key, jwk) = client_key();
    let client = app
        .client(|c| {
            c.auth_method = Some(AuthMethod::PrivateKeyJwt);
            c.jwks = Some(json!({"keys": [jwk]}));
        })
        .await;
    let now = app.state.clock.now();
    let token_ep = app.url("/token");
    let send = |a: String| {
        let url = token_ep.clone();
        async move {
            api()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", a.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let good = json!({"iss": client.id, "sub": client.id, "aud": token_ep, "exp": now + 60, "jti": "j-1"});
    let res = send(assertion(&key, &good)).await;
    assert_eq!(res.status(), 200);
    let res = send(assertion(&key, &good)).await;
    assert_eq!(res.status(), 401, "replayed jti is rejected");
    let stale = json!({"iss": client.id, "sub": client.id, "aud": token_ep, "exp": now - 100, "jti": "j-2"});
    assert_eq!(send(assertion(&key, &stale)).await.status(), 401);
    let wrong_aud =
        json!({"iss": client.id, "sub": client.id, "aud": "https://elsewhere.example", "exp": now + 60, "jti": "j-3"});
    assert_eq!(send(assertion(&key, &wrong_aud)).await.status(), 401);
    let (other_key, _) = client_key();
    let forged = json!({"iss": client.id, "sub": client.id, "aud": app.base, "exp": now + 60, "jti": "j-4"});
    assert_eq!(send(assertion(&other_key, &forged)).await.status(), 401, "signature by an unregistered key");
    assert_eq!(send(assertion(&key, &forged)).await.status(), 200, "issuer as aud is accepted");
}
both!(private_key_jwt_client_auth, super::private_key_jwt);

async fn introspection_and_revocation(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    let rs = app.confidential().await;
    app.user("intro_u01").await;
    let cc = json(
        api()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("grant_type", "client_credentials"), ("scope", "profile")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cc_token = cc["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&cc_token)["sub"], client.id);
    let introspect = |who: &TestClient, token: &str| {
        api().post(app.url("/introspect")).basic_auth(&who.id, who.secret.as_ref()).form(&[("token", token)]).send()
    };
    let body = json(introspect(&rs, &cc_token).await.unwrap()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], client.id);
    assert_eq!(body["scope"], "profile");
    // Revocation by another client does nothing; by the owner it works.
    let res = api()
        .post(app.url("/revoke"))
        .basic_auth(&rs.id, rs.secret.as_ref())
        .form(&[("token", cc_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(introspect(&rs, &cc_token).await.unwrap()).await["active"], true);
    let res = api()
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", cc_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(introspect(&rs, &cc_token).await.unwrap()).await["active"], false);
    // Refresh tokens: active until revoked; revoking ends the grant's access tokens too.
    let (code, _) = sign_in(&app, &client, "intro_u01", &[]).await;
    let t = json(redeem(&app, &client, &code, None).await).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let at = t["access_token"].as_str().unwrap();
    let body = json(introspect(&client, rt).await.unwrap()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(json(introspect(&rs, rt).await.unwrap()).await["active"], false, "another client's refresh token");
    let res = api()
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", rt), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(introspect(&client, rt).await.unwrap()).await["active"], false);
    assert_eq!(json(introspect(&client, at).await.unwrap()).await["active"], false);
    // Unknown tokens: 200 at revoke, inactive at introspect; bad hint: error.
    let res = api()
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", "nonsense")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = api()
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", "x"), ("token_type_hint", "id_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "unsupported_token_type");
    let res = api().post(app.url("/introspect")).form(&[("token", at)]).send().await.unwrap();
    assert_eq!(res.status(), 401, "introspection needs client authentication");
}
both!(introspection_and_revocation_work, super::introspection_and_revocation);

async fn userinfo_rules(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("info_user1").await;
    let (code, _) = sign_in(&app, &client, "info_user1", &[("scope", "openid email phone address")]).await;
    let t = json(redeem(&app, &client, &code, None).await).await;
    let at = t["access_token"].as_str().unwrap();
    let get = json(api().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap()).await;
    assert_eq!(get["email"], "info_user1@example.org");
    assert!(get.get("preferred_username").is_none(), "profile not granted");
    assert!(get.get("address").is_none(), "no address on record: omitted, not invented");
    let post = json(api().post(app.url("/userinfo")).form(&[("access_token", at)]).send().await.unwrap()).await;
    assert_eq!(post, get, "POST with the token in the body");
    let both = api().post(app.url("/userinfo")).bearer_auth(at).form(&[("access_token", at)]).send().await.unwrap();
    assert_eq!(both.status(), 400);
    let none = api().get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let tampered = format!("{}x", at);
    assert_eq!(api().get(app.url("/userinfo")).bearer_auth(tampered).send().await.unwrap().status(), 401);
    // A client_credentials token has no user.
    let cc = json(
        api()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let res = api().get(app.url("/userinfo")).bearer_auth(cc["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 403);
}
both!(userinfo_get_post_and_errors, super::userinfo_rules);

/// Writes that go together (a grant and its code) stand or fall together
/// on both databases: on PostgreSQL they are one statement, on SQLite one
/// unit of the writer's group commit.
async fn writes_together_are_all_or_nothing(backend: Backend) {
    use sea_orm::sea_query::{Alias, Query};
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn(backend).await;
    let db = &app.state.store;
    db.execute_unprepared("CREATE TABLE together_probe (k TEXT PRIMARY KEY)").await.unwrap();
    let insert = |k: &str| -> Statement {
        let q = Query::insert()
            .into_table(Alias::new("together_probe"))
            .columns([Alias::new("k")])
            .values_panic([k.into()])
            .to_owned();
        db.get_database_backend().build(&q)
    };
    let count = || async {
        let q = Statement::from_string(db.get_database_backend(), "SELECT k FROM together_probe ORDER BY k");
        db.query_all_raw(q).await.unwrap().iter().map(|r| r.try_get::<String>("", "k").unwrap()).collect::<Vec<_>>()
    };
    idp::store::write_together(db, vec![insert("a"), insert("b"), insert("c")]).await.unwrap();
    assert_eq!(count().await, ["a", "b", "c"]);
    // The last write fails (a duplicate key): the first does not stand.
    assert!(idp::store::write_together(db, vec![insert("d"), insert("a")]).await.is_err());
    // The first fails: the last does not stand either.
    assert!(idp::store::write_together(db, vec![insert("b"), insert("e")]).await.is_err());
    assert_eq!(count().await, ["a", "b", "c"]);
}
both!(writes_together_are_all_or_nothing_both, super::writes_together_are_all_or_nothing);
