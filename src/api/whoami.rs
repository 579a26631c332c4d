//! `GET /auth/whoami`: who a credential belongs to. Remote mode reads it back into the
//! principal its tool list is built for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::access::{Principal, ScopeSet, Via};
use crate::core::error::Error;
use crate::core::types::AccountId;

/// Who a credential belongs to. Free: remote mode calls it at start-up to check the
/// configured credential and learn which tools to offer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WhoAmI {
    pub account: String,
    /// `api_key` or `jwt`.
    pub via: String,
    pub admin: bool,
    /// Effective scopes (an admin token holds all).
    pub scopes: Vec<String>,
}

impl From<&Principal> for WhoAmI {
    fn from(p: &Principal) -> Self {
        WhoAmI {
            account: p.account.to_string(),
            via: match p.via {
                Via::ApiKey { .. } => "api_key".into(),
                Via::Jwt { .. } => "jwt".into(),
            },
            admin: p.is_admin(),
            scopes: p
                .effective_scopes()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        }
    }
}

impl WhoAmI {
    /// The principal a deployment described. The key prefix is not part of the answer
    /// (it would only name the key in an audit trail the deployment writes itself).
    pub fn principal(&self) -> Result<Principal, Error> {
        Ok(Principal {
            account: AccountId::parse("account", &self.account)?,
            via: if self.via == "jwt" {
                Via::Jwt { admin: self.admin }
            } else {
                Via::ApiKey {
                    prefix: String::new(),
                }
            },
            scopes: ScopeSet::parse(&self.scopes.join(" ")).map_err(|m| Error::Invalid {
                field: "scopes",
                message: m,
            })?,
        })
    }
}
