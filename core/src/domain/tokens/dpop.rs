//! DPoP (RFC 9449): proofs of possession of a client-held key, checked at
//! the token endpoint (binding tokens to the key's thumbprint, `cnf.jkt`)
//! and at resource endpoints (the token's key signed this request, `ath`).
//! Proof `jti`s are recorded in the database so a replay fails on every
//! node; server nonces are keyed digests of a time window, so any node can
//! check a nonce another issued.
use crate::crypto::{SecretHasher, jws, sha256_b64};
use crate::domain::error::OAuthError;
use crate::store::Store;
use sea_orm::DbErr;
use serde_json::{Map, Value};

/// The algorithms a proof may be signed with.
pub const ALGS: &[&str] = &["ES256", "RS256"];

/// How long one server nonce stays current; the previous one is accepted too.
const NONCE_WINDOW: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopError {
    /// `invalid_dpop_proof` (RFC 9449 §7.1): the proof is malformed or wrong.
    Invalid(&'static str),
    /// `use_dpop_nonce` (RFC 9449 §8): retry with the nonce in `DPoP-Nonce`.
    UseNonce,
    /// The token is bound but no DPoP was presented, or the wrong scheme.
    Required(&'static str),
}

impl DpopError {
    pub fn code(&self) -> &'static str {
        match self {
            DpopError::Invalid(_) => "invalid_dpop_proof",
            DpopError::UseNonce => "use_dpop_nonce",
            DpopError::Required(_) => "invalid_token",
        }
    }
    pub fn description(&self) -> &'static str {
        match self {
            DpopError::Invalid(d) | DpopError::Required(d) => d,
            DpopError::UseNonce => "a DPoP nonce is required; use the one in the DPoP-Nonce header",
        }
    }
    /// The error at the token endpoint (RFC 9449 §5).
    pub fn oauth(&self) -> OAuthError {
        match self {
            DpopError::Required(d) => OAuthError::invalid_request(*d),
            _ => OAuthError::new(self.code(), self.description()),
        }
    }
}

/// What a proof must match.
pub struct Expect<'a> {
    /// HTTP method, e.g. `POST`.
    pub htm: &'a str,
    /// The endpoint URL, without query or fragment.
    pub htu: &'a str,
    /// The access token presented with the proof at a resource endpoint.
    pub access_token: Option<&'a str>,
    /// The nonce the server requires, when it requires one: checked with
    /// [`nonce_valid`].
    pub nonce: Option<&'a SecretHasher>,
    pub now: i64,
    pub iat_window: i64,
}

/// The current server nonce.
pub fn nonce(hasher: &SecretHasher, now: i64) -> String {
    nonce_at(hasher, now.div_euclid(NONCE_WINDOW))
}

fn nonce_at(hasher: &SecretHasher, window: i64) -> String {
    hasher.digest("dpop_nonce", &window.to_string())
}

/// A nonce of the current or the previous window.
pub fn nonce_valid(hasher: &SecretHasher, presented: &str, now: i64) -> bool {
    let w = now.div_euclid(NONCE_WINDOW);
    [w, w - 1].iter().any(|w| nonce_at(hasher, *w) == presented)
}

/// Checks one proof (RFC 9449 §4.3) and returns the thumbprint of its key.
pub async fn check(db: &Store, proof: &str, expect: &Expect<'_>) -> Result<Result<String, DpopError>, DbErr> {
    let (jkt, jti, iat) = match check_signed(proof, expect) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    // A proof is used once, across every node (RFC 9449 §11.1).
    let key = format!("dpop:{jkt}:{jti}");
    if !crate::store::record_once(db, &key, iat.max(expect.now) + expect.iat_window + 60).await? {
        return Ok(Err(DpopError::Invalid("the DPoP proof was already used")));
    }
    Ok(Ok(jkt))
}

fn check_signed(proof: &str, expect: &Expect<'_>) -> Result<(String, String, i64), DpopError> {
    let bad = DpopError::Invalid;
    let parsed = jws::parse(proof).ok_or(bad("the DPoP proof is not a JWT"))?;
    if parsed.header.typ.as_deref() != Some("dpop+jwt") {
        return Err(bad("the DPoP proof must have typ dpop+jwt"));
    }
    if !ALGS.contains(&parsed.header.alg.as_str()) {
        return Err(bad("the DPoP proof alg is not supported"));
    }
    let jwk = parsed.header.jwk.as_ref().ok_or(bad("the DPoP proof has no jwk"))?;
    if jwk.get("d").is_some() || jwk.get("p").is_some() {
        return Err(bad("the DPoP jwk must not contain a private key"));
    }
    let key = jws::PublicKey::from_jwk(jwk).ok_or(bad("the DPoP jwk is not a supported public key"))?;
    if key.alg().name() != parsed.header.alg {
        return Err(bad("the DPoP proof alg does not match its key"));
    }
    if !key.verify(parsed.signing_input.as_bytes(), &parsed.signature) {
        return Err(bad("the DPoP proof signature is invalid"));
    }
    let claims: &Map<String, Value> = parsed.payload.as_object().ok_or(bad("malformed DPoP proof"))?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    let jti = s("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or(bad("the DPoP proof needs a jti"))?;
    if s("htm") != Some(expect.htm) {
        return Err(bad("the DPoP proof htm does not match the request method"));
    }
    if s("htu").map(strip_query) != Some(strip_query(expect.htu)) {
        return Err(bad("the DPoP proof htu does not match the request URL"));
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or(bad("the DPoP proof needs iat"))?;
    if (iat - expect.now).abs() > expect.iat_window {
        return Err(bad("the DPoP proof iat is outside the accepted window"));
    }
    if let Some(token) = expect.access_token {
        match s("ath") {
            Some(ath) if ath == sha256_b64(token.as_bytes()) => {}
            Some(_) => return Err(bad("the DPoP proof ath does not match the access token")),
            None => return Err(bad("the DPoP proof needs ath at a resource")),
        }
    }
    if let Some(hasher) = expect.nonce
        && !s("nonce").is_some_and(|n| nonce_valid(hasher, n, expect.now))
    {
        return Err(DpopError::UseNonce);
    }
    let jkt = jws::thumbprint(jwk).ok_or(bad("the DPoP jwk has no thumbprint"))?;
    Ok((jkt, jti.to_string(), iat))
}

fn strip_query(u: &str) -> &str {
    u.split(['?', '#']).next().unwrap_or(u)
}

/// The thumbprint an access token is bound to (`cnf.jkt`), if any.
pub fn bound_jkt(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str)
}

/// How the access token came to a resource endpoint.
pub struct Presented<'a> {
    /// The `Authorization` scheme was `DPoP` (not `Bearer`).
    pub dpop_scheme: bool,
    pub proof: Option<&'a str>,
    pub token: &'a str,
}

/// RFC 9449 §7: a bound token needs the `DPoP` scheme and a proof by its
/// key over this request with `ath`; an unbound token must not come with
/// the `DPoP` scheme. No bearer fallback for a bound token.
pub async fn check_resource(
    db: &Store,
    claims: &Map<String, Value>,
    presented: &Presented<'_>,
    expect: Expect<'_>,
) -> Result<Result<(), DpopError>, DbErr> {
    match (bound_jkt(claims), presented.dpop_scheme) {
        (None, false) => Ok(Ok(())),
        (None, true) => Ok(Err(DpopError::Required("the access token is not DPoP-bound"))),
        (Some(_), false) => Ok(Err(DpopError::Required("a DPoP-bound token needs the DPoP scheme and a proof"))),
        (Some(jkt), true) => {
            let Some(proof) = presented.proof else {
                return Ok(Err(DpopError::Invalid("a DPoP proof is required")));
            };
            let expect = Expect { access_token: Some(presented.token), ..expect };
            Ok(match check(db, proof, &expect).await? {
                Ok(k) if k == jkt => Ok(()),
                Ok(_) => Err(DpopError::Invalid("the DPoP proof key is not the one the token is bound to")),
                Err(e) => Err(e),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_of_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",
            "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(thumb(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    fn thumb(j: &Value) -> String {
        jws::thumbprint(j).unwrap_or_default()
    }

    #[test]
    fn query_is_ignored_in_htu() {
        assert_eq!(strip_query("https://a.example/token?x=1#f"), "https://a.example/token");
    }
}
