//! Credential adapters: API keys, HS256 JWTs and RS256 JWTs from a JWKS. Transports turn
//! headers or environment variables into [`Credentials`]; [`Authenticator`] turns those
//! into the core's [`Principal`]. What a principal may do is the core's policy
//! ([`crate::core::access`]), not decided here.

mod api_keys;
mod jwks;
mod jwt;

pub use api_keys::{ApiKeys, NewApiKey};
pub use jwks::Jwks;
pub use jwt::{Audience, Claims, JwtConfig};

use crate::core::access::Principal;
use crate::core::error::Error;
use crate::store::Store;

/// A credential as presented, not yet checked.
#[derive(Clone)]
pub enum Credentials {
    ApiKey(String),
    /// An `Authorization: Bearer` value: a JWT, or an API key sent as a bearer token.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Credentials::ApiKey(_) => f.write_str("ApiKey(…)"),
            Credentials::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

/// Checks credentials against the key table and the JWT configuration.
#[derive(Clone)]
pub struct Authenticator {
    keys: ApiKeys,
    jwt: JwtConfig,
    jwks: Option<std::sync::Arc<Jwks>>,
}

impl Authenticator {
    pub fn new(store: Store, jwt: JwtConfig) -> Self {
        Self {
            keys: ApiKeys::new(store),
            jwt,
            jwks: None,
        }
    }

    /// With verified API keys remembered for `ttl` (see [`ApiKeys`]).
    pub fn with_key_cache(ttl: std::time::Duration, store: Store, jwt: JwtConfig) -> Self {
        Self {
            keys: ApiKeys::with_cache(store, ttl),
            jwt,
            jwks: None,
        }
    }

    /// Also accept RS256 tokens signed by a key of this set.
    pub fn with_jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(std::sync::Arc::new(jwks));
        self
    }

    pub fn jwks(&self) -> Option<&Jwks> {
        self.jwks.as_deref()
    }

    pub fn keys(&self) -> &ApiKeys {
        &self.keys
    }

    pub fn jwt(&self) -> &JwtConfig {
        &self.jwt
    }

    pub async fn authenticate(&self, creds: &Credentials) -> Result<Principal, Error> {
        match creds {
            Credentials::ApiKey(k) => self.keys.verify(k).await,
            Credentials::Bearer(t) if api_keys::looks_like_key(t) => self.keys.verify(t).await,
            Credentials::Bearer(t) => self.verify_jwt(t).await,
        }
    }

    /// HS256 with the secret, or RS256 with the JWKS key the header's `kid` names. The
    /// header only picks the key; the algorithm must match that key's kind exactly.
    async fn verify_jwt(&self, token: &str) -> Result<Principal, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::Unauthenticated("the token is malformed".into()))?;
        match (header.alg, &self.jwks) {
            (jsonwebtoken::Algorithm::RS256, Some(jwks)) => {
                let kid = header.kid.ok_or_else(|| {
                    Error::Unauthenticated("an RS256 token must name its key (kid)".into())
                })?;
                let key = jwks.key(&kid).await?;
                self.jwt
                    .verify_with(token, jsonwebtoken::Algorithm::RS256, &key)
            }
            _ => self.jwt.verify(token),
        }
    }
}
