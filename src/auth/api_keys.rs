//! API keys: `rk_<prefix>_<secret>`. The prefix finds the row; the secret is compared as a
//! SHA-256 hash in constant time. The secret has 192 random bits, so a fast hash is enough.
//!
//! Verified keys are remembered for a short time (default 5 s), so a busy client's calls
//! do not each read the key table: the check is a hash and a map look-up. The price is
//! the revocation delay: a key revoked elsewhere (another instance, the CLI) keeps
//! working for at most that long on an instance that verified it just before; revoking
//! through an instance forgets the key there at once. A key that does not verify is
//! never remembered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::core::access::{Principal, ScopeSet, Via};
use crate::core::error::Error;
use crate::core::types::AccountId;
use crate::store::Store;

const PREFIX_LEN: usize = 10;

pub(super) fn looks_like_key(s: &str) -> bool {
    s.starts_with("rk_")
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A key just created: the only time its secret exists outside the caller's hands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewApiKey {
    pub id: i64,
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub account: String,
    pub scopes: String,
}

#[derive(Clone)]
pub struct ApiKeys {
    store: Store,
    cache: std::sync::Arc<KeyCache>,
}

/// Keys verified in the last `ttl`, by the SHA-256 of the whole key.
struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

/// Past this many remembered keys the cache starts over (a bound, not an LRU: that many
/// distinct valid keys within one TTL is far beyond any deployment's clients).
const CACHE_MAX: usize = 10_000;

impl KeyCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        let (p, at) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| p.clone())
    }

    fn put(&self, hash: String, p: &Principal) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (p.clone(), Instant::now()));
        }
    }

    fn forget(&self, prefix: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (p, _)| !matches!(&p.via, Via::ApiKey { prefix: q } if q == prefix));
        }
    }
}

fn bad_key() -> Error {
    Error::Unauthenticated("the API key is not valid (unknown, revoked or malformed)".into())
}

impl ApiKeys {
    pub fn new(store: Store) -> Self {
        Self::with_cache(store, Duration::from_secs(5))
    }

    /// Keys verified are remembered for `ttl` (zero: every call reads the key table).
    pub fn with_cache(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            cache: std::sync::Arc::new(KeyCache {
                ttl,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub async fn create(
        &self,
        name: &str,
        account: &AccountId,
        scopes: ScopeSet,
        now: i64,
    ) -> Result<NewApiKey, Error> {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut rng = rand::rng();
        let mut p = [0u8; 8];
        rng.fill_bytes(&mut p);
        let mut s = [0u8; 24];
        rng.fill_bytes(&mut s);
        let prefix: String = hex::encode(p).chars().take(PREFIX_LEN).collect();
        let secret = enc.encode(s);
        let key = format!("rk_{prefix}_{secret}");
        let scopes_s = scopes.to_string();
        let name = crate::core::text::clean(name, 100);
        let id = self
            .store
            .insert_api_key(
                &prefix,
                &hash(&key),
                &name,
                account.as_str(),
                &scopes_s,
                now,
            )
            .await?;
        Ok(NewApiKey {
            id,
            key,
            prefix,
            name,
            account: account.to_string(),
            scopes: scopes_s,
        })
    }

    pub async fn revoke(&self, prefix_or_key: &str, now: i64) -> Result<bool, Error> {
        let prefix = prefix_or_key
            .strip_prefix("rk_")
            .and_then(|r| r.split('_').next())
            .unwrap_or(prefix_or_key);
        let revoked = self.store.revoke_api_key(prefix, now).await?;
        self.cache.forget(prefix);
        Ok(revoked)
    }

    /// The principal a key stands for. Only a key that is malformed, unknown, wrong or
    /// revoked is `Unauthenticated`; a store failure (the database is down) passes through
    /// `?` as the core's store error (`From<StoreError>`, today `Internal`), and a stored
    /// row that no longer parses is `Internal` too. Transports can then tell an outage
    /// from a bad credential by the error's variant.
    pub async fn verify(&self, key: &str) -> Result<Principal, Error> {
        let prefix = key
            .strip_prefix("rk_")
            .and_then(|r| r.split_once('_'))
            .map(|(p, _)| p)
            .filter(|p| p.len() == PREFIX_LEN)
            .ok_or_else(bad_key)?;
        let hashed = hash(key);
        if let Some(p) = self.cache.get(&hashed) {
            return Ok(p);
        }
        let row = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or_else(bad_key)?;
        let matches: bool = hashed.as_bytes().ct_eq(row.secret_hash.as_bytes()).into();
        if !matches || row.revoked_at.is_some() {
            return Err(bad_key());
        }
        let scopes = ScopeSet::parse(&row.scopes).map_err(Error::internal)?;
        let p = Principal {
            account: AccountId::parse("account", &row.account).map_err(Error::internal)?,
            via: Via::ApiKey { prefix: row.prefix },
            scopes,
        };
        self.cache.put(hashed, &p);
        Ok(p)
    }
}
