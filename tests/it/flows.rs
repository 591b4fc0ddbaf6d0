//! Whole sign-ins driven by a relying-party library nobody here wrote:
//! the `openidconnect` crate discovers us, builds the request, redeems the
//! code, verifies the ID token against our JWKS and calls userinfo.
use crate::both;
use crate::support::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};

async fn rp_flow(b: Backend, alg: &str) {
    let app = spawn(b).await;
    let alg_owned = alg.to_string();
    let client = app.client(|c| c.id_token_alg = Some(alg_owned)).await;
    app.user("lisi_2024").await;
    let http = api();
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let rp = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(client.id.clone()),
        client.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let end = Browser::new().run(&app, url.as_str(), "lisi_2024", PASSWORD).await;
    let params = end.params();
    assert_eq!(params.get("state"), Some(csrf.secret()));
    assert_eq!(params.get("iss"), Some(&app.base), "RFC 9207 iss");
    let token = rp
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = token.id_token().expect("id_token");
    let alg_enum = if alg == "RS256" {
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
    } else {
        CoreJwsSigningAlgorithm::EcdsaP256Sha256
    };
    let verifier = rp.id_token_verifier().set_allowed_algs(vec![alg_enum.clone()]);
    let claims = id_token.claims(&verifier, &nonce).expect("ID token verifies");
    assert_eq!(id_token.signing_alg().unwrap(), &alg_enum);
    // at_hash binds the access token to the ID token.
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = openidconnect::AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);
    let raw = jwt_claims(&id_token.to_string());
    for claim in ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash"] {
        assert!(raw.get(claim).is_some(), "ID token lacks {claim}: {raw}");
    }
    assert_eq!(raw["acr"], "urn:idp:loa:1");
    assert_eq!(raw["amr"][0], "pwd");
    let info: CoreUserInfoClaims = rp
        .user_info(token.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo for the same subject");
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("lisi_2024"));
    assert_eq!(info.email().map(|e| e.as_str()), Some("lisi_2024@example.org"));
    // Access token is an RFC 9068 JWT.
    let at = jwt_claims(token.access_token().secret());
    assert_eq!(at["client_id"], client.id);
    assert_eq!(at["sub"], claims.subject().as_str());
    // Refresh with the library; the new ID token verifies too and keeps auth_time.
    let refresh = token.refresh_token().expect("offline_access gives a refresh token").clone();
    let refreshed = rp.exchange_refresh_token(&refresh).unwrap().request_async(&http).await.unwrap();
    assert_ne!(refreshed.refresh_token().unwrap().secret(), refresh.secret(), "rotated");
    let again =
        rp.exchange_refresh_token(&RefreshToken::new(refresh.secret().clone())).unwrap().request_async(&http).await;
    assert!(again.is_err(), "the rotated refresh token must not work twice");
}

async fn es256(b: Backend) {
    rp_flow(b, "ES256").await
}
async fn rs256(b: Backend) {
    rp_flow(b, "RS256").await
}
both!(openidconnect_crate_es256_flow, super::es256);
both!(openidconnect_crate_rs256_flow, super::rs256);

async fn demo_relying_party(b: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let config = config_for(&b, port, &dir).await;
    // Seed first, as `idp serve --demo` does before it serves.
    let pre = idp::build_state(config.clone(), true).await.unwrap();
    let seeded = idp::demo::seed(&pre).await.unwrap().expect("first seed creates the demo");
    assert!(idp::demo::seed(&pre).await.unwrap().is_none(), "the password is printed only once");
    let app = spawn_with(config, listener, dir).await;
    let browser = Browser::new();
    // The demo RP lives on the provider itself, so the browser follows the
    // whole round trip and ends on the demo's result page.
    match browser.run(&app, &app.url("/demo"), &seeded.username, &seeded.password).await {
        End::Page(200, body) => {
            assert!(body.contains("id=\"claims\""), "{body}");
            assert!(body.contains("demo_user"), "userinfo shown: {body}");
            assert!(body.contains("urn:idp:loa:1"), "verified claims shown: {body}");
        }
        other => panic!("demo did not complete: {other:?}"),
    }
}
both!(demo_relying_party_signs_in, super::demo_relying_party);
