//! Notices between the nodes that share one database (issue 16): "this
//! client changed", "this scan ticket changed". A node keeps what it reads
//! on every request (client registrations) and what its browsers wait on
//! (scan tickets) in memory; a change made through any node must reach the
//! others at once, not after an expiry or a poll.
//!
//! On PostgreSQL a notice is a `pg_notify` on one channel; every node
//! listens on that channel with one connection of its own. On SQLite there
//! is one node, so a notice only goes to this node's own subscribers.
//!
//! A node that loses its listening connection may have missed notices: it
//! tells its subscribers to [`Notice::Resync`] (drop every cached entry, wake
//! every waiter) and listens again once the database answers.
use crate::store::Store;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::time::Duration;
use tokio::sync::broadcast;

/// The PostgreSQL channel every node listens on.
pub const CHANNEL: &str = "idp_bus";

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// A client registration (disabled, edited, a new secret, deleted).
    Client,
    /// A scan-to-login or face-gate ticket (scanned, confirmed, denied).
    ScanTicket,
}

impl Topic {
    fn tag(self) -> &'static str {
        match self {
            Topic::Client => "client",
            Topic::ScanTicket => "scan",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "client" => Some(Topic::Client),
            "scan" => Some(Topic::ScanTicket),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Changed(Topic, String),
    /// Notices may have been missed: forget every cached entry, wake every
    /// waiter.
    Resync,
}

/// Tells every node that `key` changed. On PostgreSQL inside a
/// transaction the notice leaves at commit (and never after a rollback);
/// this node hears it too, which costs a subscriber one spurious refresh.
/// On SQLite there are no other nodes: the entry that made the change
/// updates this node itself. A notice that cannot be sent is logged; the
/// safety nets (cache expiry) still apply.
pub async fn notify<C: ConnectionTrait>(conn: &C, topic: Topic, key: &str) {
    if conn.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let payload = format!("{}|{key}", topic.tag());
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), payload.into()],
    );
    if let Err(e) = conn.execute_raw(stmt).await {
        tracing::warn!("bus: notifying the other nodes failed: {e}");
    }
}

/// This node's end of the bus: the notices heard from the database, for
/// the node's caches and waiters to follow.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Notice>,
    store: Store,
}

impl Bus {
    pub fn new(store: Store) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self { tx, store }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }

    /// Whether other nodes can exist (they share PostgreSQL).
    pub fn cross_node(&self) -> bool {
        self.store.get_database_backend() == DbBackend::Postgres
    }

    fn deliver(&self, payload: &str) {
        let Some((tag, key)) = payload.split_once('|') else { return };
        if let Some(topic) = Topic::from_tag(tag) {
            let _ = self.tx.send(Notice::Changed(topic, key.to_string()));
        }
    }

    /// Listens for the other nodes' notices for the life of the server (on
    /// PostgreSQL; returns at once on SQLite). Reconnects by itself after the
    /// database went away, telling subscribers to resync each time.
    pub async fn listen(self) {
        if !self.cross_node() {
            return;
        }
        use sea_orm::sqlx::postgres::PgListener;
        let mut backoff = Duration::from_millis(200);
        let mut first = true;
        loop {
            let pool = self.store.postgres_pool();
            let listener = match pool {
                Some(pool) => PgListener::connect_with(&pool).await,
                None => return,
            };
            let mut listener = match listener {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("bus: cannot listen for other nodes' notices yet: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!("bus: LISTEN failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            // Whatever happened while no one listened is unknown.
            if !first {
                let _ = self.tx.send(Notice::Resync);
                tracing::info!("bus: listening again for other nodes' notices");
            }
            first = false;
            backoff = Duration::from_millis(200);
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => self.deliver(n.payload()),
                    // The connection was lost; sqlx reconnects on the next
                    // call, notices in between are lost.
                    Ok(None) => {
                        let _ = self.tx.send(Notice::Resync);
                    }
                    Err(e) => {
                        tracing::warn!("bus: lost the listening connection: {e}");
                        let _ = self.tx.send(Notice::Resync);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn payloads_become_notices() {
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let bus = Bus::new(store.clone());
        assert!(!bus.cross_node());
        let mut rx = bus.subscribe();
        bus.deliver("unknown|c3");
        bus.deliver("garbage");
        bus.deliver("client|c2|with|bars");
        assert_eq!(rx.recv().await.unwrap(), Notice::Changed(Topic::Client, "c2|with|bars".into()));
        assert!(rx.try_recv().is_err());
        // SQLite: nothing to send, nothing fails.
        notify(&store, Topic::ScanTicket, "t1").await;
    }
}
