//! Guarded status changes of an attribution (qualify, approve, reject, refund).
//!
//! The split of duties: the core owns the lifecycle rules and hands them in as a closure;
//! the store owns the atomicity. Inside one transaction the store locks the row
//! (`FOR UPDATE` on PostgreSQL; SQLite's single writer already serializes), shows the rule
//! what it found, and applies exactly the [`Change`] the rule returns: the new status,
//! the review decision, the qualification, the audit entry and, when asked, the rewards.
//! Because the rule runs under the lock, two concurrent approvals cannot both see
//! `review_required`.

use super::referrals::{AttributionRow, audit, fetch_attribution};
use super::rewards::{RewardPlan, create_rewards};
use super::status::{AttributionStatus, AuditAction, ReviewDecision};
use super::{Result, Store, StoreError, dynamic};

/// What the locked row holds when the rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub status: AttributionStatus,
    /// A qualification was already recorded.
    pub qualified: bool,
    /// A refund was already recorded.
    pub refunded: bool,
    /// It has a reward whose campaign reverses rewards on refund (the policy is kept
    /// with each reward when it is created).
    pub reversible: bool,
}

/// What the rule decided to do with the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub next: AttributionStatus,
    pub action: AuditAction,
    /// Recorded as the review decision when set; left as it is otherwise.
    pub decision: Option<ReviewDecision>,
    /// Also record the request's qualification (event, amount, time).
    pub record_qualification: bool,
    /// Create both rewards in the same transaction.
    pub create_rewards: bool,
    /// Record the request's refund (event, time).
    pub record_refund: bool,
    /// Forget the recorded qualification (a refund before any reward: the referral
    /// waits for a new qualifying event).
    pub clear_qualification: bool,
    /// Void the rewards not yet granted and start reversing the granted ones.
    pub reverse_rewards: bool,
}

impl Change {
    /// A change to `next`, recorded as `action`, that does nothing else.
    pub fn to(next: AttributionStatus, action: AuditAction) -> Self {
        Self {
            next,
            action,
            decision: None,
            record_qualification: false,
            create_rewards: false,
            record_refund: false,
            clear_qualification: false,
            reverse_rewards: false,
        }
    }
}

/// The event that asks for a change, with what it records besides the status.
pub struct StatusChange<'a> {
    pub actor: &'a str,
    /// Audit reason (the qualifying event, or the reviewer's reason).
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The qualifying event and amount, written when the change says so.
    pub qualification: Option<(&'a str, Option<i64>)>,
    /// The refund event, written when the change says so.
    pub refund: Option<&'a str>,
    /// Needed only when the change creates rewards.
    pub plan: Option<&'a RewardPlan<'a>>,
    pub now: i64,
}

/// How a guarded change ended.
#[derive(Debug)]
pub enum Applied<E> {
    /// Committed; the row as it now is and the change that was applied.
    Done {
        row: Box<AttributionRow>,
        change: Change,
    },
    /// The rule refused; nothing was written.
    Refused(E),
    NotFound,
}

impl Store {
    /// Locks attribution `id`, lets `rule` decide from its current state, and applies the
    /// decision atomically with its audit entry (and rewards). A refusal rolls back.
    pub async fn change_status<E, F>(
        &self,
        id: i64,
        req: &StatusChange<'_>,
        rule: F,
    ) -> Result<Applied<E>>
    where
        F: FnOnce(Current) -> std::result::Result<Change, E> + Send,
        E: Send,
    {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT status, qualified_at, refunded_at,
               (SELECT COUNT(*) FROM rewards r WHERE r.attribution_id = a.id AND r.reverse_on_refund = 1)
             FROM attributions a WHERE id = $1{}",
            self.dialect.lock_clause()
        );
        let found: Option<(AttributionStatus, Option<i64>, Option<i64>, i64)> =
            sqlx::query_as(dynamic(sql))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((status, qualified_at, refunded_at, reversible)) = found else {
            return Ok(Applied::NotFound);
        };
        let change = match rule(Current {
            status,
            qualified: qualified_at.is_some(),
            refunded: refunded_at.is_some(),
            reversible: reversible > 0,
        }) {
            Ok(change) => change,
            Err(refusal) => return Ok(Applied::Refused(refusal)),
        };
        let qualification = if change.record_qualification {
            let (event, amount) = req.qualification.ok_or_else(|| {
                StoreError::Corrupt("a change records a qualification the request lacks".into())
            })?;
            (Some(req.now), Some(event), amount)
        } else {
            (None, None, None)
        };
        // One statement; a NULL parameter leaves its column as it is.
        sqlx::query(
            "UPDATE attributions SET status = $2, updated_at = $3,
               review_decision = COALESCE($4, review_decision),
               qualified_at = COALESCE($5, qualified_at),
               qualification_event = COALESCE($6, qualification_event),
               qualification_amount = CASE WHEN $5 IS NULL THEN qualification_amount ELSE $7 END
             WHERE id = $1",
        )
        .bind(id)
        .bind(change.next.as_str())
        .bind(req.now)
        .bind(change.decision.map(ReviewDecision::as_str))
        .bind(qualification.0)
        .bind(qualification.1)
        .bind(qualification.2)
        .execute(&mut *tx)
        .await?;
        if change.record_refund || change.clear_qualification {
            let refund = change.record_refund.then_some(req.refund).flatten();
            sqlx::query(
                "UPDATE attributions SET refunded_at = CASE WHEN $2 IS NULL THEN refunded_at ELSE $3 END,
                   refund_event = COALESCE($2, refund_event),
                   qualified_at = CASE WHEN $4 = 1 THEN NULL ELSE qualified_at END,
                   qualification_event = CASE WHEN $4 = 1 THEN NULL ELSE qualification_event END,
                   qualification_amount = CASE WHEN $4 = 1 THEN NULL ELSE qualification_amount END
                 WHERE id = $1",
            )
            .bind(id)
            .bind(refund)
            .bind(req.now)
            .bind(i64::from(change.clear_qualification))
            .execute(&mut *tx)
            .await?;
        }
        if change.reverse_rewards {
            reverse_rewards(&mut tx, id, req.refund.unwrap_or("refund"), req.now).await?;
        }
        audit(
            &mut tx,
            id,
            req.actor,
            change.action,
            req.reason,
            req.note,
            req.now,
        )
        .await?;
        if change.create_rewards {
            let plan = req.plan.ok_or_else(|| {
                StoreError::Corrupt("a change creates rewards without a reward plan".into())
            })?;
            create_rewards(&mut tx, self.dialect, id, plan).await?;
        }
        let row = fetch_attribution(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Applied::Done {
            row: Box::new(row),
            change,
        })
    }
}

/// A refund's effect on the rewards: those not yet granted (or in conflict) become
/// `voided` with the reason; granted ones become `reversing` under their reversal key,
/// for the core to send. Capped rewards stay capped.
///
/// A reward whose grant is in flight (claimed by a live process) cannot be voided: its
/// grant may already have reached billing, and if that process died before recording
/// the answer, nothing would ever take the credits back. It keeps its status and gets
/// the reason; whoever records its grant (that process, or recover after the claim
/// lapses, which grants it again: billing answers "already granted" or grants it now)
/// turns it into a reversal (see `mark_granted`). Never paid without being taken back.
async fn reverse_rewards(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE rewards SET status = 'voided', void_reason = $2, voided_at = $3, claimed_until = NULL
         WHERE attribution_id = $1 AND status IN ('pending', 'held', 'failed', 'conflict')
           AND (claimed_until IS NULL OR claimed_until < $3)",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE rewards SET void_reason = $2
         WHERE attribution_id = $1 AND status IN ('pending', 'held', 'failed') AND claimed_until >= $3",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE rewards SET status = 'reversing', void_reason = $2, reversal_key = grant_key || ':reversal', claimed_until = NULL
         WHERE attribution_id = $1 AND status = 'granted'",
    )
    .bind(id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
