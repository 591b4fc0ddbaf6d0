//! No input panics the server : every route of the
//! router — read from `server.rs`, so a new endpoint is covered the day it
//! is added — gets garbage, over-long, invalid-UTF-8 and duplicated
//! parameters, bad cookies, bad bearer tokens and bad JSON bodies. Nothing
//! may answer 5xx except a deliberate 503, the server still answers
//! `/health` afterwards, and the OAuth endpoints answer with the error
//! codes their specs name.
use crate::both;
use crate::support::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};

/// `(method, path)` for every `.route(…)` in the router, path parameters
/// filled with a value no handler knows.
fn routes() -> Vec<(Method, String)> {
    let source = include_str!("../../idp/src/server.rs");
    let mut out = Vec::new();
    for chunk in source.split(".route(").skip(1) {
        let Some(path) = chunk.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
        if !path.starts_with('/') {
            continue;
        }
        let path = path
            .replace("{*rest}", "a/%FF/..%2F..")
            .replace("{name}", "nope")
            .replace("{id}", "%00x")
            .replace("{file}", "..%2Fconfig.toml");
        let call = chunk.split(".route(").next().unwrap_or("");
        let uses = |m: &str| call.contains(&format!("{m}(")) || call.contains(&format!(".{m}("));
        if uses("get") || uses("any") {
            out.push((Method::GET, path.clone()));
        }
        if uses("post") || uses("any") {
            out.push((Method::POST, path.clone()));
        }
    }
    out
}

/// The malformed parts of a request: query strings, form bodies, headers.
fn queries() -> Vec<String> {
    let long = "a".repeat(20_000);
    vec![
        String::new(),
        format!("client_id={long}&redirect_uri={long}&state={long}"),
        "client_id=%FF%FE&redirect_uri=%C3%28&scope=%E2%82&next=%ED%A0%80".into(),
        "client_id=a&client_id=b&redirect_uri=x&redirect_uri=y&ticket=1&ticket=2&flow=1&flow=1".into(),
        "%%%&&&===;;;?#&next=//evil.example&return=https://evil.example&lang=../../etc".into(),
        "id_token_hint=a.b.c&post_logout_redirect_uri=javascript:alert(1)&code=%00&error=x".into(),
    ]
}

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let form = "application/x-www-form-urlencoded";
    vec![
        (
            form,
            b"username=%FF&password=%C3%28&code=&csrf=x&csrf=y&doc_type=resident_id&number=AA%C3%A912345678901"
                .to_vec(),
        ),
        (
            form,
            format!("grant_type=authorization_code&code={}&redirect_uri=x&redirect_uri=y", "c".repeat(20_000))
                .into_bytes(),
        ),
        (form, vec![0xFF, 0xFE, b'=', 0x00, b'&', 0xC3]),
        ("application/json", b"{\"credential\": [1, 2, {\"id\": null}], \"x\": 1e999999".to_vec()),
        ("application/json", b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec()),
        ("text/plain", b"\x00\x01\x02 not a form".to_vec()),
    ]
}

fn cookies() -> Vec<String> {
    vec![
        "idp_session=%FF%FE; idp_browser=../..; idp_lang=xx-YY; idp_next=//evil.example".into(),
        format!("idp_session={}; idp_session=a; =; ;;; idp_browser", "s".repeat(3000)),
    ]
}

fn bearers() -> Vec<String> {
    vec!["Bearer a.b.c".into(), "Bearer eyJhbGciOiJub25lIn0.e30.".into(), "Basic %%%".into(), "Bearer".into()]
}

async fn send(http: &reqwest::Client, app: &TestApp, m: Method, path: &str, variant: usize) -> (StatusCode, String) {
    let qs = queries();
    let body = bodies();
    let (ctype, bytes) = body[variant % body.len()].clone();
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{}{}{}{}", app.base, path, sep, qs[variant % qs.len()]);
    let mut req = http
        .request(m.clone(), &url)
        .header("cookie", &cookies()[variant % 2])
        .header("authorization", &bearers()[variant % 4])
        .header("accept-language", if variant.is_multiple_of(3) { "%FF;q=abc" } else { "en" })
        .header("x-forwarded-for", "not-an-ip, [::1]:99999, 1.2.3.4.5");
    if m == Method::POST {
        req = req.header("content-type", ctype).header("origin", app.base.clone()).body(bytes);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{m} {path}: no answer ({e})"));
    let status = res.status();
    (status, format!("{m} {path} (variant {variant}) → {status}: {}", res.text().await.unwrap_or_default()))
}

async fn oauth_error(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let body = json(res).await;
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

async fn no_input_breaks_the_server(b: Backend) {
    let app = spawn(b).await;
    let rp = app.confidential().await;
    let http = api();
    let routes = routes();
    assert!(routes.len() > 60, "the router was not read: {routes:?}");
    assert!(routes.iter().any(|(m, p)| m == Method::POST && p == "/token"));

    let jobs = routes.iter().flat_map(|(m, p)| (0..6).map(move |v| (m.clone(), p.clone(), v)));
    let answers: Vec<(StatusCode, String)> = futures_util::stream::iter(jobs)
        .map(|(m, p, v)| {
            let (http, app) = (&http, &app);
            async move { send(http, app, m, &p, v).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let broken: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| s.is_server_error() && *s != StatusCode::SERVICE_UNAVAILABLE)
        .map(|(_, d)| d)
        .collect();
    assert!(
        broken.is_empty(),
        "{} answers were 5xx:\n{}",
        broken.len(),
        broken.iter().take(10).map(|s| s.chars().take(300).collect::<String>()).collect::<Vec<_>>().join("\n")
    );

    let health = http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    // The OAuth endpoints answer garbage with the codes their specs name.
    let form = |path: &str, body: &str| {
        http.post(app.url(path)).header("content-type", "application/x-www-form-urlencoded").body(body.to_string())
    };
    let secret = rp.secret.clone().unwrap();
    let (s, e) = oauth_error(
        form("/token", "grant_type=authorization_code&grant_type=refresh_token")
            .basic_auth(&rp.id, Some(&secret))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e.as_str()), (StatusCode::BAD_REQUEST, "invalid_request"), "repeated grant_type (RFC 6749 §3.2)");
    let (s, e) =
        oauth_error(form("/token", "grant_type=%FF%FE").basic_auth(&rp.id, Some(&secret)).send().await.unwrap()).await;
    assert_eq!((s, e.as_str()), (StatusCode::BAD_REQUEST, "unsupported_grant_type"));
    let (s, e) = oauth_error(
        form("/token", "grant_type=authorization_code&code=x")
            .header("authorization", "Basic %%%")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, e.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client"),
        "malformed Basic credentials (RFC 6749 §5.2)"
    );
    let assertion = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=%FF.%FF.%FF&grant_type=client_credentials";
    let (s, e) = oauth_error(form("/token", assertion).send().await.unwrap()).await;
    assert_eq!((s, e.as_str()), (StatusCode::UNAUTHORIZED, "invalid_client"), "a garbage client assertion");
    let (s, e) = oauth_error(
        form("/token", "grant_type=authorization_code")
            .header("content-type", "application/json")
            .basic_auth(&rp.id, Some(&secret))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e.as_str()), (StatusCode::BAD_REQUEST, "invalid_request"), "a body that is not a form");
    for path in ["/revoke", "/introspect"] {
        let (s, e) = oauth_error(form(path, "token=a.b.c%FF").send().await.unwrap()).await;
        assert_eq!(
            (s, e.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_client"),
            "{path} without client authentication"
        );
    }
    for token in ["a.b.c", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "%FF"] {
        let res = http.get(app.url("/userinfo")).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "userinfo with {token}");
        let challenge = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\""), "RFC 6750 §3.1: {challenge}");
    }

    // Authorization requests: duplicated client or redirect URI is a page,
    // never a redirect; bad parameters after that redirect with the code.
    let dup = format!(
        "/authorize?client_id={0}&client_id={0}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid",
        rp.id
    );
    let res = http.get(app.url(&dup)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(location(&res).is_none());
    for (extra, code) in [
        ("response_type=%FF%FE&scope=openid", "unsupported_response_type"),
        ("response_type=code&scope=openid&max_age=-1", "invalid_request"),
        ("response_type=code&scope=openid&claims=%5B1%5D", "invalid_request"),
        ("response_type=code&scope=openid&prompt=none%20login", "invalid_request"),
        ("response_type=code&scope=openid&code_challenge=short&code_challenge_method=S256", "invalid_request"),
        ("response_type=code&scope=openid&id_token_hint=a.b.c", "invalid_request"),
        ("response_type=code&scope=%E2%82", "invalid_scope"),
    ] {
        let url =
            format!("/authorize?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s1&{extra}", rp.id);
        let res = http.get(app.url(&url)).send().await.unwrap();
        let to = location(&res).unwrap_or_else(|| panic!("{extra}: no redirect ({})", res.status()));
        let q = query_of(&to);
        assert_eq!(q.get("error").map(String::as_str), Some(code), "{extra} → {to}");
        assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    }
}

both!(no_input_breaks_the_server, super::no_input_breaks_the_server);
