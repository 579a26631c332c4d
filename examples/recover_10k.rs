//! Times one `recover` of 10,000 failed rewards on a fresh SQLite file with the local
//! ledger, checks each was granted exactly once, and prints the seconds on the last line
//! (`scripts/bench.sh` reads it). `cargo run --release --example recover_10k`.

use std::sync::Arc;
use std::time::Instant;

use referral_mcp::billing::LedgerSink;
use referral_mcp::core::clock::Clock;
use referral_mcp::core::types::Limit;
use referral_mcp::core::{RecoverRequest, Referrals, Settings};
use referral_mcp::store::Store;
use tokio_util::sync::CancellationToken;

const NOW: i64 = 1_793_534_400;
const PAIRS: i64 = 5_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("recover.db").display());
    let store = Store::connect(&url).await?;
    let raw = sqlx::SqlitePool::connect(&url).await?;
    let series = format!(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {PAIRS})"
    );
    for sql in [
        format!("INSERT INTO accounts (id, referral_code, created_at) {series} SELECT 'r' || i, 'rcode' || i, {NOW} FROM s"),
        format!("INSERT INTO accounts (id, referral_code, created_at) {series} SELECT 'u' || i, 'ucode' || i, {NOW} FROM s"),
        format!(
            "INSERT INTO attributions (id, referrer_account, referred_account, code, campaign, status, qualified_at, created_at, updated_at)
             {series} SELECT i, 'r' || i, 'u' || i, 'rcode' || i, 'default', 'qualified', {NOW}, {NOW}, {NOW} FROM s"
        ),
        format!(
            "INSERT INTO rewards (attribution_id, side, account, credits, status, grant_key, created_at)
             SELECT id, 'referrer', referrer_account, 100, 'failed', 'bench:referral:' || id || ':referrer', {NOW} FROM attributions"
        ),
        format!(
            "INSERT INTO rewards (attribution_id, side, account, credits, status, grant_key, created_at)
             SELECT id, 'referred', referred_account, 50, 'failed', 'bench:referral:' || id || ':referred', {NOW} FROM attributions"
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&raw).await?;
    }
    let clock = Clock::manual(NOW);
    let sink = Arc::new(LedgerSink::new(store.clone(), clock.clone()));
    let core = Referrals::new(store.clone(), sink, Settings::default(), clock);
    core.ensure_default_campaign().await?;
    let start = Instant::now();
    let report = core
        .run_recover(
            RecoverRequest {
                limit: Limit::parse("limit", 10_000, 10_000)?,
            },
            &|_| {},
            &CancellationToken::new(),
        )
        .await?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.granted == 10_000,
        "granted {}: {report:?}",
        report.granted
    );
    let (rows, keys): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM ledger WHERE kind = 'referral_reward'",
    )
    .fetch_one(&raw)
    .await?;
    anyhow::ensure!(
        rows == 10_000 && keys == 10_000,
        "ledger has {rows} grants, {keys} keys"
    );
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rewards WHERE status <> 'granted'")
        .fetch_one(&raw)
        .await?;
    anyhow::ensure!(open == 0, "{open} rewards not granted");
    eprintln!("recover granted 10,000 rewards once each in {secs:.3} s");
    println!("{secs:.3}");
    Ok(())
}
