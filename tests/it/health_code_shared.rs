//! The health-code plugin's shared state and third-party codes over HTTP:
//! atomic plugin storage under parallel shows and scans (one code record,
//! one renewal per rotation, exact statistics), and codes of registered
//! third-party issuers accepted by the scan API (E5).
use crate::both;
use crate::health_code::*;
use crate::plugin_kit::*;
use crate::support::*;
use serde_json::{Value, json};

/// Atomic state in plugin storage: parallel first shows issue one code
/// record and all show the same code id; parallel shows across a rotation
/// renew once (every QR shown stays scannable); parallel scans are all
/// counted in the statistics, which match the log exactly.
async fn parallel_shows_and_scans(backend: Backend) {
    use futures_util::future::join_all;
    const N: usize = 8;
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(&app, "zhang_san").await;
    let (scanner, _) = app_with(&app, "health_code.scan").await;
    let shows = || join_all((0..N).map(|_| page(&b, &app, "/")));
    let claims_of = |pages: Vec<(u16, String)>| -> Vec<(Value, String)> {
        pages
            .into_iter()
            .map(|(status, html)| {
                assert_eq!(status, 200, "{html}");
                let p = payload_in(&html);
                (jwt_claims(&p), p)
            })
            .collect()
    };

    let first = claims_of(shows().await);
    let hid = first[0].0["hid"].clone();
    let cid = first[0].0["cid"].clone();
    assert!(first.iter().all(|(c, _)| c["hid"] == hid && c["cid"] == cid), "one code record, one code id: {first:?}");
    assert_eq!(admin_get(&app, "/admin/codes.json").await["codes"].as_array().unwrap().len(), 1);
    let issued = admin_get(&app, "/admin/logs.json?kind=issue").await;
    assert_eq!(issued["events"].as_array().unwrap().len(), 1, "{issued}");

    app.state.clock.advance(601);
    let st = renewed(&app, &scanner, "health_code.scan").await;
    let rotated = claims_of(shows().await);
    let new_cid = rotated[0].0["cid"].clone();
    assert_ne!(new_cid, cid, "rotated");
    assert!(rotated.iter().all(|(c, _)| c["hid"] == hid && c["cid"] == new_cid), "one renewal won: {rotated:?}");
    for (_, p) in &rotated {
        assert_eq!(scanned(&app, &st, p).await["valid"], true, "no QR shown was superseded");
    }

    let payload = rotated[0].1.clone();
    let results = join_all((0..N).map(|i| scan(&app, &st, &payload, if i % 2 == 0 { "东门" } else { "西门" }))).await;
    for r in results {
        assert_eq!(r.status(), 200);
        assert_eq!(json(r).await["valid"], true);
    }
    let stats = admin_get(&app, "/admin/stats.json").await;
    let scans = admin_get(&app, "/admin/logs.json?kind=scan").await["events"].as_array().unwrap().len();
    let shown = admin_get(&app, "/admin/logs.json?kind=show").await["events"].as_array().unwrap().len();
    assert_eq!((scans, shown), (2 * N, 2 * N));
    assert_eq!(stats["issued"]["total"], 1, "{stats}");
    assert_eq!(stats["shown"]["total"], 2 * N, "{stats}");
    assert_eq!(stats["scanned"]["total"], 2 * N, "{stats}");
    assert_eq!(stats["daily"].as_array().unwrap().last().unwrap()["scanned"], 2 * N, "{stats}");

    // A code id row past its storage TTL counts as absent: the next show
    // claims the key again.
    app.state.clock.advance(700);
    let st = renewed(&app, &scanner, "health_code.scan").await;
    let later = claims_of(shows().await);
    assert!(later.iter().all(|(c, _)| c["cid"] == later[0].0["cid"] && c["cid"] != new_cid), "{later:?}");
    assert_eq!(scanned(&app, &st, &later[0].1).await["valid"], true);
}
both!(health_code_parallel_shows_scans_atomic, super::parallel_shows_and_scans);

/// An ES256 key of another platform and its public JWK.
fn platform_key() -> (p256::ecdsa::SigningKey, Value) {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "plat-1",
        "x": idp::crypto::b64url(&point.x().unwrap()[..]), "y": idp::crypto::b64url(&point.y().unwrap()[..])});
    (key, jwk)
}

fn pem_of(key: &p256::ecdsa::SigningKey) -> String {
    use base64::Engine;
    use p256::pkcs8::EncodePublicKey;
    let der = key.verifying_key().to_public_key_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

/// A code as the other platform issues it: a compact ES256 JWS.
fn platform_code(key: &p256::ecdsa::SigningKey, claims: &Value) -> String {
    let signer = idp::crypto::jws::PrivateKey::Es256(key.clone());
    idp::crypto::jws::sign(&signer, idp::crypto::jws::Alg::Es256, "plat-1", "JWT", claims)
}

/// E5 (003 §2.2): an administrator registers another platform's code
/// issuer with its public key (JWK or PEM); our scan API accepts that
/// platform's codes, verified with the key, in the same shape marked with
/// the issuer; unknown issuers, bad signatures and expired codes refused.
async fn third_party_codes(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    let (_, st) = app_with(&app, "health_code.scan").await;
    let (jkey, jwk) = platform_key();
    let (pkey, _) = platform_key();
    let (other, _) = platform_key();

    // Registration: JWK or PEM; anything else refused, a private part dropped.
    let mut with_private = jwk.clone();
    with_private["d"] = json!("c2VjcmV0");
    let r = admin_post(&app, "/admin/issuers", json!({ "name": "yuekang", "jwk": with_private })).await;
    assert_eq!(r.status(), 201);
    assert!(json(r).await["key"].get("d").is_none(), "the private member is never stored");
    let r = admin_post(&app, "/admin/issuers", json!({ "name": "sukang", "pem": pem_of(&pkey) })).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    for bad in [
        json!({ "name": "bad", "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }),
        json!({ "name": "bad", "jwk": { "kty": "oct", "k": "AAAA" } }),
        json!({ "name": "bad", "jwk": { "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA" } }),
        json!({ "name": "http://evil/", "jwk": jwk }),
        json!({ "name": "nokey" }),
    ] {
        assert_eq!(admin_post(&app, "/admin/issuers", bad.clone()).await.status(), 400, "{bad}");
    }
    let r = api().post(app.url(&format!("{BASE}/admin/issuers"))).bearer_auth(&st).json(&json!({})).send().await;
    assert_eq!(r.unwrap().status(), 401, "only the administrator registers issuers");
    let list = admin_get(&app, "/admin/issuers.json").await;
    let names: Vec<&str> = list["issuers"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sukang", "yuekang"]);
    let r = api().get(app.url(&format!("{BASE}/admin/issuers"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("data-issuer=\"yuekang\"") && html.contains("data-issuer=\"sukang\""), "{html}");

    // Scanning their codes.
    let now = app.state.clock.now();
    let claims = |iss: &str, exp: i64| json!({ "iss": iss, "exp": exp, "colour": "yellow", "name": "王五" });
    let ok = scanned(&app, &st, &platform_code(&jkey, &claims("yuekang", now + 300))).await;
    assert_eq!(
        ok,
        json!({ "valid": true, "colour": "yellow", "name": "王*", "code_type": "personal", "offline": false,
                "valid_until": now + 300, "valid_until_text": ok["valid_until_text"], "issuer": "yuekang" })
    );
    let ok = scanned(&app, &st, &platform_code(&pkey, &claims("sukang", now + 300))).await;
    assert_eq!((ok["valid"].clone(), ok["issuer"].clone()), (json!(true), json!("sukang")), "PEM key: {ok}");

    let refused = |v: Value| v["reason"].as_str().unwrap_or_default().to_string();
    let unknown = scanned(&app, &st, &platform_code(&other, &claims("nobody", now + 300))).await;
    assert_eq!((unknown["valid"].clone(), refused(unknown)), (json!(false), "unknown_issuer".into()));
    let forged = scanned(&app, &st, &platform_code(&other, &claims("yuekang", now + 300))).await;
    assert_eq!(refused(forged), "invalid", "signed by another key");
    let code = platform_code(&jkey, &claims("yuekang", now + 300));
    let parts: Vec<&str> = code.split('.').collect();
    let red = idp::crypto::b64url(claims("yuekang", now + 300).to_string().replace("yellow", "green").as_bytes());
    let tampered = format!("{}.{red}.{}", parts[0], parts[2]);
    assert_eq!(refused(scanned(&app, &st, &tampered).await), "invalid", "payload changed under the signature");
    let bad_colour = json!({ "iss": "yuekang", "exp": now + 300, "colour": "purple", "name": "王五" });
    assert_eq!(refused(scanned(&app, &st, &platform_code(&jkey, &bad_colour)).await), "invalid");
    let late = platform_code(&jkey, &claims("yuekang", now + 300));
    app.state.clock.advance(301);
    assert_eq!(refused(scanned(&app, &st, &late).await), "expired");

    let logs = admin_get(&app, "/admin/logs.json?kind=scan").await;
    let from: Vec<&str> = logs["events"].as_array().unwrap().iter().map(|e| e["holder"].as_str().unwrap()).collect();
    assert_eq!(from.iter().filter(|h| h.starts_with("issuer:")).count(), 2, "{logs}");
    assert_eq!(logs["events"].as_array().unwrap().len(), 7, "refused scans are logged too");
}
both!(health_code_third_party_issuers, super::third_party_codes);
