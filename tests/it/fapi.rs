//! FAPI 2.0 and the protocol surface (issue 17): PAR (RFC 9126), signed
//! request objects (RFC 9101), DPoP (RFC 9449) and the per-client FAPI 2.0
//! profile, driven over HTTP. Negative cases are named after the checks of
//! the OpenID Foundation's FAPI 2.0 test plan they port.
use crate::both;
use crate::support::*;
use idp::crypto::{b64url, jws};
use idp::domain::clients::AuthMethod;
use p256::ecdsa::SigningKey;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key() -> (SigningKey, Value) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256",
        "x": b64url(&point.x().unwrap()[..]), "y": b64url(&point.y().unwrap()[..])});
    (key, jwk)
}

fn signed(key: &SigningKey, alg_header: Value, claims: &Value) -> String {
    let mut out = b64url(alg_header.to_string().as_bytes());
    out.push('.');
    out.push_str(&b64url(claims.to_string().as_bytes()));
    let sig = jws::PrivateKey::Es256(key.clone()).sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&sig));
    out
}

fn jwt(key: &SigningKey, claims: &Value) -> String {
    signed(key, json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}), claims)
}

/// An `alg=none` JWT: no signature at all.
fn unsigned(claims: &Value) -> String {
    format!("{}.{}.", b64url(json!({"alg": "none"}).to_string().as_bytes()), b64url(claims.to_string().as_bytes()))
}

struct Proofs {
    key: SigningKey,
    jwk: Value,
}

impl Proofs {
    fn new() -> Self {
        let (key, jwk) = key();
        Self { key, jwk }
    }
    fn jkt(&self) -> String {
        jws::thumbprint(&self.jwk).unwrap()
    }
    fn at(&self, htm: &str, htu: &str, token: Option<&str>, nonce: Option<&str>, iat: i64) -> String {
        let mut claims = json!({"jti": idp::crypto::random_token(12), "htm": htm, "htu": htu, "iat": iat});
        if let Some(t) = token {
            claims["ath"] = idp::crypto::sha256_b64(t.as_bytes()).into();
        }
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        signed(&self.key, json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": self.jwk}), &claims)
    }
}

/// The rendered text of a locale key, as the error page shows it.
fn says(app: &TestApp, body: &str, key: &str) -> bool {
    body.contains(&app.state.pages.text("zh-CN", key))
}

async fn pkjwt_client(app: &TestApp, fapi: bool) -> (TestClient, SigningKey) {
    let (k, mut jwk) = key();
    jwk["kid"] = "k1".into();
    let client = app
        .client(|c| {
            c.auth_method = Some(AuthMethod::PrivateKeyJwt);
            c.jwks = Some(json!({"keys": [jwk]}));
            c.profile = fapi.then(|| "fapi2".into());
        })
        .await;
    (client, k)
}

fn assertion(app: &TestApp, client: &TestClient, k: &SigningKey) -> String {
    let now = app.state.clock.now();
    jwt(
        k,
        &json!({"iss": client.id, "sub": client.id, "aud": app.base, "exp": now + 60,
            "jti": idp::crypto::random_token(12)}),
    )
}

fn authorize_params(client: &TestClient, pkce: &Pkce) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid profile offline_access"),
        ("state", "st-par"),
        ("nonce", "n-par"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn authorize_with_uri(app: &TestApp, client: &TestClient, request_uri: &str) -> String {
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut().append_pair("client_id", &client.id).append_pair("request_uri", request_uri);
    u.to_string()
}

async fn push_basic(app: &TestApp, client: &TestClient, params: &[(String, String)]) -> reqwest::Response {
    api().post(app.url("/par")).basic_auth(&client.id, client.secret.as_deref()).form(params).send().await.unwrap()
}

async fn par_single_use_short_lived_and_bound(b: Backend) {
    let app = spawn(b).await;
    app.user("par_user").await;
    let client = app.confidential().await;
    let other = app.confidential().await;
    let pkce = pkce();
    let res = push_basic(&app, &client, &authorize_params(&client, &pkce)).await;
    assert_eq!(res.status(), 201);
    let body = json(res).await;
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"), "{uri}");

    // The pushed request signs in, with only the pushed parameters.
    let browser = Browser::new();
    let end = browser.run(&app, &authorize_with_uri(&app, &client, &uri), "par_user", PASSWORD).await;
    let p = end.params();
    assert_eq!(p["state"], "st-par");
    assert_eq!(p["iss"], app.base, "RFC 9207 iss in the response");
    let res = redeem(&app, &client, &p["code"], Some(&pkce.verifier)).await;
    assert_eq!(res.status(), 200);

    // par-attempt-reuse-request_uri
    let res = api().get(authorize_with_uri(&app, &client, &uri)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_none());
    assert!(says(&app, &res.text().await.unwrap(), "error_request_uri_invalid"));

    // Bound to the client that pushed it.
    let res = push_basic(&app, &client, &authorize_params(&client, &pkce)).await;
    let uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    let res = api().get(authorize_with_uri(&app, &other, &uri)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(says(&app, &res.text().await.unwrap(), "error_request_uri_invalid"));

    // par-attempt-to-use-expired-request_uri
    let res = push_basic(&app, &client, &authorize_params(&client, &pkce)).await;
    let uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    app.state.clock.advance(61);
    let res = api().get(authorize_with_uri(&app, &client, &uri)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(says(&app, &res.text().await.unwrap(), "error_request_uri_invalid"));

    // Pushing needs client authentication, and is validated at once.
    let res = api().post(app.url("/par")).form(&authorize_params(&client, &pkce)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let mut bad = authorize_params(&client, &pkce);
    bad.retain(|(k, _)| k != "redirect_uri");
    bad.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    assert_eq!(push_basic(&app, &client, &bad).await.status(), 400);
    let mut with_uri = authorize_params(&client, &pkce);
    with_uri.push(("request_uri".into(), "urn:ietf:params:oauth:request_uri:x".into()));
    assert_eq!(push_basic(&app, &client, &with_uri).await.status(), 400);
}
both!(par_request_uri_is_single_use_short_lived_and_bound, super::par_single_use_short_lived_and_bound);

async fn par_required(b: Backend) {
    let app = spawn(b).await;
    let client = app.client(|c| c.require_par = true).await;
    // With a registered redirect URI beside it, the refusal goes back to the client…
    let res = api().get(auth_url(&app, &client, &[])).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let q = query_of(&location(&res).unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    // …and without one it is a page.
    let res = api().get(auth_url(&app, &client, &[("redirect_uri", "")])).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_none());
    assert!(says(&app, &res.text().await.unwrap(), "error_par_required"));
    // A client without the setting still may send its request directly.
    let plain = app.confidential().await;
    assert_eq!(api().get(auth_url(&app, &plain, &[])).send().await.unwrap().status(), 303);
}
both!(par_required_per_client, super::par_required);

async fn par_required_globally(b: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.protocol.require_pushed_authorization_requests = true;
    let app = spawn_with(config, listener, dir).await;
    let client = app.confidential().await;
    let res = api().get(auth_url(&app, &client, &[("redirect_uri", "")])).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(says(&app, &res.text().await.unwrap(), "error_par_required"));
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["require_pushed_authorization_requests"], true);
}
both!(par_required_by_the_global_switch, super::par_required_globally);

/// RFC 9126 §2: at /par a client assertion may name the issuer, the token
/// endpoint or the PAR endpoint as its audience. authlib's `PrivateKeyJWT`,
/// configured with the token endpoint as it documents, was refused here
/// (found by the conformance suite).
async fn par_assertion_audiences(b: Backend) {
    let app = spawn(b).await;
    let (client, k) = pkjwt_client(&app, false).await;
    let pkce = pkce();
    let push = |aud: Value| {
        let now = app.state.clock.now();
        let assertion = jwt(
            &k,
            &json!({"iss": client.id, "sub": client.id, "aud": aud, "exp": now + 60,
                "jti": idp::crypto::random_token(12)}),
        );
        let mut form = authorize_params(&client, &pkce);
        form.push(("client_assertion_type".into(), ASSERTION_TYPE.into()));
        form.push(("client_assertion".into(), assertion));
        api().post(app.url("/par")).form(&form).send()
    };
    for aud in [json!(app.base), json!(app.url("/token")), json!(app.url("/par")), json!([app.url("/token")])] {
        let res = push(aud.clone()).await.unwrap();
        assert_eq!(res.status(), 201, "aud {aud}: {}", res.text().await.unwrap());
    }
    for aud in [json!(app.url("/introspect")), json!("https://elsewhere.example/token")] {
        let res = push(aud.clone()).await.unwrap();
        assert_eq!(res.status(), 401, "aud {aud}");
        assert_eq!(json(res).await["error"], "invalid_client");
    }
    // The same rule at every endpoint that authenticates clients (one
    // function): introspection takes the token endpoint or itself.
    let introspect = |aud: Value| {
        let now = app.state.clock.now();
        let assertion = jwt(
            &k,
            &json!({"iss": client.id, "sub": client.id, "aud": aud, "exp": now + 60,
                "jti": idp::crypto::random_token(12)}),
        );
        api()
            .post(app.url("/introspect"))
            .form(&[("token", "x"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)])
            .send()
    };
    for aud in [json!(app.url("/token")), json!(app.url("/introspect"))] {
        let res = introspect(aud.clone()).await.unwrap();
        assert_eq!(res.status(), 200, "aud {aud}: {}", res.text().await.unwrap());
    }
    let res = introspect(json!(app.url("/par"))).await.unwrap();
    assert_eq!(res.status(), 401, "another endpoint's audience");
}
both!(par_accepts_issuer_token_and_par_endpoint_as_assertion_audience, super::par_assertion_audiences);

async fn request_objects(b: Backend) {
    let app = spawn(b).await;
    app.user("jar_user").await;
    let (client, k) = pkjwt_client(&app, false).await;
    let now = app.state.clock.now();
    let object = |state: &str| {
        json!({"iss": client.id, "aud": app.base, "client_id": client.id, "response_type": "code",
            "redirect_uri": client.redirect_uri, "scope": "openid", "state": state, "nonce": "n-jar",
            "exp": now + 300, "nbf": now})
    };
    // By value: the object's parameters win over those beside it.
    let url = auth_url(&app, &client, &[("state", "outer"), ("request", &jwt(&k, &object("inside")))]);
    let end = Browser::new().run(&app, &url, "jar_user", PASSWORD).await;
    assert_eq!(end.params()["state"], "inside");

    // fapi2-...-ensure-unsigned-request-object-rejected
    let refused = |url: String| async move {
        let res = api().get(url).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let q = query_of(&location(&res).unwrap());
        assert_eq!(q["error"], "invalid_request_object", "{q:?}");
        assert!(!q.contains_key("code"));
    };
    refused(auth_url(&app, &client, &[("request", &unsigned(&object("x")))])).await;
    // Without a registered redirect URI beside the object: a page.
    let url = auth_url(&app, &client, &[("redirect_uri", ""), ("request", &unsigned(&object("x")))]);
    let res = api().get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_none());
    assert!(says(&app, &res.text().await.unwrap(), "error_request_object_invalid"));
    // Signed by a key the client did not register.
    let (stranger, _) = key();
    refused(auth_url(&app, &client, &[("request", &jwt(&stranger, &object("x")))])).await;
    // Expired.
    let mut old = object("x");
    old["exp"] = (now - 10).into();
    refused(auth_url(&app, &client, &[("request", &jwt(&k, &old))])).await;

    // Through PAR, authenticated with private_key_jwt.
    let pkce = pkce();
    let mut inner = object("pushed");
    inner["code_challenge"] = pkce.challenge.clone().into();
    inner["code_challenge_method"] = "S256".into();
    let res = api()
        .post(app.url("/par"))
        .form(&[
            ("client_id", client.id.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &client, &k)),
            ("request", &jwt(&k, &inner)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    let end = Browser::new().run(&app, &authorize_with_uri(&app, &client, &uri), "jar_user", PASSWORD).await;
    assert_eq!(end.params()["state"], "pushed");
    // An unsigned object is refused at /par as well.
    let res = api()
        .post(app.url("/par"))
        .form(&[
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &client, &k)),
            ("request", &unsigned(&inner)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_request_object");
}
both!(signed_request_objects_by_value_and_through_par, super::request_objects);

/// Signs in with a public client and redeems the code with a DPoP proof.
async fn dpop_tokens(app: &TestApp, client: &TestClient, user: &str, proofs: &Proofs) -> Value {
    let pkce = pkce();
    let url = auth_url(app, client, &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256")]);
    let code = Browser::new().run(app, &url, user, PASSWORD).await.code();
    let token_ep = app.url("/token");
    let proof = proofs.at("POST", &token_ep, None, None, app.state.clock.now());
    let res = redeem_request(app, client, &code, Some(&pkce.verifier)).header("DPoP", proof).send().await.unwrap();
    assert_eq!(res.status(), 200);
    json(res).await
}

async fn dpop_bound_tokens(b: Backend) {
    let app = spawn(b).await;
    app.user("dpop_user").await;
    let client = app.public_client().await;
    let proofs = Proofs::new();
    let tokens = dpop_tokens(&app, &client, "dpop_user", &proofs).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&at)["cnf"]["jkt"], proofs.jkt());

    let userinfo = app.url("/userinfo");
    let now = app.state.clock.now();
    let call = |auth: String, proof: Option<String>| {
        let mut req = api().get(&userinfo).header("Authorization", auth);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move { req.send().await.unwrap() }
    };
    // fapi2-...-ensure-dpop-bound-token-as-bearer-rejected: no bearer fallback.
    let res = call(format!("Bearer {at}"), None).await;
    assert_eq!(res.status(), 401);
    let good = proofs.at("GET", &userinfo, Some(&at), None, now);
    let res = call(format!("DPoP {at}"), Some(good.clone())).await;
    assert_eq!(res.status(), 200);
    assert!(json(res).await["sub"].is_string());
    // Replayed proof.
    let res = call(format!("DPoP {at}"), Some(good)).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP "));
    assert_eq!(json(res).await["error"], "invalid_dpop_proof");
    // Wrong htu.
    let res = call(format!("DPoP {at}"), Some(proofs.at("GET", &app.url("/token"), Some(&at), None, now))).await;
    assert_eq!(res.status(), 401);
    // Missing ath.
    let res = call(format!("DPoP {at}"), Some(proofs.at("GET", &userinfo, None, None, now))).await;
    assert_eq!(res.status(), 401);
    // Wrong method, stale iat, another key.
    let res = call(format!("DPoP {at}"), Some(proofs.at("POST", &userinfo, Some(&at), None, now))).await;
    assert_eq!(res.status(), 401);
    let res = call(format!("DPoP {at}"), Some(proofs.at("GET", &userinfo, Some(&at), None, now - 600))).await;
    assert_eq!(res.status(), 401);
    let thief = Proofs::new();
    let res = call(format!("DPoP {at}"), Some(thief.at("GET", &userinfo, Some(&at), None, now))).await;
    assert_eq!(res.status(), 401);

    // The app APIs apply the same rule: no bearer fallback.
    let res =
        api().post(app.url("/api/identity/face")).bearer_auth(&at).json(&json!({"face": ""})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP "));

    // Introspection shows the binding.
    let rs = app.confidential().await;
    let res = api()
        .post(app.url("/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    let body = json(res).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["cnf"]["jkt"], proofs.jkt());

    // The public client's refresh token is bound to the same key.
    let rt = tokens["refresh_token"].as_str().unwrap();
    let token_ep = app.url("/token");
    let refresh = |proof: Option<String>| {
        let mut req = api().post(&token_ep).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client.id.as_str()),
        ]);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move { req.send().await.unwrap() }
    };
    let res = refresh(None).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = refresh(Some(thief.at("POST", &token_ep, None, None, now))).await;
    assert_eq!(res.status(), 400);
    let res = refresh(Some(proofs.at("POST", &token_ep, None, None, now))).await;
    assert_eq!(res.status(), 200, "the refresh token was not burnt by the refused attempts");
    let body = json(res).await;
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"], proofs.jkt());

    // A malformed proof at the token endpoint.
    let res = api()
        .post(&token_ep)
        .header("DPoP", "not-a-jwt")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", client.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_dpop_proof");
}
both!(dpop_binds_tokens_and_checks_proofs, super::dpop_bound_tokens);

async fn dpop_required_per_client(b: Backend) {
    let app = spawn(b).await;
    let client = app.client(|c| c.dpop_bound = true).await;
    let token_ep = app.url("/token");
    let res = api()
        .post(&token_ep)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no proof, no token");
    let proofs = Proofs::new();
    let res = api()
        .post(&token_ep)
        .basic_auth(&client.id, client.secret.as_deref())
        .header("DPoP", proofs.at("POST", &token_ep, None, None, app.state.clock.now()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"], proofs.jkt());
}
both!(dpop_required_per_client_setting, super::dpop_required_per_client);

async fn dpop_nonce(b: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.protocol.use_dpop_nonce = true;
    let app = spawn_with(config, listener, dir).await;
    let client = app.confidential().await;
    let token_ep = app.url("/token");
    let proofs = Proofs::new();
    let send = |proof: String| {
        api()
            .post(&token_ep)
            .basic_auth(&client.id, client.secret.as_deref())
            .header("DPoP", proof)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let now = app.state.clock.now();
    let res = send(proofs.at("POST", &token_ep, None, None, now)).await.unwrap();
    assert_eq!(res.status(), 400);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_string();
    assert_eq!(json(res).await["error"], "use_dpop_nonce");
    let res = send(proofs.at("POST", &token_ep, None, Some("made-up"), now)).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = send(proofs.at("POST", &token_ep, None, Some(&nonce), now)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("dpop-nonce"));
}
both!(dpop_server_nonce, super::dpop_nonce);

async fn fapi2_profile(b: Backend) {
    // A lax global code lifetime, which the profile caps at 60 seconds.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.tokens.code_ttl = 300;
    let app = spawn_with(config, listener, dir).await;
    app.user("fapi_user").await;
    let (client, k) = pkjwt_client(&app, true).await;
    // Registration: the profile needs private_key_jwt.
    let refused = app
        .state
        .clients
        .create(idp::domain::clients::NewClient {
            name: "fapi with secret".into(),
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            profile: Some("fapi2".into()),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err());

    // PAR required.
    let res = api().get(auth_url(&app, &client, &[])).send().await.unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "invalid_request");

    let push = |params: Vec<(String, String)>| {
        let mut form = params;
        form.push(("client_assertion_type".into(), ASSERTION_TYPE.into()));
        form.push(("client_assertion".into(), assertion(&app, &client, &k)));
        api().post(app.url("/par")).form(&form).send()
    };
    // PKCE S256 required.
    let pkce = pkce();
    let mut no_pkce = authorize_params(&client, &pkce);
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let res = push(no_pkce).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_request");

    let res = push(authorize_params(&client, &pkce)).await.unwrap();
    assert_eq!(res.status(), 201);
    let uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    let end = Browser::new().run(&app, &authorize_with_uri(&app, &client, &uri), "fapi_user", PASSWORD).await;
    let p = end.params();
    assert_eq!(p["iss"], app.base);
    let code = p["code"].clone();

    let token_ep = app.url("/token");
    let redeem_with = |proof: Option<String>| {
        let mut req = api().post(&token_ep).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &client, &k)),
        ]);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    // fapi2-...-ensure-token-endpoint-fails-without-dpop (the code survives).
    let res = redeem_with(None).await.unwrap();
    assert_eq!(res.status(), 400);
    let proofs = Proofs::new();
    let res = redeem_with(Some(proofs.at("POST", &token_ep, None, None, app.state.clock.now()))).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();
    // A FAPI client trying a bearer token.
    let res = api().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // Codes live at most 60 seconds.
    let res = push(authorize_params(&client, &pkce)).await.unwrap();
    let uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    let end = Browser::new().run(&app, &authorize_with_uri(&app, &client, &uri), "fapi_user", PASSWORD).await;
    let code = end.code();
    app.state.clock.advance(61);
    let res = api()
        .post(&token_ep)
        .header("DPoP", proofs.at("POST", &token_ep, None, None, app.state.clock.now()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &client, &k)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_grant");
}
both!(fapi2_profile_per_client, super::fapi2_profile);

async fn discovery(b: Backend) {
    let app = spawn(b).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["pushed_authorization_request_endpoint"], app.url("/par"));
    assert_eq!(doc["require_pushed_authorization_requests"], false);
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(doc["request_object_signing_alg_values_supported"], json!(["ES256", "PS256", "RS256"]));
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256", "RS256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
}
both!(discovery_advertises_par_jar_dpop, super::discovery);

/// RFC 8693 + RFC 9449: a token exchanged by a DPoP client is bound to the
/// caller's proof key (`cnf.jkt`), needs a proof by that key to be
/// exchanged, and is refused when presented as a bearer token.
async fn dpop_bound_token_exchange(b: Backend) {
    use idp::domain::delegation::{self, DelegationState, Kind, NewDelegation};
    let app = spawn(b).await;
    let alice = app.user("dpop_alice").await;
    let bob = app.user("dpop_bob").await;
    let client = app
        .client(|c| {
            c.grant_types = Some(vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ]);
            c.dpop_bound = true;
        })
        .await;
    // Alice lets Bob act for her (C6), as her authorisations page would.
    let now = app.state.clock.now();
    let grant = NewDelegation {
        kind: Kind::Person,
        enterprise_id: None,
        principal_user_id: Some(alice.clone()),
        relative_name: None,
        relative_id_number: None,
        relation: None,
        grantee_user_id: bob.clone(),
        scopes: "openid profile".into(),
        valid_from: None,
        valid_to: None,
        state: DelegationState::Active,
        agent_password_hash: None,
    };
    let dl = delegation::insert(&app.state.store, grant, now).await.unwrap();
    let proofs = Proofs::new();
    let tokens = dpop_tokens(&app, &client, "dpop_bob", &proofs).await;
    let own = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&own)["cnf"]["jkt"], proofs.jkt());
    let token_ep = app.url("/token");
    let exchange = |proof: Option<String>| {
        let mut req = api().post(&token_ep).basic_auth(&client.id, client.secret.as_deref()).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", own.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("delegation", dl.id.as_str()),
        ]);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move { req.send().await.unwrap() }
    };
    // No proof: this client gets nothing unbound. Another key: the subject
    // token is bound to Bob's key, so a thief's proof does not exchange it.
    let res = exchange(None).await;
    assert_eq!(res.status(), 400);
    let thief = Proofs::new();
    let res = exchange(Some(thief.at("POST", &token_ep, None, None, now))).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = exchange(Some(proofs.at("POST", &token_ep, None, None, now))).await;
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["token_type"], "DPoP");
    let exchanged = body["access_token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&exchanged);
    assert_eq!(claims["cnf"]["jkt"], proofs.jkt(), "bound to the caller's proof key");
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["act"]["sub"], bob.as_str());
    // Presented as a bearer token: refused, no fallback.
    let userinfo = app.url("/userinfo");
    let res = api().get(&userinfo).bearer_auth(&exchanged).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP "));
    // With the thief's proof: refused; with the caller's: it speaks for Alice.
    let res = api()
        .get(&userinfo)
        .header("Authorization", format!("DPoP {exchanged}"))
        .header("DPoP", thief.at("GET", &userinfo, Some(&exchanged), None, now))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = api()
        .get(&userinfo)
        .header("Authorization", format!("DPoP {exchanged}"))
        .header("DPoP", proofs.at("GET", &userinfo, Some(&exchanged), None, now))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let info = json(res).await;
    assert_eq!(info["sub"], alice.as_str());
    assert_eq!(info["act"]["sub"], bob.as_str());
}
both!(dpop_bound_token_exchange_carries_the_callers_key, super::dpop_bound_token_exchange);
