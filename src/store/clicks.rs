//! Clicks, their daily counters, and the per-IP-hash rate limiter for public calls.

use std::collections::{BTreeMap, HashMap};

use sqlx::{AnyPool, FromRow, Row};

use super::batch::Batcher;
use super::{Result, Store, StoreError, dynamic};

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

/// The public rate limit a click counts against: its hit is counted in the same
/// transaction as the click, and the click is stored only if the window's hits, this one
/// included, stay within `max_hits`.
#[derive(Debug, Clone)]
pub struct ClickLimit {
    pub bucket: String,
    pub window_start: i64,
    pub max_hits: i64,
}

/// What became of a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickStored {
    /// Stored; `unique` when not a bot and the first of this visitor on this code within
    /// the hour.
    Stored { unique: bool },
    /// Over the rate limit: counted as a hit, not stored.
    RateLimited,
}

pub(crate) type ClickBatcher = Batcher<(NewClick, Option<ClickLimit>), ClickStored>;

/// Clicks per transaction (on PostgreSQL, 20 parameters each per statement).
const MAX_BATCH: usize = 128;

/// Public click capture is the one write that arrives in floods, and each click is four
/// writes (the rate-limit hit, the click, the account's counters, the day's counters).
/// As a transaction of its own each was four or five round trips to the writer, and the
/// writer capped capture at about 2,300 clicks/s on SQLite. Here concurrent clicks are
/// written as one transaction per batch (see [`super::batch`]), leaving what they would
/// have left one at a time: on SQLite each click's look-up and insert in order, with the
/// hits and counters summed per batch (see [`write_batch_direct`]); on PostgreSQL a batch
/// is three statements (see [`write_batch_pg`]).
pub(crate) fn start_pg(pool: AnyPool) -> ClickBatcher {
    Batcher::start(
        MAX_BATCH,
        move |clicks: Vec<(NewClick, Option<ClickLimit>)>| {
            let pool = pool.clone();
            async move { write_batch_pg(&pool, &clicks).await }
        },
    )
}

/// SQLite: batches on a thread of their own through a rusqlite connection, as the
/// metering debits do and for the same reason (see [`super::direct::start_writer`]):
/// through sqlx each of a click's statements was a message between threads, and the
/// batch's SQL was rebuilt and re-bound as text.
pub(crate) fn start_sqlite(file: &std::path::Path) -> Result<ClickBatcher> {
    super::direct::start_writer("referral-clicks", MAX_BATCH, file, |conn, clicks| {
        write_batch_direct(conn, &clicks)
    })
}

/// SQLite: the batch in one transaction, with the effect of its clicks written one by
/// one in arrival order. First each rate-limit window's hits, one upsert per window (the
/// k-th of a window's n clicks is hit number total - n + k, see [`admit`]). Then each
/// admitted click in order: unique when not a bot and no click of this visitor on this
/// code is in the last hour (earlier clicks of the batch are already inserted, so they
/// count), then inserted. Last, the accounts' and days' counters, one statement per
/// account and per day and campaign: the sums a click-by-click update would reach.
/// Any failure rolls the whole batch back.
///
/// Why the counters are summed: as two statements per click they were two of a click's
/// five, on the one thread that writes every click.
fn write_batch_direct(
    conn: &mut rusqlite::Connection,
    clicks: &[(NewClick, Option<ClickLimit>)],
) -> Result<Vec<ClickStored>> {
    use rusqlite::{OptionalExtension, params};
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let per_window = hits_per_window(clicks);
    let mut totals = HashMap::with_capacity(per_window.len());
    {
        let mut hit = tx.prepare_cached(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?1, ?2, ?3)
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + excluded.hits
             RETURNING hits",
        )?;
        for (&key, n) in &per_window {
            let total: i64 = hit.query_row(params![key.0, key.1, n], |r| r.get(0))?;
            totals.insert(key, total);
        }
    }
    let admitted = admit(clicks, &per_window, &totals);
    let mut out = Vec::with_capacity(clicks.len());
    let mut accounts: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut days: BTreeMap<(i64, &str), (i64, i64, i64)> = BTreeMap::new();
    {
        let mut seen = tx.prepare_cached(
            "SELECT 1 FROM clicks WHERE code = ?1 AND ip_hash = ?2 AND created_at > ?3 LIMIT 1",
        )?;
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO clicks ({CLICK_COLUMNS}, is_unique, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        ))?;
        for ((c, _), ok) in clicks.iter().zip(admitted) {
            if !ok {
                out.push(ClickStored::RateLimited);
                continue;
            }
            let unique = !c.is_bot
                && seen
                    .query_row(
                        params![c.code, c.ip_hash, c.at - DEDUPE_WINDOW_SECS],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_none();
            let [s, m, n, t, k] = &c.utm;
            insert.execute(params![
                c.public_id,
                c.code,
                c.referrer_account,
                c.campaign,
                c.landing_path,
                s,
                m,
                n,
                t,
                k,
                c.referrer_host,
                c.ua_family,
                i64::from(c.is_bot),
                c.ip_hash,
                i64::from(unique),
                c.at,
            ])?;
            let acc = accounts.entry(c.referrer_account.as_str()).or_default();
            acc.0 += 1;
            acc.1 += i64::from(unique);
            let day = days
                .entry((c.at.div_euclid(86_400), c.campaign.as_str()))
                .or_default();
            day.0 += 1;
            day.1 += i64::from(unique);
            day.2 += i64::from(c.is_bot);
            out.push(ClickStored::Stored { unique });
        }
    }
    {
        let mut account = tx.prepare_cached(
            "UPDATE accounts SET clicks_total = clicks_total + ?2, clicks_unique = clicks_unique + ?3
             WHERE id = ?1",
        )?;
        for (id, (n, u)) in &accounts {
            account.execute(params![id, n, u])?;
        }
        let mut daily = tx.prepare_cached(
            "INSERT INTO click_daily (day, campaign, total, unique_count, bots) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (day, campaign) DO UPDATE SET total = click_daily.total + excluded.total,
               unique_count = click_daily.unique_count + excluded.unique_count,
               bots = click_daily.bots + excluded.bots",
        )?;
        for ((day, campaign), (n, u, b)) in &days {
            daily.execute(params![day, campaign, n, u, b])?;
        }
    }
    tx.commit()?;
    Ok(out)
}

/// How many of the batch's clicks count against each rate-limit window.
fn hits_per_window(clicks: &[(NewClick, Option<ClickLimit>)]) -> BTreeMap<(&str, i64), i64> {
    let mut per_window: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for (_, limit) in clicks {
        if let Some(l) = limit {
            *per_window
                .entry((l.bucket.as_str(), l.window_start))
                .or_default() += 1;
        }
    }
    per_window
}

/// Whether each click is within its limit, given each window's hits counted for the whole
/// batch (`totals`, after the batch's `per_window` hits were added): the k-th of a
/// window's n clicks is hit number total - n + k, as if they had come one by one.
fn admit(
    clicks: &[(NewClick, Option<ClickLimit>)],
    per_window: &BTreeMap<(&str, i64), i64>,
    totals: &HashMap<(&str, i64), i64>,
) -> Vec<bool> {
    let mut seen: HashMap<(&str, i64), i64> = HashMap::new();
    clicks
        .iter()
        .map(|(_, limit)| {
            let Some(l) = limit else { return true };
            let key = (l.bucket.as_str(), l.window_start);
            let k = seen.entry(key).or_default();
            *k += 1;
            let total = totals.get(&key).copied().unwrap_or(i64::MAX);
            let n = per_window.get(&key).copied().unwrap_or(0);
            total - n + *k <= l.max_hits
        })
        .collect()
}

const CLICK_COLUMNS: &str = "public_id, code, referrer_account, campaign, landing_path, utm_source, utm_medium, utm_campaign, utm_term, utm_content, referrer_host, ua_family, is_bot, ip_hash";

/// Parameters per click in [`insert_sql_pg`].
const PARAMS: usize = 20;

/// A click's 20 parameters, in the order [`insert_sql_pg`] numbers them: the 14 columns of
/// [`CLICK_COLUMNS`], the start of the dedupe window, the time, the day, and the limit
/// (bucket, window start, max hits; NULL when the click is not rate-limited).
fn bind_click<'q>(
    q: sqlx::query::QueryAs<'q, sqlx::Any, (String, i64), sqlx::any::AnyArguments>,
    c: &NewClick,
    limit: Option<&ClickLimit>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, (String, i64), sqlx::any::AnyArguments> {
    let mut q = q
        .bind(c.public_id.clone())
        .bind(c.code.clone())
        .bind(c.referrer_account.clone())
        .bind(c.campaign.clone())
        .bind(c.landing_path.clone());
    for utm in &c.utm {
        q = q.bind(utm.clone());
    }
    q.bind(c.referrer_host.clone())
        .bind(c.ua_family.clone())
        .bind(i64::from(c.is_bot))
        .bind(c.ip_hash.clone())
        .bind(c.at - DEDUPE_WINDOW_SECS)
        .bind(c.at)
        .bind(c.at.div_euclid(86_400))
        .bind(limit.map(|l| l.bucket.clone()))
        .bind(limit.map(|l| l.window_start))
        .bind(limit.map(|l| l.max_hits))
}

/// What each click of a batch became, from the clicks the batch stored.
fn outcomes(
    clicks: &[(NewClick, Option<ClickLimit>)],
    stored: Vec<(String, i64)>,
) -> Result<Vec<ClickStored>> {
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    clicks
        .iter()
        .map(|(c, limit)| match (stored.get(&c.public_id), limit) {
            (Some(u), _) => Ok(ClickStored::Stored { unique: *u == 1 }),
            (None, Some(_)) => Ok(ClickStored::RateLimited),
            // Nothing but the limit can keep a click out; say so rather than guess.
            (None, None) => Err(StoreError::Db(sqlx::Error::RowNotFound)),
        })
        .collect()
}

/// PostgreSQL: one transaction of three statements per batch. First the rate-limit hits,
/// one upsert per bucket, which returns each window's total: the k-th of a bucket's n
/// clicks in the batch is hit number total - n + k, as if they had come one by one.
/// Then the accounts of the admitted clicks are locked (in id order, so two instances'
/// batches cannot deadlock), so that the last statement's fresh snapshot sees every
/// earlier click on those codes, whichever instance wrote it. That statement inserts the
/// clicks, unique when not a bot, first of its visitor and code in the batch and with no
/// such click in the last hour, and adds them to the accounts' and days' counters.
async fn write_batch_pg(
    write: &AnyPool,
    clicks: &[(NewClick, Option<ClickLimit>)],
) -> Result<Vec<ClickStored>> {
    let mut tx = write.begin().await?;
    let admitted = admit_pg(&mut tx, clicks).await?;
    let kept: Vec<&NewClick> = clicks
        .iter()
        .zip(&admitted)
        .filter_map(|((c, _), ok)| ok.then_some(c))
        .collect();
    let mut stored = Vec::new();
    if !kept.is_empty() {
        let mut accounts: Vec<&str> = kept.iter().map(|c| c.referrer_account.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut lock = sqlx::query(dynamic(format!(
            "SELECT id FROM accounts WHERE id IN ({}) ORDER BY id FOR UPDATE",
            super::in_list(1, accounts.len())
        )));
        for a in &accounts {
            lock = lock.bind(a.to_string());
        }
        lock.execute(&mut *tx).await?;
        let mut q = sqlx::query_as::<_, (String, i64)>(dynamic(insert_sql_pg(kept.len())));
        for c in &kept {
            q = bind_click(q, c, None);
        }
        stored = q.fetch_all(&mut *tx).await?;
    }
    tx.commit().await?;
    outcomes(clicks, stored)
}

/// Counts the batch's rate-limit hits; whether each click is within its limit.
async fn admit_pg(
    tx: &mut sqlx::AnyConnection,
    clicks: &[(NewClick, Option<ClickLimit>)],
) -> Result<Vec<bool>> {
    let per_window = hits_per_window(clicks);
    let mut totals: HashMap<(&str, i64), i64> = HashMap::new();
    if !per_window.is_empty() {
        let rows: Vec<String> = (0..per_window.len())
            .map(|i| {
                format!(
                    "(${}::TEXT, ${}::BIGINT, ${}::BIGINT)",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )
            })
            .collect();
        // Ordered by bucket so that concurrent batches lock the rows in one order.
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(dynamic(format!(
            "INSERT INTO rate_limits (bucket, window_start, hits)
             SELECT bucket, window_start, hits FROM (VALUES {}) v (bucket, window_start, hits)
             ORDER BY bucket, window_start
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + excluded.hits
             RETURNING bucket, window_start, hits",
            rows.join(", ")
        )));
        for ((bucket, window), n) in &per_window {
            q = q.bind(bucket.to_string()).bind(*window).bind(*n);
        }
        let returned: HashMap<(String, i64), i64> = q
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(bucket, window, hits)| ((bucket, window), hits))
            .collect();
        // Keyed by the batch's own bucket text, as the SQLite batch keys them.
        for &(bucket, window) in per_window.keys() {
            if let Some(&hits) = returned.get(&(bucket.to_owned(), window)) {
                totals.insert((bucket, window), hits);
            }
        }
    }
    Ok(admit(clicks, &per_window, &totals))
}

/// The click statement of [`write_batch_pg`], with [`bind_click`]'s parameters (the
/// limit's three are NULL and unused here).
fn insert_sql_pg(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = |k: usize| i * PARAMS + k;
            let texts = (1..=12)
                .map(|k| format!("${}::TEXT", p(k)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "({i}, {texts}, ${}::BIGINT, ${}::TEXT, ${}::BIGINT, ${}::BIGINT, ${}::BIGINT, ${}::TEXT, ${}::BIGINT, ${}::BIGINT)",
                p(13),
                p(14),
                p(15),
                p(16),
                p(17),
                p(18),
                p(19),
                p(20)
            )
        })
        .collect();
    format!(
        "WITH input (ord, {CLICK_COLUMNS}, since, at, day, bucket, window_start, max_hits) AS (VALUES {}),
         marked AS (
           SELECT i.*, (CASE WHEN i.is_bot = 0
               AND row_number() OVER (PARTITION BY i.code, i.ip_hash ORDER BY i.ord) = 1
               AND NOT EXISTS (SELECT 1 FROM clicks c WHERE c.code = i.code AND c.ip_hash = i.ip_hash AND c.created_at > i.since)
             THEN 1 ELSE 0 END)::BIGINT AS is_unique
           FROM input i),
         ins AS (
           INSERT INTO clicks ({CLICK_COLUMNS}, is_unique, created_at)
           SELECT {CLICK_COLUMNS}, is_unique, at FROM marked ORDER BY ord
           RETURNING public_id, is_unique),
         acc AS (
           UPDATE accounts a SET clicks_total = a.clicks_total + t.n, clicks_unique = a.clicks_unique + t.u
           FROM (SELECT referrer_account, count(*)::BIGINT AS n, sum(is_unique)::BIGINT AS u FROM marked GROUP BY referrer_account) t
           WHERE a.id = t.referrer_account),
         daily AS (
           INSERT INTO click_daily (day, campaign, total, unique_count, bots)
           SELECT day, campaign, count(*)::BIGINT, sum(is_unique)::BIGINT, sum(is_bot)::BIGINT FROM marked GROUP BY day, campaign
           ON CONFLICT (day, campaign) DO UPDATE SET total = click_daily.total + excluded.total,
             unique_count = click_daily.unique_count + excluded.unique_count,
             bots = click_daily.bots + excluded.bots)
         SELECT public_id, is_unique FROM ins",
        rows.join(", ")
    )
}

impl Store {
    /// Stores a click, counting it against `limit` first if given, in a batch with the
    /// clicks that arrive meanwhile (see [`start`]); answers once committed.
    pub async fn insert_click(
        &self,
        c: NewClick,
        limit: Option<ClickLimit>,
    ) -> Result<ClickStored> {
        self.clicks.submit((c, limit)).await
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
