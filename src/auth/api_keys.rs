//! API keys: `rk_<prefix>_<secret>`. The prefix finds the row; the secret is compared as a
//! SHA-256 hash in constant time. The secret has 192 random bits, so a fast hash is enough.

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
}

fn bad_key() -> Error {
    Error::Unauthenticated("the API key is not valid (unknown, revoked or malformed)".into())
}

impl ApiKeys {
    pub fn new(store: Store) -> Self {
        Self { store }
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
        Ok(self.store.revoke_api_key(prefix, now).await?)
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
        let row = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or_else(bad_key)?;
        let matches: bool = hash(key)
            .as_bytes()
            .ct_eq(row.secret_hash.as_bytes())
            .into();
        if !matches || row.revoked_at.is_some() {
            return Err(bad_key());
        }
        let scopes = ScopeSet::parse(&row.scopes).map_err(Error::internal)?;
        Ok(Principal {
            account: AccountId::parse("account", &row.account).map_err(Error::internal)?,
            via: Via::ApiKey { prefix: row.prefix },
            scopes,
        })
    }
}
