//! Recovery: finish rewards whose credits did not reach billing, grant held rewards whose
//! holding period has passed, and send reversals a refund left unconfirmed. Runs claim rewards in
//! small batches under a lease, so concurrent runs (on any instance) never work on the
//! same reward, and the sink's idempotency key makes any repeat harmless.

use tokio_util::sync::CancellationToken;

use super::access::{Operation, Principal};
use super::grants::{Granted, Sent};
use super::sink::SinkError;
use super::types::Limit;
use super::views::{FailedGrant, RecoverReport};
use super::{Referrals, Result};
use crate::store::ClaimedReward;

fn failed(r: &ClaimedReward, e: SinkError) -> FailedGrant {
    FailedGrant {
        referral_id: r.attribution_id,
        side: r.side,
        account: r.account.clone(),
        credits: r.credits,
        error: e.to_string(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RecoverRequest {
    pub limit: Limit,
}

impl RecoverRequest {
    pub const DEFAULT_LIMIT: Limit = Limit::new_const(100);
    pub const MAX_LIMIT: u32 = 10_000;
}

/// Reported after each reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverProgress {
    pub done: u64,
    /// The most this run will attempt (its limit, or fewer when fewer are open).
    pub total: u64,
}

const BATCH: i64 = 256;
/// Grants in flight at once within a claimed batch: on SQLite their writes share group
/// commits, so more at once means fewer, fuller commits (10,000 rewards: 4.0 s with 8,
/// 2.5 s with 32, no better with 64). Cancellation stops after the grants in flight.
const CONCURRENT: usize = 32;

impl Referrals {
    pub async fn recover_grants(
        &self,
        principal: Option<&Principal>,
        req: RecoverRequest,
        progress: &(dyn Fn(RecoverProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<RecoverReport> {
        self.metered(
            principal,
            Operation::RecoverGrants,
            self.run_recover(req, progress, cancel),
        )
        .await
    }

    /// Claims and grants up to `limit` open rewards; stops after the grants in flight when `cancel`
    /// fires and reports what it finished.
    pub async fn run_recover(
        &self,
        req: RecoverRequest,
        progress: &(dyn Fn(RecoverProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<RecoverReport> {
        let limit = u64::from(req.limit.get());
        let (open, _) = self.store.count_open_rewards(self.clock.now()).await?;
        let open = open.max(0) as u64;
        let total = limit.min(open);
        let mut report = RecoverReport::default();
        let mut after_id = 0;
        while report.attempted < limit {
            if cancel.is_cancelled() {
                report.cancelled = true;
                break;
            }
            let now = self.clock.now();
            let want = BATCH.min((limit - report.attempted) as i64);
            let batch = self
                .store
                .claim_open_rewards(after_id, want, now, now + self.settings.grant_lease_secs)
                .await?;
            let Some(last) = batch.last() else {
                break;
            };
            after_id = last.id;
            // Grants run a few at a time: they are independent (one key each), and on
            // SQLite their writes then share commits. Cancellation is checked between
            // these small groups. The batch's claims stay alive while it is worked on.
            let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
            let stop = self
                .holding(
                    &ids,
                    self.grant_batch(&batch, &mut report, total, progress, cancel),
                )
                .await?;
            if stop {
                break;
            }
        }
        // Each grant settles its referral as it is marked; this catches referrals a
        // crashed older version left `qualified` with nothing open.
        self.store.settle_stranded(self.clock.now()).await?;
        (report.remaining, report.held) = self.store.count_open_rewards(self.clock.now()).await?;
        Ok(report)
    }

    /// Runs recover every `every` until `stop`: what `serve` does so that rewards whose
    /// holding period ended are granted, failed grants retried and refund reversals
    /// finished without anyone running `recover` by hand. Claims make it safe on every
    /// instance at once; a failed run (database away) is logged and tried next time.
    pub async fn recover_periodically(&self, every: std::time::Duration, stop: &CancellationToken) {
        let req = RecoverRequest {
            limit: Limit::new_const(1_000),
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.run_recover(req, &|_| {}, stop).await {
                Ok(r) if r.attempted > 0 => tracing::info!(
                    attempted = r.attempted,
                    granted = r.granted,
                    reversed = r.reversed,
                    failed = r.failed.len(),
                    conflicts = r.conflicts.len(),
                    remaining = r.remaining,
                    "background recover"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "background recover failed"),
            }
        }
    }

    /// Grants one claimed batch, a group at a time. Returns whether the run was
    /// cancelled (the claims it did not get to are given back).
    async fn grant_batch(
        &self,
        batch: &[ClaimedReward],
        report: &mut RecoverReport,
        total: u64,
        progress: &(dyn Fn(RecoverProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<bool> {
        for (n, group) in batch.chunks(CONCURRENT).enumerate() {
            if cancel.is_cancelled() {
                let rest: Vec<i64> = batch[n * CONCURRENT..].iter().map(|r| r.id).collect();
                self.store.release_claims(&rest).await?;
                report.cancelled = true;
                return Ok(true);
            }
            let sent = self.send_group(group).await;
            // The group's grants are marked in one write (a crash before it leaves them
            // claimed; the next run sends them again under the same keys).
            let granted = group
                .iter()
                .zip(&sent)
                .filter(|(_, s)| matches!(s, Ok(Sent::Granted(_))))
                .map(|(r, _)| (r.id, r.attribution_id))
                .collect();
            self.store
                .mark_granted_many(granted, self.clock.now())
                .await?;
            for (r, answer) in group.iter().zip(sent) {
                report.attempted += 1;
                let answer = match answer? {
                    Sent::Granted(outcome) => Granted::from(outcome),
                    Sent::Recorded(g) => g,
                };
                match answer {
                    Granted::New => report.granted += 1,
                    Granted::Already => report.already_granted += 1,
                    Granted::Reversed(_) => report.reversed += 1,
                    Granted::Failed(e) => report.failed.push(failed(r, e)),
                    Granted::Conflict(e) => report.conflicts.push(failed(r, e)),
                }
                progress(RecoverProgress {
                    done: report.attempted,
                    total: total.max(report.attempted),
                });
            }
        }
        Ok(false)
    }
}
