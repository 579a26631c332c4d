//! SQLite flavour: a file created on first run, WAL mode, one writer connection.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Executor};

use super::Result;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

fn with_mode(url: &str, mode: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    if url.contains("mode=") {
        url.to_owned()
    } else {
        format!("{url}{sep}mode={mode}")
    }
}

/// What every connection to the file is set up with, through sqlx or rusqlite (see
/// `super::direct`). FULL: a write is on disk before it is acknowledged. foreign_keys:
/// enforce references. busy_timeout: readers may briefly meet a checkpoint. cache_size:
/// 32 MB of pages per connection instead of SQLite's 2 MB, so that the indexes of a busy
/// clicks table stay in memory (a limit, not an allocation).
pub(super) const CONNECTION_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA cache_size = -32768;";

/// The writer and reader pools, and the database file's path.
pub(super) async fn connect(url: &str) -> Result<(AnyPool, AnyPool, PathBuf)> {
    fn pragmas<'c>(
        conn: &'c mut sqlx::AnyConnection,
        _meta: sqlx::pool::PoolConnectionMetadata,
    ) -> futures::future::BoxFuture<'c, std::result::Result<(), sqlx::Error>> {
        Box::pin(async move {
            conn.execute(CONNECTION_PRAGMAS).await?;
            Ok(())
        })
    }
    let write_opts =
        AnyConnectOptions::from_str(&with_mode(url, "rwc"))?.disable_statement_logging();
    // No ping before each use (sqlx's default): a SQLite connection is a handle on a local
    // file and cannot be cut, and the ping is a round trip to the connection's worker
    // thread, as costly as the query it precedes.
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(pragmas)
        .connect_with(write_opts)
        .await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&write)
        .await?;
    MIGRATOR.run(&write).await?;
    let read_opts = AnyConnectOptions::from_str(&with_mode(url, "ro"))?.disable_statement_logging();
    let read = AnyPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .after_connect(pragmas)
        .connect_with(read_opts)
        .await?;
    let file = SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_path_buf();
    Ok((write, read, file))
}
