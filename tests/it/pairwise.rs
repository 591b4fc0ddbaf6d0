//! Pairwise subject identifiers (OIDC Core §8.1, issue 17): two apps in
//! different sectors cannot join their users on `sub`; apps in one sector
//! (one host, or one `sector_identifier_uri`) see the same `sub`; every
//! place an app sees a `sub` (ID token, userinfo, introspection,
//! back-channel logout, `id_token_hint`) uses the one it knows.
use crate::both;
use crate::support::*;
use serde_json::Value;

/// A `sector_identifier_uri` served over loopback, listing `uris`.
async fn sector_document(uris: Vec<String>) -> String {
    let app = axum::Router::new().route("/sector.json", axum::routing::get(move || async move { axum::Json(uris) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/sector.json", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn pairwise(
    app: &TestApp,
    redirect: &str,
    tweak: impl FnOnce(&mut idp::domain::clients::NewClient),
) -> TestClient {
    app.client(|c| {
        c.subject_type = Some("pairwise".into());
        c.redirect_uris = vec![redirect.into()];
        tweak(c);
    })
    .await
}

/// Signs `user` in at `client` in a fresh browser; (tokens, browser).
async fn tokens(app: &TestApp, client: &TestClient, user: &str) -> (Value, Browser) {
    let (code, b) = sign_in(app, client, user, &[]).await;
    let res = redeem(app, client, &code, None).await;
    assert_eq!(res.status(), 200);
    (json(res).await, b)
}

fn sub(t: &Value) -> String {
    jwt_claims(t["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_string()
}

async fn hint_error(app: &TestApp, client: &TestClient, b: &Browser, id_token: &Value) -> Option<String> {
    let url = auth_url(app, client, &[("prompt", "none"), ("id_token_hint", id_token.as_str().unwrap())]);
    let res = b.http.get(url).send().await.unwrap();
    query_of(&location(&res).unwrap()).get("error").cloned()
}

async fn pairwise_subjects(b: Backend) {
    let app = spawn(b).await;
    let doc = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public", "pairwise"]));
    let (bc_url, received) = crate::logout::backchannel_receiver().await;
    let user = app.user("pairwise_u1").await;
    let public = app.confidential().await;
    // Sector 127.0.0.1: two apps; sector localhost: one more.
    let a1 = pairwise(&app, "http://127.0.0.1:9/a1", |c| c.backchannel_logout_uri = Some(bc_url.clone())).await;
    let a2 = pairwise(&app, "http://127.0.0.1:9/a2", |_| {}).await;
    let other = pairwise(&app, "http://localhost:9/cb", |_| {}).await;

    let (t_public, _) = tokens(&app, &public, "pairwise_u1").await;
    assert_eq!(sub(&t_public), user, "a public client sees the account's subject");
    let (t1, b1) = tokens(&app, &a1, "pairwise_u1").await;
    let (t1_again, _) = tokens(&app, &a1, "pairwise_u1").await;
    let (t2, _) = tokens(&app, &a2, "pairwise_u1").await;
    let (t_other, b_other) = tokens(&app, &other, "pairwise_u1").await;
    let s1 = sub(&t1);
    assert_ne!(s1, user, "a pairwise sub is not the account id");
    assert_eq!(sub(&t1_again), s1, "stable within one client");
    assert_eq!(sub(&t2), s1, "stable within one sector");
    assert!(sub(&t_other) != s1 && sub(&t_other) != user, "differs across sectors");

    // Userinfo, introspection and a refreshed ID token say the pairwise sub.
    let info =
        json(api().get(app.url("/userinfo")).bearer_auth(t1["access_token"].as_str().unwrap()).send().await.unwrap())
            .await;
    assert_eq!(info["sub"], s1.as_str());
    let at = json(
        api()
            .post(app.url("/introspect"))
            .basic_auth(&a1.id, a1.secret.as_ref())
            .form(&[("token", t1["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((at["active"].as_bool(), at["sub"].as_str()), (Some(true), Some(s1.as_str())));
    let refreshed = json(crate::tokens::refresh(&app, &a1, t1["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(sub(&refreshed), s1);

    // id_token_hint: the app's own sub names the session; another sector's
    // sub means nothing here.
    assert_eq!(hint_error(&app, &a1, &b1, &t1["id_token"]).await, None);
    assert_eq!(hint_error(&app, &a1, &b1, &t2["id_token"]).await, None, "same sector");
    assert_eq!(hint_error(&app, &a1, &b1, &t_other["id_token"]).await.as_deref(), Some("login_required"));
    assert_eq!(hint_error(&app, &other, &b_other, &t_other["id_token"]).await, None);

    // Back-channel logout tells a1 the sub it knows.
    let res = b1
        .http
        .post(app.url("/logout"))
        .form(&[("id_token_hint", t1["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    let mut got = Vec::new();
    for _ in 0..50 {
        got = received.lock().unwrap().clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let claims = app.state.tokens.verify_own(&got[0], "logout+jwt", false).expect("signed logout token");
    assert_eq!(claims["sub"], s1.as_str());
}
both!(pairwise_sub_stable_in_sector_differs_across, super::pairwise_subjects);

async fn sector_identifier_uri(b: Backend) {
    let app = spawn(b).await;
    app.user("pairwise_u2").await;
    let uris = vec!["http://127.0.0.1:9/cb".to_string(), "http://localhost:9/cb".to_string()];
    let listed = sector_document(uris.clone()).await;
    // Redirect URIs on two hosts need a sector identifier listing them all.
    let c = idp::domain::clients::NewClient {
        name: "Two hosts".into(),
        subject_type: Some("pairwise".into()),
        redirect_uris: uris.clone(),
        ..Default::default()
    };
    assert!(app.state.clients.create(c.clone()).await.is_err());
    let unlisted = sector_document(vec![uris[0].clone()]).await;
    let missing = idp::domain::clients::NewClient { sector_identifier_uri: Some(unlisted), ..c.clone() };
    assert!(app.state.clients.create(missing).await.is_err(), "every redirect URI must be listed");
    let bad_type = idp::domain::clients::NewClient { subject_type: Some("secret".into()), ..c.clone() };
    assert!(app.state.clients.create(bad_type).await.is_err());

    // Listed: the sector is the document's host (127.0.0.1), shared with a
    // pairwise app registered there — even through its localhost redirect.
    let two_hosts =
        app.client(|n| *n = idp::domain::clients::NewClient { sector_identifier_uri: Some(listed), ..c }).await;
    let two_hosts = TestClient { redirect_uri: uris[1].clone(), ..two_hosts };
    let same_sector = pairwise(&app, "http://127.0.0.1:9/other", |_| {}).await;
    let elsewhere = pairwise(&app, "http://localhost:9/cb", |_| {}).await;
    let s = sub(&tokens(&app, &two_hosts, "pairwise_u2").await.0);
    assert_eq!(sub(&tokens(&app, &same_sector, "pairwise_u2").await.0), s);
    assert_ne!(sub(&tokens(&app, &elsewhere, "pairwise_u2").await.0), s);
}
both!(pairwise_sector_identifier_uri_checked, super::sector_identifier_uri);

/// `protocol.subject_type = "pairwise"`: clients that name no subject type
/// get pairwise subjects; one registered `public` keeps the account's.
async fn global_default(b: Backend) {
    let app = crate::identity::app_with(b, |c| c.protocol.subject_type = "pairwise".into()).await;
    let user = app.user("pairwise_u3").await;
    let default = app.confidential().await;
    let public = app.client(|c| c.subject_type = Some("public".into())).await;
    let s = sub(&tokens(&app, &default, "pairwise_u3").await.0);
    assert_ne!(s, user);
    assert_eq!(sub(&tokens(&app, &public, "pairwise_u3").await.0), user);
}
both!(pairwise_global_default, super::global_default);
