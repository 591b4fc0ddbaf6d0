//! Mutual TLS (RFC 8705) at the HTTP edge: the client certificate a
//! trusted proxy passed in `protocol.mtls_cert_header`. The server strips
//! that header from every other peer before any handler runs
//! ([`strip_untrusted`]), so what is read here came from a trusted proxy.
//! The rules are `domain::clients::mtls`.
use super::error::ApiError;
use super::form::{self, Params};
use crate::domain::clients::PresentedCredentials;
use crate::domain::clients::mtls::{self, ClientCertificate};
use crate::server::AppState;
use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The client certificate of this request, if a trusted proxy passed one
/// that parses (a second header is not believed).
pub fn certificate(state: &AppState, headers: &HeaderMap) -> Option<ClientCertificate> {
    let name = state.config.protocol.mtls_cert_header.as_deref()?;
    let mut all = headers.get_all(name).iter();
    let value = all.next()?.to_str().ok()?;
    if all.next().is_some() {
        return None;
    }
    ClientCertificate::from_header(value)
}

/// Removes the certificate header unless the socket peer is a trusted
/// proxy: from anyone else it is ignored.
pub fn strip_untrusted(state: &AppState, peer: Option<std::net::IpAddr>, headers: &mut HeaderMap) {
    if let Some(name) = state.config.protocol.mtls_cert_header.as_deref()
        && !peer.is_some_and(|ip| state.proxies.trusts(ip))
    {
        headers.remove(name);
    }
}

/// The client credentials of a request (Authorization header, form body)
/// with the certificate a trusted proxy passed: what every endpoint that
/// authenticates clients hands to `ClientService::authenticate`.
pub fn credentials(state: &AppState, headers: &HeaderMap, params: &Params) -> Result<PresentedCredentials, ApiError> {
    let mut creds = form::credentials(headers, params)?;
    creds.certificate = certificate(state, headers);
    Ok(creds)
}

/// At a resource endpoint: a certificate-bound token needs the same
/// certificate (RFC 8705 §3). The error is the description of the
/// `invalid_token` answer (a `Bearer` challenge).
pub fn check_resource(state: &AppState, headers: &HeaderMap, claims: &Map<String, Value>) -> Result<(), &'static str> {
    if mtls::bound_thumbprint(claims).is_none() {
        return Ok(());
    }
    mtls::check_binding(claims, certificate(state, headers).as_ref())
}
