//! Browsers waiting on a scan ticket (D1: "holding many waiting browsers
//! must be cheap"; issue 16: 10,000 of them in ≤ 100 MiB). The waiters of
//! one ticket share one map entry, a wake-up count and a `Notify` (with the
//! ticket's id, ≈ 120 bytes a waiter; a `watch` channel made it ≈ 400); a
//! waiter adds a handle to it: no thread, no task, no database poll of its
//! own. It is woken
//!  - at once when the app's confirm / deny / scan lands on this node, and
//!  - on PostgreSQL, by the bus (`store::bus`): the core's scan and decide
//!    notify every node in their transaction, so a decision taken through
//!    another node wakes the waiter here at once, with no polling;
//!  - on SQLite, by one task that asks the database every two seconds
//!    which tickets changed (one indexed range query, whatever the number
//!    of waiters), for another process on the same file.
//!
//! A woken waiter re-reads its own ticket; a spurious wake costs one lookup.
use crate::domain::authn::scan;
use crate::store::Store;
use crate::store::bus::{Notice, Topic};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// How often each node looks for tickets changed by other nodes.
pub const CROSS_NODE_INTERVAL: Duration = Duration::from_secs(2);
/// Each check looks this far behind the previous one: timestamps are whole
/// seconds and node clocks differ a little. A ticket seen twice costs its
/// waiters one extra lookup.
const OVERLAP_SECS: i64 = 5;

/// How many woken waiters of a node read their ticket at once (the SQLite
/// pool's size). A wake of thousands — a resync, or the first cross-node
/// check after many tickets were made — then queues in a semaphore, a few
/// bytes each, instead of holding thousands of database reads in memory.
const READS_AT_ONCE: usize = 8;

/// The waiters of each ticket on this node. Entries are added, woken and
/// removed only under the map's lock, so an entry's reference count there
/// is exact: the map's own plus one per waiter.
pub struct ScanWaiters {
    by_ticket: Mutex<HashMap<Box<str>, Arc<Wakes>>>,
    reads: Semaphore,
}

impl Default for ScanWaiters {
    fn default() -> Self {
        Self { by_ticket: Mutex::default(), reads: Semaphore::new(READS_AT_ONCE) }
    }
}

/// One ticket's wake-ups: how many so far, and the waiters to tell.
#[derive(Default)]
struct Wakes {
    count: AtomicU64,
    notify: Notify,
}

impl Wakes {
    fn wake(&self) {
        self.count.fetch_add(1, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// One browser's interest in one ticket; dropping it (the browser went
/// away) forgets the entry once no one else waits on that ticket.
pub struct Waiter {
    hub: Arc<ScanWaiters>,
    ticket: Box<str>,
    wakes: Arc<Wakes>,
    /// The wake-ups already answered: a wake between two waits is not lost.
    seen: u64,
}

impl ScanWaiters {
    fn map(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Wakes>>> {
        // A poisoned map only means a panic elsewhere while holding it; the
        // map itself is still consistent (every operation is one insert/remove).
        self.by_ticket.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(self: &Arc<Self>, ticket: &str) -> Waiter {
        let wakes = self.map().entry(ticket.into()).or_default().clone();
        let seen = wakes.count.load(Ordering::Acquire);
        Waiter { hub: self.clone(), ticket: ticket.into(), wakes, seen }
    }

    /// Something happened to `ticket`: wake whoever waits on it here.
    pub fn wake(&self, ticket: &str) {
        if let Some(wakes) = self.map().get(ticket) {
            wakes.wake();
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every waiter (notices may have been missed).
    pub fn wake_all(&self) {
        for wakes in self.map().values() {
            wakes.wake();
        }
    }

    /// Follows the bus (PostgreSQL): a ticket decided through any node wakes
    /// its waiters here at once, with no polling. Runs for the life of the
    /// server.
    pub async fn follow(self: Arc<Self>, mut notices: tokio::sync::broadcast::Receiver<Notice>) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match notices.recv().await {
                Ok(Notice::Changed(Topic::ScanTicket, id)) => self.wake(&id),
                Ok(Notice::Changed(..)) => {}
                Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => self.wake_all(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// The node-wide check for decisions taken by another process on the
    /// same SQLite file (PostgreSQL nodes [`follow`](Self::follow) the bus
    /// instead). Runs for the life of the server.
    pub async fn watch_other_nodes(self: Arc<Self>, db: Store, clock: crate::clock::Clock) {
        let mut tick = tokio::time::interval(CROSS_NODE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since = clock.now();
        loop {
            tick.tick().await;
            let now = clock.now();
            if self.is_empty() {
                since = now;
                continue;
            }
            match scan::changed_since(&db, since - OVERLAP_SECS).await {
                Ok(ids) => {
                    for id in ids {
                        self.wake(&id);
                    }
                    since = now;
                }
                Err(e) => tracing::warn!("scan waiters: checking for changed tickets failed: {e}"),
            }
        }
    }
}

impl Waiter {
    pub fn ticket(&self) -> &str {
        &self.ticket
    }

    /// A turn to read the ticket, held for the read (see [`READS_AT_ONCE`]).
    pub async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed; `None` would only mean "go ahead".
        self.hub.reads.acquire().await.ok()
    }

    /// Resolves when the ticket may have changed: at once if it was woken
    /// since this waiter was made or last resolved, else at the next wake.
    pub async fn changed(&mut self) {
        loop {
            // Listen before looking, so a wake in between is heard.
            let notified = self.wakes.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let count = self.wakes.count.load(Ordering::Acquire);
            if count != self.seen {
                self.seen = count;
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut map = self.hub.map();
        // The map's reference and this one: the last waiter of the ticket.
        if map.get(&self.ticket).is_some_and(|w| Arc::ptr_eq(w, &self.wakes) && Arc::strong_count(w) == 2) {
            map.remove(&self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_every_waiter_and_entries_go_with_them() {
        let hub = Arc::new(ScanWaiters::default());
        let mut a = hub.subscribe("t1");
        let mut b = hub.subscribe("t1");
        assert_eq!(hub.len(), 1);
        hub.wake("t1");
        hub.wake("nobody-waits");
        tokio::time::timeout(Duration::from_secs(1), a.changed()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), b.changed()).await.unwrap();
        drop(a);
        assert_eq!(hub.len(), 1);
        drop(b);
        assert!(hub.is_empty());
    }

    #[tokio::test]
    async fn a_wake_between_two_waits_is_not_lost() {
        let hub = Arc::new(ScanWaiters::default());
        let mut a = hub.subscribe("t1");
        // Woken while the waiter was busy elsewhere (reading its ticket).
        hub.wake("t1");
        tokio::time::timeout(Duration::from_secs(1), a.changed()).await.unwrap();
        // Answered: the next wait waits for the next wake.
        assert!(tokio::time::timeout(Duration::from_millis(50), a.changed()).await.is_err());
        let woken = tokio::spawn(async move { a.changed().await });
        tokio::task::yield_now().await;
        hub.wake_all();
        tokio::time::timeout(Duration::from_secs(1), woken).await.unwrap().unwrap();
        assert!(hub.is_empty(), "the waiter went with its task");
    }
}
