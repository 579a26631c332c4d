//! Errors as `application/problem+json` (RFC 9457). Every body carries a stable `code`
//! (the same codes MCP tool errors use) and never an internal detail: internal errors
//! are logged where they happen and reach the caller as one generic sentence.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::{Access, Operation};
use crate::core::error::Error;

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

/// Marks a response that needs a `WWW-Authenticate` challenge; the HTTP layer adds the
/// header with the absolute metadata URL, which only it knows.
#[derive(Debug, Clone)]
pub struct Challenge(pub String);

/// One REST error: a core error, or a request that could not even be read.
#[derive(Debug)]
pub enum ApiError {
    Core {
        err: Error,
        op: Option<Operation>,
    },
    /// The body or query string is not what the route takes (syntax, unknown field, type).
    BadRequest(String),
    /// Well-formed JSON whose fields have the wrong shape.
    Unprocessable(String),
    PayloadTooLarge(usize),
    UnsupportedMediaType,
    /// A credential was sent but is not valid.
    InvalidCredential(String),
}

impl ApiError {
    pub fn during(op: Operation) -> impl FnOnce(Error) -> ApiError {
        move |err| ApiError::Core { err, op: Some(op) }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError::Core { err, op: None }
    }
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
    pub fn into_response_with(self, challenge: Option<String>) -> Response {
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
        if let Some(c) = challenge {
            r.extensions_mut().insert(Challenge(c));
        }
        r
    }
}

fn scope_of(op: Option<Operation>) -> Option<String> {
    match op?.access() {
        Access::Scoped(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        match self {
            ApiError::BadRequest(m) => {
                problem(S::BAD_REQUEST, "invalid_argument", &m).into_response_with(None)
            }
            ApiError::Unprocessable(m) => {
                problem(S::UNPROCESSABLE_ENTITY, "invalid_argument", &m).into_response_with(None)
            }
            ApiError::PayloadTooLarge(max) => problem(
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("request body over {max} bytes"),
            )
            .into_response_with(None),
            ApiError::UnsupportedMediaType => problem(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            )
            .into_response_with(None),
            ApiError::InvalidCredential(m) => problem(S::UNAUTHORIZED, "unauthenticated", &m)
                .into_response_with(Some(", error=\"invalid_token\"".into())),
            ApiError::Core { err, op } => core_problem(&err, op),
        }
    }
}

fn core_problem(err: &Error, op: Option<Operation>) -> Response {
    use StatusCode as S;
    let status = match err {
        Error::Invalid { .. } => S::UNPROCESSABLE_ENTITY,
        Error::NotFound { .. } => S::NOT_FOUND,
        Error::Conflict { .. } => S::CONFLICT,
        Error::InsufficientCredits { .. } => S::PAYMENT_REQUIRED,
        Error::Unauthenticated(_) => S::UNAUTHORIZED,
        Error::Forbidden(_) => S::FORBIDDEN,
        Error::RateLimited { .. } => S::TOO_MANY_REQUESTS,
        Error::Internal(_) => S::INTERNAL_SERVER_ERROR,
    };
    let mut p = problem(status, err.code(), &err.public_message());
    let mut challenge = None;
    match err {
        Error::Invalid { field, .. } => p.field = Some((*field).to_owned()),
        Error::Conflict { current_status, .. } => p.current_status = current_status.clone(),
        Error::RateLimited { retry_after_secs } => p.retry_after = Some(*retry_after_secs),
        Error::Unauthenticated(_) => challenge = Some(String::new()),
        Error::Forbidden(_) => {
            p.scope = scope_of(op);
            challenge = Some(match &p.scope {
                Some(s) => format!(", error=\"insufficient_scope\", scope=\"{s}\""),
                None => ", error=\"insufficient_scope\"".into(),
            });
        }
        _ => {}
    }
    p.into_response_with(challenge)
}
