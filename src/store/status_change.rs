//! Guarded status changes of an attribution (qualify, approve, reject).
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
}

/// The event that asks for a change, with what it records besides the status.
pub struct StatusChange<'a> {
    pub actor: &'a str,
    /// Audit reason (the qualifying event, or the reviewer's reason).
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The qualifying event and amount, written when the change says so.
    pub qualification: Option<(&'a str, Option<i64>)>,
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
            "SELECT status, qualified_at FROM attributions WHERE id = $1{}",
            self.dialect.lock_clause()
        );
        let found: Option<(AttributionStatus, Option<i64>)> = sqlx::query_as(dynamic(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((status, qualified_at)) = found else {
            return Ok(Applied::NotFound);
        };
        let change = match rule(Current {
            status,
            qualified: qualified_at.is_some(),
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
