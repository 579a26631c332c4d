//! Metering debits, many per transaction.
//!
//! Every metered call writes a debit. Through the group commit each debit was a savepoint
//! and two statements on the single writer connection, and every statement is a round
//! trip to that connection's worker thread, which under load costs a scheduling delay of
//! hundreds of microseconds on 2 cores: the writer, not the disk or the CPU, capped
//! metered throughput (measured: groups of 14 debits took 2.5-3 ms, 0.4 ms of it only to
//! begin). Here concurrent debits queue, and one writer takes everything queued and
//! charges it in one transaction. On SQLite that writer is a thread with its own
//! connection (see [`start_sqlite`]), taking each account's debits with conditional
//! UPDATEs, so nothing can overdraw; every caller is answered after the COMMIT (on
//! disk). While a batch commits the next gathers, so the busier the server, the more
//! each carries.
//!
//! On both databases a debit in a batch is charged exactly when a lone debit arriving at
//! its place would be: in arrival order, when what is left of the balance covers it.
//!
//! On PostgreSQL the limit is different: every debit of an account updates that
//! account's balance row, so concurrent debits of one busy account wait for each other's
//! row lock until each commits (a disk flush): measured 2.7k debits/s for one account.
//! There a batch is one statement (see [`batch_sql_pg`]): the lock is taken once per
//! batch and the batch shares one commit.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use sqlx::AnyConnection;

use super::batch::Batcher;
use super::pinned::Pinned;
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

/// PostgreSQL: batches, one at a time, on a connection of their own outside the pool
/// (see [`batch_sql_pg`]; [`Pinned`] says why not through the pool: a ping round trip
/// each time a connection goes back).
pub(crate) fn start_pg(conn: Pinned) -> DebitBatcher {
    let conn = Arc::new(conn);
    Batcher::start(MAX_BATCH, move |debits: Vec<Debit>| {
        let conn = conn.clone();
        async move {
            conn.with(move |c| {
                Box::pin(async move {
                    let charged = charge_pg(c, &debits).await?;
                    Ok(debits.iter().map(|d| charged.contains(&d.key)).collect())
                })
            })
            .await
        }
    })
}

/// SQLite: batches on a thread of their own through a rusqlite connection on the
/// database `file` (see [`super::direct::start_writer`] for why, and how it waits for
/// SQLite's single writer lock).
pub(crate) fn start_sqlite(file: &std::path::Path) -> Result<DebitBatcher> {
    super::direct::start_writer("referral-debits", MAX_BATCH, file, |conn, debits| {
        charge_direct(conn, &debits)
    })
}

/// One batch in one transaction. Per account (in order of first arrival), one
/// conditional UPDATE takes the total of its debits when the balance covers it; when it
/// does not, its debits are taken one at a time in arrival order, as lone debits would
/// be, so each is charged exactly when the balance left covers it. Then one ledger row
/// per charged debit, a few rows per INSERT. Any failure rolls the whole batch back (the
/// transaction is dropped uncommitted), so nothing of it was charged.
///
/// Why per account and a few rows per statement: a batch is mostly one busy account's
/// debits, and each statement costs its own execution.
fn charge_direct(conn: &mut rusqlite::Connection, debits: &[Debit]) -> Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut charged = vec![false; debits.len()];
    {
        let mut take = tx.prepare_cached(
            "UPDATE balances SET balance = balance - ?1 WHERE account = ?2 AND balance >= ?1",
        )?;
        for (account, idx) in by_account(debits) {
            let total = idx
                .iter()
                .try_fold(0i64, |sum, &i| sum.checked_add(debits[i].cost));
            if let Some(total) = total
                && take.execute(rusqlite::params![total, account])? == 1
            {
                idx.iter().for_each(|&i| charged[i] = true);
                continue;
            }
            for i in idx {
                charged[i] = take.execute(rusqlite::params![debits[i].cost, account])? == 1;
            }
        }
    }
    let rows: Vec<&Debit> = debits
        .iter()
        .zip(&charged)
        .filter_map(|(d, &ok)| ok.then_some(d))
        .collect();
    let mut rest = rows.as_slice();
    while !rest.is_empty() {
        // The largest power of two that fits: at most a handful of distinct statements,
        // each prepared once.
        let size = rest.len().min(LEDGER_ROWS_PER_INSERT).ilog2();
        let (chunk, tail) = rest.split_at(1 << size);
        let mut insert = tx.prepare_cached(ledger_insert_sql(size))?;
        let params = chunk.iter().flat_map(|d| {
            [
                &d.account as &dyn rusqlite::ToSql,
                &d.cost,
                &d.kind,
                &d.key,
                &d.at,
            ]
        });
        insert.execute(rusqlite::params_from_iter(params))?;
        rest = tail;
    }
    tx.commit()?;
    Ok(charged)
}

/// Ledger rows per INSERT statement, at most (a power of two).
const LEDGER_ROWS_PER_INSERT: usize = 32;
/// The INSERTs' sizes: 1, 2, 4, … up to [`LEDGER_ROWS_PER_INSERT`] rows.
const LEDGER_INSERT_SIZES: usize = LEDGER_ROWS_PER_INSERT.ilog2() as usize + 1;

/// The debits' indexes grouped by account, accounts in order of first arrival and each
/// account's debits in arrival order.
fn by_account(debits: &[Debit]) -> Vec<(&str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, d) in debits.iter().enumerate() {
        match groups.iter_mut().find(|(a, _)| *a == d.account) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((&d.account, vec![i])),
        }
    }
    groups
}

/// `INSERT INTO ledger` of 2^`size` rows, five parameters each: account, cost (the
/// row's delta is its negative), kind, key, time. Built once per size: the statement
/// cache finds a statement by its text, and the text is the same for every batch.
fn ledger_insert_sql(size: u32) -> &'static str {
    static SQL: [OnceLock<String>; LEDGER_INSERT_SIZES] =
        [const { OnceLock::new() }; LEDGER_INSERT_SIZES];
    SQL[size as usize].get_or_init(|| build_ledger_insert_sql(1 << size))
}

fn build_ledger_insert_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = i * 5;
            format!(
                "(?{}, -?{}, ?{}, ?{}, ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            )
        })
        .collect();
    format!(
        "INSERT INTO ledger (account, delta, kind, idempotency_key, at) VALUES {}",
        rows.join(", ")
    )
}

/// PostgreSQL: the whole batch as one statement, so one round trip and one commit. The
/// batch's accounts' balance rows are locked, and each account's debits are walked in
/// arrival order (a recursive step per debit): each is charged exactly when what is left
/// of the balance covers it, as a lone debit would be. The balance drops by what was
/// charged and each charged debit gets its ledger row. The balance `CHECK` still forbids
/// any overdraft.
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
        "WITH RECURSIVE input (ord, key, account, cost, kind, at) AS (VALUES {}),
         locked AS (SELECT account, balance FROM balances WHERE account IN (SELECT account FROM input) FOR UPDATE),
         seq AS (SELECT input.*, ROW_NUMBER() OVER (PARTITION BY account ORDER BY ord) AS rn FROM input),
         walk (account, rn, remaining, ok) AS (
           SELECT account, 0::BIGINT, balance, FALSE FROM locked
           UNION ALL
           SELECT w.account, s.rn,
                  CASE WHEN s.cost <= w.remaining THEN w.remaining - s.cost ELSE w.remaining END,
                  s.cost <= w.remaining
           FROM walk w JOIN seq s ON s.account = w.account AND s.rn = w.rn + 1),
         fits AS (SELECT s.* FROM seq s JOIN walk w ON w.account = s.account AND w.rn = s.rn WHERE w.ok),
         charged AS (
           UPDATE balances b SET balance = b.balance - t.total
           FROM (SELECT account, SUM(cost) AS total FROM fits GROUP BY account) t WHERE b.account = t.account),
         rows AS (
           INSERT INTO ledger (account, delta, kind, idempotency_key, at)
           SELECT account, -cost, kind, key, at FROM fits ORDER BY ord RETURNING idempotency_key)
         SELECT idempotency_key FROM rows",
        rows.join(", ")
    )
}

async fn charge_pg(conn: &mut AnyConnection, debits: &[Debit]) -> Result<HashSet<String>> {
    let q = bound(batch_sql_pg(debits.len()), debits);
    Ok(q.fetch_all(conn).await?.into_iter().collect())
}

/// A batch's query with its parameters: five per debit, in the order [`batch_sql_pg`]
/// numbers them (key, account, cost, kind, time). The SQLite ledger INSERT numbers its
/// own differently (see [`build_ledger_insert_sql`]).
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
