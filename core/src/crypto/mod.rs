//! Cryptographic building blocks: random tokens, digests, password hashing,
//! JWS compact serialisation and the signing key ring.
pub mod jws;
pub mod keys;
pub mod password;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A URL-safe random token with `bytes * 8` bits of entropy (≥128 bits by use).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    b64url(&buf)
}

/// Reads a secret kept in a file of its own, creating it (mode 0600, never
/// overwritten) with `generate` on first use: the master key and the
/// sandbox reader's key are made on the machine that uses them, so no
/// private key ships in the repository.
pub fn read_or_create_secret(path: &std::path::Path, generate: impl FnOnce() -> String) -> std::io::Result<String> {
    use std::io::Write;
    if path.exists() {
        return Ok(std::fs::read_to_string(path)?.trim().to_string());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let value = generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(value.as_bytes())?;
            Ok(value)
        }
        // Another process (a CLI beside the server) made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().to_string())
        }
        Err(e) => Err(e),
    }
}

pub fn sha256_b64(input: &[u8]) -> String {
    b64url(&Sha256::digest(input))
}

/// Keyed digest for high-entropy secrets (client secrets, codes): a fast
/// HMAC is enough because the input cannot be guessed, and it keeps the token
/// endpoint off slow password hashing.
#[derive(Clone)]
pub struct SecretHasher {
    key: [u8; 32],
}

impl SecretHasher {
    pub fn new(master: &[u8; 32]) -> Self {
        Self { key: derive_key(master, b"idp secret digest v1") }
    }

    pub fn digest(&self, purpose: &str, secret: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_mac());
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(secret.as_bytes());
        b64url(&mac.finalize().into_bytes())
    }

    /// Constant-time comparison of a presented secret with a stored digest.
    pub fn verify(&self, purpose: &str, secret: &str, stored: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.digest(purpose, secret).as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

/// HMAC accepts keys of any length, so construction cannot fail; this keeps
/// the type checker satisfied without an `expect`.
#[allow(clippy::panic)]
fn unreachable_mac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 accepts any key length")
}

/// Domain-separated sub-key from the master key (HMAC as a PRF).
pub fn derive_key(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable_mac());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// PKCE S256 (RFC 7636 §4.6).
pub fn pkce_s256(verifier: &str) -> String {
    sha256_b64(verifier.as_bytes())
}

/// `at_hash`: left half of SHA-256 of the access token (OIDC Core §3.1.3.6);
/// both ES256 and RS256 use SHA-256.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    b64url(&digest[..16])
}
