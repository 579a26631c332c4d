//! SQLite reads on the calling thread, without sqlx.
//!
//! Why: sqlx runs every SQLite connection on a worker thread of its own. A query is a
//! message to that thread and its rows are messages back, and the pool pings the
//! connection (one more round trip) each time it is returned. On 2 cores those thread
//! hand-offs cost more than the read itself: a `get_referral` spent more CPU waking
//! threads than in SQLite. The hottest reads therefore go through these connections,
//! which run the statement right where the caller is, from a prepared statement.
//!
//! What it relies on: a read of a few pages takes microseconds, so running it on an
//! async worker does not hold up other tasks noticeably. In WAL mode a reader never waits
//! for the writer; the busy timeout only matters in the rare moment a reader must rebuild
//! the WAL index after a crash. Each connection is read-only (`query_only`), so nothing
//! written here can bypass the single writer.

use std::path::Path;
use std::sync::{Mutex, TryLockError};

use rusqlite::{Connection, OpenFlags};

use super::batch::Batcher;
use super::sqlite::CONNECTION_PRAGMAS;
use super::{Result, StoreError};

/// A few read-only connections, each used by one caller at a time.
///
/// A caller takes the first free connection, not the next in turn: SQLite drops a
/// connection's whole page cache when another connection has committed since its last
/// read, and every metered call commits a debit. Reads run inline on the async workers,
/// so rarely more than two are under way at once; taking the first free one keeps those
/// two connections busy and their caches warm between commits, where taking turns spread
/// the reads over all of them and each read more often found its cache dropped (measured
/// under metered load: 2.9 → 1.2 page reads from the file per call).
pub(crate) struct Readers {
    conns: Vec<Mutex<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Readers {
    /// Opens `n` read-only connections on the database file at `path` (already created
    /// and migrated by the writer).
    pub(crate) fn open(path: &Path, n: usize) -> Result<Self> {
        let conns = (0..n.max(1))
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // Set up as the sqlx readers are. No memory map: SQLite unmaps it
                // whenever another connection has committed, which a metered call always
                // has (measured: unmapping and TLB shoot-downs cost more than the reads
                // they saved).
                c.execute_batch(CONNECTION_PRAGMAS)?;
                c.execute_batch("PRAGMA query_only = ON;")?;
                Ok(Mutex::new(c))
            })
            .collect::<std::result::Result<Vec<_>, rusqlite::Error>>()?;
        Ok(Self { conns })
    }

    /// Runs `f` on the first free connection (waiting for one only if all are in use,
    /// which takes more callers at once than there are threads).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        // A panic while a connection was held leaves it usable: the statement it ran was
        // read-only and is reset before the next use. So a poisoned lock is taken as is.
        let free = self.conns.iter().find_map(|c| match c.try_lock() {
            Ok(c) => Some(c),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        });
        let conn = match free {
            Some(c) => c,
            None => self.conns[0]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
        Ok(f(&conn)?)
    }
}

/// A batch writer on a thread of its own, named `name`, with a rusqlite connection on
/// the database `file`: `write` gets each batch (see [`Batcher`]) and that connection.
///
/// Why not through sqlx: there every statement of a batch, its result and the pool's ping
/// on release were messages between threads, and on 2 cores those hand-offs cost more
/// than the statements. Here a batch costs one wake-up of this thread and one per caller
/// answered, and its statements are prepared once.
///
/// SQLite has one writer at a time; this thread waits for its turn in SQLite's own lock
/// (`BEGIN IMMEDIATE`), polling every 50 µs for the first 2 ms and then every
/// millisecond, up to the 10 s every connection waits (see [`wait_for_the_lock`]).
///
/// Why not take turns through the sqlx writer pool (its one connection held for each
/// batch, as before): sqlx hands a connection back to its pool from a task it spawns on
/// the async runtime, after a ping through the connection's worker thread, so on a busy
/// server the next batch waited ~400 µs for the previous batch's turn to come back
/// (measured: half of each batch's time), and every metered call waited with it. The
/// other writers (the sqlx writer, the other batch thread) are rare on the hot path or
/// take turns with this one batch by batch. The connection is set up as the sqlx writer
/// is ([`CONNECTION_PRAGMAS`]): foreign keys enforced, a write on disk before it is
/// acknowledged.
pub(crate) fn start_writer<I, O, F>(
    name: &str,
    max: usize,
    file: &Path,
    mut write: F,
) -> Result<Batcher<I, O>>
where
    I: Send + 'static,
    O: Send + 'static,
    F: FnMut(&mut Connection, Vec<I>) -> Result<Vec<O>> + Send + 'static,
{
    let mut conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    // After the pragmas: this replaces the busy timeout they set.
    conn.busy_handler(Some(wait_for_the_lock))?;
    Batcher::start_blocking(max, name, move |items| write(&mut conn, items))
}

/// SQLite's busy handler for the batch threads: `attempt` counts from 0; false gives up
/// (the batch then fails as unavailable). SQLite's own handler sleeps 1 ms at first and
/// longer after, far longer than another batch holds the lock.
fn wait_for_the_lock(attempt: i32) -> bool {
    const SHORT_WAITS: i32 = 40;
    const LONG_WAITS: i32 = 10_000;
    let step = if attempt < SHORT_WAITS {
        std::time::Duration::from_micros(50)
    } else {
        std::time::Duration::from_millis(1)
    };
    std::thread::sleep(step);
    attempt < SHORT_WAITS + LONG_WAITS
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Direct(e)
    }
}

/// SQLite busy or locked: the database is refusing work for now.
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
