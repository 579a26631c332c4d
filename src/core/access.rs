//! Who may run which operation: the domain's access policy. The core enforces it on every
//! call ([`authorize`]); transports only turn credentials into a [`Principal`] (see the
//! `auth` adapters) and use the same rule to decide what to list.

use std::fmt;
use std::str::FromStr;

use super::error::Error;
use super::types::AccountId;

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
    IngestRefund,
    VoidReward,
    ListCampaigns,
    GetCampaign,
    CreateCampaign,
    UpdateCampaign,
}

impl Operation {
    pub const ALL: [Operation; 17] = [
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
        Operation::IngestRefund,
        Operation::VoidReward,
        Operation::ListCampaigns,
        Operation::GetCampaign,
        Operation::CreateCampaign,
        Operation::UpdateCampaign,
    ];

    /// The operation's name, which is also its MCP tool name.
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
            Operation::IngestRefund => "ingest_refund",
            Operation::VoidReward => "void_reward",
            Operation::ListCampaigns => "list_campaigns",
            Operation::GetCampaign => "get_campaign",
            Operation::CreateCampaign => "create_campaign",
            Operation::UpdateCampaign => "update_campaign",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    pub fn access(self) -> Access {
        use Operation::*;
        match self {
            ListReferrals | GetReferral | GetStats | ListCampaigns | GetCampaign => {
                Access::Scoped(Scope::Read)
            }
            ApproveReferral | RejectReferral | VoidReward => Access::Scoped(Scope::Review),
            RecoverGrants => Access::Scoped(Scope::Recover),
            IngestSignup | IngestQualification | IngestRefund => Access::Scoped(Scope::Ingest),
            CreateCampaign | UpdateCampaign => Access::Scoped(Scope::Campaigns),
            MySummary | MyEvents => Access::User,
            CaptureClick => Access::Public,
        }
    }

    /// Whether the operation changes nothing (what `--read-only` keeps).
    pub fn is_read_only(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ListReferrals
                | GetReferral
                | GetStats
                | MySummary
                | MyEvents
                | ListCampaigns
                | GetCampaign
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

/// For management routes that are not operations (webhooks): an admin JWT, or an API
/// key holding `scope`; `what` names the route in the refusal.
pub fn authorize_scope(
    principal: Option<&Principal>,
    scope: Scope,
    what: &str,
) -> Result<(), Error> {
    match principal {
        None => Err(Error::Unauthenticated(format!(
            "{what} needs an API key (x-api-key) or a bearer token"
        ))),
        Some(p) if p.effective_scopes().contains(scope) => Ok(()),
        Some(p) => Err(Error::Forbidden(format!(
            "{what} needs scope {} (or an admin token); this credential has [{}]",
            scope.as_str(),
            p.scopes
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Read,
    Review,
    Recover,
    Ingest,
    Campaigns,
    Webhooks,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Read,
        Scope::Review,
        Scope::Recover,
        Scope::Ingest,
        Scope::Campaigns,
        Scope::Webhooks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "referrals:read",
            Scope::Review => "referrals:review",
            Scope::Recover => "referrals:recover",
            Scope::Ingest => "referrals:ingest",
            Scope::Campaigns => "campaigns:manage",
            Scope::Webhooks => "webhooks:manage",
        }
    }
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Scope::ALL.iter().map(|x| x.as_str()).collect();
                format!("unknown scope {s:?}; expected one of {}", all.join(", "))
            })
    }
}

/// A set of scopes; stored as a space-separated string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn empty() -> Self {
        Self(0)
    }
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }
    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
    /// Parses a space- or comma-separated list.
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&v.join(" "))
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
