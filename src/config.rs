//! Run-time configuration shared by every command, and the one function that turns it
//! into a running core.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use rand::RngCore;

use crate::auth::{Authenticator, Jwks, JwtConfig};
use crate::billing::{HttpSink, LedgerSink, RetryPolicy};
use crate::core::access::Operation;
use crate::core::clock::Clock;
use crate::core::sink::CreditSink;
use crate::core::types::GrantNamespace;
use crate::core::{Referrals, Settings};
use crate::store::Store;

/// Everything the service needs to start, already parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub public_url: String,
    /// When absent, a secret is generated on first run and kept in the database.
    pub jwt_secret: Option<String>,
    pub jwt_audience: String,
    pub jwt_issuer: Option<String>,
    /// When absent, generated on first run and kept in the database.
    pub ip_hash_secret: Option<String>,
    pub prices: HashMap<Operation, i64>,
    pub public_rate_per_minute: i64,
    /// External billing service for grants; the local ledger when absent.
    pub billing_url: Option<String>,
    pub billing_token: Option<String>,
    /// JWKS URL for RS256 tokens.
    pub jwks_url: Option<String>,
    /// Reproducible click ids and codes (the catalog's examples only).
    pub id_seed: Option<u64>,
    /// Namespace of grant idempotency keys; when absent, generated on first run and kept
    /// in the database.
    pub grant_namespace: Option<String>,
    /// How long a verified API key is remembered (the longest a revocation made elsewhere
    /// takes to reach this process).
    pub credential_cache: std::time::Duration,
}

impl Config {
    pub fn with_database(url: &str) -> Self {
        Self {
            database_url: url.to_owned(),
            public_url: "http://127.0.0.1:8080".into(),
            jwt_secret: None,
            jwt_audience: "referral-mcp".into(),
            jwt_issuer: None,
            ip_hash_secret: None,
            prices: HashMap::new(),
            public_rate_per_minute: 120,
            billing_url: None,
            billing_token: None,
            jwks_url: None,
            id_seed: None,
            grant_namespace: None,
            credential_cache: std::time::Duration::from_secs(5),
        }
    }
}

/// Parses `op=credits,op=credits` (operation names as in the tool list).
pub fn parse_prices(s: &str) -> Result<HashMap<Operation, i64>, String> {
    let mut out = HashMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, n) = part
            .split_once('=')
            .ok_or_else(|| format!("price {part:?} must look like list_referrals=2"))?;
        let op = Operation::from_name(name.trim())
            .ok_or_else(|| format!("unknown operation {name:?} in prices"))?;
        let n: i64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (0..=1_000_000).contains(n))
            .ok_or_else(|| format!("price of {name} must be an integer from 0 to 1000000"))?;
        out.insert(op, n);
    }
    Ok(out)
}

/// The running pieces, shared: a clone is one reference count (axum clones its state and
/// services for every request).
#[derive(Clone)]
pub struct App(Arc<AppParts>);

pub struct AppParts {
    pub store: Store,
    pub core: Referrals,
    pub auth: Authenticator,
}

impl std::ops::Deref for App {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl App {
    /// Connects (running migrations), resolves secrets, creates the default campaign.
    pub async fn start(cfg: &Config) -> Result<Self, crate::core::error::Error> {
        Self::start_with(cfg, None, Clock::System).await
    }

    pub async fn start_with(
        cfg: &Config,
        sink: Option<Arc<dyn CreditSink>>,
        clock: Clock,
    ) -> Result<Self, crate::core::error::Error> {
        let store = Store::connect(&cfg.database_url).await?;
        let jwt_secret = match &cfg.jwt_secret {
            Some(s) => s.clone(),
            None => {
                store
                    .setting_or_insert("jwt_secret", &random_secret())
                    .await?
            }
        };
        let ip_secret = match &cfg.ip_hash_secret {
            Some(s) => s.clone(),
            None => {
                store
                    .setting_or_insert("ip_hash_secret", &random_secret())
                    .await?
            }
        };
        let grant_namespace = match (&cfg.grant_namespace, cfg.id_seed) {
            (Some(ns), _) => GrantNamespace::parse("grant_namespace", ns)?,
            // The catalog's reproducible examples.
            (None, Some(_)) => GrantNamespace::parse("grant_namespace", "catalog")?,
            (None, None) => GrantNamespace::parse(
                "grant_namespace",
                &store
                    .setting_or_insert("grant_namespace", GrantNamespace::generate().as_str())
                    .await?,
            )?,
        };
        let settings = Settings {
            public_base_url: cfg.public_url.clone(),
            ip_hash_key: ip_secret.into_bytes(),
            prices: cfg.prices.clone(),
            public_rate_per_minute: cfg.public_rate_per_minute,
            ids: cfg
                .id_seed
                .map(crate::core::types::IdSource::seeded)
                .unwrap_or_default(),
            grant_namespace,
            ..Settings::default()
        };
        let sink: Arc<dyn CreditSink> = match (sink, &cfg.billing_url) {
            (Some(s), _) => s,
            (None, Some(url)) => Arc::new(
                HttpSink::new(url, cfg.billing_token.clone(), RetryPolicy::default()).map_err(
                    |e| crate::core::error::Error::Invalid {
                        field: "billing_url",
                        message: e.to_string(),
                    },
                )?,
            ),
            (None, None) => Arc::new(LedgerSink::new(store.clone(), clock.clone())),
        };
        let core = Referrals::new(store.clone(), sink, settings, clock);
        core.ensure_default_campaign().await?;
        let mut auth = Authenticator::with_key_cache(
            cfg.credential_cache,
            store.clone(),
            JwtConfig::hs256(
                jwt_secret.into_bytes(),
                &cfg.jwt_audience,
                cfg.jwt_issuer.as_deref(),
            ),
        );
        if let Some(url) = &cfg.jwks_url {
            auth = auth.with_jwks(Jwks::new(url, std::time::Duration::from_secs(10))?);
        }
        Ok(Self(Arc::new(AppParts { store, core, auth })))
    }
}
