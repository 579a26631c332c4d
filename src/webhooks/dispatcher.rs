//! Sends due deliveries: claims a handful with a lease, posts them concurrently with the
//! Standard Webhooks headers, and records each outcome. A 2xx is delivered; anything else
//! (a status, a refused connection, a timeout) is retried with exponential backoff and
//! jitter, and after `max_attempts` dead-lettered, where operators see and replay it.
//!
//! Time here is the wall clock, not the core's clock: retries are infrastructure, and the
//! database writes the events' due times from its own clock.

use std::time::Duration;

use futures::future::join_all;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::now;
use super::sign::signature;
use crate::store::Store;
use crate::store::webhooks::{AttemptOutcome, DueDelivery};

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// How often to look for due deliveries when there were none.
    pub poll: Duration,
    /// Per attempt, from connect to the end of the answer's headers.
    pub timeout: Duration,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: i64,
    /// Delay after the first failure; each further one multiplies it by 4, up to 6 hours,
    /// and every delay is jittered by ±20 % so that retries after an outage spread out.
    pub first_retry: Duration,
    /// How long a claim lasts; longer than `timeout`, so that a slow attempt is not sent
    /// twice while it is still running.
    pub lease: Duration,
    /// Deliveries sent at once.
    pub batch: i64,
    /// Settled deliveries (delivered, dead) and their events are kept this long, then
    /// pruned (checked once an hour).
    pub keep: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            first_retry: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            batch: 16,
            keep: Duration::from_secs(30 * 86_400),
        }
    }
}

impl DispatchConfig {
    /// Seconds to wait after failed attempt number `attempts` (1 = the first).
    pub fn backoff(&self, attempts: i64) -> i64 {
        let base = self.first_retry.as_secs_f64() * 4f64.powi((attempts - 1).clamp(0, 20) as i32);
        let jitter = rand::rng().random_range(0.8..1.2);
        (base.min(6.0 * 3600.0) * jitter).ceil().max(1.0) as i64
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    /// Built on the first delivery: a TLS client with its root certificates is ~2 MB,
    /// which an instance with no webhooks should not carry.
    http: std::sync::Arc<tokio::sync::OnceCell<reqwest::Client>>,
    cfg: DispatchConfig,
}

impl Dispatcher {
    pub fn new(store: Store, cfg: DispatchConfig) -> Self {
        Self {
            store,
            http: Default::default(),
            cfg,
        }
    }

    async fn client(&self) -> Result<&reqwest::Client, reqwest::Error> {
        self.http
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .timeout(self.cfg.timeout)
                    .connect_timeout(self.cfg.timeout)
                    // A receiver that moved must be re-registered: a redirect could send
                    // signed events somewhere the operator never chose.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("referral-mcp-webhooks/", env!("CARGO_PKG_VERSION")))
                    .build()
            })
            .await
    }

    /// Sends until `stop` is cancelled; the deliveries in flight finish first.
    pub async fn run(&self, stop: CancellationToken) {
        let mut pruned_at: Option<i64> = None;
        while !stop.is_cancelled() {
            if pruned_at.is_none_or(|at| now() - at >= 3600) {
                pruned_at = Some(now());
                let before = now() - self.cfg.keep.as_secs() as i64;
                if let Err(e) = self.store.prune_webhooks(before).await {
                    tracing::warn!(error = %e, "pruning settled webhook deliveries failed");
                }
            }
            let sent = match self.send_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatch: the database is unavailable");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }

    /// Claims and sends one batch of due deliveries; how many were attempted.
    pub async fn send_due(&self) -> Result<usize, crate::store::StoreError> {
        // A read first: an idle instance polls without taking the writer.
        if !self.store.webhook_deliveries_due(now()).await? {
            return Ok(0);
        }
        let due = self
            .store
            .claim_webhook_deliveries(now(), self.cfg.lease.as_secs() as i64, self.cfg.batch)
            .await?;
        let n = due.len();
        let outcomes = join_all(due.iter().map(|d| self.attempt(d))).await;
        for (d, outcome) in due.iter().zip(outcomes) {
            if let AttemptOutcome::Failed {
                error, retry_at, ..
            } = &outcome
            {
                tracing::warn!(delivery = d.id, event = %d.event_id, attempt = d.attempts + 1,
                    dead = retry_at.is_none(), error = %error, "webhook delivery failed");
            }
            // If this fails the claim expires and the delivery is sent again: at least once.
            self.store
                .finish_webhook_delivery(d.id, now(), &outcome)
                .await?;
        }
        Ok(n)
    }

    async fn attempt(&self, d: &DueDelivery) -> AttemptOutcome {
        let ts = now();
        let failed = |status: Option<i64>, error: String| {
            let attempts = d.attempts + 1;
            AttemptOutcome::Failed {
                status,
                error,
                retry_at: (attempts < self.cfg.max_attempts)
                    .then(|| now() + self.cfg.backoff(attempts)),
            }
        };
        let Some(sig) = signature(&d.secret, &d.event_id, ts, &d.payload) else {
            return failed(None, "the endpoint's secret is not valid base64".into());
        };
        let http = match self.client().await {
            Ok(c) => c,
            Err(e) => return failed(None, format!("no HTTP client: {e}")),
        };
        let sent = http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(d.payload.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => AttemptOutcome::Delivered {
                status: i64::from(r.status().as_u16()),
            },
            Ok(r) => failed(
                Some(i64::from(r.status().as_u16())),
                format!("the endpoint answered {}", r.status()),
            ),
            Err(e) if e.is_timeout() => failed(None, "timed out".into()),
            Err(e) if e.is_connect() => failed(None, "could not connect".into()),
            Err(_) => failed(None, "the request failed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_fourfold_with_jitter_and_is_capped() {
        let c = DispatchConfig::default();
        for _ in 0..50 {
            let first = c.backoff(1);
            assert!((8..=12).contains(&first), "{first}");
            let third = c.backoff(3);
            assert!((128..=192).contains(&third), "{third}");
            assert!(c.backoff(30) <= 6 * 3600 * 12 / 10 + 1);
        }
    }
}
