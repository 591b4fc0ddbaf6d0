//! The provider's notion of "now". Everything time-limited that tests must
//! drive (SMS code expiry, per-hour and per-day limits) reads this clock, so
//! tests move time forward instead of sleeping. Token `iat`/`exp`, grant,
//! code, consent and pending-request expiry, throttle windows and key
//! rotation publish windows all read it, so there is one time source: no
//! rule reads the system clock anywhere else. (Timers and intervals that
//! only pace work — key reloads, the client cache, retries — stay on tokio
//! or `Instant` time; SMS outbox ids take the system time only to sort.)
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> i64 {
        system_millis().div_euclid(1000) + self.offset.load(Ordering::Relaxed)
    }

    /// Unix milliseconds, for the rules kept in milliseconds (the identity
    /// verifier's circuit breaker); moved by `advance` like `now`.
    pub fn now_millis(&self) -> i64 {
        system_millis() + self.offset.load(Ordering::Relaxed) * 1000
    }

    /// Moves this clock forward (tests and drills only; production never calls it).
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// The system's Unix milliseconds; only `Clock` reads it, so every rule
/// follows the one injected clock.
fn system_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
