//! PostgreSQL: a few connections kept out of the pool for the hottest reads.
//!
//! Why: sqlx's pool pings every connection when it comes back (a `Sync` round trip to
//! the server, on every query, whatever the pool's settings), and its hand-out costs
//! bookkeeping of its own. For `get_referral`, one statement, that doubled the round
//! trips. These connections are used one caller at a time and never returned to a pool.
//!
//! Answers stay true when the database goes away: a connection whose query failed
//! because the server could not be reached is dropped, and the next caller opens a new
//! one; one that sat idle for over [`TRUST_IDLE`] is pinged first, as the pool does (see
//! `super::postgres`). A caller that gives up mid-query drops the connection with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::future::BoxFuture;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection};
use tokio::sync::Mutex;

use super::Result;
use super::postgres::TRUST_IDLE;

pub(crate) struct Pinned {
    options: Arc<AnyConnectOptions>,
    slots: Vec<Mutex<Option<(AnyConnection, Instant)>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned")
            .field("connections", &self.slots.len())
            .finish()
    }
}

impl Pinned {
    /// `n` connections, opened on first use with the pool's options.
    pub(crate) fn new(options: Arc<AnyConnectOptions>, n: usize) -> Self {
        Self {
            options,
            slots: (0..n.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on a free connection, or waits for one.
    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>>,
    {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let free = (0..n).find_map(|i| self.slots[(start + i) % n].try_lock().ok());
        let mut slot = match free {
            Some(s) => s,
            None => self.slots[start].lock().await,
        };
        let mut conn = match slot.take() {
            Some((mut c, used)) if used.elapsed() > TRUST_IDLE => match c.ping().await {
                Ok(()) => c,
                Err(_) => self.options.connect().await?,
            },
            Some((c, _)) => c,
            None => self.options.connect().await?,
        };
        let out = f(&mut conn).await;
        match &out {
            // The server is unreachable or refusing: this connection may be dead.
            Err(e) if e.is_unavailable() => {}
            _ => *slot = Some((conn, Instant::now())),
        }
        out
    }
}
