//! Mutual TLS (RFC 8705) behind a reverse proxy that terminates TLS: the
//! proxy passes the client certificate in a header (`protocol.mtls_cert_header`,
//! believed only from `trusted_proxies`; the server strips it from anyone
//! else before a handler sees it). Here: reading that certificate, the two
//! client authentication methods (`tls_client_auth` by a registered subject
//! DN or SAN, `self_signed_tls_client_auth` by a key of the client's JWKS)
//! and the `x5t#S256` confirmation of certificate-bound tokens.
use crate::crypto::{b64url, jws, sha256_b64};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// The registered subject DN (RFC 8705 §2.1.2).
pub const SUBJECT_DN: &str = "tls_client_auth_subject_dn";
pub const SAN_DNS: &str = "tls_client_auth_san_dns";
pub const SAN_URI: &str = "tls_client_auth_san_uri";
pub const SAN_IP: &str = "tls_client_auth_san_ip";
pub const SAN_EMAIL: &str = "tls_client_auth_san_email";
/// The client metadata of `tls_client_auth`: exactly one is registered.
pub const SETTINGS: &[&str] = &[SUBJECT_DN, SAN_DNS, SAN_URI, SAN_IP, SAN_EMAIL];
/// The confirmation member of a certificate-bound token (RFC 8705 §3.1).
pub const CNF_MEMBER: &str = "x5t#S256";

/// A client certificate as the proxy passed it (DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: Vec<u8>,
}

impl ClientCertificate {
    /// From the header value: URL-encoded PEM (nginx's
    /// `$ssl_client_escaped_cert`) or PEM. None unless it is one certificate
    /// that parses.
    pub fn from_header(value: &str) -> Option<Self> {
        if value.is_empty() || value.len() > 32 * 1024 {
            return None;
        }
        let pem = percent_decode(value.trim())?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
        if pem.label != "CERTIFICATE" {
            return None;
        }
        X509Certificate::from_der(&pem.contents).ok()?;
        Some(ClientCertificate { der: pem.contents })
    }

    /// The SHA-256 thumbprint of the DER certificate, base64url (`x5t#S256`).
    pub fn thumbprint(&self) -> String {
        sha256_b64(&self.der)
    }

    fn parsed(&self) -> Option<X509Certificate<'_>> {
        X509Certificate::from_der(&self.der).ok().map(|(_, c)| c)
    }

    /// Whether the certificate is within its validity period at `now`.
    fn valid_at(&self, now: i64) -> bool {
        self.parsed()
            .is_some_and(|c| c.validity().not_before.timestamp() <= now && now <= c.validity().not_after.timestamp())
    }

    /// `tls_client_auth` (RFC 8705 §2.1.2): the one registered subject DN or
    /// SAN value is the certificate's. The chain was checked by the proxy.
    fn matches_registration(&self, metadata: &Map<String, Value>) -> bool {
        let Some(cert) = self.parsed() else { return false };
        let registered = |k: &str| metadata.get(k).and_then(Value::as_str);
        if let Some(dn) = registered(SUBJECT_DN) {
            return dn_matches(dn, &cert.subject().to_string());
        }
        let Ok(Some(san)) = cert.subject_alternative_name() else { return false };
        let names = &san.value.general_names;
        let any = |f: &dyn Fn(&GeneralName<'_>) -> bool| names.iter().any(f);
        if let Some(want) = registered(SAN_DNS) {
            return any(&|n| matches!(n, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(want)));
        }
        if let Some(want) = registered(SAN_URI) {
            return any(&|n| matches!(n, GeneralName::URI(u) if *u == want));
        }
        if let Some(want) = registered(SAN_EMAIL) {
            return any(&|n| matches!(n, GeneralName::RFC822Name(e) if *e == want));
        }
        if let Some(want) = registered(SAN_IP).and_then(|ip| ip.parse::<IpAddr>().ok()) {
            return any(&|n| matches!(n, GeneralName::IPAddress(b) if ip_bytes(want) == *b));
        }
        false
    }

    /// The certificate's public key as a JWK (EC P-256 or RSA).
    fn public_jwk(&self) -> Option<Value> {
        let cert = self.parsed()?;
        match cert.public_key().parsed().ok()? {
            PublicKey::EC(point) => {
                let data = point.data();
                (data.len() == 65 && data[0] == 4).then(
                    || json!({ "kty": "EC", "crv": "P-256", "x": b64url(&data[1..33]), "y": b64url(&data[33..]) }),
                )
            }
            PublicKey::RSA(rsa) => {
                let strip = |b: &[u8]| b.iter().position(|x| *x != 0).map(|i| b[i..].to_vec()).unwrap_or_default();
                Some(json!({ "kty": "RSA", "n": b64url(&strip(rsa.modulus)), "e": b64url(&strip(rsa.exponent)) }))
            }
            _ => None,
        }
    }

    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): the certificate's key
    /// is one of the client's registered keys.
    fn matches_key(&self, keys: &[Value]) -> bool {
        let Some(thumb) = self.public_jwk().and_then(|j| jws::thumbprint(&j)) else { return false };
        keys.iter().any(|k| jws::thumbprint(k).as_deref() == Some(thumb.as_str()))
    }
}

/// Whether `cert` authenticates a client registered for `method` with this
/// metadata and these keys, at `now`.
pub(crate) fn authenticates(
    method: super::AuthMethod,
    cert: &ClientCertificate,
    metadata: &Map<String, Value>,
    keys: &[Value],
    now: i64,
) -> bool {
    if !cert.valid_at(now) {
        return false;
    }
    match method {
        super::AuthMethod::TlsClientAuth => cert.matches_registration(metadata),
        super::AuthMethod::SelfSignedTlsClientAuth => cert.matches_key(keys),
        _ => false,
    }
}

/// Checks the `tls_client_auth_*` metadata of a registration: exactly one
/// for `tls_client_auth`, none otherwise; values well formed.
pub(crate) fn check_registration(is_tls_client_auth: bool, metadata: &Map<String, Value>) -> Result<(), String> {
    let present: Vec<&str> = SETTINGS.iter().copied().filter(|k| metadata.contains_key(*k)).collect();
    for k in &present {
        let v = metadata.get(*k).and_then(Value::as_str).unwrap_or_default();
        if v.trim().is_empty() || v.len() > 1000 {
            return Err(format!("{k} must be a non-empty string"));
        }
        if *k == SAN_IP && v.parse::<IpAddr>().is_err() {
            return Err(format!("{k} `{v}` is not an IP address"));
        }
        if *k == SUBJECT_DN && rdns(v).is_none() {
            return Err(format!("{k} `{v}` is not a distinguished name like CN=app,O=Example"));
        }
    }
    match (is_tls_client_auth, present.len()) {
        (true, 1) | (false, 0) => Ok(()),
        (true, _) => Err(format!("tls_client_auth needs exactly one of {}", SETTINGS.join(", "))),
        (false, _) => Err(format!("{} only go with tls_client_auth", present.join(", "))),
    }
}

/// The `x5t#S256` a token is bound to, if any.
pub fn bound_thumbprint(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf").and_then(|c| c.get(CNF_MEMBER)).and_then(Value::as_str)
}

/// RFC 8705 §3: a certificate-bound token is used only with the
/// certificate it is bound to. The error is the `error_description` of an
/// `invalid_token` answer.
pub fn check_binding(claims: &Map<String, Value>, presented: Option<&ClientCertificate>) -> Result<(), &'static str> {
    match (bound_thumbprint(claims), presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err("the access token is bound to a client certificate that was not presented"),
        (Some(want), Some(cert)) if cert.thumbprint() == want => Ok(()),
        (Some(_), Some(_)) => Err("the access token is bound to another client certificate"),
    }
}

/// RDNs of a DN string, normalised: `type=value` with the type in lower
/// case and the value trimmed and in lower case (caseIgnoreMatch). Commas
/// escaped with `\` stay in the value.
fn rdns(dn: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for ch in dn.chars() {
        match ch {
            _ if escaped => {
                cur.push(ch);
                escaped = false;
            }
            '\\' => escaped = true,
            ',' | ';' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|rdn| {
            let (t, v) = rdn.split_once('=')?;
            let (t, v) = (t.trim().to_ascii_lowercase(), v.trim().to_lowercase());
            (!t.is_empty() && !v.is_empty()).then(|| format!("{t}={v}"))
        })
        .collect()
}

/// A registered DN matches the certificate's subject in RFC 4514 order
/// (most specific first) or in the certificate's own order.
fn dn_matches(registered: &str, subject: &str) -> bool {
    let (Some(want), Some(mut have)) = (rdns(registered), rdns(subject)) else { return false };
    if want == have {
        return true;
    }
    have.reverse();
    want == have
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// `%XX` decoding (no `+` for space: base64 has `+`).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_order_and_case_do_not_matter() {
        assert!(dn_matches("CN=app,O=Example,C=CN", "C=CN, O=Example, CN=app"));
        assert!(dn_matches("cn=App, o=Example, c=CN", "CN=app, O=Example, C=CN"));
        assert!(!dn_matches("CN=app,O=Example", "CN=other, O=Example"));
        assert!(!dn_matches("CN=app", "CN=app, O=Example"));
        assert!(rdns("not a dn").is_none());
    }

    #[test]
    fn percent_decoding_keeps_plus() {
        assert_eq!(percent_decode("a%20b+c%0A").unwrap(), b"a b+c\n");
        assert!(percent_decode("%4").is_none());
    }

    #[test]
    fn binding_needs_the_same_certificate() {
        let claims = json!({ "cnf": { "x5t#S256": "abc" } });
        let claims = claims.as_object().unwrap();
        assert!(check_binding(claims, None).is_err());
        assert!(check_binding(&Map::new(), None).is_ok());
    }
}
