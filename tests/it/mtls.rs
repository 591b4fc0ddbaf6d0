//! Mutual TLS (RFC 8705, issue 17) behind a reverse proxy that terminates
//! TLS and passes the client certificate in a header (URL-encoded PEM, as
//! nginx's `$ssl_client_escaped_cert`): client authentication by a
//! registered subject DN or SAN (`tls_client_auth`) or by a key of the
//! client's JWKS (`self_signed_tls_client_auth`), certificate-bound access
//! and refresh tokens (`cnf.x5t#S256`), the FAPI 2.0 profile with mTLS in
//! place of DPoP, and the header believed only from a trusted proxy.
use crate::both;
use crate::support::*;
use idp::crypto::b64url;
use idp::domain::clients::{AuthMethod, NewClient};
use serde_json::{Map, Value, json};

const HEADER: &str = "X-Client-Cert";
const DN: &str = "CN=rp-mtls,O=Example Bank,C=CN";

/// A self-signed test certificate (EC P-256) and its key as a JWK.
struct Cert {
    der: Vec<u8>,
    jwk: Value,
}

impl Cert {
    fn new(cn: &str, san_dns: &[&str]) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(san_dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Example Bank");
        params.distinguished_name.push(rcgen::DnType::CountryName, "CN");
        let cert = params.self_signed(&key).unwrap();
        let raw = key.public_key_raw();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])});
        Cert { der: cert.der().to_vec(), jwk }
    }

    /// As the proxy passes it: URL-encoded PEM.
    fn header(&self) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        // As nginx escapes it: a space is `%20` (a `+` is base64).
        pem.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn thumbprint(&self) -> String {
        idp::crypto::sha256_b64(&self.der)
    }
}

/// A server behind a proxy at `trusted` that passes certificates in [`HEADER`].
async fn spawn_mtls(b: Backend, trusted: &str, tweak: impl FnOnce(&mut idp::config::Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.trusted_proxies = vec![trusted.into()];
    config.protocol.mtls_cert_header = Some(HEADER.into());
    tweak(&mut config);
    spawn_with(config, listener, dir).await
}

fn meta(key: &str, value: &str) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    m.insert(key.into(), value.into());
    Some(m)
}

async fn tls_client(app: &TestApp, tweak: impl FnOnce(&mut NewClient)) -> TestClient {
    app.client(|c| {
        c.auth_method = Some(AuthMethod::TlsClientAuth);
        c.metadata = meta("tls_client_auth_subject_dn", DN);
        tweak(c);
    })
    .await
}

/// `client_credentials` authenticated by the certificate only.
async fn client_credentials(app: &TestApp, client: &TestClient, cert: Option<&Cert>) -> reqwest::Response {
    let mut req =
        api().post(app.url("/token")).form(&[("grant_type", "client_credentials"), ("client_id", &client.id)]);
    if let Some(c) = cert {
        req = req.header(HEADER, c.header());
    }
    req.send().await.unwrap()
}

async fn tls_client_auth(b: Backend) {
    let app = spawn_mtls(b, "127.0.0.1", |_| {}).await;
    let client = tls_client(&app, |_| {}).await;
    assert!(client.secret.is_none(), "no secret for a certificate-authenticated client");
    let right = Cert::new("rp-mtls", &[]);
    let res = client_credentials(&app, &client, Some(&right)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["token_type"], "Bearer");

    // Another subject, or no certificate at all.
    for cert in [Some(&Cert::new("rp-other", &[])), None] {
        let res = client_credentials(&app, &client, cert).await;
        assert_eq!(res.status(), 401);
        assert_eq!(json(res).await["error"], "invalid_client");
    }
    // A header that is not a certificate.
    let res = api()
        .post(app.url("/token"))
        .header(HEADER, "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----")
        .form(&[("grant_type", "client_credentials"), ("client_id", &client.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "invalid_client");

    // The same function authenticates at introspection and revocation.
    let token =
        json(client_credentials(&app, &client, Some(&right)).await).await["access_token"].as_str().unwrap().to_string();
    let introspect = |cert: &Cert| {
        api()
            .post(app.url("/introspect"))
            .header(HEADER, cert.header())
            .form(&[("token", token.as_str()), ("client_id", client.id.as_str())])
            .send()
    };
    let res = introspect(&right).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["active"], true);
    let res = introspect(&Cert::new("rp-other", &[])).await.unwrap();
    assert_eq!(res.status(), 401);
    let res = api()
        .post(app.url("/revoke"))
        .header(HEADER, right.header())
        .form(&[("token", token.as_str()), ("client_id", client.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // By a SAN instead of the DN.
    let by_san = app
        .client(|c| {
            c.auth_method = Some(AuthMethod::TlsClientAuth);
            c.metadata = meta("tls_client_auth_san_dns", "rp.example.org");
        })
        .await;
    assert_eq!(client_credentials(&app, &by_san, Some(&Cert::new("x", &["rp.example.org"]))).await.status(), 200);
    assert_eq!(client_credentials(&app, &by_san, Some(&Cert::new("x", &["evil.example"]))).await.status(), 401);

    // self_signed_tls_client_auth: the certificate's key is in the JWKS.
    let own = Cert::new("self-signed", &[]);
    let self_signed = app
        .client(|c| {
            c.auth_method = Some(AuthMethod::SelfSignedTlsClientAuth);
            c.jwks = Some(json!({"keys": [own.jwk]}));
        })
        .await;
    assert_eq!(client_credentials(&app, &self_signed, Some(&own)).await.status(), 200);
    let res = client_credentials(&app, &self_signed, Some(&Cert::new("self-signed", &[]))).await;
    assert_eq!(res.status(), 401, "same subject, another key");

    // Registration: tls_client_auth needs exactly one subject setting.
    let none = app.state.clients.create(NewClient {
        name: "no subject".into(),
        redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        auth_method: Some(AuthMethod::TlsClientAuth),
        ..Default::default()
    });
    assert!(none.await.is_err());
}
both!(tls_client_auth_by_subject_dn_san_or_key, super::tls_client_auth);

async fn untrusted_peer(b: Backend) {
    // The proxies are elsewhere: this test's requests come straight from 127.0.0.1.
    let app = spawn_mtls(b, "10.0.0.0/8", |_| {}).await;
    let client = tls_client(&app, |_| {}).await;
    let res = client_credentials(&app, &client, Some(&Cert::new("rp-mtls", &[]))).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_client");
    // Nor does a forged header bind anything.
    let bound = app.client(|c| c.tls_bound = true).await;
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&bound.id, bound.secret.as_deref())
        .header(HEADER, Cert::new("rp-mtls", &[]).header())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_request");
}
both!(certificate_header_from_an_untrusted_peer_is_ignored, super::untrusted_peer);

fn is_invalid_token(res: &reqwest::Response) -> bool {
    let challenge = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
    res.status() == 401 && challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\"")
}

async fn bound_tokens(b: Backend) {
    let app = spawn_mtls(b, "127.0.0.1", |_| {}).await;
    app.user("mtls_user").await;
    // A secret-authenticated client whose tokens are certificate-bound.
    let client = app.client(|c| c.tls_bound = true).await;
    let (cert, other) = (Cert::new("rp-mtls", &[]), Cert::new("rp-mtls", &[]));

    let (code, _) = sign_in(&app, &client, "mtls_user", &[]).await;
    let res = redeem_request(&app, &client, &code, None).send().await.unwrap();
    assert_eq!(res.status(), 400, "no certificate, no bound token");
    assert_eq!(json(res).await["error"], "invalid_request");
    let res = redeem_request(&app, &client, &code, None).header(HEADER, cert.header()).send().await.unwrap();
    assert_eq!(res.status(), 200, "the code survived the refused attempt");
    let body = json(res).await;
    assert_eq!(body["token_type"], "Bearer");
    let at = body["access_token"].as_str().unwrap().to_string();
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&at)["cnf"]["x5t#S256"], cert.thumbprint());

    let userinfo = |c: Option<&Cert>| {
        let mut req = api().get(app.url("/userinfo")).bearer_auth(&at);
        if let Some(c) = c {
            req = req.header(HEADER, c.header());
        }
        req.send()
    };
    assert!(is_invalid_token(&userinfo(None).await.unwrap()), "without the certificate");
    assert!(is_invalid_token(&userinfo(Some(&other)).await.unwrap()), "with another certificate");
    assert_eq!(userinfo(Some(&cert)).await.unwrap().status(), 200);

    // Introspection shows the confirmation.
    let res = api()
        .post(app.url("/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    let info = json(res).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["cnf"]["x5t#S256"], cert.thumbprint());
    assert_eq!(info["token_type"], "Bearer");

    // A refresh needs the same certificate; refused attempts do not burn the token.
    let refresh = |c: Option<&Cert>| {
        let mut req = api()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())]);
        if let Some(c) = c {
            req = req.header(HEADER, c.header());
        }
        req.send()
    };
    let res = refresh(None).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = refresh(Some(&other)).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = refresh(Some(&cert)).await.unwrap();
    assert_eq!(res.status(), 200);
    let at2 = json(res).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&at2)["cnf"]["x5t#S256"], cert.thumbprint());
}
both!(certificate_bound_tokens_need_their_certificate, super::bound_tokens);

async fn fapi2_with_mtls(b: Backend) {
    let app = spawn_mtls(b, "127.0.0.1", |_| {}).await;
    app.user("fapi_mtls").await;
    let client = tls_client(&app, |c| {
        c.profile = Some("fapi2".into());
        c.tls_bound = true;
    })
    .await;
    let cert = Cert::new("rp-mtls", &[]);
    let pkce = pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid profile"),
        ("state", "st-mtls"),
        ("nonce", "n-mtls"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // PAR, authenticated by the certificate.
    let res = api().post(app.url("/par")).form(&params).send().await.unwrap();
    assert_eq!(res.status(), 401, "no certificate");
    let res = api().post(app.url("/par")).header(HEADER, cert.header()).form(&params).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let uri = json(res).await["request_uri"].as_str().unwrap().to_string();
    let mut start = url::Url::parse(&app.url("/authorize")).unwrap();
    start.query_pairs_mut().append_pair("client_id", &client.id).append_pair("request_uri", &uri);
    let end = Browser::new().run(&app, start.as_str(), "fapi_mtls", PASSWORD).await;
    let p = end.params();
    assert_eq!(p["iss"], app.base);

    // No DPoP proof: the certificate is the sender constraint.
    let res = api()
        .post(app.url("/token"))
        .header(HEADER, cert.header())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", p["code"].as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["x5t#S256"], cert.thumbprint());
    let res = api().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert!(is_invalid_token(&res), "a FAPI client's token is never a plain bearer token");
    let res = api().get(app.url("/userinfo")).bearer_auth(at).header(HEADER, cert.header()).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // The profile still refuses a secret, and a FAPI client without a
    // certificate binding still needs DPoP.
    let secret = app.state.clients.create(NewClient {
        name: "fapi secret".into(),
        redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        profile: Some("fapi2".into()),
        tls_bound: true,
        ..Default::default()
    });
    assert!(secret.await.is_err());
    let unbound = tls_client(&app, |c| c.profile = Some("fapi2".into())).await;
    let found = app.state.clients.find(&unbound.id).await.unwrap().unwrap();
    assert!(found.requires_dpop());
}
both!(fapi2_client_with_mtls_instead_of_dpop, super::fapi2_with_mtls);

async fn discovery(b: Backend) {
    let app = spawn_mtls(b.clone(), "127.0.0.1", |_| {}).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["tls_client_certificate_bound_access_tokens"], true);
    for field in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = doc[field].as_array().unwrap();
        for m in ["tls_client_auth", "self_signed_tls_client_auth"] {
            assert!(methods.iter().any(|x| x == m), "{field} lists {m}");
        }
    }
    assert!(doc.get("mtls_endpoint_aliases").is_none(), "the same endpoints serve mutual TLS");

    // Without a certificate header, nothing of it is advertised.
    let plain = spawn(b).await;
    let doc = json(api().get(plain.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert!(doc.get("tls_client_certificate_bound_access_tokens").is_none());
    assert!(!doc["token_endpoint_auth_methods_supported"].as_array().unwrap().iter().any(|x| x == "tls_client_auth"));
}
both!(discovery_lists_the_mtls_methods, super::discovery);

/// An operator sets up mutual TLS in the console: a secret app moves to
/// `tls_client_auth` with a subject DN and certificate-bound tokens (its
/// secret ends at once, the certificate then authenticates it); the
/// console refuses a missing subject, an unknown subject kind and a
/// self-signed method without keys, each with what to fix.
async fn console_form(b: Backend) {
    use crate::console::{console, csrf_of, staff_account};
    use crate::factors::post;
    let app = spawn_mtls(b, "127.0.0.1", |_| {}).await;
    let (_, secret) =
        staff_account(&app, "mtls_admin", "13740000021", idp::domain::staff::Role::PlatformAdmin, &[]).await;
    let br = console(&app, "mtls_admin", &secret).await;
    let client = app.client(|_| {}).await;
    let basic = || {
        api()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(basic().await.unwrap().status(), 200);
    let page = format!("/admin/apps/{}", client.id);
    let csrf = csrf_of(&app, &br, &page).await;
    let (_, html) = crate::factors::get(&br, app.url(&page)).await;
    assert!(html.contains("id=\"app-mtls\""), "{html}");
    let url = app.url(&format!("/admin/apps/{}/mtls", client.id));
    let text = |k: &str| app.state.pages.text("zh-CN", k);
    for (form, key) in [
        (
            vec![("method", "tls_client_auth"), ("subject_kind", "tls_client_auth_subject_dn"), ("subject", "")],
            "admin_app_mtls_subject",
        ),
        (
            vec![
                ("method", "tls_client_auth"),
                ("subject_kind", "tls_client_auth_subject_dn"),
                ("subject", "not a DN"),
            ],
            "admin_app_mtls_subject",
        ),
        (vec![("method", "tls_client_auth"), ("subject_kind", "cn"), ("subject", DN)], "admin_app_mtls_subject"),
        (
            vec![("method", "client_secret_post"), ("subject_kind", "tls_client_auth_subject_dn"), ("subject", "")],
            "admin_app_mtls_method",
        ),
        (
            vec![
                ("method", "self_signed_tls_client_auth"),
                ("subject_kind", "tls_client_auth_subject_dn"),
                ("subject", ""),
            ],
            "admin_app_mtls_keys",
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let res = post(&br, url.clone(), &form).await;
        assert_eq!(res.status(), 400, "{form:?}");
        assert!(res.text().await.unwrap().contains(&text(key)), "{form:?}: {key}");
        assert_eq!(basic().await.unwrap().status(), 200, "nothing changed");
    }
    let form = [
        ("csrf", csrf.as_str()),
        ("method", "tls_client_auth"),
        ("subject_kind", "tls_client_auth_subject_dn"),
        ("subject", DN),
        ("bound", "1"),
    ];
    let res = post(&br, url.clone(), &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"done\"") && html.contains(&format!("value=\"{DN}\"")), "{html}");
    let res = basic().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_client", "the secret ended at once");
    let cert = Cert::new("rp-mtls", &[]);
    let res = client_credentials(&app, &client, Some(&cert)).await;
    assert_eq!(res.status(), 200);
    let token = json(res).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&token)["cnf"]["x5t#S256"], cert.thumbprint());
    assert_eq!(client_credentials(&app, &client, Some(&Cert::new("rp-other", &[]))).await.status(), 401);
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rows = idp::store::entities::audit::Entity::find()
        .filter(idp::store::entities::audit::Column::Action.eq("client_mtls_updated"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "refused changes leave no record");
    assert!(rows[0].detail.contains("tls_bound=true"), "{:?}", rows[0]);
}
both!(console_sets_up_mutual_tls, super::console_form);
