//! A stable `sub` across an identity takeover (B5): a relying app sees the
//! same `sub` for a person before (account A) and after (account B) the
//! takeover; A becomes another, identity-less subject, and every token
//! issued under the old subjects stops working.
use crate::both;
use crate::identity::{ZHANG, app_with, citizen, face, sms_step, submit};
use crate::support::*;
use crate::tokens::refresh;
use serde_json::Value;

async fn signed_in(app: &TestApp, client: &TestClient, username: &str) -> (Value, Browser) {
    let (code, b) = sign_in(app, client, username, &[]).await;
    let res = redeem(app, client, &code, None).await;
    assert_eq!(res.status(), 200);
    (json(res).await, b)
}

fn id_claim(tokens: &Value, name: &str) -> String {
    jwt_claims(tokens["id_token"].as_str().unwrap())[name].as_str().unwrap().to_string()
}

async fn userinfo(app: &TestApp, tokens: &Value) -> (u16, Value) {
    let res = api().get(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await;
    let res = res.unwrap();
    let status = res.status().as_u16();
    (status, if status == 200 { json(res).await } else { Value::Null })
}

async fn introspect(app: &TestApp, client: &TestClient, token: &Value) -> Value {
    let form = [("token", token.as_str().unwrap())];
    json(
        api()
            .post(app.url("/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn prompt_none_with_hint(app: &TestApp, client: &TestClient, b: &Browser, hint: &Value) -> Option<String> {
    let url = auth_url(app, client, &[("prompt", "none"), ("id_token_hint", hint.as_str().unwrap())]);
    let res = b.http.get(url).send().await.unwrap();
    let params = query_of(&location(&res).unwrap());
    params.get("error").cloned()
}

async fn logout_tokens(app: &TestApp, received: &std::sync::Mutex<Vec<String>>, n: usize) -> Vec<Value> {
    for _ in 0..50 {
        if received.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got = received.lock().unwrap().clone();
    got.iter()
        .map(|t| Value::Object(app.state.tokens.verify_own(t, "logout+jwt", false).expect("signed logout token")))
        .collect()
}

async fn stable_subject_across_takeover(b: Backend) {
    let app = app_with(b, |_| {}).await;
    let (bc_url, received) = crate::logout::backchannel_receiver().await;
    let client = app.client(|c| c.backchannel_logout_uri = Some(bc_url.clone())).await;
    // Account A binds Zhang San's identity; the app knows the person by A's id.
    let (a_id, a_name, a_browser) = citizen(&app, &client, "13900000030").await;
    let flow = sms_step(&app, &a_browser, "/identity/verify", "13900000030").await;
    assert_eq!(submit(&app, &a_browser, "/identity/verify", &flow, &ZHANG).await.0, 200);
    let (a_before, _) = signed_in(&app, &client, &a_name).await;
    let person = id_claim(&a_before, "sub");
    assert_eq!(person, a_id, "an account that never took part in a takeover has sub = account id");
    assert_eq!(userinfo(&app, &a_before).await.1["sub"], person.as_str());
    let a_sid = id_claim(&a_before, "sid");

    // Account B claims the same identity and takes it over with a face check.
    let (b_id, b_name, b_browser) = citizen(&app, &client, "13900000031").await;
    let flow = sms_step(&app, &b_browser, "/identity/verify", "13900000031").await;
    assert_eq!(submit(&app, &b_browser, "/identity/verify", &flow, &ZHANG).await.0, 409);
    let (b_before, _) = signed_in(&app, &client, &b_name).await;
    assert_eq!(id_claim(&b_before, "sub"), b_id);
    // The face check runs through the citizen app (`scan_login`).
    let res = face(&app, &crate::scan::citizen(&app, &b_name).await.token, "jpeg").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // The app sees the same person: ID token, userinfo, introspection and
    // a refreshed ID token all say the person's sub, now through B.
    let (b_after, b_browser2) = signed_in(&app, &client, &b_name).await;
    assert_eq!(id_claim(&b_after, "sub"), person);
    let (status, info) = userinfo(&app, &b_after).await;
    assert_eq!((status, info["sub"].as_str()), (200, Some(person.as_str())));
    assert_eq!(info["name"], "张三");
    let at = introspect(&app, &client, &b_after["access_token"]).await;
    assert_eq!((at["active"].as_bool(), at["sub"].as_str()), (Some(true), Some(person.as_str())));
    let rt = introspect(&app, &client, &b_after["refresh_token"]).await;
    assert_eq!((rt["active"].as_bool(), rt["sub"].as_str()), (Some(true), Some(person.as_str())));
    let refreshed = json(refresh(&app, &client, b_after["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(id_claim(&refreshed, "sub"), person);

    // A is now a different, identity-less account with a sub of its own;
    // everything issued to A before is dead.
    assert_eq!(
        json(refresh(&app, &client, a_before["refresh_token"].as_str().unwrap()).await).await["error"],
        "invalid_grant"
    );
    assert_eq!(userinfo(&app, &a_before).await.0, 401);
    assert_eq!(introspect(&app, &client, &a_before["refresh_token"]).await["active"], false);
    assert_eq!(introspect(&app, &client, &a_before["access_token"]).await["active"], false);
    let (a_after, a_browser2) = signed_in(&app, &client, &a_name).await;
    let a_sub = id_claim(&a_after, "sub");
    assert!(a_sub != person && a_sub != b_id && a_sub != a_id, "{a_sub}");
    let (status, info) = userinfo(&app, &a_after).await;
    assert_eq!((status, info["sub"].as_str()), (200, Some(a_sub.as_str())));
    assert!(info.get("name").is_none_or(Value::is_null), "A no longer has the person's name: {info}");
    assert_eq!(introspect(&app, &client, &a_after["access_token"]).await["sub"], a_sub.as_str());
    // B's tokens from before were issued under its retired sub: dead too.
    assert_eq!(
        json(refresh(&app, &client, b_before["refresh_token"].as_str().unwrap()).await).await["error"],
        "invalid_grant"
    );

    // A sub sent back is mapped to the account holding it now: the person's
    // old ID token (issued through A) names B's session, not A's.
    assert_eq!(prompt_none_with_hint(&app, &client, &b_browser2, &a_before["id_token"]).await, None);
    assert_eq!(
        prompt_none_with_hint(&app, &client, &a_browser2, &a_before["id_token"]).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(prompt_none_with_hint(&app, &client, &a_browser2, &a_after["id_token"]).await, None);

    // Back-channel logout: A's sessions are ended under the sub the app
    // knew them by; B's app sessions under B's retired sub.
    let tokens = logout_tokens(&app, &received, 3).await;
    assert!(tokens.iter().any(|t| t["sid"] == a_sid.as_str() && t["sub"] == person.as_str()), "{tokens:?}");
    assert!(tokens.iter().any(|t| t["sub"] == b_id.as_str()), "{tokens:?}");
    assert!(tokens.iter().all(|t| t["sub"] != a_sub.as_str()), "{tokens:?}");
}
both!(stable_subject_across_takeover_both, super::stable_subject_across_takeover);

async fn exchange(app: &TestApp, client: &TestClient, tokens: &Value, delegation_id: &str) -> Value {
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", tokens["access_token"].as_str().unwrap()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("delegation", delegation_id),
        ])
        .send()
        .await
        .unwrap();
    json(res).await
}

/// A form on the personal centre's authorisations page (C6).
async fn authorisations(app: &TestApp, b: &Browser, fields: &[(&str, &str)]) {
    let page = b.http.get(app.url("/account/authorisations")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let res = b.http.post(app.url("/account/authorisations")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// A C6 grantee's identity taken over (B5): the delegation belongs to the
/// person, so after the takeover it is exercised through the taking account
/// and delegated tokens still name the person in `act.sub`; the account left
/// behind, now identity-less, can no longer act for the principal.
async fn acting_person_across_takeover(b: Backend) {
    use idp::domain::delegation;
    let app = app_with(b, |_| {}).await;
    let client = app
        .client(|c| {
            c.grant_types = Some(vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ])
        })
        .await;
    let alice = app
        .state
        .users
        .create(idp::domain::identity::users::NewUser {
            username: "alice_c6".into(),
            password: PASSWORD.into(),
            name: Some("王甲".into()),
            phone: Some("13900000040".into()),
            id_number: Some("11010119800202051X".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .sub;
    // Zhang San on account A; Alice grants him the right to act for her today.
    let (a_id, a_name, a_browser) = citizen(&app, &client, "13900000041").await;
    let flow = sms_step(&app, &a_browser, "/identity/verify", "13900000041").await;
    assert_eq!(submit(&app, &a_browser, "/identity/verify", &flow, &ZHANG).await.0, 200);
    let (_, alice_browser) = signed_in(&app, &client, "alice_c6").await;
    let today = delegation::today(app.state.clock.now()).to_string();
    let grant = [
        ("action", "grant"),
        ("grantee", "13900000041"),
        ("valid_from", &today),
        ("valid_to", &today),
        ("scopes", "openid profile"),
    ];
    // Granting needs a fresh re-verification (SMS), like a factor change.
    crate::factors::reverify(&app, &alice_browser, "13900000040").await;
    authorisations(&app, &alice_browser, &grant).await;
    let d = delegation::granted_by(&app.state.store, &alice, delegation::Kind::Person).await.unwrap().remove(0);
    authorisations(&app, &a_browser, &[("action", "accept"), ("id", &d.id)]).await;
    let (a_tokens, _) = signed_in(&app, &client, &a_name).await;
    let before = exchange(&app, &client, &a_tokens, &d.id).await;
    let claims = jwt_claims(before["access_token"].as_str().expect("exchanged before the takeover"));
    let person = a_id.clone();
    assert_eq!((claims["sub"].as_str(), claims["act"]["sub"].as_str()), (Some(alice.as_str()), Some(person.as_str())));

    // Account B takes the identity over with a face check.
    let (_, b_name, b_browser) = citizen(&app, &client, "13900000042").await;
    let flow = sms_step(&app, &b_browser, "/identity/verify", "13900000042").await;
    assert_eq!(submit(&app, &b_browser, "/identity/verify", &flow, &ZHANG).await.0, 409);
    signed_in(&app, &client, &b_name).await;
    // The face check runs through the citizen app (`scan_login`).
    let res = face(&app, &crate::scan::citizen(&app, &b_name).await.token, "jpeg").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // Through B the person still acts for Alice, named by the same subject.
    let (b_tokens, _) = signed_in(&app, &client, &b_name).await;
    let after = exchange(&app, &client, &b_tokens, &d.id).await;
    let claims = jwt_claims(after["access_token"].as_str().unwrap_or_else(|| panic!("B exchanges: {after}")));
    assert_eq!(claims["sub"], alice.as_str(), "the principal is unchanged");
    assert_eq!(claims["act"]["sub"], person.as_str(), "act.sub is the person's stable subject");
    let (status, info) = userinfo(&app, &after).await;
    assert_eq!((status, info["sub"].as_str()), (200, Some(alice.as_str())));
    // A, left without the identity, acts for no one; its old token is dead.
    let (a_after, _) = signed_in(&app, &client, &a_name).await;
    assert_eq!(exchange(&app, &client, &a_after, &d.id).await["error"], "invalid_target");
    assert!(exchange(&app, &client, &a_tokens, &d.id).await["access_token"].is_null());
    let moved = delegation::find(&app.state.store, &d.id).await.unwrap().unwrap();
    assert_ne!(moved.grantee_user_id, a_id);
}
both!(acting_person_across_takeover_both, super::acting_person_across_takeover);
