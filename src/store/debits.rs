//! Metering debits, many per transaction.
//!
//! Every metered call writes a debit. Through the group commit each debit was a savepoint
//! and two statements on the single writer connection, and every statement is a round
//! trip to that connection's worker thread, which under load costs a scheduling delay of
//! hundreds of microseconds on 2 cores: the writer, not the disk or the CPU, capped
//! metered throughput (measured: groups of 14 debits took 2.5-3 ms, 0.4 ms of it only to
//! begin). Here concurrent debits queue; one task takes everything queued and runs it as
//! ONE query — `BEGIN IMMEDIATE`, the debits, a `SELECT` of the keys charged, `COMMIT` —
//! which SQLite executes in one call on the worker thread: one round trip per batch. The
//! statements are the same conditional UPDATE and ledger INSERT as a lone debit, so
//! nothing can overdraw, and every caller is answered after the COMMIT (on disk). While
//! a batch commits the next gathers, so the busier the server, the more each carries.
//!
//! On PostgreSQL the limit is different: every debit of an account updates that
//! account's balance row, so concurrent debits of one busy account wait for each other's
//! row lock until each commits (a disk flush): measured 2.7k debits/s for one account.
//! There a batch is one statement (see [`batch_sql_pg`]): the lock is taken once per
//! batch and the batch shares one commit.

use std::collections::HashSet;

use sqlx::AnyPool;

use super::batch::Batcher;
use super::{Dialect, Result, StoreError, dynamic};

/// One debit: `cost` from `account` under `key`, if the balance covers it.
pub(crate) struct Debit {
    pub key: String,
    pub account: String,
    pub cost: i64,
    pub kind: String,
    pub at: i64,
}

/// Answers whether each debit was charged (false: the balance did not cover it).
pub(crate) type DebitBatcher = Batcher<Debit, bool>;

/// Debits per query: 5 parameters each, far below SQLite's limit of 32,766.
const MAX_BATCH: usize = 128;

/// `write` is the write pool: on SQLite the single writer connection, shared with the
/// group commit (each takes it for one transaction at a time).
pub(crate) fn start(write: AnyPool, dialect: Dialect) -> DebitBatcher {
    Batcher::start(MAX_BATCH, move |debits: Vec<Debit>| {
        let write = write.clone();
        async move {
            let charged = match dialect {
                Dialect::Sqlite => charge(&write, &debits).await?,
                Dialect::Postgres => charge_pg(&write, &debits).await?,
            };
            Ok(debits.iter().map(|d| charged.contains(&d.key)).collect())
        }
    })
}

/// The SQL of a batch of `n` debits, as one transaction: for each, the conditional
/// UPDATE and an INSERT that runs only if that UPDATE changed a row (`changes()` is the
/// row count of the statement just before); then the keys that were charged; COMMIT.
fn batch_sql(n: usize) -> String {
    let mut sql = String::with_capacity(n * 260 + 96);
    sql.push_str("BEGIN IMMEDIATE;\n");
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let p = |k: usize| format!("${}", i * 5 + k);
        let (key, account, cost, kind, at) = (p(1), p(2), p(3), p(4), p(5));
        sql.push_str(&format!(
            "UPDATE balances SET balance = balance - {cost} WHERE account = {account} AND balance >= {cost};
             INSERT INTO ledger (account, delta, kind, idempotency_key, at) SELECT {account}, -{cost}, {kind}, {key}, {at} WHERE changes() = 1;\n"
        ));
        keys.push(key);
    }
    sql.push_str(&format!(
        "SELECT idempotency_key FROM ledger WHERE idempotency_key IN ({});\nCOMMIT;",
        keys.join(", ")
    ));
    sql
}

/// Runs one batch; on any failure the transaction is rolled back (nothing was charged)
/// and every debit of the batch gets the error.
async fn charge(write: &AnyPool, debits: &[Debit]) -> Result<HashSet<String>> {
    let mut conn = write.acquire().await?;
    let q = bound(batch_sql(debits.len()), debits);
    match q.fetch_all(&mut *conn).await {
        Ok(keys) => Ok(keys.into_iter().collect()),
        Err(e) => {
            // A statement failed part-way: the transaction may still be open.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            Err(StoreError::Db(e))
        }
    }
}

/// PostgreSQL: the whole batch as one statement, so one round trip and one commit. Per
/// account, the account's balance row is locked and its debits are charged in order
/// while their running total fits the balance; the balance drops by what was charged and
/// each charged debit gets its ledger row. The balance `CHECK` still forbids any overdraft.
fn batch_sql_pg(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = |k: usize| i * 5 + k;
            format!(
                "({i}, ${}, ${}, ${}::BIGINT, ${}, ${}::BIGINT)",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5)
            )
        })
        .collect();
    format!(
        "WITH input (ord, key, account, cost, kind, at) AS (VALUES {}),
         locked AS (SELECT account, balance FROM balances WHERE account IN (SELECT account FROM input) FOR UPDATE),
         fits AS (
           SELECT i.* FROM (SELECT input.*, SUM(cost) OVER (PARTITION BY account ORDER BY ord) AS running FROM input) i
           JOIN locked l ON l.account = i.account WHERE i.running <= l.balance),
         charged AS (
           UPDATE balances b SET balance = b.balance - t.total
           FROM (SELECT account, SUM(cost) AS total FROM fits GROUP BY account) t WHERE b.account = t.account),
         rows AS (
           INSERT INTO ledger (account, delta, kind, idempotency_key, at)
           SELECT account, -cost, kind, key, at FROM fits RETURNING idempotency_key)
         SELECT idempotency_key FROM rows",
        rows.join(", ")
    )
}

async fn charge_pg(write: &AnyPool, debits: &[Debit]) -> Result<HashSet<String>> {
    let q = bound(batch_sql_pg(debits.len()), debits);
    Ok(q.fetch_all(write).await?.into_iter().collect())
}

/// A batch's query with its parameters: five per debit, in the order both SQL builders
/// number them (key, account, cost, kind, time).
fn bound(
    sql: String,
    debits: &[Debit],
) -> sqlx::query::QueryScalar<'static, sqlx::Any, String, sqlx::any::AnyArguments> {
    let mut q = sqlx::query_scalar::<_, String>(dynamic(sql));
    for d in debits {
        q = q
            .bind(d.key.clone())
            .bind(d.account.clone())
            .bind(d.cost)
            .bind(d.kind.clone())
            .bind(d.at);
    }
    q
}
