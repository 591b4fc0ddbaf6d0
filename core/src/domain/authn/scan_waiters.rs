//! Browsers waiting on a scan ticket (D1: "holding many waiting browsers
//! must be cheap"). A waiter costs one map entry and one `watch` receiver:
//! no thread, no task, no database poll of its own. It is woken
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// How often each node looks for tickets changed by other nodes.
pub const CROSS_NODE_INTERVAL: Duration = Duration::from_secs(2);
/// Each check looks this far behind the previous one: timestamps are whole
/// seconds and node clocks differ a little. A ticket seen twice costs its
/// waiters one extra lookup.
const OVERLAP_SECS: i64 = 5;

#[derive(Default)]
pub struct ScanWaiters {
    by_ticket: Mutex<HashMap<String, watch::Sender<u64>>>,
}

/// One browser's interest in one ticket; dropping it (the browser went
/// away) forgets the entry once no one else waits on that ticket.
pub struct Waiter {
    hub: Arc<ScanWaiters>,
    ticket: String,
    rx: Option<watch::Receiver<u64>>,
}

impl ScanWaiters {
    fn map(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // A poisoned map only means a panic elsewhere while holding it; the
        // map itself is still consistent (every operation is one insert/remove).
        self.by_ticket.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(self: &Arc<Self>, ticket: &str) -> Waiter {
        let rx = self.map().entry(ticket.to_string()).or_insert_with(|| watch::channel(0).0).subscribe();
        Waiter { hub: self.clone(), ticket: ticket.to_string(), rx: Some(rx) }
    }

    /// Something happened to `ticket`: wake whoever waits on it here.
    pub fn wake(&self, ticket: &str) {
        if let Some(tx) = self.map().get(ticket) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
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
        for tx in self.map().values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
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
    /// Resolves when the ticket may have changed.
    pub async fn changed(&mut self) {
        match self.rx.as_mut() {
            Some(rx) => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut map = self.hub.map();
        if map.get(&self.ticket).is_some_and(|tx| tx.receiver_count() == 0) {
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
}
