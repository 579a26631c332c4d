//! Charging for calls: debit first (so a short balance stops the call before anything
//! happens), refund if the operation then fails. Net effect: charged exactly once if and
//! only if the call succeeds. The debit is a conditional UPDATE, so concurrent calls can
//! never overdraw.

use std::future::Future;
use std::sync::atomic::Ordering;

use super::access::{Access, Operation, Principal, authorize};
use super::error::Error;
use super::{Referrals, Result};

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
        let id = super::types::random_id("");
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

    /// Fixed-window rate limit for public calls, shared by all instances.
    pub(crate) async fn rate_limit_public(&self, ip_hash: &str) -> Result<()> {
        let now = self.clock.now();
        let window = now - now.rem_euclid(RATE_WINDOW_SECS);
        self.prune_old_rate_limit_windows(window).await;
        let hits = self
            .store
            .hit_rate_limit(&format!("public:{ip_hash}"), window)
            .await?;
        if hits > self.settings.public_rate_per_minute {
            return Err(Error::RateLimited {
                retry_after_secs: (window + RATE_WINDOW_SECS - now).max(1) as u64,
            });
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
