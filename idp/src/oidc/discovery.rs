//! OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414) and the JWKS.
use crate::config::Config;
use crate::domain::clients::scopes;
use crate::server::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the provider signs with and verifies (`crypto::jws::Alg`).
const SIGNING_ALGS: &[&str] = &["ES256", "PS256", "RS256"];

pub fn document(config: &Config) -> Value {
    let mut doc = base_document(config);
    // RFC 7591: only when the policy opens registration.
    if config.protocol.registration.enabled
        && let Some(map) = doc.as_object_mut()
    {
        let endpoint = format!("{}{}", config.issuer, crate::domain::clients::registration::ENDPOINT);
        map.insert("registration_endpoint".into(), endpoint.into());
    }
    // RFC 8705 §3.3 / §2.1: only when a trusted proxy passes certificates.
    // The same endpoints serve mutual TLS: no `mtls_endpoint_aliases`.
    if config.protocol.mtls_cert_header.is_some()
        && let Some(map) = doc.as_object_mut()
    {
        map.insert("tls_client_certificate_bound_access_tokens".into(), true.into());
        for field in [
            "token_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_methods_supported",
            "introspection_endpoint_auth_methods_supported",
        ] {
            if let Some(list) = map.get_mut(field).and_then(Value::as_array_mut) {
                list.extend(MTLS_METHODS.iter().map(|m| Value::from(*m)));
            }
        }
    }
    doc
}

/// The client authentication methods of RFC 8705 §2.
const MTLS_METHODS: &[&str] = &["tls_client_auth", "self_signed_tls_client_auth"];

fn base_document(config: &Config) -> Value {
    let e = |p: &str| format!("{}{}", config.issuer, p);
    let acr: Vec<String> = (1..=4).map(|n| format!("{}{}", config.acr_prefix, n)).collect();
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "jwks_uri": e("/jwks"),
        "revocation_endpoint": e("/revoke"),
        "introspection_endpoint": e("/introspect"),
        "end_session_endpoint": e("/logout"),
        "scopes_supported": scopes::SUPPORTED.iter().chain(scopes::ADMIN_GRANTED).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", crate::oidc::token_exchange::GRANT_TYPE, crate::domain::tokens::device::GRANT_TYPE, crate::domain::tokens::ciba::GRANT_TYPE],
        // RFC 8628.
        "device_authorization_endpoint": e("/device_authorization"),
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        // OIDC Core §5.3.2: signed userinfo for clients that register an alg.
        "userinfo_signing_alg_values_supported": ["none", "ES256", "PS256", "RS256"],
        // RFC 9701: JWT introspection responses.
        "introspection_signing_alg_values_supported": SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": scopes::all_claims(),
        "claims_parameter_supported": true,
        // RFC 9101: signed request objects by value and through PAR only;
        // a `request_uri` is accepted only as one /par issued.
        "request_parameter_supported": true,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "request_object_signing_alg_values_supported": crate::domain::tokens::request_object::ALGS,
        // RFC 9126.
        "pushed_authorization_request_endpoint": e("/par"),
        "require_pushed_authorization_requests": config.protocol.require_pushed_authorization_requests || config.protocol.fapi2,
        // RFC 9449.
        "dpop_signing_alg_values_supported": crate::domain::tokens::dpop::ALGS,
        "acr_values_supported": acr,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": config.i18n.locales,
        "claims_locales_supported": ["zh-CN"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        // CIBA Core §4: poll and ping; no signed requests, no user codes.
        "backchannel_authentication_endpoint": e("/bc-authorize"),
        "backchannel_token_delivery_modes_supported": crate::domain::tokens::ciba::MODES,
        "backchannel_user_code_parameter_supported": false,
    })
}

pub async fn handler(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")],
        state.discovery.clone(),
    )
        .into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")],
        state.keys.snapshot().jwks.clone(),
    )
        .into_response()
}

/// Adds the scopes and claims of loaded plugins, so relying apps
/// can discover what they may ask an administrator for.
pub fn with_plugins(mut doc: Value, plugins: &crate::plugins::Registry) -> Value {
    for (field, extra) in [("scopes_supported", plugins.scope_names()), ("claims_supported", plugins.claim_names())] {
        if let Some(list) = doc.get_mut(field).and_then(Value::as_array_mut) {
            list.extend(extra.into_iter().map(Value::from));
        }
    }
    doc
}
