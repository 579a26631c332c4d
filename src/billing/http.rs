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

use std::time::Duration;

use async_trait::async_trait;

use crate::core::sink::{CreditSink, Grant, GrantOutcome, SinkError};

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

    async fn attempt(&self, g: &Grant) -> Attempt {
        let mut req = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", &g.key)
            .json(&serde_json::json!({
                "key": g.key, "account": g.account, "credits": g.credits,
                "reason": "referral_reward",
            }));
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
                Attempt::Done(if replayed {
                    GrantOutcome::AlreadyGranted
                } else {
                    GrantOutcome::Granted
                })
            }
            409 | 422 => Attempt::Refused(SinkError::DifferentAmount {
                key: g.key.clone(),
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
    Done(GrantOutcome),
    Retry(String),
    Refused(SinkError),
}

#[async_trait]
impl CreditSink for HttpSink {
    async fn grant(&self, g: &Grant) -> Result<GrantOutcome, SinkError> {
        let mut wait = self.policy.first_backoff;
        let mut last = String::new();
        for n in 0..self.policy.attempts.max(1) {
            if n > 0 {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            match self.attempt(g).await {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Refused(e) => return Err(e),
                Attempt::Retry(why) => {
                    tracing::debug!(key = %g.key, attempt = n + 1, why = %why, "billing attempt failed");
                    last = why;
                }
            }
        }
        Err(SinkError::Unavailable(last))
    }
}
