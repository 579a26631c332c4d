//! Storage: one [`Store`] over sqlx's `Any` driver, with a SQLite and a PostgreSQL flavour
//! chosen by the URL scheme.
//!
//! Why one type and not two copies of every query: both databases accept the same SQL for
//! everything this service does (`$N` parameters, `ON CONFLICT`, `RETURNING`), so the
//! queries are written once. What genuinely differs lives in the two flavour modules:
//! connection set-up and migrations ([`sqlite`], [`postgres`]) and exclusive claiming
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has a single writer connection, so an
//! `UPDATE … RETURNING` is already exclusive).

mod accounts;
mod batch;
mod campaigns;
mod clicks;
mod debits;
mod direct;
mod group_commit;
mod keys;
pub mod ledger;
mod pinned;
mod postgres;
pub mod referrals;
pub mod rewards;
mod sqlite;
mod stats;
pub mod status;
pub mod status_change;
pub mod webhooks;

use sqlx::AnyPool;
use sqlx::{AssertSqlSafe, Row};

pub use accounts::{AccountRow, NewAccount};
pub use campaigns::{CampaignAudit, CampaignChangeRow, CampaignRow};
pub use clicks::{ClickLimit, ClickRow, ClickStored, NewClick};
pub use keys::ApiKeyRow;
pub use referrals::{AttributionRow, AuditRow, ListFilter, NewAttribution, ReasonRow};
pub use rewards::{ClaimedReward, RewardPlan, RewardRow, VoidRequest, Voided};
pub use stats::{ClickCounts, DayFigures, StatsRow, TopReferrerRow};
pub use status_change::{Applied, Change, Current, StatusChange};

/// A storage failure. Its text is for logs only; the core maps it to an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A read on SQLite's direct connections (see [`direct`]).
    #[error("database error: {0}")]
    Direct(rusqlite::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url (use sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The group transaction this write was part of did not commit.
    #[error("commit failed: {}", .0.message)]
    Commit(group_commit::CommitFailure),
}

impl StoreError {
    /// Whether the database could not be reached or is refusing work for now (connection
    /// lost or refused, pool exhausted, server shutting down, SQLite busy), as opposed to a
    /// statement that failed. Callers answer "unavailable, retry", never "bad credential".
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Db(e) => e,
            StoreError::Direct(e) => return direct::is_busy(e),
            // A group commit classified the failure that sank the group where it happened.
            StoreError::Commit(f) => return f.unavailable,
            _ => return false,
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| unavailable_code(&c)),
            _ => false,
        }
    }
}

/// PostgreSQL: connection exceptions (class 08), too many connections, a database that
/// does not accept connections, and the server shutting down. SQLite: busy or locked
/// (extended codes keep the primary code in the low byte).
fn unavailable_code(code: &str) -> bool {
    const PG: &[&str] = &["53300", "55000", "57P01", "57P02", "57P03"];
    if code.starts_with("08") || PG.contains(&code) {
        return true;
    }
    code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// PostgreSQL connections kept for the hottest reads, besides the pool's 16.
const PINNED_READERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// What a `SELECT` appends to lock the rows it reads until the transaction ends.
    /// PostgreSQL needs `FOR UPDATE`; on SQLite the single writer connection already
    /// serializes transactions, so nothing is appended.
    pub(crate) fn lock_clause(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

/// The database. Cheap to clone (pools are reference-counted).
#[derive(Clone, Debug)]
pub struct Store {
    /// Every write goes here. On SQLite this pool has exactly one connection: the single
    /// writer that makes transactions serial and claims exclusive.
    write: AnyPool,
    /// Reads. On SQLite a separate pool, so reads never wait behind the writer (WAL).
    read: AnyPool,
    dialect: Dialect,
    /// SQLite only: batches concurrent small writes into one transaction.
    group: Option<group_commit::GroupCommit>,
    /// Runs concurrent metering debits as one query per batch (see [`debits`]).
    debits: debits::DebitBatcher,
    /// Writes concurrent clicks as one query per batch (see [`clicks`]).
    clicks: clicks::ClickBatcher,
    /// SQLite only: the hottest reads, on the calling thread (see [`direct`]).
    direct: Option<std::sync::Arc<direct::Readers>>,
    /// PostgreSQL only: connections outside the pool for the hottest reads (see
    /// [`pinned`]).
    pinned: Option<std::sync::Arc<pinned::Pinned>>,
}

impl Store {
    /// Connects, creating the SQLite file on first run, and applies the embedded migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            let (write, read, file) = sqlite::connect(url).await?;
            let group = group_commit::GroupCommit::start(write.clone());
            let readers = std::thread::available_parallelism().map_or(4, |n| n.get() + 2);
            Ok(Self {
                direct: Some(std::sync::Arc::new(direct::Readers::open(&file, readers)?)),
                pinned: None,
                debits: debits::start_sqlite(&file)?,
                clicks: clicks::start_sqlite(&file)?,
                group: Some(group),
                write,
                read,
                dialect: Dialect::Sqlite,
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres::connect(url).await?;
            let pinned = pinned::Pinned::new(pool.connect_options(), PINNED_READERS);
            Ok(Self {
                debits: debits::start_pg(pinned::Pinned::new(pool.connect_options(), 1)),
                clicks: clicks::start_pg(pool.clone()),
                write: pool.clone(),
                read: pool,
                dialect: Dialect::Postgres,
                group: None,
                direct: None,
                pinned: Some(std::sync::Arc::new(pinned)),
            })
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Runs `f` in a write transaction and returns once it is committed. On SQLite the
    /// transaction is shared with other concurrent writers (group commit, one disk sync
    /// for all); on PostgreSQL it is the caller's own.
    pub(crate) async fn write_tx<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> futures::future::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        if let Some(g) = &self.group {
            return g.write(f).await;
        }
        let mut tx = self.begin_write().await?;
        match f(&mut tx).await {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// A write transaction of the caller's own. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later
    /// fails with "database is locked" when another process wrote in between, without
    /// waiting for the busy timeout; taking the lock first makes it wait its turn.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.write.begin().await?,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Readiness: one round trip on each pool.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        sqlx::query("SELECT 1").execute(&self.write).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// A server-wide setting; when absent, `default` is stored and returned. Used for
    /// secrets generated on first run, so every process on one database agrees on them.
    pub async fn setting_or_insert(&self, key: &str, default: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(default)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.write)
            .await?;
        Ok(row.try_get(0)?)
    }
}

/// Builds a dynamic statement (a filter list, an `IN (…)`). Every value in it is bound as a
/// parameter; only placeholders and fixed SQL fragments are concatenated.
pub(crate) fn dynamic(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

/// The placeholders of an `IN (…)` list of `n` values whose first is parameter `first`:
/// `in_list(2, 3)` is `$2, $3, $4`.
pub(crate) fn in_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Locks one row of `table` (by its `id`) until the transaction ends, so that decisions
/// about it are taken one at a time across instances. PostgreSQL only: on SQLite the
/// single writer connection already serializes transactions, so nothing is sent.
pub(crate) async fn lock_row<'q, T>(
    conn: &mut sqlx::AnyConnection,
    d: Dialect,
    table: &'static str,
    id: T,
) -> Result<()>
where
    T: 'q + Send + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    if d == Dialect::Sqlite {
        return Ok(());
    }
    let sql = format!("SELECT id FROM {table} WHERE id = $1{}", d.lock_clause());
    sqlx::query(dynamic(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(())
}
