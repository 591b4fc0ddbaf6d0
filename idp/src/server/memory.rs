//! Giving freed memory back to the system (issue 16: idle RSS after load).
//!
//! glibc keeps what the program frees in its arenas for reuse. After a
//! burst of password sign-ins — argon2id takes 19 MiB per hash, several at
//! once, and glibc raises its mmap threshold after the first so the later
//! ones come from the arenas — tens of MiB stay resident that nothing
//! uses. Trimming the arenas every few seconds returns them; under load the
//! cost is a few page faults per interval, and hashing keeps reusing the
//! arenas between trims (so password sign-ins stay at the argon2id bound).
use std::time::Duration;

/// Allocations of this size or more get pages of their own from the system
/// and give them back when freed (glibc's mmap threshold, fixed here so it
/// does not rise after the first large free). An argon2id hash's 19 MiB
/// would otherwise stay in a thread's arena: trimming returns free memory
/// inside an arena, but not a free block at the top of a thread's arena.
pub const OWN_PAGES_FROM: usize = 1 << 20;

/// Sets the allocator up for a long-running server; once per process.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's own tuning parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_FROM as libc::c_int);
    }
}

/// How often free arena memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Runs for the life of the server.
pub async fn trim_periodically() {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        trim();
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
