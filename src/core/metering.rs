//! Charging for calls: debit first (so a short balance stops the call before anything
//! happens), refund if the operation then fails. Net effect: charged exactly once if and
//! only if the call succeeds. The debit is a conditional UPDATE, so concurrent calls can
//! never overdraw.

use std::future::Future;
use std::sync::atomic::Ordering;

use super::access::{Access, Operation, Principal, authorize};
use super::error::Error;
use super::{Referrals, Result};
use crate::store::ClickLimit;

/// Length of a public rate-limit window: limits are per minute.
const RATE_WINDOW_SECS: i64 = 60;

impl Referrals {
    /// Authorizes `principal` for `op`, charges it, runs `body`, refunds on failure.
    pub(crate) async fn metered<T, F>(
        &self,
        principal: Option<&Principal>,
        op: Operation,
        body: F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        authorize(principal, op)?;
        // Public operations are never charged, also when the caller happens to send a
        // credential (an MCP session always has one); they are rate-limited per IP.
        let Some(p) = principal.filter(|_| op.access() != Access::Public) else {
            return body.await;
        };
        let cost = self.settings.price(op);
        if cost == 0 {
            return body.await;
        }
        let account = p.account.as_str();
        let id = super::types::ordered_id("");
        let now = self.clock.now();
        let key = format!("usage:{id}");
        let debit = self.store.debit(&key, account, cost, op.name(), now);
        let refused = || async {
            let balance = self.store.balance(account).await?;
            Err(Error::InsufficientCredits {
                account: account.to_owned(),
                cost,
                balance,
            })
        };
        let out = if op.is_read_only() {
            let (charged, out) = tokio::join!(debit, body);
            if charged?.is_none() {
                return refused().await;
            }
            out
        } else {
            if debit.await?.is_none() {
                return refused().await;
            }
            body.await
        };
        if out.is_err() {
            // Give the credit back under a key derived from the charge: once, even if
            // this line were retried.
            if let Err(e) = self
                .store
                .credit(
                    &format!("refund:{id}"),
                    account,
                    cost,
                    "refund",
                    self.clock.now(),
                )
                .await
            {
                tracing::error!(error = %e, charge = %id, "refund failed; the charge stands");
            }
        }
        out
    }

    /// The fixed-window rate limit for a public caller now, shared by all instances: the
    /// bucket and window its hit counts in. The hit itself is counted where the call
    /// writes (a click counts it in the click's own transaction, see `store::clicks`).
    pub(crate) async fn public_limit(&self, ip_hash: &str) -> ClickLimit {
        let now = self.clock.now();
        let window = now - now.rem_euclid(RATE_WINDOW_SECS);
        self.prune_old_rate_limit_windows(window).await;
        ClickLimit {
            bucket: format!("public:{ip_hash}"),
            window_start: window,
            max_hits: self.settings.public_rate_per_minute,
        }
    }

    /// The refusal of a call over `limit`, with the seconds until its window ends.
    pub(crate) fn rate_limited(&self, limit: &ClickLimit) -> Error {
        Error::RateLimited {
            retry_after_secs: (limit.window_start + RATE_WINDOW_SECS - self.clock.now()).max(1)
                as u64,
        }
    }

    /// Counts one hit against `limit` on its own; the refusal if that is over it.
    pub(crate) async fn hit_public_limit(&self, limit: &ClickLimit) -> Result<()> {
        let hits = self
            .store
            .hit_rate_limit(&limit.bucket, limit.window_start)
            .await?;
        if hits > limit.max_hits {
            return Err(self.rate_limited(limit));
        }
        Ok(())
    }

    /// Keeps `rate_limits` (one row per client per window) from growing forever: the
    /// first public call a process sees in a new window deletes the windows that ended
    /// before the previous one began.
    ///
    /// Why this way: it is one cheap statement per process per minute, on the path that
    /// fills the table, with no background task to start, stop or test. Several `serve`
    /// instances on one database need no coordination: the delete is idempotent, so
    /// each running it once a minute only repeats harmless work. The previous window is
    /// kept so an instance whose clock runs ahead (by up to a minute) never erases
    /// counters another instance is still counting in; the table therefore holds at most
    /// two windows of clients. An instance that gets no public calls adds no rows and
    /// needs no pruning. A failed prune is logged and tried again in the next window: it
    /// must never fail the call it rides on.
    async fn prune_old_rate_limit_windows(&self, window: i64) {
        if self
            .rate_limits_pruned_at
            .fetch_max(window, Ordering::Relaxed)
            >= window
        {
            return;
        }
        if let Err(e) = self
            .store
            .prune_rate_limits(window - RATE_WINDOW_SECS)
            .await
        {
            tracing::warn!(error = %e, "pruning old rate-limit windows failed");
        }
    }
}
