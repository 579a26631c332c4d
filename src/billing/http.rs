//! The HTTP billing sink: grants go to an external billing service as
//! `POST {url}` with `Idempotency-Key: {namespace}:referral:{attribution}:{side}` (the
//! namespace is the deployment's, see [`crate::core::types::GrantNamespace`]) and a JSON body
//! `{key, account, credits, reason}`.
//!
//! What we expect of the service (the usual idempotency-key contract, as Stripe's):
//! - `200`/`201`: granted. A replayed key answers the original success again, marked by
//!   an `Idempotent-Replayed: true` header or `"replayed": true` in the body; we count
//!   that as already granted.
//! - `409` or `422`: the key exists with a different account or amount; nothing granted,
//!   never retried (an operator must look).
//! - `5xx`, `408`, `429`, a timeout or a connection failure: retried here a few times
//!   with exponential backoff; if it still fails the reward stays retryable and a later
//!   `recover` run sends the same key again.
//!
//! Reversals (a refund took a granted reward back) go to the same URL, the same way, with
//! `Idempotency-Key: {grant key}:reversal` and the body
//! `{key, account, credits: -N, reason: "referral_reversal", reverses: "{grant key}"}`:
//! - `200`/`201`: reversed. The service may take back less than N when the account
//!   already spent the credits (it should never take a balance below zero); it says how
//!   much with `"reversed": M` in the body (0 <= M <= N), else all N are assumed. A
//!   replay answers as for grants, with the `reversed` of the first answer.
//! - `409`/`422`, `5xx`/`408`/`429`/timeouts: as for grants (the reward stays
//!   `reversing` and recover sends the same key again).

use std::time::Duration;

use async_trait::async_trait;

use crate::core::sink::{CreditSink, Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError};

/// Retry and timeout policy of one sink.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Time allowed for one attempt, connection included.
    pub timeout: Duration,
    /// Attempts per grant (1 = no retry).
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time after.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 3,
            first_backoff: Duration::from_millis(200),
        }
    }
}

pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<String>,
    policy: RetryPolicy,
}

impl HttpSink {
    pub fn new(url: &str, token: Option<String>, policy: RetryPolicy) -> Result<Self, SinkError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| SinkError::Unavailable(format!("billing URL {url:?}: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        Ok(Self {
            client,
            url,
            token,
            policy,
        })
    }

    /// One POST of `body` under `key`; a success is (replayed, the answer's JSON body).
    async fn attempt(&self, key: &str, body: &serde_json::Value) -> Attempt {
        let mut req = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", key)
            .json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Retry("billing timed out".into()),
            Err(e) => return Attempt::Retry(format!("billing unreachable: {}", e.without_url())),
        };
        let status = resp.status();
        let replay_header = resp
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let body: serde_json::Value = match resp.bytes().await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
            Err(e) if e.is_timeout() => return Attempt::Retry("billing timed out".into()),
            Err(_) => serde_json::Value::Null,
        };
        match status.as_u16() {
            200 | 201 => {
                let replayed = replay_header || body["replayed"].as_bool() == Some(true);
                Attempt::Done(replayed, body)
            }
            409 | 422 => Attempt::Refused(SinkError::DifferentAmount {
                key: key.to_owned(),
                existing: body["detail"]
                    .as_str()
                    .or(body["message"].as_str())
                    .unwrap_or("billing refused the key")
                    .chars()
                    .take(200)
                    .collect(),
            }),
            408 | 429 | 500..=599 => Attempt::Retry(format!("billing answered HTTP {status}")),
            _ => Attempt::Refused(SinkError::Unavailable(format!(
                "billing refused the grant: HTTP {status}"
            ))),
        }
    }
}

enum Attempt {
    /// Whether the service said it replayed an earlier answer, and its body.
    Done(bool, serde_json::Value),
    Retry(String),
    Refused(SinkError),
}

impl HttpSink {
    /// Sends `body` under `key` with the retry policy.
    async fn send(
        &self,
        key: &str,
        body: serde_json::Value,
    ) -> Result<(bool, serde_json::Value), SinkError> {
        let mut wait = self.policy.first_backoff;
        let mut last = String::new();
        for n in 0..self.policy.attempts.max(1) {
            if n > 0 {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            match self.attempt(key, &body).await {
                Attempt::Done(replayed, answer) => return Ok((replayed, answer)),
                Attempt::Refused(e) => return Err(e),
                Attempt::Retry(why) => {
                    tracing::debug!(key = %key, attempt = n + 1, why = %why, "billing attempt failed");
                    last = why;
                }
            }
        }
        Err(SinkError::Unavailable(last))
    }
}

#[async_trait]
impl CreditSink for HttpSink {
    async fn grant(&self, g: &Grant) -> Result<GrantOutcome, SinkError> {
        let body = serde_json::json!({
            "key": g.key, "account": g.account, "credits": g.credits,
            "reason": "referral_reward",
        });
        let (replayed, _) = self.send(&g.key, body).await?;
        Ok(if replayed {
            GrantOutcome::AlreadyGranted
        } else {
            GrantOutcome::Granted
        })
    }

    async fn reverse(&self, r: &Reversal) -> Result<ReversalOutcome, SinkError> {
        let body = serde_json::json!({
            "key": r.key, "account": r.account, "credits": -r.credits,
            "reason": "referral_reversal", "reverses": r.grant_key,
        });
        let (replayed, answer) = self.send(&r.key, body).await?;
        // What the service says it took, within what was asked; all of it if unsaid.
        let taken = answer["reversed"]
            .as_i64()
            .map_or(r.credits, |m| m.clamp(0, r.credits));
        Ok(if replayed {
            ReversalOutcome::AlreadyReversed { taken }
        } else {
            ReversalOutcome::Reversed { taken }
        })
    }
}
