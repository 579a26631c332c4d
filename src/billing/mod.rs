//! Where reward credits go: the adapters of the core's [`CreditSink`] port (the local
//! ledger here, an external billing service in [`http`]).

mod http;

pub use http::{HttpSink, RetryPolicy};

use async_trait::async_trait;

use crate::core::clock::Clock;
use crate::core::sink::{CreditSink, Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError};
use crate::store::ledger::{Credit, NewCredit, TakeBack};
use crate::store::{Store, StoreError};

const REWARD_KIND: &str = "referral_reward";

/// A grant's answer from the ledger's.
fn granted(g: &Grant, credit: Result<Credit, StoreError>) -> Result<GrantOutcome, SinkError> {
    match credit {
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
        let credit = self
            .store
            .credit(&g.key, &g.account, g.credits, REWARD_KIND, self.clock.now())
            .await;
        granted(g, credit)
    }

    /// One write for all (see `Store::credit_many`): recover grants a group so.
    async fn grant_many(&self, grants: &[Grant]) -> Vec<Result<GrantOutcome, SinkError>> {
        let credits: Vec<NewCredit> = grants
            .iter()
            .map(|g| NewCredit {
                key: g.key.clone(),
                account: g.account.clone(),
                delta: g.credits,
            })
            .collect();
        match self
            .store
            .credit_many(credits, REWARD_KIND, self.clock.now())
            .await
        {
            Ok(answers) => grants
                .iter()
                .zip(answers)
                .map(|(g, c)| granted(g, Ok(c)))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, grants = grants.len(), "ledger grants failed");
                grants
                    .iter()
                    .map(|_| Err(SinkError::Unavailable("ledger write failed".into())))
                    .collect()
            }
        }
    }

    /// Takes back what the balance covers (never below zero): the ledger's answer to an
    /// account that already spent its reward. The reward records what came back.
    async fn reverse(&self, r: &Reversal) -> Result<ReversalOutcome, SinkError> {
        match self
            .store
            .take_back(
                &r.key,
                &r.account,
                r.credits,
                "referral_reversal",
                self.clock.now(),
            )
            .await
        {
            Ok(TakeBack::Taken(taken)) => Ok(ReversalOutcome::Reversed { taken }),
            Ok(TakeBack::AlreadyTaken(taken)) => Ok(ReversalOutcome::AlreadyReversed { taken }),
            Ok(TakeBack::Conflicting { account }) => Err(SinkError::DifferentAmount {
                key: r.key.clone(),
                existing: format!("a reversal for {account}"),
            }),
            Err(e) => {
                tracing::warn!(error = %e, key = %r.key, "ledger reversal failed");
                Err(SinkError::Unavailable("ledger write failed".into()))
            }
        }
    }
}
