//! API keys: stored as a hash with a lookup prefix; the secret itself is never stored.

use sqlx::{FromRow, Row};

use super::{Result, Store};

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: i64,
    pub prefix: String,
    pub secret_hash: String,
    pub name: String,
    pub account: String,
    pub scopes: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn insert_api_key(
        &self,
        prefix: &str,
        secret_hash: &str,
        name: &str,
        account: &str,
        scopes: &str,
        now: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO api_keys (prefix, secret_hash, name, account, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(prefix)
        .bind(secret_hash)
        .bind(name)
        .bind(account)
        .bind(scopes)
        .bind(now)
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRow>> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(
            "SELECT id, prefix, secret_hash, name, account, scopes, created_at, revoked_at FROM api_keys WHERE prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Revokes by prefix; returns whether a live key was revoked.
    pub async fn revoke_api_key(&self, prefix: &str, now: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }
}
