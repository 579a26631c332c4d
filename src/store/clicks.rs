//! Clicks, their daily counters, and the per-IP-hash rate limiter for public calls.

use sqlx::{FromRow, Row};

use super::{Dialect, Result, Store};

/// A sanitized click ready to store (see `core::click`).
#[derive(Debug, Clone)]
pub struct NewClick {
    pub public_id: String,
    pub code: String,
    pub referrer_account: String,
    pub campaign: String,
    pub landing_path: Option<String>,
    pub utm: [Option<String>; 5],
    pub referrer_host: Option<String>,
    pub ua_family: String,
    pub is_bot: bool,
    pub ip_hash: String,
    pub at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClickRow {
    pub id: i64,
    pub public_id: String,
    pub code: String,
    pub referrer_account: String,
    pub campaign: String,
    pub ip_hash: String,
    pub created_at: i64,
}

const DEDUPE_WINDOW_SECS: i64 = 3600;

/// Stores a click and bumps the counters in the caller's transaction. Returns whether
/// the click counts as unique: not a bot, and the first of this visitor on this code
/// within the hour. Three statements on SQLite (each is a round trip to its worker
/// thread); on PostgreSQL the account row is touched first, so that its row lock
/// serializes clicks on one code and the duplicate check sees every earlier click.
async fn insert_click(
    conn: &mut sqlx::AnyConnection,
    c: &NewClick,
    lock_first: bool,
) -> Result<bool> {
    if lock_first {
        sqlx::query("UPDATE accounts SET clicks_total = clicks_total + 1 WHERE id = $1")
            .bind(&c.referrer_account)
            .execute(&mut *conn)
            .await?;
    }
    let unique: i64 = sqlx::query_scalar(
        "INSERT INTO clicks (public_id, code, referrer_account, campaign, landing_path, utm_source, utm_medium, utm_campaign, utm_term, utm_content, referrer_host, ua_family, is_bot, ip_hash, is_unique, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 CASE WHEN $13 = 0 AND NOT EXISTS (
                     SELECT 1 FROM clicks WHERE code = $2 AND ip_hash = $14 AND created_at > $15
                 ) THEN 1 ELSE 0 END,
                 $16)
         RETURNING is_unique",
    )
    .bind(&c.public_id)
    .bind(&c.code)
    .bind(&c.referrer_account)
    .bind(&c.campaign)
    .bind(&c.landing_path)
    .bind(&c.utm[0])
    .bind(&c.utm[1])
    .bind(&c.utm[2])
    .bind(&c.utm[3])
    .bind(&c.utm[4])
    .bind(&c.referrer_host)
    .bind(&c.ua_family)
    .bind(i64::from(c.is_bot))
    .bind(&c.ip_hash)
    .bind(c.at - DEDUPE_WINDOW_SECS)
    .bind(c.at)
    .fetch_one(&mut *conn)
    .await?;
    let unique = unique == 1;
    if lock_first {
        if unique {
            sqlx::query("UPDATE accounts SET clicks_unique = clicks_unique + 1 WHERE id = $1")
                .bind(&c.referrer_account)
                .execute(&mut *conn)
                .await?;
        }
    } else {
        sqlx::query(
            "UPDATE accounts SET clicks_total = clicks_total + 1, clicks_unique = clicks_unique + $2 WHERE id = $1",
        )
        .bind(&c.referrer_account)
        .bind(i64::from(unique))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO click_daily (day, campaign, total, unique_count, bots) VALUES ($1, $2, 1, $3, $4)
         ON CONFLICT (day, campaign) DO UPDATE SET total = click_daily.total + 1,
           unique_count = click_daily.unique_count + excluded.unique_count,
           bots = click_daily.bots + excluded.bots",
    )
    .bind(c.at.div_euclid(86_400))
    .bind(&c.campaign)
    .bind(i64::from(unique))
    .bind(i64::from(c.is_bot))
    .execute(&mut *conn)
    .await?;
    Ok(unique)
}

impl Store {
    /// Stores a click (see [`insert_click`]); on SQLite in a group commit.
    pub async fn insert_click(&self, c: NewClick) -> Result<bool> {
        let lock_first = self.dialect == Dialect::Postgres;
        self.write_tx(move |conn| Box::pin(async move { insert_click(conn, &c, lock_first).await }))
            .await
    }

    pub async fn click_by_public_id(&self, public_id: &str) -> Result<Option<ClickRow>> {
        Ok(sqlx::query_as::<_, ClickRow>(
            "SELECT id, public_id, code, referrer_account, campaign, ip_hash, created_at FROM clicks WHERE public_id = $1",
        )
        .bind(public_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The visitor's first or last click in `[since, until]`, for the attribution model.
    pub async fn visitor_click(
        &self,
        ip_hash: &str,
        since: i64,
        until: i64,
        last: bool,
    ) -> Result<Option<ClickRow>> {
        let sql = format!(
            "SELECT id, public_id, code, referrer_account, campaign, ip_hash, created_at FROM clicks
             WHERE ip_hash = $1 AND created_at >= $2 AND created_at <= $3 AND is_bot = 0
             ORDER BY created_at {dir}, id {dir} LIMIT 1",
            dir = if last { "DESC" } else { "ASC" }
        );
        Ok(sqlx::query_as::<_, ClickRow>(super::dynamic(sql))
            .bind(ip_hash)
            .bind(since)
            .bind(until)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Counts one hit for `bucket` in the fixed window starting at `window_start`; returns
    /// the hits so far in that window. Kept in the database so every instance shares it.
    pub async fn hit_rate_limit(&self, bucket: &str, window_start: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1)
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1
             RETURNING hits",
        )
        .bind(bucket)
        .bind(window_start)
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Drops rate-limit windows that started before `before` (the core calls it once a
    /// minute per process; see `Referrals::prune_old_rate_limit_windows`).
    pub async fn prune_rate_limits(&self, before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                .bind(before)
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }
}
