//! Metering debits, many per transaction.
//!
//! Every metered call writes a debit. Through the group commit each debit was a savepoint
//! and two statements on the single writer connection, and every statement is a round
//! trip to that connection's worker thread, which under load costs a scheduling delay of
//! hundreds of microseconds on 2 cores: the writer, not the disk or the CPU, capped
//! metered throughput (measured: groups of 14 debits took 2.5-3 ms, 0.4 ms of it only to
//! begin). Here concurrent debits queue, and one writer takes everything queued and
//! charges it in one transaction. On SQLite that writer is a thread with its own
//! connection (see [`start_sqlite`]), running the same conditional UPDATE and ledger
//! INSERT per debit as a lone debit would, so nothing can overdraw; every caller is
//! answered after the COMMIT (on disk). While a batch commits the next gathers, so the
//! busier the server, the more each carries.
//!
//! On PostgreSQL the limit is different: every debit of an account updates that
//! account's balance row, so concurrent debits of one busy account wait for each other's
//! row lock until each commits (a disk flush): measured 2.7k debits/s for one account.
//! There a batch is one statement (see [`batch_sql_pg`]): the lock is taken once per
//! batch and the batch shares one commit.

use std::collections::HashSet;

use sqlx::AnyPool;

use super::batch::Batcher;
use super::{Result, dynamic};

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

/// Debits per transaction (on PostgreSQL, 5 parameters each per statement).
const MAX_BATCH: usize = 128;

/// PostgreSQL: batches through the pool (see [`batch_sql_pg`]).
pub(crate) fn start_pg(pool: AnyPool) -> DebitBatcher {
    Batcher::start(MAX_BATCH, move |debits: Vec<Debit>| {
        let pool = pool.clone();
        async move {
            let charged = charge_pg(&pool, &debits).await?;
            Ok(debits.iter().map(|d| charged.contains(&d.key)).collect())
        }
    })
}

/// SQLite: batches on a thread of their own through a rusqlite connection on the
/// database `file`, one prepared UPDATE and INSERT per debit (see
/// [`super::direct::start_writer`] for why, and how it shares the single writer).
pub(crate) fn start_sqlite(write: AnyPool, file: &std::path::Path) -> Result<DebitBatcher> {
    super::direct::start_writer("referral-debits", MAX_BATCH, write, file, |conn, debits| {
        charge_direct(conn, &debits)
    })
}

/// One batch in one transaction: per debit, the conditional UPDATE and, if it changed
/// the balance, the ledger row. Any failure rolls the whole batch back (the transaction
/// is dropped uncommitted), so nothing of it was charged.
fn charge_direct(conn: &mut rusqlite::Connection, debits: &[Debit]) -> Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut charged = Vec::with_capacity(debits.len());
    {
        let mut take = tx.prepare_cached(
            "UPDATE balances SET balance = balance - ?1 WHERE account = ?2 AND balance >= ?1",
        )?;
        let mut record = tx.prepare_cached(
            "INSERT INTO ledger (account, delta, kind, idempotency_key, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for d in debits {
            let ok = take.execute(rusqlite::params![d.cost, d.account])? == 1;
            if ok {
                record.execute(rusqlite::params![d.account, -d.cost, d.kind, d.key, d.at])?;
            }
            charged.push(ok);
        }
    }
    tx.commit()?;
    Ok(charged)
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
