//! The provider's notion of "now". Everything time-limited that tests must
//! drive (SMS code expiry, per-hour and per-day limits) reads this clock, so
//! tests move time forward instead of sleeping.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> i64 {
        crate::now() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock forward (tests and drills only; production never calls it).
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}
