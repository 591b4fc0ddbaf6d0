//! Password hashing with argon2id at OWASP parameters (m=19 MiB, t=2, p=1),
//! run on the blocking pool with bounded concurrency so a burst of logins
//! cannot starve the async runtime or exhaust memory.
use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
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

/// Whether `password` matches the PHC string `hash` (its own algorithm,
/// version and parameters). The working memory comes from [`POOL`], so a
/// verification under load costs the hashing alone, not 19 MiB of fresh
/// pages faulted in and zeroed each time.
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    let hashed = POOL.with_memory(blocks, |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    });
    hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// Argon2's working memory between hashes: at most this many sets are kept.
const SPARE_MAX: usize = 16;

/// Working memory of finished hashes, reused by the next ones;
/// [`MemoryPool::release_idle`] hands it back to the system once hashing
/// stops.
struct MemoryPool {
    spare: Mutex<Vec<Vec<Block>>>,
    /// Whether a hash ran since the last [`MemoryPool::release_idle`].
    hashed: AtomicBool,
}

/// The pool every verification draws on.
static POOL: MemoryPool = MemoryPool::new();

impl MemoryPool {
    const fn new() -> Self {
        Self { spare: Mutex::new(Vec::new()), hashed: AtomicBool::new(false) }
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.spare.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with `blocks` blocks of working memory, a spare set if one fits.
    fn with_memory<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        self.hashed.store(true, Ordering::Relaxed);
        let reused = {
            let mut spare = self.spare();
            spare.iter().position(|m| m.len() == blocks).map(|i| spare.swap_remove(i))
        };
        let mut memory = reused.unwrap_or_else(|| vec![Block::new(); blocks]);
        let result = f(&mut memory);
        let mut spare = self.spare();
        if spare.len() < SPARE_MAX {
            spare.push(memory);
        }
        result
    }

    /// Frees the spare working memory unless a hash ran since the last call.
    fn release_idle(&self) {
        if !self.hashed.swap(false, Ordering::Relaxed) {
            self.spare().clear();
        }
    }
}

/// Frees the spare working memory unless a hash ran since the last call
/// (the server calls this every second), so an idle server holds none
/// of it; the sets are larger than the allocator's mmap threshold, so
/// freeing them returns their pages at once.
pub fn release_idle_memory() {
    POOL.release_idle();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn verifies_our_hashes_and_refuses_others() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("correct horsf", &hash));
        assert!(!verify_blocking("", &hash));
        // Reused working memory changes nothing: again, both ways.
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("Correct horse", &hash));
        assert!(!verify_blocking("correct horse", "not a phc string"));
    }

    #[test]
    fn verifies_hashes_made_with_other_parameters() {
        // A hash stored under other parameters (smaller memory, Argon2i,
        // a longer output) verifies with its own, through the same pool.
        for (algorithm, m, t, len) in [(Algorithm::Argon2id, 8, 1, 32), (Algorithm::Argon2i, 64, 3, 48)] {
            let argon = Argon2::new(algorithm, Version::V0x13, Params::new(m, t, 1, Some(len)).unwrap());
            let hash = argon.hash_password_with_salt(b"other params", b"some salt, 16+ bytes").unwrap().to_string();
            assert!(verify_blocking("other params", &hash), "{hash}");
            assert!(!verify_blocking("other paramz", &hash), "{hash}");
        }
    }

    #[test]
    fn idle_memory_is_released() {
        let pool = MemoryPool::new();
        let filled = pool.with_memory(8, |memory| memory.len());
        assert_eq!(filled, 8);
        assert_eq!(pool.spare().len(), 1, "kept for the next hash");
        pool.with_memory(8, |_| ());
        assert_eq!(pool.spare().len(), 1, "the kept set was reused, not a second one made");
        pool.release_idle(); // a hash ran since the last call: kept
        assert_eq!(pool.spare().len(), 1);
        pool.release_idle(); // none since: released
        assert!(pool.spare().is_empty());
    }
}
