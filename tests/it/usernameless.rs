//! Usernameless sign-in with a discoverable passkey: the
//! sign-in page asks for no account name; the authenticator names the
//! account with the credential id and user handle it stored.
//!
//! SoftPasskey (webauthn-authenticator-rs 0.6) cannot store resident keys:
//! it refuses `requireResidentKey` and answers without a user handle. So
//! the test plays the part a resident-key authenticator plays internally —
//! it remembers the credential id and the user handle from registration,
//! points SoftPasskey at its own credential and puts the user handle into
//! the answer. What the provider receives is exactly what a discoverable
//! authenticator sends: an assertion over a challenge that named no
//! credential, with the user handle.
use crate::both;
use crate::factors::{citizen, get, login_page, password_sign_in, post, reverify, spawn_localhost};
use crate::support::*;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// A SoftPasskey plus what a resident-key authenticator would store.
struct Resident {
    key: SoftPasskey,
    cred_id: Value,
    user_handle: Value,
}

async fn register(app: &TestApp, username: &str, phone: &str) -> Resident {
    let b = password_sign_in(app, username).await;
    let (csrf, flow) = reverify(app, &b, phone).await;
    let res = post(&b, app.url("/account/security/passkey/begin"), &[("csrf", &csrf), ("flow", &flow)]).await;
    assert_eq!(res.status(), 200);
    let begun: Value = res.json().await.unwrap();
    let options = &begun["options"]["publicKey"];
    assert_eq!(options["authenticatorSelection"]["residentKey"], "preferred", "a discoverable credential is asked for");
    assert_eq!(options["authenticatorSelection"]["requireResidentKey"], false);
    let user_handle = options["user"]["id"].clone();
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let mut key = SoftPasskey::new(true);
    let cred = key.do_registration(Url::parse(&app.base).unwrap(), ccr).unwrap();
    let credential = serde_json::to_string(&cred).unwrap();
    let cred_id = serde_json::to_value(&cred).unwrap()["rawId"].clone();
    let ceremony = begun["ceremony"].as_str().unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("flow", &flow),
        ("ceremony", ceremony),
        ("name", "key"),
        ("credential", &credential),
    ];
    assert_eq!(post(&b, app.url("/account/security/passkey"), &form).await.status(), 303);
    Resident { key, cred_id, user_handle }
}

/// Begins a usernameless ceremony: (ceremony, raw options).
async fn begin(app: &TestApp, b: &Browser, req: &str, csrf: &str) -> (String, Value) {
    let res = post(b, app.url("/login/passkey/begin"), &[("csrf", csrf), ("req", req), ("username", "")]).await;
    assert_eq!(res.status(), 200);
    let begun: Value = res.json().await.unwrap();
    (begun["ceremony"].as_str().unwrap().to_string(), begun["options"].clone())
}

/// The authenticator's answer: its own credential, signed over the
/// challenge, carrying `handle` as the user handle.
fn answer(app: &TestApp, who: &mut Resident, options: &Value, handle: Option<&Value>) -> String {
    let mut options = options.clone();
    options["publicKey"]["allowCredentials"] = json!([{ "type": "public-key", "id": who.cred_id }]);
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let signed = who.key.do_authentication(Url::parse(&app.base).unwrap(), rcr).unwrap();
    let mut v = serde_json::to_value(&signed).unwrap();
    v["response"]["userHandle"] = handle.cloned().unwrap_or(Value::Null);
    v.to_string()
}

async fn finish(
    app: &TestApp,
    b: &Browser,
    req: &str,
    csrf: &str,
    ceremony: &str,
    credential: &str,
) -> reqwest::Response {
    let form = [("req", req), ("csrf", csrf), ("ceremony", ceremony), ("credential", credential)];
    post(b, app.url("/login/passkey"), &form).await
}

async fn usernameless(backend: Backend) {
    let app = spawn_localhost(backend).await;
    let client = app.confidential().await;
    let alice = citizen(&app, "rk_alice", "13700003333").await;
    citizen(&app, "rk_bob01", "13700004444").await;
    let mut alice_key = register(&app, "rk_alice", "13700003333").await;
    let mut bob_key = register(&app, "rk_bob01", "13700004444").await;

    // No account typed: the challenge names no credential, marked for
    // conditional mediation; the answer signs Alice in at the app.
    let (b, req, csrf) = login_page(&app, &client).await;
    let (ceremony, options) = begin(&app, &b, &req, &csrf).await;
    assert_eq!(options["publicKey"]["allowCredentials"].as_array().map_or(0, Vec::len), 0, "{options}");
    assert_eq!(options["mediation"], "conditional");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let handle = alice_key.user_handle.clone();
    let credential = answer(&app, &mut alice_key, &options, Some(&handle));
    let res = finish(&app, &b, &req, &csrf, &ceremony, &credential).await;
    assert_eq!(res.status(), 303);
    let end = b.run(&app, &location(&res).unwrap(), "", "").await;
    let tokens = json(redeem(&app, &client, &end.code(), None).await).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], alice.as_str());
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert!(amr.contains(&"swk".to_string()) && !amr.contains(&"pwd".to_string()), "{amr:?}");
    // Taken once: the same answer cannot be replayed.
    assert_eq!(finish(&app, &b, &req, &csrf, &ceremony, &credential).await.status(), 400);

    // Bob's key claiming Alice's user handle is refused: the handle must be
    // the one of the account that registered the credential.
    let (b, req, csrf) = login_page(&app, &client).await;
    let (ceremony, options) = begin(&app, &b, &req, &csrf).await;
    let forged = answer(&app, &mut bob_key, &options, Some(&handle));
    assert_eq!(finish(&app, &b, &req, &csrf, &ceremony, &forged).await.status(), 401);
    assert_eq!(get(&b, app.url("/account")).await.0, 303, "not signed in");
    // An answer without a user handle (a non-discoverable credential) too.
    let (ceremony, options) = begin(&app, &b, &req, &csrf).await;
    let bare = answer(&app, &mut bob_key, &options, None);
    assert_eq!(finish(&app, &b, &req, &csrf, &ceremony, &bare).await.status(), 401);
    // Bob with his own handle is Bob; a usernameless ceremony started in
    // another browser cannot be finished in this one.
    let (other, other_req, other_csrf) = login_page(&app, &client).await;
    let (foreign, foreign_options) = begin(&app, &other, &other_req, &other_csrf).await;
    let bob_handle = bob_key.user_handle.clone();
    let stolen = answer(&app, &mut bob_key, &foreign_options, Some(&bob_handle));
    assert_eq!(finish(&app, &b, &req, &csrf, &foreign, &stolen).await.status(), 400);
    let (ceremony, options) = begin(&app, &b, &req, &csrf).await;
    let honest = answer(&app, &mut bob_key, &options, Some(&bob_handle));
    assert_eq!(finish(&app, &b, &req, &csrf, &ceremony, &honest).await.status(), 303);
    assert_eq!(get(&b, app.url("/account")).await.0, 200);

    // The username-first path is unchanged: a typed account gets a
    // challenge naming that account's credential.
    let (b, req, csrf) = login_page(&app, &client).await;
    let res =
        post(&b, app.url("/login/passkey/begin"), &[("csrf", &csrf), ("req", &req), ("username", "rk_alice")]).await;
    let begun: Value = res.json().await.unwrap();
    assert_eq!(begun["options"]["publicKey"]["allowCredentials"][0]["id"], alice_key.cred_id);
}
both!(usernameless_passkey_sign_in, super::usernameless);
