//! The credit ledger: one row per movement, unique idempotency key, and a running balance
//! updated in the same transaction.

use sqlx::AnyConnection;
use sqlx::Row;

use super::{Dialect, Result, Store, StoreError, dynamic};

/// One credit of [`Store::credit_many`].
#[derive(Debug, Clone)]
pub struct NewCredit {
    pub key: String,
    pub account: String,
    pub delta: i64,
}

/// What the ledger found when asked to add credits under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credit {
    Added,
    /// The key was used before with the same account and amount.
    AlreadyAdded,
    /// The key was used before with a different account or amount: nothing was added.
    Conflicting {
        account: String,
        delta: i64,
    },
}

/// What the ledger did when asked to take a reversed reward's credits back under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeBack {
    /// Took this many credits (fewer than asked when the balance was short; never below 0).
    Taken(i64),
    /// The key was used before for this account; it took this many then.
    AlreadyTaken(i64),
    /// The key was used before for another account: nothing was taken.
    Conflicting { account: String },
}

async fn add_to_balance(conn: &mut AnyConnection, account: &str, delta: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO balances (account, balance) VALUES ($1, $2)
         ON CONFLICT (account) DO UPDATE SET balance = balances.balance + excluded.balance",
    )
    .bind(account)
    .bind(delta)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Adds `delta` (> 0) credits to `account` exactly once per `key`.
    pub async fn credit(
        &self,
        key: &str,
        account: &str,
        delta: i64,
        kind: &str,
        now: i64,
    ) -> Result<Credit> {
        let (key, account, kind) = (key.to_owned(), account.to_owned(), kind.to_owned());
        self.write_tx(move |conn| {
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO ledger (account, delta, kind, idempotency_key, at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                )
                .bind(&account)
                .bind(delta)
                .bind(&kind)
                .bind(&key)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?;
                if inserted.is_some() {
                    add_to_balance(conn, &account, delta).await?;
                    return Ok(Credit::Added);
                }
                let row = sqlx::query("SELECT account, delta FROM ledger WHERE idempotency_key = $1")
                    .bind(&key)
                    .fetch_one(&mut *conn)
                    .await?;
                let (acc, d): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                Ok(if acc == account && d == delta {
                    Credit::AlreadyAdded
                } else {
                    Credit::Conflicting {
                        account: acc,
                        delta: d,
                    }
                })
            })
        })
        .await
    }

    /// [`Self::credit`] for many keys in one transaction, answered in order.
    ///
    /// Why: recover grants rewards a group at a time, and through the group commit each
    /// credit was a savepoint and three statements, every one a round trip to sqlx's
    /// SQLite worker thread. On SQLite the group is one query: per credit, the ledger row
    /// unless its key exists, the row of that key with whether it was just inserted
    /// (`changes()` still counts the INSERT), and the balance only if it was. On
    /// PostgreSQL the credits are written one by one, concurrently, as before.
    pub async fn credit_many(
        &self,
        credits: Vec<NewCredit>,
        kind: &str,
        now: i64,
    ) -> Result<Vec<Credit>> {
        if self.dialect != Dialect::Sqlite {
            let each = credits
                .iter()
                .map(|c| self.credit(&c.key, &c.account, c.delta, kind, now));
            return futures::future::join_all(each).await.into_iter().collect();
        }
        if credits.is_empty() {
            return Ok(Vec::new());
        }
        let kind = kind.to_owned();
        self.write_tx(move |conn| {
            Box::pin(async move {
                let sql: String = (0..credits.len())
                    .map(|i| {
                        let p = |k: usize| format!("${}", 2 + i * 3 + k);
                        let (key, account, delta) = (p(1), p(2), p(3));
                        format!(
                            "INSERT INTO ledger (account, delta, kind, idempotency_key, at) VALUES ({account}, {delta}, $1, {key}, $2)
                               ON CONFLICT (idempotency_key) DO NOTHING;
                             SELECT {i}, changes(), account, delta FROM ledger WHERE idempotency_key = {key};
                             INSERT INTO balances (account, balance) SELECT {account}, {delta} WHERE changes() = 1
                               ON CONFLICT (account) DO UPDATE SET balance = balances.balance + excluded.balance;\n"
                        )
                    })
                    .collect();
                let mut q = sqlx::query_as::<_, (i64, i64, String, i64)>(dynamic(sql))
                    .bind(kind)
                    .bind(now);
                for c in &credits {
                    q = q.bind(c.key.clone()).bind(c.account.clone()).bind(c.delta);
                }
                let rows = q.fetch_all(&mut *conn).await?;
                if rows.len() != credits.len() {
                    return Err(StoreError::Corrupt(format!(
                        "{} ledger rows for {} credits",
                        rows.len(),
                        credits.len()
                    )));
                }
                Ok(credits
                    .iter()
                    .zip(rows)
                    .map(|(c, (_, inserted, account, delta))| {
                        if inserted == 1 {
                            Credit::Added
                        } else if account == c.account && delta == c.delta {
                            Credit::AlreadyAdded
                        } else {
                            Credit::Conflicting { account, delta }
                        }
                    })
                    .collect())
            })
        })
        .await
    }

    /// Takes up to `credits` back from `account` exactly once per `key`: what the balance
    /// covers, never taking it below zero (the rest is the caller's to record). The key's
    /// row is inserted first, so a concurrent repeat waits for it and then finds it.
    pub async fn take_back(
        &self,
        key: &str,
        account: &str,
        credits: i64,
        kind: &str,
        now: i64,
    ) -> Result<TakeBack> {
        let (key, account, kind) = (key.to_owned(), account.to_owned(), kind.to_owned());
        let lock = self.dialect.lock_clause();
        self.write_tx(move |conn| {
            Box::pin(async move {
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO ledger (account, delta, kind, idempotency_key, at) VALUES ($1, 0, $2, $3, $4)
                     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                )
                .bind(&account)
                .bind(&kind)
                .bind(&key)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row_id) = inserted else {
                    let (acc, delta): (String, i64) =
                        sqlx::query_as("SELECT account, delta FROM ledger WHERE idempotency_key = $1")
                            .bind(&key)
                            .fetch_one(&mut *conn)
                            .await?;
                    return Ok(if acc == account {
                        TakeBack::AlreadyTaken(-delta)
                    } else {
                        TakeBack::Conflicting { account: acc }
                    });
                };
                let sql = format!("SELECT balance FROM balances WHERE account = $1{lock}");
                let balance: i64 = sqlx::query_scalar(super::dynamic(sql))
                    .bind(&account)
                    .fetch_optional(&mut *conn)
                    .await?
                    .unwrap_or(0);
                let taken = credits.min(balance).max(0);
                if taken > 0 {
                    sqlx::query("UPDATE balances SET balance = balance - $2 WHERE account = $1")
                        .bind(&account)
                        .bind(taken)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("UPDATE ledger SET delta = $2 WHERE id = $1")
                        .bind(row_id)
                        .bind(-taken)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(TakeBack::Taken(taken))
            })
        })
        .await
    }

    /// Takes `cost` credits from `account` if the balance covers it. Returns `None` (and
    /// changes nothing) when it does not. Concurrent debits are charged in batches (see
    /// [`super::debits`]) with conditional UPDATEs, so they can never take the balance
    /// below zero; the answer comes once the batch is committed.
    pub async fn debit(
        &self,
        key: &str,
        account: &str,
        cost: i64,
        kind: &str,
        now: i64,
    ) -> Result<Option<()>> {
        let charged = self
            .debits
            .submit(super::debits::Debit {
                key: key.to_owned(),
                account: account.to_owned(),
                cost,
                kind: kind.to_owned(),
                at: now,
            })
            .await?;
        Ok(charged.then_some(()))
    }

    pub async fn balance(&self, account: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT balance FROM balances WHERE account = $1")
                .bind(account)
                .fetch_optional(&self.write)
                .await?
                .unwrap_or(0),
        )
    }
}
