//! RS256 tokens verified with keys from a JWKS URL (an identity provider's published
//! keys). Keys are cached by `kid`; a token naming a `kid` we do not hold triggers one
//! refetch (the provider rotated keys), at most once per `min_refresh` so a flood of
//! tokens with made-up kids cannot turn into a flood of fetches.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;

use crate::core::error::Error;

struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jwks({})", self.url)
    }
}

impl Jwks {
    pub fn new(url: &str, min_refresh: Duration) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            url: url.to_owned(),
            client,
            min_refresh,
            cache: Mutex::new(Cache {
                keys: HashMap::new(),
                fetched: None,
            }),
        })
    }

    /// The key for `kid`, fetching the set when it is unknown and the last fetch is old
    /// enough.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        let stale = cache
            .fetched
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        if stale {
            cache.fetched = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => cache.keys = keys,
                Err(e) => tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed"),
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            Error::Unauthenticated("the token's signing key (kid) is unknown".into())
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
            })
            .collect())
    }
}
