//! Webhook endpoints, the event outbox and the delivery log (migration 0004). Events and
//! their delivery rows are written by triggers in the transaction of the change they
//! report; here are what operators and the dispatcher do with them.

use sqlx::FromRow;

use super::{Dialect, Result, Store, dynamic};

#[derive(Debug, Clone, FromRow)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

/// A delivery the dispatcher has claimed: what to send, where, signed with what.
#[derive(Debug, Clone, FromRow)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: String,
    pub url: String,
    pub secret: String,
    pub payload: String,
    pub attempts: i64,
}

/// One row of the delivery log.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Delivered {
        status: i64,
    },
    /// Failed; retried at `retry_at`, or dead-lettered when `retry_at` is `None`.
    Failed {
        status: Option<i64>,
        error: String,
        retry_at: Option<i64>,
    },
}

impl Store {
    pub async fn create_webhook_endpoint(
        &self,
        id: &str,
        url: &str,
        secret: &str,
        events: &str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, secret, events, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(url)
        .bind(secret)
        .bind(events)
        .bind(at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpointRow>> {
        Ok(sqlx::query_as::<_, WebhookEndpointRow>(
            "SELECT id, url, events, created_at, disabled_at FROM webhook_endpoints ORDER BY created_at, id",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// Stops sending to an endpoint: no new events for it; its pending deliveries are
    /// dead-lettered (replayable if it is enabled again by creating a new one). Whether
    /// it existed and was active.
    pub async fn disable_webhook_endpoint(&self, id: &str, at: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'dead', last_error = 'endpoint disabled' WHERE endpoint_id = $1 AND status = 'pending'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Whether any delivery is due (a cheap read before claiming).
    pub async fn webhook_deliveries_due(&self, now: i64) -> Result<bool> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1) d",
        )
        .bind(now)
        .fetch_one(&self.read)
        .await?
            > 0)
    }

    /// Claims up to `limit` due deliveries for `lease` seconds, so that of several
    /// dispatchers (instances) exactly one sends each; a claim that is not finished
    /// (the process died) expires and the delivery is sent again.
    pub async fn claim_webhook_deliveries(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>> {
        let skip_locked = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let ids: Vec<i64> = sqlx::query_scalar(dynamic(format!(
            "UPDATE webhook_deliveries SET claimed_until = $1 + $2
             WHERE id IN (SELECT id FROM webhook_deliveries
                          WHERE status = 'pending' AND next_attempt_at <= $1
                            AND (claimed_until IS NULL OR claimed_until <= $1)
                          ORDER BY id LIMIT $3{skip_locked})
             RETURNING id"
        )))
        .bind(now)
        .bind(lease)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::query_as::<_, DueDelivery>(dynamic(format!(
            "SELECT d.id, d.event_id, e.url, e.secret, v.payload, d.attempts
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
             JOIN webhook_events v ON v.id = d.event_id
             WHERE d.id IN ({}) ORDER BY d.id",
            super::in_list(1, ids.len())
        )));
        for id in &ids {
            q = q.bind(*id);
        }
        // From the writer: a reader could lag behind the claim just made.
        Ok(q.fetch_all(&self.write).await?)
    }

    /// Records an attempt's end and releases the claim.
    pub async fn finish_webhook_delivery(
        &self,
        id: i64,
        now: i64,
        outcome: &AttemptOutcome,
    ) -> Result<()> {
        let q = match outcome {
            AttemptOutcome::Delivered { status } => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = $2,
                   last_error = NULL, delivered_at = $3, claimed_until = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(*status)
            .bind(now),
            AttemptOutcome::Failed {
                status,
                error,
                retry_at,
            } => sqlx::query(
                "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status = $3,
                   last_error = $4, next_attempt_at = $5, claimed_until = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(if retry_at.is_some() { "pending" } else { "dead" })
            .bind(*status)
            .bind(error.clone())
            .bind(retry_at.unwrap_or(now)),
        };
        q.execute(&self.write).await?;
        Ok(())
    }

    /// The delivery log, newest first, optionally of one status.
    pub async fn webhook_deliveries(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        Ok(sqlx::query_as::<_, DeliveryRow>(
            "SELECT d.id, d.event_id, v.type AS event_type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
                    d.last_status, d.last_error, d.delivered_at, d.created_at
             FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id
             WHERE ($1 IS NULL OR d.status = $1) ORDER BY d.id DESC LIMIT $2",
        )
        .bind(status)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Sends a delivery again from scratch (any status; its endpoint must be active).
    /// The event keeps its id, so a receiver that already has it can tell.
    pub async fn replay_webhook_delivery(&self, id: i64, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, claimed_until = NULL
             WHERE id = $1 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE disabled_at IS NULL)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Replays every dead-lettered delivery of active endpoints; how many.
    pub async fn replay_dead_webhook_deliveries(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, claimed_until = NULL
             WHERE status = 'dead' AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE disabled_at IS NULL)",
        )
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected())
    }

    /// Forgets what is settled: deliveries delivered or dead-lettered before `before`,
    /// and events left with no delivery. Pending deliveries are never touched. How many
    /// deliveries went.
    pub async fn prune_webhooks(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'dead') AND COALESCE(delivered_at, next_attempt_at) < $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM webhook_events WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}
