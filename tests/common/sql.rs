//! Checks the product has no API for (what is really stored, ledger audits, table sizes):
//! a connection of the test's own to its database, so none of this lives in `src/`.

use sqlx::{Connection, Row};

use super::TestDb;

/// A fresh connection to the test's database (SQLite file or PostgreSQL database).
pub async fn sql(db: &TestDb) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("test connection to the database")
}

/// The sum of the ledger rows of `account` (optionally of one kind): the audit view that
/// tests compare with the running balance.
pub async fn ledger_sum(db: &TestDb, account: &str, kind: Option<&str>) -> i64 {
    let mut c = sql(db).await;
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM ledger WHERE account = $1 AND ($2 IS NULL OR kind = $2)",
    )
    .bind(account)
    .bind(kind)
    .fetch_one(&mut c)
    .await
    .expect("ledger sum")
}

/// Sum of reward credits in the ledger for an account.
pub async fn rewards_credited(db: &TestDb, account: &str) -> i64 {
    ledger_sum(db, account, Some("referral_reward")).await
}

/// Number of ledger rows with this key prefix (e.g. all grants of one attribution).
pub async fn ledger_rows_with_prefix(db: &TestDb, prefix: &str) -> i64 {
    let mut c = sql(db).await;
    sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE idempotency_key LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_one(&mut c)
        .await
        .expect("ledger rows")
}

/// Empties every table (tests that need several clean starts in one database).
pub async fn truncate_all(db: &TestDb) {
    let mut c = sql(db).await;
    for t in [
        "audit_events",
        "review_reasons",
        "rewards",
        "attributions",
        "clicks",
        "click_daily",
        "ledger",
        "balances",
        "api_keys",
        "rate_limits",
        "accounts",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}")))
            .execute(&mut c)
            .await
            .expect("empty a table");
    }
}

/// Every text column of the newest click (tests check what is really stored).
pub async fn raw_click_row(db: &TestDb) -> Vec<String> {
    let mut c = sql(db).await;
    let row = sqlx::query(
        "SELECT public_id, code, referrer_account, campaign, COALESCE(landing_path, ''), COALESCE(utm_source, ''),
                COALESCE(utm_medium, ''), COALESCE(utm_campaign, ''), COALESCE(utm_term, ''), COALESCE(utm_content, ''),
                COALESCE(referrer_host, ''), ua_family, ip_hash
         FROM clicks ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut c)
    .await
    .expect("newest click");
    (0..13)
        .map(|i| row.try_get::<String, _>(i).expect("text column"))
        .collect()
}

/// Rows in the rate-limit table (one per client and window).
pub async fn rate_limit_rows(db: &TestDb) -> i64 {
    let mut c = sql(db).await;
    sqlx::query_scalar("SELECT COUNT(*) FROM rate_limits")
        .fetch_one(&mut c)
        .await
        .expect("count rate_limits")
}
