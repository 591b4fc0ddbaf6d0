//! Per-client branding and app authentication in the console (issues 15
//! and 19): the sign-in pages (password, SMS, scan) and the consent page of
//! an authorization request show the app's logo and its name in the page's
//! language, with the CSP widened to exactly the logo's origin; an http or
//! javascript: logo is refused in the console, the admin API, the CLI's
//! core call and dynamic registration alike; the console turns an app into
//! a private_key_jwt app with a JWK Set, and then only that key
//! authenticates at the token endpoint.
use crate::both;
use crate::console::{console, csrf_of, staff_account};
use crate::factors::get;
use crate::support::*;
use idp::crypto::{b64url, jws};
use idp::domain::staff::Role;
use p256::ecdsa::SigningKey;
use serde_json::{Value, json};

const LOGO: &str = "https://logo.rp.example/brand/logo.png";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The value of `attr` on the element with this id, unescaped.
fn attr_of(html: &str, id: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let end = html[at..].find('>')? + at;
    let tag = &html[start..end];
    let needle = format!(" {attr}=\"");
    let from = tag.find(&needle)? + needle.len();
    let to = tag[from..].find('"')? + from;
    Some(tag[from..to].replace("&#x2F;", "/").replace("&amp;", "&").replace("&#x3D;", "="))
}

/// The text of the element with this id.
fn text_of(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let from = html[at..].find('>')? + at + 1;
    let to = html[from..].find('<')? + from;
    Some(html[from..to].to_string())
}

fn csp(res: &reqwest::Response) -> String {
    res.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn branded_metadata() -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("logo_uri".into(), LOGO.into());
    m.insert("client_name#en".into(), "Tax Office".into());
    m
}

/// GETs `url` and follows the provider's redirects; the last page.
async fn page(app: &TestApp, b: &Browser, url: &str) -> (String, reqwest::Response) {
    let mut url = url.to_string();
    for _ in 0..8 {
        let res = b.http.get(&url).send().await.unwrap();
        match location(&res) {
            Some(next) => url = if next.starts_with('/') { app.url(&next) } else { next },
            None => return (url, res),
        }
    }
    panic!("too many redirects from {url}");
}

async fn pages(backend: Backend) {
    let app = spawn(backend).await;
    let branded = app
        .client(|c| {
            c.name = "税务服务".into();
            c.metadata = Some(branded_metadata());
        })
        .await;
    let plain = app.confidential().await;
    app.user("brand_user").await;

    // Sign-in, password tab: the logo (https, fixed size, alt = app name)
    // and the name; the CSP admits exactly the logo's origin.
    let b = Browser::new();
    let (url, res) = page(&app, &b, &auth_url(&app, &branded, &[])).await;
    assert!(url.starts_with(&app.url("/login?req=")), "{url}");
    let policy = csp(&res);
    assert!(policy.contains("img-src 'self' data: https://logo.rp.example;"), "{policy}");
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = res.text().await.unwrap();
    assert_eq!(attr_of(&html, "client-logo", "src").as_deref(), Some(LOGO), "{html}");
    assert_eq!(attr_of(&html, "client-logo", "alt").as_deref(), Some("税务服务"));
    assert_eq!(attr_of(&html, "client-logo", "width").as_deref(), Some("48"));
    assert_eq!(attr_of(&html, "client-brand", "data-client-id").as_deref(), Some(branded.id.as_str()));
    assert_eq!(text_of(&html, "client-name").as_deref(), Some("税务服务"));
    let req = hidden(&html, "req").unwrap();

    // The SMS and scan tabs of the same request.
    for tab in ["/login/sms", "/login/scan"] {
        let res = b.http.get(app.url(&format!("{tab}?req={req}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{tab}");
        assert!(csp(&res).contains("https://logo.rp.example"), "{tab}");
        let html = res.text().await.unwrap();
        assert_eq!(attr_of(&html, "client-logo", "src").as_deref(), Some(LOGO), "{tab}: {html}");
    }

    // Consent, after the password.
    let csrf = hidden(&html, "csrf").unwrap();
    let res = b
        .http
        .post(app.url("/login"))
        .form(&[("req", req.as_str()), ("csrf", &csrf), ("username", "brand_user"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let next = location(&res).expect("signed in");
    let (url, res) = page(&app, &b, &if next.starts_with('/') { app.url(&next) } else { next }).await;
    assert!(url.starts_with(&app.url("/consent?req=")), "{url}");
    assert!(csp(&res).contains("img-src 'self' data: https://logo.rp.example;"));
    let html = res.text().await.unwrap();
    assert_eq!(attr_of(&html, "client-logo", "src").as_deref(), Some(LOGO), "{html}");
    assert_eq!(text_of(&html, "client-name").as_deref(), Some("税务服务"));

    // In English, the English display name.
    let b = Browser::new();
    let (_, res) = page(&app, &b, &auth_url(&app, &branded, &[("ui_locales", "en")])).await;
    let html = res.text().await.unwrap();
    assert_eq!(text_of(&html, "client-name").as_deref(), Some("Tax Office"));
    assert_eq!(attr_of(&html, "client-logo", "alt").as_deref(), Some("Tax Office"));

    // An app without a logo: its name, no image, the default CSP.
    let b = Browser::new();
    let (_, res) = page(&app, &b, &auth_url(&app, &plain, &[])).await;
    assert!(csp(&res).contains("img-src 'self' data:;"), "{}", csp(&res));
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"client-brand\"") && !html.contains("id=\"client-logo\""), "{html}");
    assert_eq!(text_of(&html, "client-name").as_deref(), Some("Test RP"));
}
both!(branding_on_sign_in_and_consent, super::pages);

const BAD_LOGOS: &[&str] = &[
    "http://logo.rp.example/logo.png",
    "javascript:alert(1)",
    "data:image/png;base64,iVBORw0KGgo=",
    "//evil.example/logo.png",
];

async fn refused_logos(backend: Backend) {
    let app = crate::identity::app_with(backend, |c| c.protocol.registration.enabled = true).await;
    let target = app.confidential().await;

    // The core call of the CLI (`idp client create --logo-uri`).
    for bad in BAD_LOGOS {
        let created = app
            .state
            .clients
            .create(idp::domain::clients::NewClient {
                name: "cli app".into(),
                redirect_uris: vec!["https://rp.example/cb".into()],
                metadata: Some([("logo_uri".to_string(), Value::from(*bad))].into_iter().collect()),
                ..Default::default()
            })
            .await;
        assert!(created.is_err(), "{bad}");
    }

    // The console.
    let (admin_id, secret) = staff_account(&app, "brand_admin", "13750000001", Role::PlatformAdmin, &[]).await;
    let adm = console(&app, "brand_admin", &secret).await;
    let path = format!("/admin/apps/{}", target.id);
    let csrf = csrf_of(&app, &adm, &path).await;
    let brand = |logo: &str, en: &str| {
        adm.http
            .post(app.url(&format!("{path}/branding")))
            .form(&[("csrf", csrf.as_str()), ("logo_uri", logo), ("name_en", en), ("name_bo", "")])
            .send()
    };
    for bad in BAD_LOGOS {
        assert_eq!(brand(bad, "").await.unwrap().status(), 400, "{bad}");
    }
    let found = app.state.clients.find(&target.id).await.unwrap().unwrap();
    assert!(found.logo_uri.is_none());
    let res = brand(LOGO, "Tax Office").await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert_eq!(attr_of(&html, "logo_uri", "value").as_deref(), Some(LOGO));
    let found = app.state.clients.find(&target.id).await.unwrap().unwrap();
    assert_eq!(found.logo_uri.as_deref(), Some(LOGO));
    assert_eq!(found.display_name("en"), "Tax Office");
    assert_eq!(found.display_name("zh-CN"), "Test RP");
    let audits = crate::console::audited(&app, "client_branding_updated").await;
    assert!(audits.len() == 1 && audits[0].contains(&format!("actor=staff:{admin_id}")), "{audits:?}");

    // The admin API.
    let (_, session) = {
        let res = adm.http.get(app.url("/admin/api/v1/session")).send().await.unwrap();
        (res.status(), json(res).await)
    };
    let token = session["csrf"].as_str().unwrap().to_string();
    let api_brand = |logo: &str| {
        adm.http
            .post(app.url(&format!("/admin/api/v1/apps/{}/branding", target.id)))
            .header("X-CSRF-Token", &token)
            .json(&json!({"logo_uri": logo, "display_names": {"en": "Tax"}}))
            .send()
    };
    for bad in BAD_LOGOS {
        let res = api_brand(bad).await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(json(res).await["error"], "admin_app_logo_rule");
    }
    let res = api_brand("/static/logo.png").await.unwrap();
    assert_eq!(res.status(), 200);
    let v = json(res).await;
    assert_eq!((v["logo_uri"].as_str(), v["display_names"]["en"].as_str()), (Some("/static/logo.png"), Some("Tax")));

    // Dynamic registration.
    let now = app.state.clock.now();
    let initial = idp::domain::clients::registration::issue_initial_token(
        &app.state.store,
        &app.state.hasher,
        "branding",
        10,
        3600,
        now,
    )
    .await
    .unwrap()
    .token;
    let register = |logo: &str| {
        api()
            .post(app.url("/oauth/register"))
            .bearer_auth(&initial)
            .json(&json!({"client_name": "市民服务", "client_name#en": "Citizen services",
                "redirect_uris": ["https://rp.example/cb"], "logo_uri": logo}))
            .send()
    };
    for bad in BAD_LOGOS {
        let res = register(bad).await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(json(res).await["error"], "invalid_client_metadata");
    }
    let res = register(LOGO).await.unwrap();
    assert_eq!(res.status(), 201);
    let v = json(res).await;
    assert_eq!((v["logo_uri"].as_str(), v["client_name#en"].as_str()), (Some(LOGO), Some("Citizen services")));
    let found = app.state.clients.find(v["client_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(found.display_name("en"), "Citizen services");
    assert_eq!(found.logo_uri.as_deref(), Some(LOGO));
}
both!(branding_bad_logos_refused_everywhere, super::refused_logos);

fn key() -> (SigningKey, Value) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": b64url(&point.x().unwrap()[..]), "y": b64url(&point.y().unwrap()[..])});
    (key, jwk)
}

fn assertion(app: &TestApp, client_id: &str, key: &SigningKey) -> String {
    let now = app.state.clock.now();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": app.base, "exp": now + 60,
        "jti": idp::crypto::random_token(12)});
    let mut out = b64url(json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}).to_string().as_bytes());
    out.push('.');
    out.push_str(&b64url(claims.to_string().as_bytes()));
    let sig = jws::PrivateKey::Es256(key.clone()).sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&sig));
    out
}

async fn private_key_jwt(backend: Backend) {
    let app = spawn(backend).await;
    let target = app.confidential().await;
    let old_secret = target.secret.clone().unwrap();
    let (_, secret) = staff_account(&app, "keys_admin", "13750000002", Role::PlatformAdmin, &[]).await;
    let adm = console(&app, "keys_admin", &secret).await;
    let path = format!("/admin/apps/{}", target.id);
    let (status, html) = get(&adm, app.url(&path)).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"app-jwks\"") && html.contains("id=\"app-brand\""), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let set = |method: &str, jwks: String, jwks_uri: &str| {
        adm.http
            .post(app.url(&format!("{path}/auth")))
            .form(&[("csrf", csrf.as_str()), ("method", method), ("jwks", &jwks), ("jwks_uri", jwks_uri)])
            .send()
    };
    let cc_key = |k: SigningKey| {
        let form = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_assertion_type".to_string(), ASSERTION_TYPE.to_string()),
            ("client_assertion".to_string(), assertion(&app, &target.id, &k)),
        ];
        api().post(app.url("/token")).form(&form).send()
    };
    let cc_secret = |s: String| {
        api()
            .post(app.url("/token"))
            .basic_auth(&target.id, Some(s))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let (k, jwk) = key();
    let jwks = json!({"keys": [jwk]});

    // Refused: no keys, both keys and an address, an http address, a
    // private part, an algorithm we do not verify, not JSON.
    assert_eq!(set("private_key_jwt", String::new(), "").await.unwrap().status(), 400);
    assert_eq!(set("private_key_jwt", jwks.to_string(), "https://rp.example/jwks").await.unwrap().status(), 400);
    assert_eq!(set("private_key_jwt", String::new(), "http://rp.example/jwks").await.unwrap().status(), 400);
    let mut private = jwk.clone();
    private["d"] = "AAAA".into();
    assert_eq!(set("private_key_jwt", json!({"keys": [private]}).to_string(), "").await.unwrap().status(), 400);
    let mut hs = jwk.clone();
    hs["alg"] = "HS256".into();
    assert_eq!(set("private_key_jwt", json!({"keys": [hs]}).to_string(), "").await.unwrap().status(), 400);
    assert_eq!(set("private_key_jwt", "{not json".into(), "").await.unwrap().status(), 400);
    assert_eq!(set("magic", String::new(), "").await.unwrap().status(), 400);
    assert_eq!(cc_secret(old_secret.clone()).await.unwrap().status(), 200, "nothing changed yet");

    // The JWK Set, set in the console: that key authenticates, another
    // key does not, and the secret has ended.
    let res = set("private_key_jwt", jwks.to_string(), "").await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<option value=\"private_key_jwt\" selected>"), "{html}");
    let res = cc_key(k.clone()).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (other, _) = key();
    let res = cc_key(other).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_client");
    let res = cc_secret(old_secret.clone()).await.unwrap();
    assert_eq!(res.status(), 401, "the secret ended with the switch");
    let audits = crate::console::audited(&app, "client_auth_updated").await;
    assert!(audits.len() == 1 && audits[0].contains("auth_method=private_key_jwt keys=1"), "{audits:?}");

    // Back to a secret: a new one, shown once; the key no longer works.
    let res = set("client_secret_basic", String::new(), "").await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let new = html.split("<code id=\"client-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert_eq!(cc_secret(new).await.unwrap().status(), 200);
    assert_eq!(cc_secret(old_secret).await.unwrap().status(), 401);
    assert_eq!(cc_key(k).await.unwrap().status(), 401);
}
both!(branding_console_private_key_jwt, super::private_key_jwt);
