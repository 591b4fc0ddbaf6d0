//! `/userinfo` (OIDC Core §5.3): GET or POST, token in the Authorization
//! header or (POST only) the form body — never both (RFC 6750 §2).
use super::form;
use crate::crypto::jws::Alg;
use crate::domain::clients::Client;
use crate::domain::clients::scopes::{ScopeSet, individually_released};
use crate::domain::identity::users::user_claims;
use crate::server::AppState;
use crate::store::entities::grant::Model as Grant;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub fn bearer_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res =
        (status, Json(serde_json::json!({ "error": code, "error_description": description }))).into_response();
    let challenge = format!("Bearer realm=\"idp\", error=\"{code}\", error_description=\"{description}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

pub async fn handler(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    // RFC 9449 §7.1: the `DPoP` scheme as well as `Bearer`.
    let header_token = bearer_token(&headers).or_else(|| super::dpop::dpop_token(&headers)).map(String::from);
    let body_token = if method == Method::POST && !body.is_empty() {
        match form::parse_body(&headers, &body).and_then(|p| form::one(&p, "access_token").map(|t| t.map(String::from)))
        {
            Ok(t) => t,
            Err(e) => {
                return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", &e.description);
            }
        }
    } else {
        None
    };
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", "token in both header and body");
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            let mut res = StatusCode::UNAUTHORIZED.into_response();
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"idp\""));
            return res;
        }
    };
    let (claims, grant) = match state.tokens.check_access_token_grant(&state.store, &token, state.clock.now()).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is invalid, expired or revoked",
            );
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    if let Err(res) = super::dpop::resource(&state, &headers, method.as_str(), "/userinfo", &token, &claims).await {
        return res;
    }
    let scope = ScopeSet::parse(claims.get("scope").and_then(Value::as_str).unwrap_or(""));
    let gid = claims.get("gid").and_then(Value::as_str);
    if !scope.contains("openid") || gid.is_none() {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token was not issued with the openid scope",
        );
    }
    let client_id = claims.get("client_id").and_then(Value::as_str).unwrap_or_default();
    let client = match state.clients.find_current(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the client no longer exists");
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    // The account comes from the token's grant (checked active just now),
    // and `sub` is the one the grant was issued under
    // (`domain::tokens::subjects`), never read back.
    let Some(grant) = grant else {
        return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the access token was revoked");
    };
    if claims.contains_key("act") {
        return delegated(&state, &grant, &scope, &client).await;
    }
    let user = match state.users.find(&grant.user_id).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => {
            return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the account is no longer active");
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    // Plugin claims: only while the client is still permitted and the
    // plugin enabled; a faulty plugin fails the request.
    // Claims asked for individually: only those a scope the client may
    // still have releases (OIDC Core §5.5, `scopes::individually_released`).
    let allowed = client.scopes();
    let requested = individually_released(grant.claims.as_deref(), "userinfo", &allowed);
    let mut out = user_claims(&user, &scope, &requested);
    match state.plugins.release(client_id, &user.id, grant.sector.as_deref(), &scope).await {
        Ok(released) => {
            for (name, value) in released.claims {
                out.entry(name).or_insert(value);
            }
        }
        Err(crate::plugins::PluginError::Failed(e)) => {
            tracing::error!("userinfo: {e}");
            return bearer_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "a plugin failed");
        }
        Err(e) => {
            tracing::error!("userinfo: {e}");
            return bearer_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later");
        }
    }
    out.insert("sub".into(), Value::from(crate::domain::tokens::subjects::of_grant(&grant)));
    answer(&state, &client, out)
}

/// The userinfo response: JSON, or a signed JWT (`application/jwt`, OIDC
/// Core §5.3.2) with `iss` and `aud` for a client that registered
/// `userinfo_signed_response_alg`.
fn answer(state: &AppState, client: &Client, out: serde_json::Map<String, Value>) -> Response {
    let mut res = match client.userinfo_alg.as_deref().and_then(Alg::parse) {
        Some(alg) => match state.tokens.userinfo_jwt(client, alg, out) {
            Ok(jwt) => ([(header::CONTENT_TYPE, "application/jwt")], jwt).into_response(),
            Err(e) => {
                tracing::error!("userinfo: {e}");
                return bearer_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing failed");
            }
        },
        None => Json(Value::Object(out)).into_response(),
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Userinfo of a token acting for an enterprise or a person (C4): the
/// principal's `sub`, `act` and the scope-gated description — checked
/// against the delegation now, so a revoked or expired one answers 401.
async fn delegated(state: &AppState, grant: &Grant, scope: &ScopeSet, client: &Client) -> Response {
    let acting = crate::domain::delegation::acting::for_grant(&state.store, grant, state.clock.now()).await;
    let acting = match acting {
        Ok(Ok(Some(a))) => a,
        Ok(_) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the delegation has ended"),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let mut out = serde_json::Map::new();
    acting.apply(&mut out, scope);
    answer(state, client, out)
}
