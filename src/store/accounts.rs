//! Accounts, with their referral codes.

use sqlx::{AnyConnection, FromRow};

use super::{Result, Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub id: String,
    pub referral_code: String,
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub email_domain: Option<String>,
    pub signup_ip_hash: Option<String>,
    pub clicks_total: i64,
    pub clicks_unique: i64,
    pub created_at: i64,
}

const ACCOUNT_COLS: &str = "id, referral_code, email, email_normalized, email_domain, signup_ip_hash, clicks_total, clicks_unique, created_at";

impl Store {
    pub async fn account(&self, id: &str) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
        Ok(sqlx::query_as::<_, AccountRow>(super::dynamic(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn account_by_code(&self, code: &str) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE referral_code = $1");
        Ok(sqlx::query_as::<_, AccountRow>(super::dynamic(sql))
            .bind(code)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Returns the account, creating it with a fresh referral code if it does not exist.
    /// Signup data (email, IP hash) fills in only what is still empty.
    pub async fn ensure_account(&self, a: &NewAccount<'_>) -> Result<AccountRow> {
        let mut tx = self.begin_write().await?;
        let row = upsert_account(&mut tx, a).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// An account as a signup (or a first visit) describes it.
pub struct NewAccount<'a> {
    pub id: &'a str,
    /// The address, its normalized form and its domain.
    pub email: Option<(&'a str, &'a str, &'a str)>,
    pub ip_hash: Option<&'a str>,
    pub now: i64,
    /// A fresh referral code, for a new account.
    pub new_code: &'a (dyn Fn() -> String + Send + Sync),
}

/// [`Store::ensure_account`] inside the caller's transaction. Written without relying on
/// a unique violation (which would abort a PostgreSQL transaction): fill in an existing
/// account, else insert with a fresh code, skipping on any conflict and trying again.
pub(super) async fn upsert_account(
    conn: &mut AnyConnection,
    a: &NewAccount<'_>,
) -> Result<AccountRow> {
    let (email, norm, domain) = match a.email {
        Some((e, n, d)) => (Some(e), Some(n), Some(d)),
        None => (None, None, None),
    };
    // A code collision is astronomically rare (31^10); retry a few times anyway.
    for _ in 0..5 {
        let filled = sqlx::query(
            "UPDATE accounts SET
               email = COALESCE(email, $2), email_normalized = COALESCE(email_normalized, $3),
               email_domain = COALESCE(email_domain, $4), signup_ip_hash = COALESCE(signup_ip_hash, $5)
             WHERE id = $1",
        )
        .bind(a.id)
        .bind(email)
        .bind(norm)
        .bind(domain)
        .bind(a.ip_hash)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if filled == 0 {
            let inserted = sqlx::query(
                "INSERT INTO accounts (id, referral_code, email, email_normalized, email_domain, signup_ip_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(a.id)
            .bind((a.new_code)())
            .bind(email)
            .bind(norm)
            .bind(domain)
            .bind(a.ip_hash)
            .bind(a.now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 0 {
                // Another signup created it meanwhile, or the code was taken: again.
                continue;
            }
        }
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
        return Ok(sqlx::query_as::<_, AccountRow>(super::dynamic(sql))
            .bind(a.id)
            .fetch_one(&mut *conn)
            .await?);
    }
    Err(StoreError::Corrupt(
        "could not allocate a unique referral code".into(),
    ))
}
