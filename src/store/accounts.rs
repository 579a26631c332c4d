//! Accounts (with their referral codes) and campaigns.

use sqlx::FromRow;

use super::status::AttributionModel;
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

#[derive(Debug, Clone, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub referrer_credits: i64,
    pub referred_credits: i64,
    pub window_days: i64,
    pub cap_count: Option<i64>,
    pub cap_credits: Option<i64>,
    pub cap_period_days: i64,
    pub attribution_model: AttributionModel,
    pub created_at: i64,
}

const ACCOUNT_COLS: &str = "id, referral_code, email, email_normalized, email_domain, signup_ip_hash, clicks_total, clicks_unique, created_at";

impl Store {
    /// Creates or replaces a campaign.
    pub async fn upsert_campaign(&self, c: &CampaignRow) -> Result<()> {
        self.write_campaign(
            c,
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, referrer_credits = excluded.referrer_credits,
               referred_credits = excluded.referred_credits, window_days = excluded.window_days,
               cap_count = excluded.cap_count, cap_credits = excluded.cap_credits,
               cap_period_days = excluded.cap_period_days, attribution_model = excluded.attribution_model",
        )
        .await
    }

    /// Inserts the campaign only if no campaign of that id exists (first-run defaults).
    pub async fn insert_campaign_if_absent(&self, c: &CampaignRow) -> Result<()> {
        self.write_campaign(c, "ON CONFLICT (id) DO NOTHING").await
    }

    async fn write_campaign(&self, c: &CampaignRow, on_conflict: &'static str) -> Result<()> {
        let sql = format!(
            "INSERT INTO campaigns (id, name, referrer_credits, referred_credits, window_days, cap_count, cap_credits, cap_period_days, attribution_model, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) {on_conflict}"
        );
        sqlx::query(super::dynamic(sql))
            .bind(&c.id)
            .bind(&c.name)
            .bind(c.referrer_credits)
            .bind(c.referred_credits)
            .bind(c.window_days)
            .bind(c.cap_count)
            .bind(c.cap_credits)
            .bind(c.cap_period_days)
            .bind(c.attribution_model.as_str())
            .bind(c.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn campaign(&self, id: &str) -> Result<Option<CampaignRow>> {
        Ok(
            sqlx::query_as::<_, CampaignRow>("SELECT * FROM campaigns WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn campaign_ids(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT id FROM campaigns ORDER BY id")
                .fetch_all(&self.read)
                .await?,
        )
    }

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
    pub async fn ensure_account(
        &self,
        id: &str,
        email: Option<(&str, &str, &str)>,
        ip_hash: Option<&str>,
        now: i64,
        new_code: &(dyn Fn() -> String + Send + Sync),
    ) -> Result<AccountRow> {
        let (email, norm, domain) = match email {
            Some((e, n, d)) => (Some(e), Some(n), Some(d)),
            None => (None, None, None),
        };
        // A code collision is astronomically rare (31^10); retry a few times anyway.
        for _ in 0..5 {
            let code = new_code();
            let res = sqlx::query(
                "INSERT INTO accounts (id, referral_code, email, email_normalized, email_domain, signup_ip_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET
                   email = COALESCE(accounts.email, excluded.email),
                   email_normalized = COALESCE(accounts.email_normalized, excluded.email_normalized),
                   email_domain = COALESCE(accounts.email_domain, excluded.email_domain),
                   signup_ip_hash = COALESCE(accounts.signup_ip_hash, excluded.signup_ip_hash)",
            )
            .bind(id)
            .bind(&code)
            .bind(email)
            .bind(norm)
            .bind(domain)
            .bind(ip_hash)
            .bind(now)
            .execute(&self.write)
            .await;
            match res {
                Ok(_) => {
                    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
                    return Ok(sqlx::query_as::<_, AccountRow>(super::dynamic(sql))
                        .bind(id)
                        .fetch_one(&self.write)
                        .await?);
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt(
            "could not allocate a unique referral code".into(),
        ))
    }
}
