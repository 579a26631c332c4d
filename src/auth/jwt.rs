//! JWTs: HS256 with a configured secret, or RS256 with a key from a JWKS URL (see
//! [`super::jwks`]); audience required, issuer optional.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::core::access::{Principal, ScopeSet, Via};
use crate::core::error::Error;
use crate::core::types::AccountId;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub aud: Audience,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The `aud` claim. RFC 7519 §4.1.3 allows one string or an array of strings, and identity
/// providers that serve several APIs send arrays; a token is ours when any entry is our
/// audience (the check itself is `jsonwebtoken`'s). We mint the single-string form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among the token's audiences.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Audience::One(a.to_owned())
    }
}

impl From<String> for Audience {
    fn from(a: String) -> Self {
        Audience::One(a)
    }
}

impl From<Vec<String>> for Audience {
    fn from(all: Vec<String>) -> Self {
        Audience::Many(all)
    }
}

#[derive(Clone)]
pub struct JwtConfig {
    secret: Vec<u8>,
    audience: String,
    issuer: Option<String>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl JwtConfig {
    pub fn hs256(secret: impl Into<Vec<u8>>, audience: &str, issuer: Option<&str>) -> Self {
        Self {
            secret: secret.into(),
            audience: audience.to_owned(),
            issuer: issuer.map(str::to_owned),
        }
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs a token for `account`, valid for `ttl_secs`.
    pub fn mint(&self, account: &AccountId, admin: bool, ttl_secs: u64) -> Result<String, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: account.to_string(),
            aud: Audience::One(self.audience.clone()),
            exp: now + ttl_secs,
            iss: self.issuer.clone(),
            nbf: None,
            role: admin.then(|| "admin".to_owned()),
        };
        self.sign(&claims)
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(Error::internal)
    }

    /// Verifies an HS256 token with the configured secret.
    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        self.verify_with(
            token,
            Algorithm::HS256,
            &DecodingKey::from_secret(&self.secret),
        )
    }

    /// Verifies signature with `key`, algorithm (exactly `alg`: `none` and others are
    /// refused), `exp`, `nbf`, audience, issuer when configured, and a well-formed `sub`.
    pub fn verify_with(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<Principal, Error> {
        let mut v = Validation::new(alg);
        v.set_audience(&[&self.audience]);
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v.set_required_spec_claims(&["exp", "sub", "aud"]);
        v.validate_nbf = true;
        v.leeway = 5;
        let data = decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::ImmatureSignature => "the token is not valid yet (nbf)",
                K::InvalidAudience => "the token is for another audience",
                K::InvalidIssuer => "the token has the wrong issuer",
                K::InvalidSignature => "the token signature is invalid",
                K::InvalidAlgorithm => "the token algorithm is not accepted",
                K::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp, aud)",
                _ => "the token is malformed",
            };
            Error::Unauthenticated(why.to_owned())
        })?;
        let account = AccountId::parse("sub", &data.claims.sub)
            .map_err(|_| Error::Unauthenticated("the token's sub is not a valid account".into()))?;
        Ok(Principal {
            account,
            via: Via::Jwt {
                admin: data.claims.role.as_deref() == Some("admin"),
            },
            scopes: ScopeSet::empty(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn cfg() -> JwtConfig {
        JwtConfig::hs256(b"secret-1".to_vec(), "referral-mcp", Some("issuer-a"))
    }
    fn claims(exp_offset: i64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        Claims {
            sub: "u1".into(),
            aud: "referral-mcp".into(),
            exp: (now + exp_offset) as u64,
            iss: Some("issuer-a".into()),
            nbf: None,
            role: None,
        }
    }
    fn refused(token: &str) -> String {
        match cfg().verify(token) {
            Err(Error::Unauthenticated(m)) => m,
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_token_authenticates_its_subject() {
        let p = cfg().verify(&cfg().sign(&claims(600)).unwrap()).unwrap();
        assert_eq!(p.account.as_str(), "u1");
        assert!(!p.is_admin());
        let admin = cfg()
            .mint(&AccountId::parse("a", "boss").unwrap(), true, 60)
            .unwrap();
        assert!(cfg().verify(&admin).unwrap().is_admin());
    }

    #[test]
    fn refuses_expired_wrong_audience_wrong_issuer_bad_signature_and_not_yet_valid() {
        assert!(refused(&cfg().sign(&claims(-600)).unwrap()).contains("expired"));
        let mut c = claims(600);
        c.aud = "other".into();
        assert!(refused(&cfg().sign(&c).unwrap()).contains("audience"));
        let mut c = claims(600);
        c.iss = Some("mallory".into());
        assert!(refused(&cfg().sign(&c).unwrap()).contains("issuer"));
        let other = JwtConfig::hs256(b"other".to_vec(), "referral-mcp", Some("issuer-a"));
        assert!(refused(&other.sign(&claims(600)).unwrap()).contains("signature"));
        let mut c = claims(600);
        c.nbf = Some(jsonwebtoken::get_current_timestamp() + 3600);
        assert!(refused(&cfg().sign(&c).unwrap()).contains("not valid yet"));
    }

    #[test]
    fn refuses_alg_none_and_missing_sub() {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = enc.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = enc.encode(serde_json::to_vec(&claims(600)).unwrap());
        refused(&format!("{header}.{body}."));
        let now = jsonwebtoken::get_current_timestamp();
        let no_sub =
            serde_json::json!({"aud": "referral-mcp", "exp": now + 600, "iss": "issuer-a"});
        let t = encode(
            &Header::new(Algorithm::HS256),
            &no_sub,
            &EncodingKey::from_secret(b"secret-1"),
        )
        .unwrap();
        assert!(refused(&t).contains("claim") || refused(&t).contains("malformed"));
    }

    fn sign_json(claims: &serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(b"secret-1"),
        )
        .unwrap()
    }

    #[test]
    fn an_array_aud_is_accepted_when_it_holds_our_audience_and_refused_when_it_does_not() {
        let exp = jsonwebtoken::get_current_timestamp() + 600;
        assert!(
            Audience::from(vec!["a".to_owned(), "referral-mcp".to_owned()])
                .contains("referral-mcp")
        );
        let ours = serde_json::json!({"sub": "u1", "exp": exp, "iss": "issuer-a",
            "aud": ["billing", "referral-mcp"]});
        let p = cfg()
            .verify(&sign_json(&ours))
            .expect("array aud with ours");
        assert_eq!(p.account.as_str(), "u1");
        let theirs = serde_json::json!({"sub": "u1", "exp": exp, "iss": "issuer-a",
            "aud": ["billing", "crm"]});
        assert!(refused(&sign_json(&theirs)).contains("another audience"));
        let empty = serde_json::json!({"sub": "u1", "exp": exp, "iss": "issuer-a", "aud": []});
        assert!(refused(&sign_json(&empty)).contains("another audience"));
        let single = serde_json::json!({"sub": "u1", "exp": exp, "iss": "issuer-a",
            "aud": "referral-mcp"});
        assert!(cfg().verify(&sign_json(&single)).is_ok());
    }
}
