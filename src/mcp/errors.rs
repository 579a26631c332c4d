//! Tool errors: every failure an agent can act on is a tool result with `isError: true`
//! and a body `{"error": {code, message, next_step, current_status?}}`. Local core errors,
//! refused arguments and a remote deployment's problem documents all come through
//! [`ToolError`], so they read the same.

use rmcp::ErrorData as McpError;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};

use super::remote::RemoteError;
use crate::core::error::Error;

/// A failure as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub code: String,
    pub message: String,
    /// The object's status, for a conflict about a status.
    pub current_status: Option<String>,
    pub retry_after: Option<u64>,
}

impl ToolError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            current_status: None,
            retry_after: None,
        }
    }

    /// Arguments that do not have the tool's shape (unknown field, wrong type).
    pub fn shape(e: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        Self::new("invalid_argument", format!("invalid arguments: {e}"))
    }

    pub fn result(&self) -> CallToolResult {
        let mut body = serde_json::json!({
            "error": { "code": self.code, "message": self.message, "next_step": next_step(&self.code, self.retry_after) }
        });
        if let Some(s) = &self.current_status {
            body["error"]["current_status"] = serde_json::Value::String(s.clone());
        }
        CallToolResult::error(vec![ContentBlock::text(body.to_string())])
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.public_message(),
            current_status: match &e {
                Error::Conflict { current_status, .. } => current_status.clone(),
                _ => None,
            },
            retry_after: match e {
                Error::RateLimited { retry_after_secs }
                | Error::Unavailable { retry_after_secs } => Some(retry_after_secs),
                _ => None,
            },
        }
    }
}

impl From<RemoteError> for ToolError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Problem(p) => Self {
                code: p.code,
                message: p.detail,
                current_status: p.current_status,
                retry_after: p.retry_after,
            },
            RemoteError::Transport(m) => Self::new("unavailable", m),
        }
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, McpError> {
        Ok(self.result().into())
    }
}

fn next_step(code: &str, retry_after: Option<u64>) -> String {
    match code {
        "invalid_argument" => "fix the named argument and call again".to_owned(),
        "not_found" => "check the id or code, e.g. with list_referrals".to_owned(),
        "conflict" => "read the current state with get_referral; do not retry blindly".to_owned(),
        "insufficient_credits" => {
            "ask an operator to add credits to this account, then retry".to_owned()
        }
        "unauthenticated" => "configure a valid API key or token for this server".to_owned(),
        "forbidden" => "use a credential with the named scope, or another tool".to_owned(),
        "rate_limited" => format!("wait {} seconds, then retry", retry_after.unwrap_or(1)),
        "unavailable" => match retry_after {
            Some(secs) => format!("nothing was done or charged; retry in {secs} seconds"),
            None => "check the remote URL and the network, then retry".to_owned(),
        },
        _ => "retry later; nothing was charged".to_owned(),
    }
}
