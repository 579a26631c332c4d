//! Where reward credits go. The core grants through a [`CreditSink`] with an idempotency
//! key per reward side, so any number of retries credit an account at most once.

mod http;

pub use http::{HttpSink, RetryPolicy};

use async_trait::async_trait;

use crate::core::clock::Clock;
use crate::store::{Store, ledger::Credit};

/// One grant: `credits` to `account`, at most once per `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key: String,
    pub account: String,
    pub credits: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    Granted,
    /// The key was granted before, with the same account and amount.
    AlreadyGranted,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// Like TigerBeetle's `exists_with_different_amount`: the key exists with another
    /// account or amount. Nothing is granted; an operator must look.
    #[error(
        "grant key {key} already exists with a different account or amount ({existing}); nothing granted"
    )]
    DifferentAmount { key: String, existing: String },
    /// The sink could not be reached or failed; the grant may be retried.
    #[error("billing unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait CreditSink: Send + Sync + 'static {
    async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, SinkError>;
}

/// The default sink: the service's own ledger, in the same database.
#[derive(Clone)]
pub struct LedgerSink {
    store: Store,
    clock: Clock,
}

impl LedgerSink {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }
}

#[async_trait]
impl CreditSink for LedgerSink {
    async fn grant(&self, g: &Grant) -> Result<GrantOutcome, SinkError> {
        match self
            .store
            .credit(
                &g.key,
                &g.account,
                g.credits,
                "referral_reward",
                self.clock.now(),
            )
            .await
        {
            Ok(Credit::Added) => Ok(GrantOutcome::Granted),
            Ok(Credit::AlreadyAdded) => Ok(GrantOutcome::AlreadyGranted),
            Ok(Credit::Conflicting { account, delta }) => Err(SinkError::DifferentAmount {
                key: g.key.clone(),
                existing: format!("{delta} credits to {account}"),
            }),
            Err(e) => {
                tracing::warn!(error = %e, key = %g.key, "ledger grant failed");
                Err(SinkError::Unavailable("ledger write failed".into()))
            }
        }
    }
}
