//! Giving freed memory back to the system (issue 16: idle RSS after load).
//!
//! glibc keeps what the program frees in its arenas for reuse, and after
//! the first large free it raises its mmap threshold so that later large
//! blocks come from the arenas too: after a burst of password sign-ins
//! (argon2id takes 19 MiB per hash, several at once) tens of MiB would stay
//! resident that nothing uses. So the threshold is fixed, argon2id's
//! working memory is pooled by the hasher itself while sign-ins go on (a
//! fresh 19 MiB per hash would cost its page faults every time) and freed
//! when they stop, and the arenas are trimmed every few seconds.
use std::time::Duration;

/// Allocations of this size or more get pages of their own from the system
/// and give them back when freed (glibc's mmap threshold, fixed here so it
/// does not rise after the first large free). An argon2id hash's 19 MiB
/// would otherwise stay in a thread's arena: trimming returns free memory
/// inside an arena, but not a free block at the top of a thread's arena.
pub const OWN_PAGES_FROM: usize = 1 << 20;

/// Sets the allocator up for a long-running server. `main` calls it before
/// the runtime starts its threads, and `serve_until` again for servers
/// that tests start; setting the same values twice changes nothing.
///
/// Besides the threshold, glibc may give each thread that allocates an
/// arena of its own (up to eight per core), and each arena keeps what was
/// freed in it. The server's threads (async workers, the blocking pool,
/// one per SQLite connection) share one arena per core instead: small
/// blocks come from each thread's own cache without the arena's lock
/// anyway. Measured with the flows bench (code flow and password sign-ins,
/// then 35 s idle): heap and stacks 14.4 → 13.1 MiB, throughput unchanged
/// within the machine's noise.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        // SAFETY: mallopt only changes glibc's own tuning parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_FROM as libc::c_int);
            libc::mallopt(libc::M_ARENA_MAX, libc::c_int::try_from(cores).unwrap_or(2));
        }
    }
}

/// How often free arena memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// How often the password hasher's pooled working memory is looked at: it
/// is freed one to two of these after the last hash.
const POOL_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Runs for the life of the server.
pub async fn trim_periodically() {
    let mut tick = tokio::time::interval(POOL_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let trim_every = (TRIM_EVERY.as_secs() / POOL_CHECK_EVERY.as_secs()).max(1);
    for n in 1u64.. {
        tick.tick().await;
        crate::crypto::password::release_idle_memory();
        if n % trim_every == 0 {
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks;
    // it takes no pointers from us and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
