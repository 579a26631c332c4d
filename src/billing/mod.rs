//! Where reward credits go: the adapters of the core's [`CreditSink`] port (the local
//! ledger here, an external billing service in [`http`]).

mod http;

pub use http::{HttpSink, RetryPolicy};

use async_trait::async_trait;

use crate::core::clock::Clock;
use crate::core::sink::{CreditSink, Grant, GrantOutcome, SinkError};
use crate::store::{Store, ledger::Credit};

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
