//! DPoP (RFC 9449) at the HTTP edge: reading the `DPoP` header and the
//! `DPoP` authorization scheme, and the `DPoP-Nonce` header. The checks
//! themselves are `domain::tokens::dpop`.
use super::error::ApiError;
use crate::domain::OAuthError;
use crate::domain::clients::Client;
use crate::domain::tokens::dpop::{self, DpopError, Expect, Presented};
use crate::server::AppState;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The one `DPoP` header, if sent; two are an error (RFC 9449 §4.3).
fn proof(headers: &HeaderMap) -> Result<Option<&str>, DpopError> {
    let mut all = headers.get_all("dpop").iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(DpopError::Invalid("exactly one DPoP header is allowed"));
    }
    first.map(|v| v.to_str().map_err(|_| DpopError::Invalid("the DPoP header is not text"))).transpose()
}

fn expect<'a>(state: &'a AppState, htm: &'a str, htu: &'a str) -> Expect<'a> {
    Expect {
        htm,
        htu,
        access_token: None,
        nonce: state.config.protocol.use_dpop_nonce.then_some(&state.hasher),
        now: state.clock.now(),
        iat_window: state.config.protocol.dpop_iat_window,
    }
}

/// At the token endpoint: the thumbprint of a valid proof, none when no
/// proof was sent by a client that need not send one.
pub async fn token_proof(state: &AppState, headers: &HeaderMap, client: &Client) -> Result<Option<String>, ApiError> {
    let proof = proof(headers).map_err(|e| ApiError::OAuth(e.oauth()))?;
    let Some(proof) = proof else {
        if client.requires_dpop() {
            return Err(OAuthError::invalid_request("this client must present a DPoP proof").into());
        }
        return Ok(None);
    };
    let htu = state.endpoint("/token");
    match dpop::check(&state.store, proof, &expect(state, "POST", &htu)).await? {
        Ok(jkt) => Ok(Some(jkt)),
        Err(e) => Err(ApiError::OAuth(e.oauth())),
    }
}

/// At `/par` (RFC 9449 §10.1): the thumbprint of a valid proof, if one was
/// sent; it binds the code as `dpop_jkt` does.
pub async fn par_proof(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(proof) = proof(headers).map_err(|e| ApiError::OAuth(e.oauth()))? else {
        return Ok(None);
    };
    let htu = state.endpoint("/par");
    match dpop::check(&state.store, proof, &expect(state, "POST", &htu)).await? {
        Ok(jkt) => Ok(Some(jkt)),
        Err(e) => Err(ApiError::OAuth(e.oauth())),
    }
}

/// Adds a fresh `DPoP-Nonce` when the server requires nonces.
pub fn with_nonce(state: &AppState, mut res: Response) -> Response {
    if state.config.protocol.use_dpop_nonce
        && let Ok(v) = HeaderValue::from_str(&dpop::nonce(&state.hasher, state.clock.now()))
    {
        res.headers_mut().insert("dpop-nonce", v);
    }
    res
}

/// The token of an `Authorization: DPoP <token>` header.
pub fn dpop_token(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("dpop").then_some(token.trim())
}

/// At a resource endpoint (`path` under the issuer): a bound token needs the
/// `DPoP` scheme and a proof by its key (RFC 9449 §7); the error response
/// is a `DPoP` challenge. A certificate-bound token needs its certificate
/// (RFC 8705 §3, a `Bearer` challenge).
pub async fn resource(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    token: &str,
    claims: &Map<String, Value>,
) -> Result<(), Response> {
    let presented = match proof(headers) {
        Ok(p) => Presented { dpop_scheme: dpop_token(headers).is_some(), proof: p, token },
        Err(e) => return Err(challenge(state, &e)),
    };
    // RFC 8705 §3: a certificate-bound token, only with its certificate.
    super::mtls::check_resource(state, headers, claims)
        .map_err(|why| super::userinfo::bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", why))?;
    let htu = state.endpoint(path);
    match dpop::check_resource(&state.store, claims, &presented, expect(state, method, &htu)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(challenge(state, &e)),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE.into_response()),
    }
}

fn challenge(state: &AppState, e: &DpopError) -> Response {
    let (code, description) = (e.code(), e.description());
    let mut res =
        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({ "error": code, "error_description": description })))
            .into_response();
    let algs = dpop::ALGS.join(" ");
    let value = format!("DPoP error=\"{code}\", error_description=\"{description}\", algs=\"{algs}\"");
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    with_nonce(state, res)
}

/// For the app and plugin APIs: the access token of an `Authorization:
/// Bearer` or `DPoP` header, with the DPoP rules (RFC 9449 §7) applied to a
/// live token at `method path`, so a bound token is never taken as a bearer
/// token. A dead token passes through for the caller's own `invalid_token`.
pub async fn resource_token<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    method: &str,
    path: &str,
) -> Result<Option<&'a str>, Response> {
    let Some(token) = super::userinfo::bearer_token(headers).or_else(|| dpop_token(headers)) else {
        return Ok(None);
    };
    match state.tokens.check_access_token(&state.store, token, state.clock.now()).await {
        Ok(Some(claims)) => resource(state, headers, method, path, token, &claims).await.map(|()| Some(token)),
        _ => Ok(Some(token)),
    }
}
