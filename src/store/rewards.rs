//! Reward records: creation under the referrer's cap, exclusive claiming for granting, and
//! the status changes after the credit sink answers.

use sqlx::AnyConnection;
use sqlx::FromRow;

use super::status::{AttributionStatus, RewardStatus, Side};
use super::{Dialect, Result, Store, dynamic, in_list, lock_row};

#[derive(Debug, Clone, FromRow, serde::Deserialize)]
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
    /// Held until then (the campaign's holding period).
    pub grant_after: Option<i64>,
    pub void_reason: Option<String>,
    pub voided_at: Option<i64>,
    /// Credits a reversal took back (less than `credits` when the balance was short).
    pub reversed_credits: Option<i64>,
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
    /// `reversing` for a reversal to send (under `reversal_key`), else a grant.
    pub status: RewardStatus,
    pub reversal_key: Option<String>,
}

/// What the core decided about the rewards of one attribution.
pub struct RewardPlan<'a> {
    /// The campaign the cap counts in.
    pub campaign: &'a str,
    pub referrer_credits: i64,
    pub referred_credits: i64,
    /// Decides, from the referrer's rewards already counted against the cap in the
    /// current period (count, credits), whether one more of `referrer_credits` is over it.
    pub over_cap: &'a (dyn Fn(i64, i64) -> bool + Send + Sync),
    pub cap_since: i64,
    /// The end of the holding period: the rewards are `held` until then. `None`: granted
    /// at once.
    pub grant_after: Option<i64>,
    /// The campaign's refund policy, kept with each reward.
    pub reverse_on_refund: bool,
    /// New pending rewards are claimed by their creator until then, so a concurrent
    /// recover run leaves them to the inline grant (and takes them if that dies).
    pub lease_until: i64,
    /// The deployment's namespace, the first part of every grant key.
    pub key_namespace: &'a str,
    pub now: i64,
}

/// Comma-and-space separated: also the names of the JSON objects a detail read builds.
pub(super) const REWARD_COLS: &str = "id, attribution_id, side, account, credits, status, grant_key, attempts, last_error, created_at, granted_at, grant_after, void_reason, voided_at, reversed_credits";
/// Marks a reward granted (see [`Store::mark_granted`]), with the reward and the time as
/// the parameters numbered `reward` and `now`.
fn mark_granted_sql(reward: usize, now: usize) -> String {
    format!(
        "UPDATE rewards SET granted_at = ${now}, claimed_until = NULL, attempts = attempts + 1, last_error = NULL,
           reversal_key = CASE WHEN status = 'voided' OR void_reason IS NOT NULL THEN grant_key || ':reversal' ELSE reversal_key END,
           status = CASE WHEN status = 'voided' OR void_reason IS NOT NULL THEN 'reversing' ELSE 'granted' END
         WHERE id = ${reward} AND (status IN ('pending', 'held', 'failed')
           OR (status = 'voided' AND granted_at IS NULL AND reversal_key IS NULL))"
    )
}

const CLAIMED_COLS: &str =
    "id, attribution_id, side, account, credits, grant_key, status, reversal_key";

/// Rewards still to be granted: the `pending_grant` filter.
pub(super) const NOT_YET_GRANTED: &str = "('pending', 'held', 'failed')";
/// What keeps a `qualified` referral from settling as `rewarded`: rewards still to be
/// granted, and conflicts, which wait for an operator.
pub(super) const UNSETTLED: &str = "('pending', 'held', 'failed', 'conflict')";
/// Rewards a cap counts: granted or on their way to it.
const COUNTED_BY_CAP: &str = "('pending', 'held', 'granted', 'failed')";
/// Rewards a process may hold a claim on.
const CLAIMABLE: &str = "('pending', 'held', 'failed', 'reversing')";

/// What a recover run takes: due grants and retries, and reversals to send.
fn actionable(now_param: usize) -> String {
    format!(
        "(status IN ('pending', 'failed', 'reversing') OR (status = 'held' AND grant_after <= ${now_param}))"
    )
}

/// The grant's idempotency key: `{namespace}:referral:{attribution_id}:{side}`. It is
/// stored with the reward when the reward is created, so changing the namespace later
/// never changes the key of a reward that may already have reached billing.
pub fn grant_key(namespace: &str, attribution_id: i64, side: Side) -> String {
    format!("{namespace}:referral:{attribution_id}:{}", side.as_str())
}

/// The idempotency key of the reversal of the grant `grant_key`; the SQL that starts a
/// reversal builds the same string (`grant_key || ':reversal'`).
pub fn reversal_key(grant_key: &str) -> String {
    format!("{grant_key}:reversal")
}

/// Creates both rewards of an attribution inside the caller's transaction: `held` until
/// the plan's `grant_after` when there is a holding period, else `pending` and claimed by
/// the caller for its inline grant; the referrer's `capped` when over the campaign's cap.
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
    let sql = format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM(r.credits), 0) AS BIGINT) FROM rewards r JOIN attributions a ON a.id = r.attribution_id
         WHERE r.account = $1 AND r.side = 'referrer' AND r.status IN {COUNTED_BY_CAP} AND r.created_at >= $2 AND a.campaign = $3"
    );
    let (used_count, used_credits): (i64, i64) = sqlx::query_as(dynamic(sql))
        .bind(&referrer)
        .bind(plan.cap_since)
        .bind(plan.campaign)
        .fetch_one(&mut *conn)
        .await?;
    let open = if plan.grant_after.is_some() {
        RewardStatus::Held
    } else {
        RewardStatus::Pending
    };
    let referrer_status = if (plan.over_cap)(used_count, used_credits) {
        RewardStatus::Capped
    } else {
        open
    };
    for (side, account, credits, status) in [
        (
            Side::Referrer,
            &referrer,
            plan.referrer_credits,
            referrer_status,
        ),
        (Side::Referred, &referred, plan.referred_credits, open),
    ] {
        let lease = (status == RewardStatus::Pending).then_some(plan.lease_until);
        let grant_after = plan.grant_after.filter(|_| status == RewardStatus::Held);
        sqlx::query(
            "INSERT INTO rewards (attribution_id, side, account, credits, status, grant_key, claimed_until, created_at, grant_after, reverse_on_refund)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (attribution_id, side) DO NOTHING",
        )
        .bind(attribution_id)
        .bind(side.as_str())
        .bind(account)
        .bind(credits)
        .bind(status.as_str())
        .bind(grant_key(plan.key_namespace, attribution_id, side))
        .bind(lease)
        .bind(plan.now)
        .bind(grant_after)
        .bind(i64::from(plan.reverse_on_refund))
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
        let sql = format!(
            "SELECT {CLAIMED_COLS} FROM rewards
             WHERE attribution_id = $1 AND status = 'pending' AND claimed_until = $2 ORDER BY id"
        );
        Ok(sqlx::query_as::<_, ClaimedReward>(dynamic(sql))
            .bind(attribution_id)
            .bind(lease_until)
            .fetch_all(&self.write)
            .await?)
    }

    /// Claims up to `limit` actionable rewards (pending, failed, held past its holding
    /// period, or reversing; not claimed by a live run) with ids above `after_id`, until
    /// `lease_until`. Two runs never receive the same
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
               SELECT id FROM rewards WHERE {}
                 AND (claimed_until IS NULL OR claimed_until < $2) AND id > $4
               ORDER BY id LIMIT $3{skip_locked})
             RETURNING {CLAIMED_COLS}",
            actionable(2)
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
    ///
    /// A reward a refund asked to void while its grant was in flight (it carries a
    /// `void_reason`), or that was voided all the same, reached the account: it becomes
    /// `reversing`, so the credits are taken back.
    pub async fn mark_granted(&self, reward_id: i64, attribution_id: i64, now: i64) -> Result<()> {
        self.mark_granted_many(vec![(reward_id, attribution_id)], now)
            .await
    }

    /// [`Self::mark_granted`] for many rewards (`(reward, attribution)` pairs) in one
    /// transaction, in attribution order (so PostgreSQL's row locks are always taken in
    /// the same order), each reward marked and then its referral settled, exactly as one
    /// by one. A recover group marks its grants so.
    ///
    /// Why: on SQLite every statement is a round trip to sqlx's worker thread, and each
    /// mark through the group commit was four (savepoint, update, settle, release); here
    /// the whole group is one query, one round trip.
    pub async fn mark_granted_many(&self, mut rewards: Vec<(i64, i64)>, now: i64) -> Result<()> {
        if rewards.is_empty() {
            return Ok(());
        }
        rewards.sort_by_key(|&(reward, attribution)| (attribution, reward));
        let d = self.dialect;
        self.write_tx(move |conn| {
            Box::pin(async move {
                if d == Dialect::Sqlite {
                    let sql = (0..rewards.len())
                        .map(|i| {
                            let (reward, attribution) = (3 + 2 * i, 4 + 2 * i);
                            format!(
                                "{};\n{};",
                                mark_granted_sql(reward, 1),
                                super::referrals::settle_sql(attribution, 1, 2)
                            )
                        })
                        .collect::<String>();
                    let mut q = sqlx::query(dynamic(sql))
                        .bind(now)
                        .bind(AttributionStatus::Rewarded.as_str());
                    for (reward, attribution) in rewards {
                        q = q.bind(reward).bind(attribution);
                    }
                    q.execute(&mut *conn).await?;
                    return Ok(());
                }
                for (reward, attribution) in rewards {
                    lock_row(&mut *conn, d, "attributions", attribution).await?;
                    sqlx::query(dynamic(mark_granted_sql(1, 2)))
                        .bind(reward)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    super::referrals::settle(conn, attribution, now).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Records a failed attempt and releases the claim so a later recover retries it: a
    /// grant becomes `failed`, a reversal stays `reversing`.
    pub async fn mark_failed(&self, reward_id: i64, error: &str) -> Result<()> {
        let status = "CASE WHEN status = 'reversing' THEN status ELSE 'failed' END";
        self.mark_attempt(reward_id, error, status).await
    }

    /// Billing refused the key as "same key, different amount": terminal, never retried,
    /// until an operator voids it.
    pub async fn mark_conflict(&self, reward_id: i64, error: &str) -> Result<()> {
        self.mark_attempt(reward_id, error, "'conflict'").await
    }

    async fn mark_attempt(&self, reward_id: i64, error: &str, status: &'static str) -> Result<()> {
        let error = error.to_owned();
        self.write_tx(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "UPDATE rewards SET status = {status}, claimed_until = NULL, attempts = attempts + 1, last_error = $2
                     WHERE id = $1 AND status IN {CLAIMABLE}"
                );
                sqlx::query(dynamic(sql))
                    .bind(reward_id)
                    .bind(&error)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Billing confirmed a reversal (`taken` credits came back): the reward is `voided`.
    pub async fn mark_reversed(&self, reward_id: i64, taken: i64, now: i64) -> Result<()> {
        self.write_tx(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE rewards SET status = 'voided', voided_at = $2, reversed_credits = $3, claimed_until = NULL,
                       attempts = attempts + 1, last_error = NULL
                     WHERE id = $1 AND status = 'reversing'",
                )
                .bind(reward_id)
                .bind(now)
                .bind(taken)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Claims the reversals of one attribution that no live process holds.
    pub async fn claim_reversals(
        &self,
        attribution_id: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedReward>> {
        let sql = format!(
            "UPDATE rewards SET claimed_until = $1 WHERE attribution_id = $3 AND status = 'reversing'
               AND (claimed_until IS NULL OR claimed_until < $2)
             RETURNING {CLAIMED_COLS}"
        );
        let mut rows = sqlx::query_as::<_, ClaimedReward>(dynamic(sql))
            .bind(lease_until)
            .bind(now)
            .bind(attribution_id)
            .fetch_all(&self.write)
            .await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
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
                    "UPDATE rewards SET claimed_until = $1 WHERE id IN ({}) AND status IN {CLAIMABLE} AND claimed_until IS NOT NULL",
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

    /// Rewards a recover run at `now` would act on, and rewards held whose holding
    /// period has not yet passed.
    pub async fn count_open_rewards(&self, now: i64) -> Result<(i64, i64)> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN status = 'held' AND grant_after > $1 THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM rewards WHERE status IN {CLAIMABLE}",
            actionable(1)
        );
        Ok(sqlx::query_as(dynamic(sql))
            .bind(now)
            .fetch_one(&self.write)
            .await?)
    }
}

/// How an operator's void ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voided {
    Done,
    /// No such referral, or it has no reward on that side.
    NotFound,
    /// The rule refused: the reward is in this status.
    Refused(RewardStatus),
    /// A process is granting it right now; voiding it could leave a grant that lands
    /// afterwards unrecorded.
    InFlight,
}

/// An operator voids one reward.
pub struct VoidRequest<'a> {
    pub attribution_id: i64,
    pub side: Side,
    pub actor: &'a str,
    pub reason: &'a str,
    pub now: i64,
}

impl Store {
    /// Voids one reward if `allowed` says its status may be voided, with an audit entry
    /// on its referral, and settles the referral if nothing else is open. The referral's
    /// row is locked, so a concurrent grant's mark waits and then sees `voided`.
    pub async fn void_reward(
        &self,
        v: &VoidRequest<'_>,
        allowed: impl FnOnce(RewardStatus) -> bool + Send,
    ) -> Result<Voided> {
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, self.dialect, "attributions", v.attribution_id).await?;
        let found: Option<(i64, RewardStatus, Option<i64>)> = sqlx::query_as(
            "SELECT id, status, claimed_until FROM rewards WHERE attribution_id = $1 AND side = $2",
        )
        .bind(v.attribution_id)
        .bind(v.side.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, status, claimed_until)) = found else {
            return Ok(Voided::NotFound);
        };
        if !allowed(status) {
            return Ok(Voided::Refused(status));
        }
        if claimed_until.is_some_and(|until| until >= v.now) {
            return Ok(Voided::InFlight);
        }
        sqlx::query(
            "UPDATE rewards SET status = 'voided', void_reason = $2, voided_at = $3, claimed_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(v.reason)
        .bind(v.now)
        .execute(&mut *tx)
        .await?;
        let note = format!("{} reward voided (was {status})", v.side);
        super::referrals::audit(
            &mut tx,
            v.attribution_id,
            v.actor,
            super::status::AuditAction::RewardVoided,
            Some(v.reason),
            Some(&note),
            v.now,
        )
        .await?;
        super::referrals::settle(&mut tx, v.attribution_id, v.now).await?;
        tx.commit().await?;
        Ok(Voided::Done)
    }
}
