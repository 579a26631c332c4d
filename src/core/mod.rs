//! The referral core: every operation of the product, independent of any transport.
//!
//! Each public method of [`Referrals`] is one operation: it authorizes the caller, charges
//! the operation's price, runs, and refunds the charge if it fails. MCP tools and REST
//! handlers call exactly these methods. The `record_*`/`run_*` methods are the same
//! operations for trusted local callers (CLI, demo seeding): no principal, no charge.

pub mod access;
pub mod click;
pub mod clock;
pub mod error;
pub mod review;
pub mod sink;
pub mod text;
pub mod types;
pub mod views;

mod admin;
mod campaigns;
mod click_targets;
mod grants;
mod lifecycle;
mod me;
mod metering;
mod recover;
mod refunds;
mod transitions;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

pub use admin::{ListQuery, RejectRequest, StatsQuery};
pub use campaigns::{CampaignEdit, CampaignSettings, Clearable, bounded, limits};
pub use lifecycle::{ClickRequest, QualifyEvent, SignupEvent};
pub use me::EventsQuery;
pub use recover::{RecoverProgress, RecoverRequest};
pub use refunds::RefundEvent;

use crate::store::{CampaignRow, Store};
use access::Operation;
use clock::Clock;
use error::Error;
use sink::CreditSink;

pub type Result<T> = std::result::Result<T, Error>;

/// Tunables of the referral program and of metering.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Base of share URLs, e.g. `https://app.example.com`.
    pub public_base_url: String,
    /// Key of the HMAC that turns IPs into hashes.
    pub ip_hash_key: Vec<u8>,
    /// Credits per operation; operations not listed cost [`Settings::default_price`].
    pub prices: HashMap<Operation, i64>,
    pub default_price: i64,
    /// How long a claim on a reward lasts unless its holder renews it. A live process
    /// renews its claims while it works on them (every third of this), so the lease only
    /// decides how soon the rewards of a crashed process can be recovered.
    pub grant_lease_secs: i64,
    /// Public calls allowed per IP hash per minute.
    pub public_rate_per_minute: i64,
    /// Source of click ids and referral codes.
    pub ids: types::IdSource,
    /// Prefix of every grant idempotency key this deployment sends to billing.
    pub grant_namespace: types::GrantNamespace,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_base_url: "http://127.0.0.1:8080".into(),
            ip_hash_key: b"change-me".to_vec(),
            prices: HashMap::new(),
            default_price: 1,
            grant_lease_secs: 15,
            public_rate_per_minute: 120,
            ids: types::IdSource::default(),
            grant_namespace: types::GrantNamespace::parse("ns", "local")
                .unwrap_or_else(|_| types::GrantNamespace::generate()),
        }
    }
}

impl Settings {
    pub fn price(&self, op: Operation) -> i64 {
        self.prices.get(&op).copied().unwrap_or(self.default_price)
    }
}

/// The referral core. Cheap to clone.
#[derive(Clone)]
pub struct Referrals {
    store: Store,
    sink: Arc<dyn CreditSink>,
    settings: Arc<Settings>,
    clock: Clock,
    /// The newest rate-limit window this process has pruned up to (see
    /// `prune_old_rate_limit_windows`); shared by clones, so once per process.
    rate_limits_pruned_at: Arc<AtomicI64>,
    /// Codes' owners and campaigns for click capture; shared by clones.
    click_targets: Arc<click_targets::ClickTargets>,
}

impl Referrals {
    pub fn new(store: Store, sink: Arc<dyn CreditSink>, settings: Settings, clock: Clock) -> Self {
        Self {
            store,
            sink,
            settings: Arc::new(settings),
            clock,
            rate_limits_pruned_at: Arc::new(AtomicI64::new(i64::MIN)),
            click_targets: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn campaign(&self, id: &str) -> Result<CampaignRow> {
        self.store
            .campaign(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "campaign",
                id: id.to_owned(),
            })
    }

    /// Campaign ids, for completions and documentation.
    pub async fn campaign_ids(&self) -> Result<Vec<String>> {
        Ok(self.store.campaign_ids().await?)
    }

    /// Adds credits to an account (operator top-up). Idempotent per `key`.
    pub async fn top_up(&self, account: &types::AccountId, credits: i64, key: &str) -> Result<()> {
        // Bounded so that no sum of top-ups and grants can overflow a balance.
        if !(1..=1_000_000_000_000).contains(&credits) {
            return Err(Error::Invalid {
                field: "credits",
                message: "must be between 1 and 10^12".into(),
            });
        }
        self.store
            .credit(key, account.as_str(), credits, "top_up", self.clock.now())
            .await?;
        Ok(())
    }

    pub async fn balance(&self, account: &types::AccountId) -> Result<i64> {
        Ok(self.store.balance(account.as_str()).await?)
    }
}
