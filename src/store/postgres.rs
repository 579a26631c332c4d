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
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
