//! The authorization endpoint's rules (RFC 6749 §4.1, OIDC Core §3.1.2,
//! RFC 9700): what is refused, how, and never redirected when it must not be.
use crate::both;
use crate::support::*;

async fn unregistered_redirects_never_redirect(b: Backend) {
    let app = spawn(b).await;
    let client = app
        .client(|c| c.redirect_uris = vec!["https://rp.example.org/cb".into(), "http://127.0.0.1/native".into()])
        .await;
    let bad = [
        "https://RP.example.org/cb",
        "https://rp.example.org/CB",
        "https://rp.example.org/cb/",
        "https://rp.example.org/cb?x=1",
        "https://rp.example.org/cb#frag",
        "https://rp.example.org/cb/..;/evil",
        "https://rp.example.org/c%62",
        "https://rp.example.org%2F@evil.example/cb",
        "https://rp.example.org@evil.example/cb",
        "https://evil.example/cb",
        "http://rp.example.org/cb",
        "https://rp.example.org:8443/cb",
        "javascript:alert(1)//https://rp.example.org/cb",
        "JAVASCRIPT:alert(1)",
        "data:text/html,hi",
        "http://127.0.0.1:5000/native/x",
    ];
    for uri in bad {
        let mut c = TestClient { id: client.id.clone(), secret: None, redirect_uri: uri.into() };
        c.redirect_uri = uri.into();
        let res = api().get(auth_url(&app, &c, &[])).send().await.unwrap();
        assert_eq!(res.status(), 400, "{uri}");
        assert!(location(&res).is_none(), "{uri} must not be redirected to");
        let body = res.text().await.unwrap();
        assert!(body.contains("回调地址"), "error page explains in Chinese: {uri}");
    }
    // Loopback may vary only the port (RFC 8252 §7.3).
    let c = TestClient { id: client.id.clone(), secret: None, redirect_uri: "http://127.0.0.1:5000/native".into() };
    let res = api().get(auth_url(&app, &c, &[])).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // Unknown client and missing redirect_uri: page, no redirect.
    let unknown = TestClient { id: "nope".into(), secret: None, redirect_uri: "https://rp.example.org/cb".into() };
    let res = api().get(auth_url(&app, &unknown, &[])).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_none());
    let res = api().get(auth_url(&app, &client, &[("redirect_uri", "")])).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_none());
    // English when asked.
    let res = api().get(auth_url(&app, &unknown, &[("ui_locales", "en")])).send().await.unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("<html lang=\"en\">") && body.contains("not registered"), "{body}");
}
both!(unregistered_redirect_uris_show_an_error_page, super::unregistered_redirects_never_redirect);

async fn error_redirect(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let res = api().get(auth_url(app, client, extra)).send().await.unwrap();
    assert_eq!(res.status(), 303, "{extra:?}");
    let loc = location(&res).unwrap();
    assert!(loc.starts_with(&client.redirect_uri), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q.get("iss"), Some(&app.base), "iss on error responses too");
    q
}

async fn request_errors_are_redirected_with_exact_codes(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    let public = app.public_client().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("response_type", "code id_token")], "unsupported_response_type"),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("code_challenge", "abc"), ("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")], "invalid_request"),
        (vec![("code_challenge", "short"), ("code_challenge_method", "S256")], "invalid_request"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("prompt", "bogus")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
        (vec![("claims", "not json")], "invalid_request"),
        (vec![("id_token_hint", "eyJhbGciOiJub25lIn0.e30.")], "invalid_request"),
        (vec![("request", "eyJ.x.y")], "invalid_request_object"),
        (vec![("request_uri", "https://x.example/r")], "invalid_request_uri"),
        (vec![("scope", "profile"), ("nonce", "x")], "invalid_request"),
        (vec![("scope", "bogus"), ("nonce", "")], "invalid_scope"),
        (vec![("response_mode", "fragment")], "invalid_request"),
        (vec![("prompt", "none")], "login_required"),
    ];
    for (extra, code) in cases {
        let q = error_redirect(&app, &client, &extra).await;
        assert_eq!(q.get("error").map(String::as_str), Some(code), "{extra:?} → {q:?}");
        assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    }
    // PKCE is mandatory for public clients.
    let q = error_redirect(&app, &public, &[]).await;
    assert_eq!(q["error"], "invalid_request");
    // Long Unicode state comes back intact.
    let state = "状态-".repeat(200);
    let q = error_redirect(&app, &client, &[("state", &state), ("prompt", "none")]).await;
    assert_eq!(q["state"], state);
    // A repeated parameter is refused.
    let url = format!("{}&scope=openid", auth_url(&app, &client, &[]));
    let res = api().get(url).send().await.unwrap();
    let q = query_of(&location(&res).unwrap());
    assert_eq!(q["error"], "invalid_request");
}
both!(request_errors_redirect_with_exact_codes, super::request_errors_are_redirected_with_exact_codes);

async fn prompt_and_max_age(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("zhaoliu_1").await;
    let (code, browser) = sign_in(&app, &client, "zhaoliu_1", &[]).await;
    assert!(!code.is_empty());
    // prompt=none with a session and consent: a code without any page.
    let res = browser.http.get(auth_url(&app, &client, &[("prompt", "none")])).send().await.unwrap();
    let q = query_of(&location(&res).unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    // prompt=none with more scope than consented: consent_required.
    let res = browser
        .http
        .get(auth_url(&app, &client, &[("prompt", "none"), ("scope", "openid phone")]))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "consent_required");
    // prompt=login shows the sign-in page again even with a session.
    let res = browser.http.get(auth_url(&app, &client, &[("prompt", "login")])).send().await.unwrap();
    assert!(location(&res).unwrap().contains("/login?req="));
    // max_age=1 after 2 s forces a new sign-in and a fresh auth_time.
    let res = redeem(&app, &client, &code, None).await;
    let first = jwt_claims(json(res).await["id_token"].as_str().unwrap());
    app.state.clock.advance(2);
    let url = auth_url(&app, &client, &[("max_age", "1")]);
    let res = browser.http.get(&url).send().await.unwrap();
    assert!(location(&res).unwrap().contains("/login?req="), "max_age exceeded → sign in");
    let end = browser.run(&app, &url, "zhaoliu_1", PASSWORD).await;
    let token = json(redeem(&app, &client, &end.code(), None).await).await;
    let second = jwt_claims(token["id_token"].as_str().unwrap());
    assert!(second["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());
    assert_eq!(second["sid"], first["sid"], "re-authentication keeps the session id");
    // id_token_hint naming the signed-in user + prompt=none → code.
    let hint = token["id_token"].as_str().unwrap();
    let res =
        browser.http.get(auth_url(&app, &client, &[("prompt", "none"), ("id_token_hint", hint)])).send().await.unwrap();
    assert!(query_of(&location(&res).unwrap()).contains_key("code"));
    // login_hint prefills the sign-in form.
    let res = Browser::new().http.get(auth_url(&app, &client, &[("login_hint", "zhaoliu_1")])).send().await.unwrap();
    let page = api().get(location(&res).unwrap()).send().await.unwrap();
    assert_eq!(page.status(), 400, "a request id is bound to the browser that started it");
    let fresh = Browser::new();
    let res = fresh
        .http
        .get(auth_url(&app, &client, &[("login_hint", "zhaoliu_1"), ("ui_locales", "en")]))
        .send()
        .await
        .unwrap();
    let page = fresh.http.get(location(&res).unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("value=\"zhaoliu_1\""), "login_hint prefilled");
    assert!(page.contains("autocomplete=\"username\"") && page.contains("autocomplete=\"current-password\""));
    assert!(page.contains("<html lang=\"en\">"));
}
both!(prompt_max_age_and_hints, super::prompt_and_max_age);

async fn consent_deny_and_essential_claims(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("sunqi_01").await;
    let browser = Browser::new();
    // Sign in, then deny consent.
    let res = browser.http.get(auth_url(&app, &client, &[])).send().await.unwrap();
    let login = location(&res).unwrap();
    let html = browser.http.get(&login).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", hidden(&html, "req").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", "sunqi_01".to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = browser.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = browser.http.get(location(&res).unwrap()).send().await.unwrap();
    let consent = location(&res).unwrap();
    assert!(consent.contains("/consent?req="));
    let html = browser.http.get(&consent).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("电子邮箱"), "scopes listed in the user's language");
    let form =
        [("req", hidden(&html, "req").unwrap()), ("csrf", "forged".to_string()), ("decision", "allow".to_string())];
    let res = browser.http.post(app.url("/consent")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 403, "CSRF token checked");
    let form = [
        ("req", hidden(&html, "req").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("decision", "deny".to_string()),
    ];
    let res = browser.http.post(app.url("/consent")).form(&form).send().await.unwrap();
    let q = query_of(&location(&res).unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["iss"], app.base);
    // claims parameter with an essential claim lands in the ID token.
    let claims = r#"{"id_token":{"email":{"essential":true}},"userinfo":{"name":null}}"#;
    let end = browser
        .run(&app, &auth_url(&app, &client, &[("claims", claims), ("scope", "openid")]), "sunqi_01", PASSWORD)
        .await;
    let token = json(redeem(&app, &client, &end.code(), None).await).await;
    let id = jwt_claims(token["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "sunqi_01@example.org");
    let info = json(
        api().get(app.url("/userinfo")).bearer_auth(token["access_token"].as_str().unwrap()).send().await.unwrap(),
    )
    .await;
    assert_eq!(info["name"], "王五", "claims.userinfo.name released without the profile scope");
    assert!(info.get("email").is_none(), "email not requested for userinfo");
    // An essential acr the user can reach leads to step-up; one that cannot
    // be reached online (L4 needs in-person proofing) fails; acr is never inflated.
    let acr = r#"{"id_token":{"acr":{"essential":true,"values":["urn:idp:loa:3"]}}}"#;
    let res = browser.http.get(auth_url(&app, &client, &[("claims", acr)])).send().await.unwrap();
    assert!(location(&res).unwrap().starts_with(&app.url("/step-up?req=")), "{:?}", location(&res));
    let acr = r#"{"id_token":{"acr":{"essential":true,"values":["urn:idp:loa:4"]}}}"#;
    let res = browser.http.get(auth_url(&app, &client, &[("claims", acr)])).send().await.unwrap();
    assert_eq!(query_of(&location(&res).unwrap())["error"], "unmet_authentication_requirements");
    // Unknown parameters are ignored; POST works like GET.
    let form = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid"),
        ("state", "p"),
        ("unknown_param", "whatever"),
    ];
    let res = browser.http.post(app.url("/authorize")).form(&form).send().await.unwrap();
    let q = query_of(&location(&res).unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    assert_eq!(q["state"], "p");
}
both!(consent_deny_claims_and_acr, super::consent_deny_and_essential_claims);

/// No input makes the server fail: random parameters and bodies at every
/// endpoint get a 4xx (or a redirect), never a 5xx or a dropped connection.
async fn garbage_input(b: Backend) {
    use rand::{Rng, SeedableRng};
    let app = spawn(b).await;
    let client = app.confidential().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let names = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "claims",
        "id_token_hint",
        "code_challenge",
        "code_challenge_method",
        "grant_type",
        "code",
        "refresh_token",
        "client_assertion",
        "client_assertion_type",
        "token",
        "post_logout_redirect_uri",
        "ui_locales",
        "req",
        "csrf",
    ];
    let http = Browser::new().http;
    for i in 0..300 {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for _ in 0..rng.gen_range(0..8) {
            let name = names[rng.gen_range(0..names.len())].to_string();
            let len = rng.gen_range(0..80);
            let value: String = match rng.gen_range(0..4) {
                0 => (0..len).map(|_| rng.gen_range(0x20u8..0x7f) as char).collect(),
                1 => (0..len).map(|_| char::from_u32(rng.gen_range(0x4e00..0x9fff)).unwrap_or('x')).collect(),
                2 => ["openid", "code", "none", "S256", &client.id, &client.redirect_uri, "{\"id_token\":1}", "-1"]
                    [rng.gen_range(0..8)]
                .to_string(),
                _ => format!(
                    "{}.{}.{}",
                    idp::crypto::random_token(10),
                    idp::crypto::random_token(20),
                    idp::crypto::random_token(5)
                ),
            };
            pairs.push((name, value));
        }
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let path = [
            "/authorize",
            "/token",
            "/userinfo",
            "/revoke",
            "/introspect",
            "/logout",
            "/login",
            "/consent",
            "/select-account",
            "/authorize/resume",
        ][i % 10];
        let res = if i % 2 == 0 {
            http.get(format!("{}?{}", app.url(path), query)).send().await
        } else {
            http.post(app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(query.clone())
                .send()
                .await
        };
        let res = res.unwrap_or_else(|e| panic!("{path}?{query}: {e}"));
        assert!(res.status().as_u16() < 500, "{path} {query} → {}", res.status());
    }
}
both!(garbage_input_never_fails_the_server, super::garbage_input);
