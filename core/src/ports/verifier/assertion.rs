//! In-person assertions (B4): a compact JWS (ES256, `typ` `in-person+jwt`)
//! signed by an ID-chip reader or certificate authority after it read the
//! document's chip in front of the person. Claims: `iss`, `jti`, `iat`,
//! `exp` (at most 15 minutes after `iat`), `doc_type`, `number`, `name`,
//! `valid_from`, `valid_to` (absent = long-term), `place`.
use super::{InPersonClaims, Outcome};
use crate::crypto::b64url_decode;
use crate::crypto::jws::{self, Alg, PrivateKey, PublicKey};
use crate::domain::identity::documents::{DocumentNumber, DocumentType, PersonName, Validity};
use serde_json::Value;

pub const TYP: &str = "in-person+jwt";
const MAX_LIFETIME: i64 = 15 * 60;

/// Parses a public EC P-256 JWK given as JSON text.
pub fn public_key(jwk: &str) -> Option<PublicKey> {
    let v: Value = serde_json::from_str(jwk).ok()?;
    match PublicKey::from_jwk(&v)? {
        k @ PublicKey::Es256(_) => Some(k),
        PublicKey::Rs256(_) | PublicKey::Ps256(_) => None,
    }
}

/// A signer from the `d` of an EC P-256 JWK (the sandbox reader's key).
pub fn signer_from_d(d: &str) -> Option<PrivateKey> {
    let bytes = b64url_decode(d)?;
    p256::ecdsa::SigningKey::from_slice(&bytes).ok().map(PrivateKey::Es256)
}

/// Signs an assertion (sandbox reader, tests, `idp identity sandbox-assertion`).
pub fn sign(signer: &PrivateKey, claims: &Value) -> String {
    jws::sign(signer, Alg::Es256, "reader", TYP, claims)
}

/// Verifies signature, type, issuer and lifetime, then parses the
/// document it attests. Replay (`jti`) is the caller's to check.
pub fn verify(token: &str, key: &PublicKey, issuer: &str, now: i64) -> Result<InPersonClaims, Outcome> {
    let bad = Outcome::BadAssertion;
    let parsed = jws::parse(token.trim()).ok_or(bad)?;
    if parsed.header.alg != "ES256" || parsed.header.typ.as_deref() != Some(TYP) {
        return Err(bad);
    }
    if !key.verify(parsed.signing_input.as_bytes(), &parsed.signature) {
        return Err(bad);
    }
    let c = &parsed.payload;
    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let int = |k: &str| c.get(k).and_then(Value::as_i64);
    if text("iss") != issuer {
        return Err(bad);
    }
    let (Some(iat), Some(exp)) = (int("iat"), int("exp")) else { return Err(bad) };
    if iat > now.saturating_add(60) || exp <= now || exp.saturating_sub(iat) > MAX_LIFETIME {
        return Err(bad);
    }
    let jti = text("jti");
    if jti.is_empty() || jti.len() > 128 {
        return Err(bad);
    }
    let kind = DocumentType::parse(&text("doc_type")).ok_or(bad)?;
    let number = DocumentNumber::parse(kind, &text("number")).map_err(|_| bad)?;
    let name = PersonName::parse(&text("name")).map_err(|_| bad)?;
    let valid_to = text("valid_to");
    let validity = Validity::parse(&text("valid_from"), &valid_to, valid_to.is_empty()).map_err(|_| bad)?;
    let place = text("place");
    if place.is_empty() || place.chars().count() > 100 {
        return Err(bad);
    }
    Ok(InPersonClaims { issuer: issuer.to_string(), jti, expires_at: exp, number, name, validity, place })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let d = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let key = PublicKey::Es256(*d.verifying_key());
        let signer = signer_from_d(&crate::crypto::b64url(&d.to_bytes())).unwrap();
        let claims = serde_json::json!({"iss": "r", "jti": "1", "iat": 1000, "exp": 1300, "doc_type": "resident_id",
            "number": "11010519491231002X", "name": "李秀", "valid_from": "2010-01-01", "place": "东城区政务服务中心"});
        let token = sign(&signer, &claims);
        let ok = verify(&token, &key, "r", 1100).unwrap();
        assert_eq!(ok.number.as_str(), "11010519491231002X");
        assert_eq!(ok.validity.end, None);
        assert!(verify(&token, &key, "other", 1100).is_err());
        assert!(verify(&token, &key, "r", 1400).is_err());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = crate::crypto::b64url(
            serde_json::json!({"iss": "r", "jti": "1", "iat": 1000, "exp": 1300, "doc_type": "resident_id",
            "number": "110101199003074514", "name": "张三", "valid_from": "2018-06-06", "valid_to": "2038-06-06", "place": "x"})
            .to_string()
            .as_bytes(),
        );
        parts[1] = &forged;
        assert!(verify(&parts.join("."), &key, "r", 1100).is_err());
    }
}
