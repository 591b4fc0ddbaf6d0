//! The e-certificate plugin over HTTP (F1–F3): bind (authorise or decline), list, view, reorder, unbind,
//! present and verify — including expired and tampered presentations and
//! clients without permission.
use crate::both;
use crate::plugin_kit::*;
use crate::support::*;
use idp::domain::identity::users::NewUser;
use serde_json::{Value, json};

const BASE: &str = "/plugins/e-certificate";

/// 张三 is in the sandbox issuer's fixture with a resident ID e-credential
/// and a social security card, but no driving licence.
async fn zhang_san(app: &TestApp) {
    app.state
        .users
        .create(NewUser {
            username: "zhang_san".into(),
            password: PASSWORD.into(),
            name: Some("张三".into()),
            id_number: Some("11010519491231002X".into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn page(b: &Browser, app: &TestApp, path: &str) -> (u16, String) {
    let r = b.http.get(app.url(&format!("{BASE}{path}"))).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// POSTs a form with the page's CSRF token; returns status and Location.
async fn post(b: &Browser, app: &TestApp, csrf: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", csrf));
    let r = b.http.post(app.url(&format!("{BASE}{path}"))).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    let to = location(&r).unwrap_or_default();
    (status, if to.is_empty() { r.text().await.unwrap() } else { to })
}

/// Certificate types on the list page, in display order.
fn listed(html: &str) -> Vec<String> {
    html.split("<li data-kind=\"").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
}

async fn bound(app: &TestApp, b: &Browser, kinds: &[&str]) -> String {
    let (_, html) = page(b, app, "/bind?kind=resident_id").await;
    let csrf = hidden(&html, "csrf").unwrap();
    for k in kinds {
        let (status, to) = post(b, app, &csrf, "/bind", &[("kind", k), ("decision", "allow")]).await;
        assert_eq!((status, to.as_str()), (303, app.url(&format!("{BASE}/")).as_str()));
    }
    csrf
}

async fn user_flows(backend: Backend) {
    let app = spawn_plugins(backend, &[ECERT], |_, _| {}).await;
    zhang_san(&app).await;
    let rp = app.confidential().await;
    let stranger = app.confidential().await;
    permit(&app, &rp, "e_certificate").await;
    let (_, b) = tokens_for(&app, &rp, "zhang_san", "openid").await;

    // Empty list, then choose a type (F1).
    let (status, html) = page(&b, &app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("暂无绑定的证照") && html.contains("新增证照"), "{html}");
    let (_, html) = page(&b, &app, "/add").await;
    assert!(html.contains("居民身份证电子证照") && html.contains("社会保障卡") && html.contains("驾驶证"), "{html}");
    let (_, html) = page(&b, &app, "/bind?kind=resident_id").await;
    assert!(html.contains("授权关联") && html.contains("不授权"), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();

    // Declining returns to the type choice and binds nothing; no CSRF, no change.
    let (status, to) = post(&b, &app, &csrf, "/bind", &[("kind", "resident_id"), ("decision", "deny")]).await;
    assert_eq!((status, to), (303, app.url(&format!("{BASE}/add"))));
    let r = b.http.post(app.url(&format!("{BASE}/bind"))).form(&[("kind", "resident_id"), ("decision", "allow")]);
    assert_eq!(r.send().await.unwrap().status(), 403);
    assert!(listed(&page(&b, &app, "/").await.1).is_empty());

    // Authorise two; the issuer has no driving licence for 张三.
    bound(&app, &b, &["resident_id", "social_security"]).await;
    let (status, html) = post(&b, &app, &csrf, "/bind", &[("kind", "driving_licence"), ("decision", "allow")]).await;
    assert_eq!(status, 404);
    assert!(html.contains("发证机关未查询到"), "{html}");
    let (status, _) = post(&b, &app, &csrf, "/bind", &[("kind", "resident_id"), ("decision", "allow")]).await;
    assert_eq!(status, 409, "one certificate per type");
    let (_, html) = page(&b, &app, "/").await;
    assert_eq!(listed(&html), ["resident_id", "social_security"]);
    assert!(html.contains("110***********002X"), "numbers are masked in the list: {html}");
    let (_, html) = page(&b, &app, "/add").await;
    assert!(!html.contains("kind=resident_id") && html.contains("kind=driving_licence"), "{html}");

    // Details (F2), in Chinese by default and in English on request.
    let (_, html) = page(&b, &app, "/cert?kind=social_security").await;
    assert!(html.contains("A11010519") && html.contains("北京市人力资源和社会保障局") && html.contains("出示证照"));
    let r = b.http.get(app.url(&format!("{BASE}/cert?kind=social_security"))).header("accept-language", "en");
    let html = r.send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Social security card") && html.contains("Unbind"), "{html}");
    assert_eq!(page(&b, &app, "/cert?kind=driving_licence").await.0, 404);

    // Reorder: cancel keeps the order, confirm persists the new one.
    let (_, html) = page(&b, &app, "/sort").await;
    assert!(html.contains("name=\"pos_social_security\""), "{html}");
    let swap = [("pos_social_security", "1"), ("pos_resident_id", "2")];
    let mut cancel = swap.to_vec();
    cancel.push(("decision", "cancel"));
    post(&b, &app, &csrf, "/sort", &cancel).await;
    assert_eq!(listed(&page(&b, &app, "/").await.1), ["resident_id", "social_security"]);
    let mut confirm = swap.to_vec();
    confirm.push(("decision", "confirm"));
    post(&b, &app, &csrf, "/sort", &confirm).await;
    assert_eq!(listed(&page(&b, &app, "/").await.1), ["social_security", "resident_id"]);

    // F3: a relying app reads the list only with consent, via its scope.
    let browser = Browser::new();
    let (html, _) =
        until_consent(&app, &browser, &auth_url(&app, &rp, &[("scope", "openid e_certificate")]), "zhang_san").await;
    assert!(html.contains("读取您绑定的电子证照"), "{html}");
    let (tok, _) = tokens_for(&app, &rp, "zhang_san", "openid e_certificate").await;
    let id = jwt_claims(tok["id_token"].as_str().unwrap());
    let kinds: Vec<&str> =
        id["e_certificates"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["social_security", "resident_id"], "{id}");
    let at = tok["access_token"].as_str().unwrap().to_string();
    let r = api().get(app.url(&format!("{BASE}/api/certificates"))).bearer_auth(&at).send().await.unwrap();
    assert_eq!(json(r).await["e_certificates"].as_array().unwrap().len(), 2);
    let (tok, _) = tokens_for(&app, &stranger, "zhang_san", "openid e_certificate").await;
    assert!(jwt_claims(tok["id_token"].as_str().unwrap()).get("e_certificates").is_none());
    let r = api().get(app.url(&format!("{BASE}/api/certificates")));
    let r = r.bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 403, "a client without permission cannot read certificates");

    // Unbind; userinfo follows at once.
    let (status, _) = post(&b, &app, &csrf, "/unbind", &[("kind", "social_security")]).await;
    assert_eq!(status, 303);
    assert_eq!(listed(&page(&b, &app, "/").await.1), ["resident_id"]);
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert_eq!(info["e_certificates"].as_array().unwrap().len(), 1, "{info}");

    // Admin statistics need the admin token.
    let stats = app.url(&format!("{BASE}/admin/stats"));
    assert_eq!(api().get(&stats).bearer_auth(&at).send().await.unwrap().status(), 401);
    let r = api().get(&stats).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(json(r).await["bound"]["resident_id"], 1);
}
both!(e_certificate_user_flows, super::user_flows);

fn presentation_in(html: &str) -> String {
    let start = html.find("<code class=\"presentation\">").unwrap() + "<code class=\"presentation\">".len();
    html[start..].split('<').next().unwrap().to_string()
}

async fn verify(app: &TestApp, token: &str, presentation: &str) -> reqwest::Response {
    api()
        .post(app.url(&format!("{BASE}/api/verify")))
        .bearer_auth(token)
        .json(&json!({ "presentation": presentation }))
        .send()
        .await
        .unwrap()
}

async fn present_and_verify(backend: Backend) {
    let app = spawn_plugins(backend, &[ECERT], |_, _| {}).await;
    zhang_san(&app).await;
    let rp = app.confidential().await;
    let verifier = app.confidential().await;
    let unpermitted = app.confidential().await;
    permit(&app, &rp, "e_certificate").await;
    permit(&app, &verifier, "e_certificate.verify").await;
    let (user_tok, b) = tokens_for(&app, &rp, "zhang_san", "openid e_certificate").await;
    let csrf = bound(&app, &b, &["resident_id"]).await;

    // Present: a QR code (inline SVG) of a signed, short-lived JWT.
    let (status, html) = post(&b, &app, &csrf, "/present", &[("kind", "resident_id")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("<svg") && html.contains("出示证照"), "{html}");
    let presentation = presentation_in(&html);
    let header = jwt_claims(&format!("x.{}", presentation.split('.').next().unwrap()));
    assert_eq!(header["typ"], "idp-plugin+jwt", "cannot pass for an ID or access token");
    let claims = jwt_claims(&presentation);
    assert_eq!(claims["iss"], format!("{}/plugins/e-certificate", app.base));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 120);
    assert_eq!(userinfo(&app, &presentation).await.status(), 401);

    // A permitted relying app verifies it with an app token.
    let r = client_token(&app, &verifier, "e_certificate.verify").await;
    assert_eq!(r.status(), 200);
    let vt = json(r).await["access_token"].as_str().unwrap().to_string();
    let ok = json(verify(&app, &vt, &presentation).await).await;
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["certificate"]["number"], "11010519491231002X");
    assert_eq!(ok["certificate"]["holder"], "张三");

    // Tampered: the payload changed, the signature kept.
    let parts: Vec<&str> = presentation.split('.').collect();
    let mut forged = claims.clone();
    forged["number"] = Value::from("110105194912310000");
    let forged_payload = idp::crypto::b64url(forged.to_string().as_bytes());
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let r = json(verify(&app, &vt, &tampered).await).await;
    assert_eq!((r["valid"].clone(), r["reason"].clone()), (json!(false), json!("invalid")), "{r}");
    let r = json(verify(&app, &vt, "not.a.jwt").await).await;
    assert_eq!(r["reason"], "invalid");
    // An ID token of ours is signed by the same key but is no presentation.
    let r = json(verify(&app, &vt, user_tok["id_token"].as_str().unwrap()).await).await;
    assert_eq!(r["reason"], "invalid");

    // Without permission there is no verify token; without the scope, no access.
    let r = client_token(&app, &unpermitted, "e_certificate.verify").await;
    assert_eq!(json(r).await["error"], "invalid_scope");
    let r = verify(&app, user_tok["access_token"].as_str().unwrap(), &presentation).await;
    assert_eq!(r.status(), 403);
    assert_eq!(api().post(app.url(&format!("{BASE}/api/verify"))).send().await.unwrap().status(), 401);

    // Unbinding revokes what was presented before.
    post(&b, &app, &csrf, "/unbind", &[("kind", "resident_id")]).await;
    let r = json(verify(&app, &vt, &presentation).await).await;
    assert_eq!(r["reason"], "revoked", "{r}");

    // A permission withdrawn after the token was issued stops it at once.
    idp::domain::plugins::plugin_access::deny(
        &app.state.store,
        &verifier.id,
        "e_certificate.verify",
        app.state.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(verify(&app, &vt, &presentation).await.status(), 403);
}
both!(e_certificate_present_and_verify, super::present_and_verify);

async fn expired_presentation(backend: Backend) {
    let app = spawn_plugins(backend, &[ECERT], |c, _| {
        let settings: toml::Table = toml::from_str("presentation_ttl = 1").unwrap();
        c.plugins.settings.insert("e-certificate".into(), toml::Value::Table(settings));
    })
    .await;
    zhang_san(&app).await;
    let rp = app.confidential().await;
    let verifier = app.confidential().await;
    permit(&app, &verifier, "e_certificate.verify").await;
    let (_, b) = tokens_for(&app, &rp, "zhang_san", "openid").await;
    let csrf = bound(&app, &b, &["resident_id"]).await;
    let (_, html) = post(&b, &app, &csrf, "/present", &[("kind", "resident_id")]).await;
    let presentation = presentation_in(&html);
    let vt = json(client_token(&app, &verifier, "e_certificate.verify").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.state.clock.advance(2);
    let r = json(verify(&app, &vt, &presentation).await).await;
    assert_eq!((r["valid"].clone(), r["reason"].clone()), (json!(false), json!("expired")), "{r}");

    // Expiring plugin data is purged with the provider's other ephemera;
    // the bound certificate (no expiry) stays.
    use idp::store::entities::plugin_kv;
    use sea_orm::EntityTrait;
    let keys = |rows: Vec<plugin_kv::Model>| rows.into_iter().map(|r| r.key).collect::<Vec<_>>();
    let before = keys(plugin_kv::Entity::find().all(&app.state.store).await.unwrap());
    assert!(before.iter().any(|k| k.starts_with("presented/")), "{before:?}");
    idp::store::purge_expired(&app.state.store, app.state.clock.now() + 3600).await.unwrap();
    let after = keys(plugin_kv::Entity::find().all(&app.state.store).await.unwrap());
    assert!(after.iter().all(|k| k.starts_with("certs/")) && !after.is_empty(), "{after:?}");
}
both!(e_certificate_expired_presentation, super::expired_presentation);

/// The HTTP adapter: certificates come from an issuing authority's API,
/// reached through the host's outbound POST.
async fn http_issuer(backend: Backend) {
    use axum::Json;
    let issuer = axum::Router::new().route(
        "/issue",
        axum::routing::post(|Json(q): Json<Value>| async move {
            if q["type"] == "driving_licence" && q["id_number"] == "11010519491231002X" && q["name"] == "张三" {
                let cert = json!({ "number": "HTTP-DL-1", "issuer": "测试交警支队", "valid_from": "2020-01-01", "valid_until": "2030-01-01" });
                (axum::http::StatusCode::OK, Json(json!({ "certificate": cert })))
            } else {
                (axum::http::StatusCode::NOT_FOUND, Json(json!({})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/issue", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, issuer).await });
    let app = spawn_plugins(backend, &[ECERT], move |c, _| {
        let mut settings = toml::Table::new();
        settings.insert("source".into(), "http".into());
        settings.insert("issuer_url".into(), url.into());
        c.plugins.settings.insert("e-certificate".into(), toml::Value::Table(settings));
    })
    .await;
    zhang_san(&app).await;
    let rp = app.confidential().await;
    let (_, b) = tokens_for(&app, &rp, "zhang_san", "openid").await;
    bound(&app, &b, &["driving_licence"]).await;
    let (_, html) = page(&b, &app, "/cert?kind=driving_licence").await;
    assert!(html.contains("HTTP-DL-1") && html.contains("测试交警支队"), "{html}");
    let (_, html) = page(&b, &app, "/bind?kind=resident_id").await;
    let csrf = hidden(&html, "csrf").unwrap();
    let (status, _) = post(&b, &app, &csrf, "/bind", &[("kind", "resident_id"), ("decision", "allow")]).await;
    assert_eq!(status, 404, "the authority has none");
}
both!(e_certificate_http_issuer, super::http_issuer);

/// Issue 7: what grows is the set of per-user lists (one row each, at most
/// one certificate per type). The admin census pages over all of them —
/// exact past the 10,000-row listing cap — while a user's pages read only
/// that user's row; binds and unbinds racing on one list lose nothing.
async fn many_users(backend: Backend) {
    let app = spawn_plugins(backend, &[ECERT], |_, _| {}).await;
    zhang_san(&app).await;
    let cert = |kind: &str| {
        json!({ "kind": kind, "number": "N1", "holder": "某人", "issuer": "发证机关", "valid_from": "2020-01-01",
                "valid_until": "2030-01-01", "bound_at": 0 })
    };
    let mut rows = Vec::new();
    for i in 0..10_050 {
        let list = match i % 3 {
            0 => json!([cert("resident_id")]),
            1 => json!([cert("resident_id"), cert("social_security")]),
            _ => json!([]),
        };
        rows.push((format!("certs/u{i:06}"), list.to_string()));
    }
    insert_kv(&app, "e-certificate", rows).await;

    // Two tabs bind two types at once, then unbind both at once.
    let (_, b) = tokens_for(&app, &app.confidential().await, "zhang_san", "openid").await;
    let csrf = hidden(&page(&b, &app, "/bind?kind=resident_id").await.1, "csrf").unwrap();
    for _ in 0..4 {
        let (rid, ssc) =
            ([("kind", "resident_id"), ("decision", "allow")], [("kind", "social_security"), ("decision", "allow")]);
        let (r, s) = tokio::join!(post(&b, &app, &csrf, "/bind", &rid), post(&b, &app, &csrf, "/bind", &ssc));
        assert_eq!((r.0, s.0), (303, 303));
        let mut kinds = listed(&page(&b, &app, "/").await.1);
        kinds.sort();
        assert_eq!(kinds, ["resident_id", "social_security"], "neither bind lost");
        let (rid, ssc) = ([("kind", "resident_id")], [("kind", "social_security")]);
        tokio::join!(post(&b, &app, &csrf, "/unbind", &rid), post(&b, &app, &csrf, "/unbind", &ssc));
        assert!(listed(&page(&b, &app, "/").await.1).is_empty(), "neither unbind lost");
    }
    bound(&app, &b, &["social_security"]).await;

    let r = api().get(app.url(&format!("{BASE}/admin/stats"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let stats = json(r).await;
    assert_eq!(stats["holders"], 3350 + 3350 + 1, "{stats}");
    assert_eq!(stats["bound"]["resident_id"], 6700, "{stats}");
    assert_eq!(stats["bound"]["social_security"], 3350 + 1, "{stats}");
}
both!(e_certificate_many_users_and_racing_changes, super::many_users);
