//! The credit ledger: one row per movement, unique idempotency key, and a running balance
//! updated in the same transaction.

use sqlx::AnyConnection;
use sqlx::Row;

use super::{Result, Store};

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
