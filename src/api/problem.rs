//! Errors as `application/problem+json` (RFC 9457). Every body carries a stable `code`
//! (the same codes MCP tool errors use) and never an internal detail: internal errors
//! are logged where they happen and reach the caller as one generic sentence.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The problem document. Remote mode reads it back into the same tool error a local
/// server gives.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Problem {
    /// A URI naming the error kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary: the code.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong and what to do next.
    pub detail: String,
    /// Stable machine-readable code (`invalid_argument`, `not_found`, `conflict`, …).
    pub code: String,
    /// The request field at fault, for `invalid_argument`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The object's current status, for a `conflict` about a status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    /// Seconds to wait, for `rate_limited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The scope a `forbidden` caller lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

pub fn problem(status: StatusCode, code: &str, detail: &str) -> Problem {
    Problem {
        kind: format!("https://referral-mcp.dev/errors/{code}"),
        title: code.to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        code: code.to_owned(),
        field: None,
        current_status: None,
        retry_after: None,
        scope: None,
    }
}

impl Problem {
    /// The document as a response with its status, media type and `Retry-After`.
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}
