//! Protocol endpoints (OIDC Core, Discovery, RFC 6749/7009/7662/9068).
pub mod authorize;
pub mod ciba;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod flow;
pub mod form;
pub mod introspect;
pub mod logout;
pub mod mini_program;
pub mod mtls;
pub mod par;
pub mod register;
pub mod revoke;
pub mod token;
pub mod token_exchange;
pub mod userinfo;

/// Authenticates the client calling `path` (an endpoint of ours that takes
/// client authentication). A `private_key_jwt` assertion may name the
/// issuer, this endpoint or the token endpoint as its audience: RFC 9126 §2
/// (PAR) and CIBA §7.1 say so, and OIDC Core §9 tells clients to use the
/// token endpoint, which libraries such as authlib then send everywhere.
/// Only that choice is read from the unverified JWT; every check still runs
/// in `clients::authenticate`, the one place client authentication lives.
pub(crate) async fn authenticate_client(
    state: &crate::server::AppState,
    creds: &crate::domain::clients::PresentedCredentials,
    path: &str,
) -> crate::domain::error::DomainResult<crate::domain::clients::Client> {
    use serde_json::Value;
    let here = state.endpoint(path);
    let token = state.endpoint("/token");
    let names = |aud: &Value, url: &str| match aud {
        Value::String(a) => a == url,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(url)),
        _ => false,
    };
    let for_token = creds
        .assertion
        .as_deref()
        .and_then(crate::crypto::jws::parse)
        .and_then(|p| p.payload.get("aud").cloned())
        .is_some_and(|aud| names(&aud, &token) && !names(&aud, &here));
    let audience = if for_token { token } else { here };
    state.clients.authenticate(creds, &audience, &state.config.issuer).await
}
