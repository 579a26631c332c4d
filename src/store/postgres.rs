//! PostgreSQL flavour: one pool for reads and writes; row locks and `SKIP LOCKED` make
//! concurrent instances safe.

use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::ConnectOptions;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::Result;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) async fn connect(url: &str) -> Result<AnyPool> {
    let opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        // During an outage a request answers 503 within this, instead of hanging.
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out: one extra network round trip per
        // query. A connection in use a moment ago is alive; one that sat idle may have
        // been cut (a server restart, a proxy's idle timeout), so only those are pinged.
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Connections idle for longer than this are pinged before use (here and in
/// `super::pinned`).
pub(super) const TRUST_IDLE: Duration = Duration::from_secs(1);

fn ping_if_idle<'c>(
    conn: &'c mut sqlx::AnyConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'c, std::result::Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for > TRUST_IDLE {
            sqlx::Connection::ping(conn).await?;
        }
        Ok(true)
    })
}
