//! JWS compact serialisation (RFC 7515) over pre-parsed keys. The primitives
//! (ECDSA P-256, RSASSA-PKCS1-v1_5) come from RustCrypto; only the envelope
//! is assembled here, so the hot path never re-parses a key.
use super::{b64url, b64url_decode};
use p256::ecdsa::signature::{Signer, Verifier};
use rsa::BigUint;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Es256,
    Rs256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }
}

/// A parsed private key, ready to sign: the counterpart of [`PublicKey`]
/// (the key material only; `keys::SigningKey` adds its kid and purpose).
pub enum PrivateKey {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

#[derive(Clone)]
pub enum PublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
}

impl PrivateKey {
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            PrivateKey::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
            PrivateKey::Rs256(k) => {
                let sig: rsa::pkcs1v15::Signature = k.sign(input);
                rsa::signature::SignatureEncoding::to_vec(&sig)
            }
        }
    }
}

impl PublicKey {
    pub fn alg(&self) -> Alg {
        match self {
            PublicKey::Es256(_) => Alg::Es256,
            PublicKey::Rs256(_) => Alg::Rs256,
        }
    }

    pub fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Es256(k) => match p256::ecdsa::Signature::from_slice(signature) {
                Ok(sig) => k.verify(input, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::Rs256(k) => match rsa::pkcs1v15::Signature::try_from(signature) {
                Ok(sig) => rsa::signature::Verifier::verify(k.as_ref(), input, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }

    /// Parses a public JWK (EC P-256 or RSA). Anything else is `None`.
    pub fn from_jwk(jwk: &Value) -> Option<Self> {
        match jwk.get("kty")?.as_str()? {
            "EC" => {
                if jwk.get("crv")?.as_str()? != "P-256" {
                    return None;
                }
                let x: [u8; 32] = b64url_decode(jwk.get("x")?.as_str()?)?.try_into().ok()?;
                let y: [u8; 32] = b64url_decode(jwk.get("y")?.as_str()?)?.try_into().ok()?;
                let point = p256::EncodedPoint::from_affine_coordinates(
                    &p256::FieldBytes::from(x),
                    &p256::FieldBytes::from(y),
                    false,
                );
                p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok().map(PublicKey::Es256)
            }
            "RSA" => {
                let n = BigUint::from_bytes_be(&b64url_decode(jwk.get("n")?.as_str()?)?);
                let e = BigUint::from_bytes_be(&b64url_decode(jwk.get("e")?.as_str()?)?);
                let key = rsa::RsaPublicKey::new(n, e).ok()?;
                if rsa::traits::PublicKeyParts::size(&key) < 256 {
                    return None; // below 2048 bits
                }
                Some(PublicKey::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(key))))
            }
            _ => None,
        }
    }
}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of an EC P-256 key —
    /// the form other platforms publish their code-signing keys in.
    pub fn from_pem(pem: &str) -> Option<Self> {
        use base64::Engine;
        use p256::pkcs8::DecodePublicKey;
        let pem = pem.trim();
        let body = pem.strip_prefix("-----BEGIN PUBLIC KEY-----")?.strip_suffix("-----END PUBLIC KEY-----")?;
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        p256::ecdsa::VerifyingKey::from_public_key_der(&der).ok().map(PublicKey::Es256)
    }
}

#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
}

/// A parsed but not yet verified compact JWS.
pub struct Parsed<'a> {
    pub header: Header,
    pub payload: Value,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS. `None` for anything malformed.
pub fn parse(token: &str) -> Option<Parsed<'_>> {
    if token.len() > 16 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Header = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    let payload: Value = serde_json::from_slice(&b64url_decode(p)?).ok()?;
    if !payload.is_object() {
        return None;
    }
    let signature = b64url_decode(s)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Some(Parsed { header, payload, signing_input, signature })
}

/// Builds `header.payload.signature` with a header naming alg, kid and typ.
pub fn sign(signer: &PrivateKey, alg: Alg, kid: &str, typ: &str, payload: &Value) -> String {
    let header = serde_json::json!({ "alg": alg.name(), "kid": kid, "typ": typ });
    let mut out = b64url(header.to_string().as_bytes());
    out.push('.');
    out.push_str(&b64url(payload.to_string().as_bytes()));
    let signature = signer.sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&signature));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_do_not_parse() {
        for t in ["", "a", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "e30.W10.AA"] {
            assert!(parse(t).is_none() || t == "e30.e30.", "{t}");
        }
        // `{}`.`[]` — payload must be an object.
        assert!(parse("e30.W10.AA").is_none());
    }
}
