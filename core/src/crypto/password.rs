//! Password hashing with argon2id at OWASP parameters (m=19 MiB, t=2, p=1),
//! run on the blocking pool with bounded concurrency so a burst of logins
//! cannot starve the async runtime or exhaust memory.
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordService {
    permits: Arc<Semaphore>,
    /// A valid hash of a random password, verified against when the account
    /// does not exist so timing does not reveal which accounts exist.
    dummy_hash: Arc<String>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    argon2().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

impl PasswordService {
    pub fn new() -> anyhow::Result<Self> {
        let concurrency = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) * 2;
        let dummy = hash_blocking(&super::random_token(16))?;
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency)), dummy_hash: Arc::new(dummy) })
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// Verifies against `hash`, or against a dummy hash when there is none.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let exists = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash)).await?;
        Ok(ok && exists)
    }
}
