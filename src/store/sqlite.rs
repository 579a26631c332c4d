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
/// clicks table stay in memory (a limit, not an allocation). wal_autocheckpoint: the
/// committing writer copies the WAL into the database every 10,000 pages (40 MB)
/// instead of 1,000, so a page written many times in between, as the click indexes'
/// pages are under a flood, is copied once (measured under click load: 19.6-21.2 →
/// 14.8-17.3 KB written per click); the WAL file stays at about that size.
pub(super) const CONNECTION_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 10000;";

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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    /// A database the previous release made (migrations 0001-0004, with rows) is upgraded
    /// by 0005, which rebuilds the ledger and the rate-limit table: every row is kept, a
    /// new ledger row takes the next id, and the click checks read the one visitor index.
    #[tokio::test]
    async fn upgrading_to_fewer_pages_per_write_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations-0004");
        std::fs::create_dir(&old).unwrap();
        let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for entry in std::fs::read_dir(&all).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().as_ref() < "0005" {
                std::fs::copy(entry.path(), old.join(entry.file_name())).unwrap();
            }
        }
        let url = format!("sqlite://{}/upgraded.db", dir.path().display());
        let pool = SqlitePool::connect_with(
            SqliteConnectOptions::from_str(&url)
                .unwrap()
                .create_if_missing(true),
        )
        .await
        .unwrap();
        let before = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
        assert_eq!(before.iter().count(), 4);
        before.run(&pool).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO ledger (account, delta, kind, idempotency_key, at) VALUES
               ('acct_a', 5, 'top_up', 'k1', 1), ('acct_a', -1, 'metering', 'k2', 2),
               ('acct_b', 7, 'top_up', 'k3', 3);
             INSERT INTO balances (account, balance) VALUES ('acct_a', 4), ('acct_b', 7);
             INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('click:ip', 60, 3);
             INSERT INTO clicks (public_id, code, referrer_account, campaign, ua_family, is_bot,
                                 ip_hash, is_unique, created_at)
               VALUES ('clk_1', 'CODE', 'acct_a', 'default', 'Firefox', 0, 'h1', 1, 100);",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = super::super::Store::connect(&url).await.unwrap();
        store.credit("k4", "acct_a", 2, "top_up", 4).await.unwrap();
        assert_eq!(store.balance("acct_a").await.unwrap(), 6);
        store.close().await;

        let c = rusqlite::Connection::open(dir.path().join("upgraded.db")).unwrap();
        let ledger: Vec<(i64, String, i64, String)> = c
            .prepare("SELECT id, account, delta, idempotency_key FROM ledger ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |id, a: &str, d, k: &str| (id, a.to_owned(), d, k.to_owned());
        assert_eq!(
            ledger,
            [
                row(1, "acct_a", 5, "k1"),
                row(2, "acct_a", -1, "k2"),
                row(3, "acct_b", 7, "k3"),
                row(4, "acct_a", 2, "k4"),
            ]
        );
        let one = |sql: &str| -> String { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            one("SELECT bucket || ' ' || window_start || ' ' || hits FROM rate_limits"),
            "click:ip 60 3"
        );
        assert!(
            one("SELECT sql FROM sqlite_master WHERE name = 'rate_limits'")
                .ends_with("WITHOUT ROWID")
        );
        assert_eq!(
            one("SELECT group_concat(name, ' ') FROM sqlite_master WHERE tbl_name = 'ledger'"),
            "ledger sqlite_autoindex_ledger_1",
            "the ledger keeps its idempotency index and nothing else"
        );
        assert_eq!(
            one("SELECT CAST(count(*) AS TEXT) FROM sqlite_sequence WHERE name = 'ledger'"),
            "0"
        );
        assert_eq!(one("SELECT public_id FROM clicks"), "clk_1");
        let plan = |sql: &str| -> String {
            c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("; ")
        };
        // The duplicate check (as `clicks::write_batch_direct` runs it) is one seek in
        // the one index; the visitor look-up at sign-up reads the visitor's part of it.
        let dedupe = plan(
            "SELECT 1 FROM clicks WHERE code = 'CODE' AND ip_hash = 'h1' AND created_at > 0 LIMIT 1",
        );
        assert!(
            dedupe
                .contains("COVERING INDEX clicks_visitor (ip_hash=? AND code=? AND created_at>?)"),
            "{dedupe}"
        );
        let visitor = plan(
            "SELECT id FROM clicks WHERE ip_hash = 'h1' AND created_at >= 0 AND created_at <= 200 AND is_bot = 0",
        );
        assert!(
            visitor.contains("INDEX clicks_visitor (ip_hash=?"),
            "{visitor}"
        );
    }
}
