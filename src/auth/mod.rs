//! Who is calling and what they may do. Transports turn headers or environment variables
//! into [`Credentials`]; [`Authenticator`] turns those into a [`Principal`]; and
//! [`authorize`] is the one place that decides which principal may run which operation.

mod api_keys;
mod jwks;
mod jwt;
mod scope;

pub use api_keys::{ApiKeys, NewApiKey};
pub use jwks::Jwks;
pub use jwt::{Claims, JwtConfig};
pub use scope::{Scope, ScopeSet};

use crate::core::error::Error;
use crate::core::types::AccountId;
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

/// How the principal authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    ApiKey { prefix: String },
    Jwt { admin: bool },
}

/// An authenticated caller. Its account pays for the calls it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    pub via: Via,
    pub scopes: ScopeSet,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self.via, Via::Jwt { admin: true })
    }
    /// Who to name in an audit trail.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::ApiKey { prefix } => format!("{} (api key {prefix})", self.account),
            Via::Jwt { admin: true } => format!("{} (admin)", self.account),
            Via::Jwt { admin: false } => self.account.to_string(),
        }
    }
    /// Effective scopes: an admin JWT holds all of them.
    pub fn effective_scopes(&self) -> ScopeSet {
        if self.is_admin() {
            ScopeSet::all()
        } else {
            self.scopes
        }
    }
}

/// What an operation requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An admin JWT, or an API key holding this scope.
    Scoped(Scope),
    /// Any valid user JWT (the caller's own data).
    User,
    /// No credentials.
    Public,
}

/// Every operation the core offers; the unit of authorization and of pricing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ListReferrals,
    GetReferral,
    ApproveReferral,
    RejectReferral,
    RecoverGrants,
    GetStats,
    CaptureClick,
    MySummary,
    MyEvents,
    IngestSignup,
    IngestQualification,
}

impl Operation {
    pub const ALL: [Operation; 11] = [
        Operation::ListReferrals,
        Operation::GetReferral,
        Operation::ApproveReferral,
        Operation::RejectReferral,
        Operation::RecoverGrants,
        Operation::GetStats,
        Operation::CaptureClick,
        Operation::MySummary,
        Operation::MyEvents,
        Operation::IngestSignup,
        Operation::IngestQualification,
    ];

    /// The operation's name; for the nine public operations it is also the MCP tool name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListReferrals => "list_referrals",
            Operation::GetReferral => "get_referral",
            Operation::ApproveReferral => "approve_referral",
            Operation::RejectReferral => "reject_referral",
            Operation::RecoverGrants => "recover_referral_grants",
            Operation::GetStats => "get_referral_stats",
            Operation::CaptureClick => "capture_referral_click",
            Operation::MySummary => "get_my_referral_summary",
            Operation::MyEvents => "list_my_referral_events",
            Operation::IngestSignup => "ingest_signup",
            Operation::IngestQualification => "ingest_qualification",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    pub fn access(self) -> Access {
        use Operation::*;
        match self {
            ListReferrals | GetReferral | GetStats => Access::Scoped(Scope::Read),
            ApproveReferral | RejectReferral => Access::Scoped(Scope::Review),
            RecoverGrants => Access::Scoped(Scope::Recover),
            IngestSignup | IngestQualification => Access::Scoped(Scope::Ingest),
            MySummary | MyEvents => Access::User,
            CaptureClick => Access::Public,
        }
    }

    /// Whether the operation changes nothing (what `--read-only` keeps).
    pub fn is_read_only(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ListReferrals | GetReferral | GetStats | MySummary | MyEvents
        )
    }
}

/// The single authorization rule. `None` is an anonymous caller.
pub fn authorize(principal: Option<&Principal>, op: Operation) -> Result<(), Error> {
    match (op.access(), principal) {
        (Access::Public, _) => Ok(()),
        (_, None) => Err(Error::Unauthenticated(format!(
            "{} needs an API key (x-api-key) or a bearer token",
            op.name()
        ))),
        (Access::Scoped(scope), Some(p)) => {
            if p.effective_scopes().contains(scope) {
                Ok(())
            } else {
                Err(Error::Forbidden(format!(
                    "{} needs scope {} (or an admin token); this credential has [{}]",
                    op.name(),
                    scope.as_str(),
                    p.scopes
                )))
            }
        }
        (Access::User, Some(p)) => match p.via {
            Via::Jwt { .. } => Ok(()),
            Via::ApiKey { .. } => Err(Error::Forbidden(format!(
                "{} is for signed-in users: send the user's JWT as a bearer token, not an API key",
                op.name()
            ))),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[Scope]) -> Principal {
        Principal {
            account: AccountId::parse("a", "ops").unwrap(),
            via: Via::ApiKey { prefix: "p".into() },
            scopes: scopes.iter().copied().collect(),
        }
    }

    #[test]
    fn every_operation_against_every_scope_and_role() {
        let user = Principal {
            account: AccountId::parse("a", "u1").unwrap(),
            via: Via::Jwt { admin: false },
            scopes: ScopeSet::empty(),
        };
        let admin = Principal {
            via: Via::Jwt { admin: true },
            ..user.clone()
        };
        for op in Operation::ALL {
            let access = op.access();
            // anonymous
            assert_eq!(
                authorize(None, op).is_ok(),
                access == Access::Public,
                "{op:?} anonymous"
            );
            // admin JWT: everything
            assert!(authorize(Some(&admin), op).is_ok(), "{op:?} admin");
            // user JWT: own data and public only
            assert_eq!(
                authorize(Some(&user), op).is_ok(),
                matches!(access, Access::User | Access::Public),
                "{op:?} user"
            );
            // API key with each single scope
            for scope in Scope::ALL {
                let ok = authorize(Some(&key(&[scope])), op).is_ok();
                let want = match access {
                    Access::Scoped(s) => s == scope,
                    Access::User => false,
                    Access::Public => true,
                };
                assert_eq!(ok, want, "{op:?} with key scope {scope:?}");
            }
            // API key with no scopes
            assert_eq!(
                authorize(Some(&key(&[])), op).is_ok(),
                access == Access::Public
            );
        }
    }

    #[test]
    fn refusals_say_which_scope_is_missing() {
        let e = authorize(Some(&key(&[Scope::Read])), Operation::ApproveReferral).unwrap_err();
        assert_eq!(e.code(), "forbidden");
        assert!(e.to_string().contains("referrals:review"), "{e}");
        let e = authorize(None, Operation::ListReferrals).unwrap_err();
        assert_eq!(e.code(), "unauthenticated");
    }
}
