//! Reward records: creation under the referrer's cap, exclusive claiming for granting, and
//! the status changes after the credit sink answers.

use sqlx::AnyConnection;
use sqlx::FromRow;

use super::status::{RewardStatus, Side};
use super::{Dialect, Result, Store, dynamic, in_list, lock_row};

#[derive(Debug, Clone, FromRow)]
pub struct RewardRow {
    pub id: i64,
    pub attribution_id: i64,
    pub side: Side,
    pub account: String,
    pub credits: i64,
    pub status: RewardStatus,
    pub grant_key: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub granted_at: Option<i64>,
}

/// A reward this process has claimed and must now grant.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedReward {
    pub id: i64,
    pub attribution_id: i64,
    pub side: Side,
    pub account: String,
    pub credits: i64,
    pub grant_key: String,
}

/// What the core decided about the rewards of one attribution.
pub struct RewardPlan<'a> {
    pub referrer_credits: i64,
    pub referred_credits: i64,
    /// Decides, from the referrer's rewards already counted against the cap in the
    /// current period (count, credits), whether one more of `referrer_credits` is over it.
    pub over_cap: &'a (dyn Fn(i64, i64) -> bool + Send + Sync),
    pub cap_since: i64,
    /// New pending rewards are claimed by their creator until then, so a concurrent
    /// recover run leaves them to the inline grant (and takes them if that dies).
    pub lease_until: i64,
    /// The deployment's namespace, the first part of every grant key.
    pub key_namespace: &'a str,
    pub now: i64,
}

const REWARD_COLS: &str = "id, attribution_id, side, account, credits, status, grant_key, attempts, last_error, created_at, granted_at";

/// The grant's idempotency key: `{namespace}:referral:{attribution_id}:{side}`. It is
/// stored with the reward when the reward is created, so changing the namespace later
/// never changes the key of a reward that may already have reached billing.
pub fn grant_key(namespace: &str, attribution_id: i64, side: Side) -> String {
    format!("{namespace}:referral:{attribution_id}:{}", side.as_str())
}

/// Creates both rewards of an attribution inside the caller's transaction.
pub(super) async fn create_rewards(
    conn: &mut AnyConnection,
    d: Dialect,
    attribution_id: i64,
    plan: &RewardPlan<'_>,
) -> Result<()> {
    let (referrer, referred): (String, String) =
        sqlx::query_as("SELECT referrer_account, referred_account FROM attributions WHERE id = $1")
            .bind(attribution_id)
            .fetch_one(&mut *conn)
            .await?;
    // Serialize cap decisions per referrer across instances.
    lock_row(&mut *conn, d, "accounts", referrer.as_str()).await?;
    let (used_count, used_credits): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(credits), 0) AS BIGINT) FROM rewards
         WHERE account = $1 AND side = 'referrer' AND status IN ('pending', 'granted', 'failed') AND created_at >= $2",
    )
    .bind(&referrer)
    .bind(plan.cap_since)
    .fetch_one(&mut *conn)
    .await?;
    let referrer_status = if (plan.over_cap)(used_count, used_credits) {
        RewardStatus::Capped
    } else {
        RewardStatus::Pending
    };
    for (side, account, credits, status) in [
        (
            Side::Referrer,
            &referrer,
            plan.referrer_credits,
            referrer_status,
        ),
        (
            Side::Referred,
            &referred,
            plan.referred_credits,
            RewardStatus::Pending,
        ),
    ] {
        let lease = (status == RewardStatus::Pending).then_some(plan.lease_until);
        sqlx::query(
            "INSERT INTO rewards (attribution_id, side, account, credits, status, grant_key, claimed_until, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (attribution_id, side) DO NOTHING",
        )
        .bind(attribution_id)
        .bind(side.as_str())
        .bind(account)
        .bind(credits)
        .bind(status.as_str())
        .bind(grant_key(plan.key_namespace, attribution_id, side))
        .bind(lease)
        .bind(plan.now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Rewards of the given attributions, ordered by attribution then side.
    pub async fn rewards_for(&self, attribution_ids: &[i64]) -> Result<Vec<RewardRow>> {
        if attribution_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {REWARD_COLS} FROM rewards WHERE attribution_id IN ({}) ORDER BY attribution_id, side DESC",
            in_list(1, attribution_ids.len())
        );
        let mut q = sqlx::query_as::<_, RewardRow>(dynamic(sql));
        for id in attribution_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(&self.read).await?)
    }

    /// Pending rewards of one attribution that this caller created and still holds
    /// (claimed until `lease_until`), to be granted inline.
    pub async fn own_pending_rewards(
        &self,
        attribution_id: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedReward>> {
        Ok(sqlx::query_as::<_, ClaimedReward>(
            "SELECT id, attribution_id, side, account, credits, grant_key FROM rewards
             WHERE attribution_id = $1 AND status = 'pending' AND claimed_until = $2 ORDER BY id",
        )
        .bind(attribution_id)
        .bind(lease_until)
        .fetch_all(&self.write)
        .await?)
    }

    /// Claims up to `limit` open rewards (pending or failed, not claimed by a live run)
    /// with ids above `after_id`, until `lease_until`. Two runs never receive the same
    /// reward, and a run that walks forward by id never retries one it already tried.
    pub async fn claim_open_rewards(
        &self,
        after_id: i64,
        limit: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedReward>> {
        let skip_locked = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE rewards SET claimed_until = $1 WHERE id IN (
               SELECT id FROM rewards WHERE status IN ('pending', 'failed')
                 AND (claimed_until IS NULL OR claimed_until < $2) AND id > $4
               ORDER BY id LIMIT $3{skip_locked})
             RETURNING id, attribution_id, side, account, credits, grant_key"
        );
        let mut rows = sqlx::query_as::<_, ClaimedReward>(dynamic(sql))
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .bind(after_id)
            .fetch_all(&self.write)
            .await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Marks a reward granted after the sink answered granted or already granted, and in
    /// the same transaction settles its referral (`rewarded`) if that was its last open
    /// reward. One transaction, so a crash can never leave a referral `qualified` with
    /// every reward granted: nothing would ever claim it again to settle it.
    ///
    /// On PostgreSQL the referral's row is locked first, so two rewards of one referral
    /// marked at once (recover grants several together) are marked one after the other
    /// and the second sees the first: without the lock each could see the other still
    /// open, and neither would settle.
    pub async fn mark_granted(&self, reward_id: i64, attribution_id: i64, now: i64) -> Result<()> {
        let d = self.dialect;
        self.write_tx(move |conn| {
            Box::pin(async move {
                lock_row(&mut *conn, d, "attributions", attribution_id).await?;
                sqlx::query(
                    "UPDATE rewards SET status = $3, granted_at = $2, claimed_until = NULL, attempts = attempts + 1, last_error = NULL
                     WHERE id = $1 AND status IN ('pending', 'failed')",
                )
                .bind(reward_id)
                .bind(now)
                .bind(RewardStatus::Granted.as_str())
                .execute(&mut *conn)
                .await?;
                super::referrals::settle(conn, attribution_id, now).await
            })
        })
        .await
    }

    /// Records a failed attempt and releases the claim so a later recover retries it.
    pub async fn mark_failed(&self, reward_id: i64, error: &str) -> Result<()> {
        let error = error.to_owned();
        self.write_tx(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE rewards SET status = $3, claimed_until = NULL, attempts = attempts + 1, last_error = $2
                     WHERE id = $1 AND status IN ('pending', 'failed')",
                )
                .bind(reward_id)
                .bind(&error)
                .bind(RewardStatus::Failed.as_str())
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Extends this process's live claims (rewards still open and still claimed) until
    /// `until`; rewards already answered (claim cleared) are left alone.
    pub async fn renew_claims(&self, reward_ids: &[i64], until: i64) -> Result<()> {
        self.set_claims(reward_ids, Some(until)).await
    }

    /// Gives back claims a cancelled run did not get to.
    pub async fn release_claims(&self, reward_ids: &[i64]) -> Result<()> {
        self.set_claims(reward_ids, None).await
    }

    /// Sets the claim of those of `reward_ids` that are still open and claimed, in one
    /// statement.
    async fn set_claims(&self, reward_ids: &[i64], until: Option<i64>) -> Result<()> {
        if reward_ids.is_empty() {
            return Ok(());
        }
        let ids = reward_ids.to_vec();
        self.write_tx(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "UPDATE rewards SET claimed_until = $1 WHERE id IN ({}) AND status IN ('pending', 'failed') AND claimed_until IS NOT NULL",
                    in_list(2, ids.len())
                );
                let mut q = sqlx::query(dynamic(sql)).bind(until);
                for id in &ids {
                    q = q.bind(*id);
                }
                q.execute(&mut *conn).await?;
                Ok(())
            })
        })
        .await
    }

    /// Rewards still waiting for a grant (pending or failed).
    pub async fn count_open_rewards(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM rewards WHERE status IN ('pending', 'failed')",
            )
            .fetch_one(&self.write)
            .await?,
        )
    }
}
