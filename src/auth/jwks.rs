//! RS256 tokens verified with keys from a JWKS URL (an identity provider's published
//! keys).
//!
//! - **Expiry.** A fetched set is trusted for a TTL (10 min by default, shorter when the
//!   provider's `Cache-Control: max-age` says so), then fetched again, so a key the
//!   provider withdrew stops verifying soon after the TTL instead of never.
//! - **No waiting for a known key.** The current set is an immutable snapshot behind a
//!   lock held only to clone an `Arc`; a token whose `kid` a fresh snapshot holds never
//!   waits for a fetch, however slow the provider is.
//! - **One fetch at a time, and not too often.** A fetch (for an unknown `kid`, or because
//!   the set expired) is single-flight, and starts at most once per `min_refresh`, so a
//!   flood of tokens with made-up kids cannot become a flood of fetches; while the
//!   interval holds, an unknown `kid` is refused at once instead of queueing.
//! - **A provider outage is not a bad token.** When a refresh fails, the previous set
//!   stays usable for one more TTL (the outage is no evidence that a key was withdrawn);
//!   after that, or when no set was ever fetched, RS256 checks answer "unavailable, retry"
//!   (503), not "unauthenticated".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use reqwest::header::{CACHE_CONTROL, HeaderMap};

use crate::core::error::Error;

/// How long one fetch may take; a hung provider delays only the caller that fetches.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One fetched key set. Never changed once published; a refresh replaces it whole.
struct Snapshot {
    keys: HashMap<String, DecodingKey>,
    /// `None` until the first successful fetch.
    fetched_at: Option<Instant>,
    /// The TTL this set was fetched with (the configured one, or a shorter `max-age`).
    ttl: Duration,
    /// Bumped by every successful fetch, so a caller that waited for another caller's
    /// fetch can tell that a newer set arrived and need not fetch again.
    generation: u64,
}

impl Snapshot {
    fn age(&self) -> Option<Duration> {
        self.fetched_at.map(|t| t.elapsed())
    }

    fn is_fresh(&self) -> bool {
        self.age().is_some_and(|a| a < self.ttl)
    }

    /// Fresh, or expired less than `grace` ago (a refresh is due but has not succeeded).
    fn is_usable(&self, grace: Duration) -> bool {
        self.age()
            .is_some_and(|a| a < self.ttl.saturating_add(grace))
    }
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    ttl: Duration,
    /// The current set; the lock is held only to read or swap the `Arc`, never across an
    /// `.await`.
    current: RwLock<Arc<Snapshot>>,
    /// When the last fetch started; the lock is held only to read or set it.
    last_attempt: Mutex<Option<Instant>>,
    /// Makes fetches single-flight. Held across the HTTP fetch, so only callers that need
    /// a fetch ever take it.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jwks({}, ttl {:?})", self.url, self.ttl)
    }
}

impl Jwks {
    /// How long a fetched set is trusted unless [`Jwks::with_ttl`] or the provider's
    /// `max-age` says otherwise.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

    /// A key set fetched from `url`, at most once per `min_refresh`, trusted for
    /// [`Jwks::DEFAULT_TTL`].
    pub fn new(url: &str, min_refresh: Duration) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            url: url.to_owned(),
            client,
            min_refresh,
            ttl: Self::DEFAULT_TTL,
            current: RwLock::new(Arc::new(Snapshot {
                keys: HashMap::new(),
                fetched_at: None,
                ttl: Duration::ZERO,
                generation: 0,
            })),
            last_attempt: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Trust a fetched set for `ttl` (an upper bound: a shorter `Cache-Control: max-age`
    /// from the provider wins).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The key for `kid`: from the current set when it is fresh and holds `kid`,
    /// otherwise after a refresh (or without one, while `min_refresh` holds).
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, Error> {
        let seen = self.snapshot();
        if seen.is_fresh()
            && let Some(k) = seen.keys.get(kid)
        {
            return Ok(k.clone());
        }
        if !self.may_fetch() {
            return self.settle(&seen, kid);
        }
        let _single_flight = self.fetching.lock().await;
        let latest = self.snapshot();
        if latest.generation != seen.generation || !self.claim_fetch() {
            // Another caller fetched (or tried to) while this one waited.
            return self.settle(&latest, kid);
        }
        match self.fetch().await {
            Ok((keys, max_age)) => {
                let fresh = Arc::new(Snapshot {
                    keys,
                    fetched_at: Some(Instant::now()),
                    ttl: max_age.map_or(self.ttl, |m| m.min(self.ttl)),
                    generation: latest.generation + 1,
                });
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
                self.settle(&fresh, kid)
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed");
                self.settle(&latest, kid)
            }
        }
    }

    /// The answer from `snap` without fetching: its key for `kid` while the set is
    /// usable, "unknown kid" when a usable set lacks it, and "unavailable" when there
    /// is no usable set to judge by (never fetched, or the provider has been failing for
    /// longer than a TTL past expiry).
    fn settle(&self, snap: &Snapshot, kid: &str) -> Result<DecodingKey, Error> {
        if !snap.is_usable(self.ttl) {
            tracing::warn!(url = %self.url, "no current JWKS: RS256 tokens cannot be checked");
            return Err(Error::Unavailable {
                retry_after_secs: crate::core::error::UNAVAILABLE_RETRY_SECS,
            });
        }
        snap.keys.get(kid).cloned().ok_or_else(|| {
            Error::Unauthenticated("the token's signing key (kid) is unknown".into())
        })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `min_refresh` has passed since the last fetch started.
    fn may_fetch(&self) -> bool {
        let last = self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.is_none_or(|t| t.elapsed() >= self.min_refresh)
    }

    /// Records a fetch starting now, if `min_refresh` allows one.
    fn claim_fetch(&self) -> bool {
        let mut last = self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    async fn fetch(&self) -> Result<(HashMap<String, DecodingKey>, Option<Duration>), String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let max_age = max_age(response.headers());
        let set: JwkSet = response.json().await.map_err(|e| e.to_string())?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
            })
            .collect();
        Ok((keys, max_age))
    }
}

/// The `max-age` directive of a `Cache-Control` header, if there is a well-formed one.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| {
            let (name, value) = d.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn max_age_is_read_from_cache_control_and_anything_else_is_ignored() {
        let secs = |v: &[&str]| max_age(&headers(v)).map(|d| d.as_secs());
        assert_eq!(secs(&["public, max-age=300, must-revalidate"]), Some(300));
        assert_eq!(secs(&["no-transform", "Max-Age = 60"]), Some(60));
        assert_eq!(secs(&["s-maxage=10, no-cache"]), None);
        assert_eq!(secs(&["max-age=soon"]), None);
        assert_eq!(secs(&[]), None);
    }
}
