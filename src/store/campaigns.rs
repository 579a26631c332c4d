//! Campaigns and the audit trail of their changes. A change and its audit entry are
//! written in one transaction; an update runs the core's edit under the row lock, so two
//! operators updating one campaign at once each see the other's result as "before".

use sqlx::FromRow;

use super::status::{AttributionModel, CapPeriod};
use super::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub referrer_credits: i64,
    pub referred_credits: i64,
    pub window_days: i64,
    pub cap_count: Option<i64>,
    pub cap_credits: Option<i64>,
    pub cap_period: CapPeriod,
    pub attribution_model: AttributionModel,
    pub velocity_threshold: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub holding_days: i64,
    /// 0 or 1.
    pub reverse_on_refund: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct CampaignChangeRow {
    pub actor: String,
    pub action: String,
    /// JSON: `[{field, before, after}]`.
    pub changes: String,
    pub at: i64,
}

const COLS: &str = "id, name, referrer_credits, referred_credits, window_days, cap_count, cap_credits, cap_period,
    attribution_model, velocity_threshold, starts_at, ends_at, holding_days, reverse_on_refund, created_at, updated_at";

/// Who changed a campaign, and how (`changes` is the JSON diff the core computed).
pub struct CampaignAudit<'a> {
    pub actor: &'a str,
    pub changes: String,
    pub at: i64,
}

async fn record_change(
    conn: &mut sqlx::AnyConnection,
    campaign: &str,
    action: &str,
    a: &CampaignAudit<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO campaign_changes (campaign, actor, action, changes, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(campaign)
    .bind(a.actor)
    .bind(action)
    .bind(&a.changes)
    .bind(a.at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Creates a campaign with its "created" audit entry. `false` (nothing written) when
    /// the id is taken.
    pub async fn create_campaign(
        &self,
        c: &CampaignRow,
        audit: &CampaignAudit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO campaigns ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (id) DO NOTHING"
        );
        let inserted = sqlx::query(super::dynamic(sql))
            .bind(&c.id)
            .bind(&c.name)
            .bind(c.referrer_credits)
            .bind(c.referred_credits)
            .bind(c.window_days)
            .bind(c.cap_count)
            .bind(c.cap_credits)
            .bind(c.cap_period.as_str())
            .bind(c.attribution_model.as_str())
            .bind(c.velocity_threshold)
            .bind(c.starts_at)
            .bind(c.ends_at)
            .bind(c.holding_days)
            .bind(c.reverse_on_refund)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        record_change(&mut tx, &c.id, "created", audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Locks campaign `id`, lets `edit` turn it into the new version (with the audit
    /// diff), and writes both. `None` when there is no such campaign; an `edit` error
    /// writes nothing.
    pub async fn update_campaign<E, F>(
        &self,
        id: &str,
        actor: &str,
        edit: F,
    ) -> Result<Option<std::result::Result<CampaignRow, E>>>
    where
        F: FnOnce(&CampaignRow) -> std::result::Result<(CampaignRow, CampaignAudit<'static>), E>
            + Send,
        E: Send,
    {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {COLS} FROM campaigns WHERE id = $1{}",
            self.dialect.lock_clause()
        );
        let Some(old) = sqlx::query_as::<_, CampaignRow>(super::dynamic(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let (new, audit) = match edit(&old) {
            Ok(v) => v,
            Err(e) => return Ok(Some(Err(e))),
        };
        sqlx::query(
            "UPDATE campaigns SET name = $2, referrer_credits = $3, referred_credits = $4, window_days = $5,
               cap_count = $6, cap_credits = $7, cap_period = $8, attribution_model = $9, velocity_threshold = $10,
               starts_at = $11, ends_at = $12, holding_days = $13, reverse_on_refund = $14, updated_at = $15
             WHERE id = $1",
        )
        .bind(id)
        .bind(&new.name)
        .bind(new.referrer_credits)
        .bind(new.referred_credits)
        .bind(new.window_days)
        .bind(new.cap_count)
        .bind(new.cap_credits)
        .bind(new.cap_period.as_str())
        .bind(new.attribution_model.as_str())
        .bind(new.velocity_threshold)
        .bind(new.starts_at)
        .bind(new.ends_at)
        .bind(new.holding_days)
        .bind(new.reverse_on_refund)
        .bind(new.updated_at)
        .execute(&mut *tx)
        .await?;
        record_change(
            &mut tx,
            id,
            "updated",
            &CampaignAudit {
                actor,
                changes: audit.changes,
                at: audit.at,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(new)))
    }

    pub async fn campaign(&self, id: &str) -> Result<Option<CampaignRow>> {
        let sql = format!("SELECT {COLS} FROM campaigns WHERE id = $1");
        Ok(sqlx::query_as::<_, CampaignRow>(super::dynamic(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Every campaign, by id. Programs have a handful; the list is bounded anyway.
    pub async fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        let sql = format!("SELECT {COLS} FROM campaigns ORDER BY id LIMIT 1000");
        Ok(sqlx::query_as::<_, CampaignRow>(super::dynamic(sql))
            .fetch_all(&self.read)
            .await?)
    }

    pub async fn campaign_ids(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT id FROM campaigns ORDER BY id LIMIT 1000")
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// The campaign's audit trail, oldest first.
    pub async fn campaign_changes(&self, id: &str) -> Result<Vec<CampaignChangeRow>> {
        Ok(sqlx::query_as::<_, CampaignChangeRow>(
            "SELECT actor, action, changes, at FROM campaign_changes WHERE campaign = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?)
    }
}
