//! The port through which the core pays rewards. The core grants through a [`CreditSink`]
//! with an idempotency key per reward side, so any number of retries credit an account at
//! most once; the adapters (the local ledger, an HTTP billing service) live in `billing`.

use async_trait::async_trait;

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

/// Taking a granted reward back after a refund: up to `credits` from `account`, at most
/// once per `key` (`{grant key}:reversal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    pub key: String,
    /// The grant being reversed.
    pub grant_key: String,
    pub account: String,
    pub credits: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalOutcome {
    /// Took `taken` credits back now (fewer than asked when the account had spent them).
    Reversed { taken: i64 },
    /// The key was reversed before; it took `taken` then.
    AlreadyReversed { taken: i64 },
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
    /// Several grants, each answered as by [`Self::grant`]: by default sent concurrently
    /// one by one. A sink that can write many in one go (the local ledger) does so.
    async fn grant_many(&self, grants: &[Grant]) -> Vec<Result<GrantOutcome, SinkError>> {
        futures::future::join_all(grants.iter().map(|g| self.grant(g))).await
    }
    async fn reverse(&self, reversal: &Reversal) -> Result<ReversalOutcome, SinkError>;
}
