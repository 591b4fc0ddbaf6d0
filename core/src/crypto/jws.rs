//! JWS compact serialisation (RFC 7515) over pre-parsed keys. The primitives
//! come from well-kept crates: ECDSA P-256 from `ring` on the hot path (its
//! constant-time assembly signs about ten times faster than the portable
//! RustCrypto `p256`, which remains for parsing and for keys made in tests),
//! RSASSA-PKCS1-v1_5 and RSASSA-PSS (PS256, as FAPI 2.0 asks) from
//! RustCrypto. Only the envelope is assembled here,
//! so the hot path never re-parses a key.
use super::{b64url, b64url_decode};
use p256::ecdsa::signature::Signer;
use rsa::BigUint;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Es256,
    Rs256,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256 (RFC 7518 §3.5).
    Ps256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            "PS256" => Some(Alg::Ps256),
            _ => None,
        }
    }
}

/// A parsed private key, ready to sign: the counterpart of [`PublicKey`]
/// (the key material only; `keys::SigningKey` adds its kid and purpose).
pub enum PrivateKey {
    Es256(p256::ecdsa::SigningKey),
    /// The same kind of key held by `ring`: what the provider's own signing
    /// keys become when loaded (`PrivateKey::es256`).
    Es256Ring(Box<ring::signature::EcdsaKeyPair>),
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Ps256(Box<rsa::pss::BlindedSigningKey<Sha256>>),
}

#[derive(Clone)]
pub enum PublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
    Ps256(Box<rsa::pss::VerifyingKey<Sha256>>),
}

impl PrivateKey {
    /// A P-256 key for signing on the hot path: held by `ring`, with the
    /// portable implementation as the fallback should `ring` refuse it.
    pub fn es256(k: &p256::ecdsa::SigningKey) -> PrivateKey {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let public = k.verifying_key().to_encoded_point(false);
        let rng = ring::rand::SystemRandom::new();
        match EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &k.to_bytes(),
            public.as_bytes(),
            &rng,
        ) {
            Ok(pair) => PrivateKey::Es256Ring(Box::new(pair)),
            Err(_) => PrivateKey::Es256(k.clone()),
        }
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            PrivateKey::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
            // JOSE wants the fixed r‖s form, which this algorithm gives.
            // Signing fails only when the system RNG does; the empty
            // signature then fails every verification instead of panicking.
            PrivateKey::Es256Ring(k) => {
                k.sign(&ring::rand::SystemRandom::new(), input).map(|s| s.as_ref().to_vec()).unwrap_or_default()
            }
            PrivateKey::Rs256(k) => {
                let sig: rsa::pkcs1v15::Signature = k.sign(input);
                rsa::signature::SignatureEncoding::to_vec(&sig)
            }
            // PSS is randomised: a fresh salt from the system RNG.
            PrivateKey::Ps256(k) => {
                use rsa::signature::RandomizedSigner;
                let sig: rsa::pss::Signature = k.sign_with_rng(&mut rand::rngs::OsRng, input);
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
            PublicKey::Ps256(_) => Alg::Ps256,
        }
    }

    /// Whether this key verifies `signature` under `alg`: an RSA key
    /// verifies both RS256 and PS256 (a JWK names a key, not a padding),
    /// an EC key only ES256.
    pub fn verifies(&self, alg: Alg, input: &[u8], signature: &[u8]) -> bool {
        if self.alg() == alg {
            return self.verify(input, signature);
        }
        let Some(rsa_key) = self.rsa_public() else {
            return false;
        };
        let other = match alg {
            Alg::Ps256 => PublicKey::Ps256(Box::new(rsa::pss::VerifyingKey::new(rsa_key.clone()))),
            Alg::Rs256 => PublicKey::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(rsa_key.clone()))),
            Alg::Es256 => return false,
        };
        other.verify(input, signature)
    }

    /// The RSA public key of an RS256 or PS256 key.
    pub fn rsa_public(&self) -> Option<&rsa::RsaPublicKey> {
        match self {
            PublicKey::Rs256(k) => Some(k.as_ref().as_ref()),
            PublicKey::Ps256(k) => Some(k.as_ref().as_ref()),
            PublicKey::Es256(_) => None,
        }
    }

    /// `verifies`, for a client's JWK: a key whose `alg` member names
    /// another algorithm than the JWS header is not used (RFC 7517 §4.4).
    pub fn jwk_verifies(jwk: &Value, parsed: &Parsed<'_>) -> bool {
        let Some(alg) = Alg::parse(&parsed.header.alg) else {
            return false;
        };
        if jwk.get("alg").and_then(Value::as_str).is_some_and(|a| a != alg.name()) {
            return false;
        }
        PublicKey::from_jwk(jwk).is_some_and(|k| k.verifies(alg, parsed.signing_input.as_bytes(), &parsed.signature))
    }

    pub fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            // `ring` verifies about five times faster than `p256`.
            PublicKey::Es256(k) => {
                use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
                let point = k.to_encoded_point(false);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_bytes()).verify(input, signature).is_ok()
            }
            PublicKey::Rs256(k) => match rsa::pkcs1v15::Signature::try_from(signature) {
                Ok(sig) => rsa::signature::Verifier::verify(k.as_ref(), input, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::Ps256(k) => match rsa::pss::Signature::try_from(signature) {
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
    /// The public key a DPoP proof carries (RFC 9449 §4.2).
    #[serde(default)]
    pub jwk: Option<Value>,
}

/// The JWK SHA-256 thumbprint (RFC 7638) of a public EC P-256 or RSA key:
/// the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let get = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match get("kty")? {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, get("crv")?, get("x")?, get("y")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, get("e")?, get("n")?),
        _ => return None,
    };
    Some(super::sha256_b64(canonical.as_bytes()))
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
    fn ring_and_p256_agree_on_es256() {
        use p256::ecdsa::signature::Verifier;
        let k = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let fast = PrivateKey::es256(&k);
        assert!(matches!(fast, PrivateKey::Es256Ring(_)), "ring took the key");
        let public = PublicKey::Es256(*k.verifying_key());
        let input = b"header.payload";
        // ring's signature verifies with p256, and p256's with ring.
        let sig = fast.sign(input);
        assert_eq!(sig.len(), 64, "JOSE r||s");
        let parsed = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        assert!(k.verifying_key().verify(input, &parsed).is_ok());
        let portable = PrivateKey::Es256(k.clone()).sign(input);
        assert!(public.verify(input, &portable));
        assert!(public.verify(input, &sig));
        // And neither accepts another input or a flipped bit.
        assert!(!public.verify(b"header.other", &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!public.verify(input, &bad));
        assert!(!public.verify(input, &sig[..63]));
    }

    #[test]
    fn ps256_signs_and_verifies_with_the_same_rsa_key_only_as_ps256() {
        let k = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let pss = PrivateKey::Ps256(Box::new(rsa::pss::BlindedSigningKey::new(k.clone())));
        let public = PublicKey::Ps256(Box::new(rsa::pss::VerifyingKey::new(k.to_public_key())));
        let as_rs = PublicKey::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(k.to_public_key())));
        let input = b"header.payload";
        let sig = pss.sign(input);
        assert!(public.verify(input, &sig));
        assert!(as_rs.verifies(Alg::Ps256, input, &sig), "an RSA JWK verifies PS256");
        assert!(!as_rs.verify(input, &sig), "a PSS signature is not PKCS#1 v1.5");
        assert!(!public.verify(b"header.other", &sig));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        for t in ["", "a", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "e30.W10.AA"] {
            assert!(parse(t).is_none() || t == "e30.e30.", "{t}");
        }
        // `{}`.`[]` — payload must be an object.
        assert!(parse("e30.W10.AA").is_none());
    }
}
