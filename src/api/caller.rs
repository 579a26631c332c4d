//! How an HTTP request names its caller, and the one way to refuse one.
//!
//! Both faces read credentials and the peer address the same way, and every `401` and
//! `403` either face answers is built by [`Refusal::response`]: a problem document with
//! the code `unauthenticated` or `forbidden` and a `WWW-Authenticate` challenge. The
//! challenge names the absolute metadata URL, which needs the `Host` the caller used, so
//! [`add_challenge`] (one middleware around the whole server) renders it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::problem::problem;
use crate::auth::Credentials;
use crate::core::access::{Access, Operation, Scope};
use crate::core::error::Error;

/// What a caller without credentials is told, wherever it is refused.
pub const NO_CREDENTIALS: &str = "send an API key in x-api-key or a token in Authorization: Bearer";

/// Largest REST body: the longest legitimate one (a click) is about 10 KB.
pub const REST_BODY_MAX: usize = 64 * 1024;
/// Largest MCP body: JSON-RPC batches of tool calls are bigger than REST bodies.
pub const MCP_BODY_MAX: usize = 1 << 20;

/// Credentials from `x-api-key` or `Authorization: Bearer`.
pub fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credentials::ApiKey(k.trim().to_owned()));
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| Credentials::Bearer(t.trim().to_owned()))
}

/// The TCP peer's address, when the server was started with connect info. Behind a proxy
/// it is the proxy's (see the README's security notes).
pub fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Why a caller is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential where one is needed: `401`.
    Missing(String),
    /// A credential that does not verify: `401` with `error="invalid_token"`.
    InvalidCredential(String),
    /// A valid credential that may not do this: `403 forbidden` with
    /// `error="insufficient_scope"` and the scope, when a scope would allow it.
    Forbidden {
        message: String,
        scope: Option<Scope>,
    },
}

/// Marks a response that needs a `WWW-Authenticate` challenge; the text after the
/// metadata URL (`, error=…`).
#[derive(Debug, Clone)]
struct Challenge(String);

impl Refusal {
    /// The refusal a core error stands for, if it is one; `op` names the scope to ask for.
    pub fn from_core(e: &Error, op: Option<Operation>) -> Option<Self> {
        match e {
            Error::Unauthenticated(_) => Some(Refusal::Missing(e.public_message())),
            Error::Forbidden(_) => Some(Refusal::Forbidden {
                message: e.public_message(),
                scope: op.and_then(|op| match op.access() {
                    Access::Scoped(s) => Some(s),
                    _ => None,
                }),
            }),
            _ => None,
        }
    }

    /// The one builder of every `401` and `403` either face answers.
    pub fn response(self) -> Response {
        let (status, code, message, extra, scope) = match self {
            Refusal::Missing(m) => (StatusCode::UNAUTHORIZED, "unauthenticated", m, None, None),
            Refusal::InvalidCredential(m) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                m,
                Some(", error=\"invalid_token\"".to_owned()),
                None,
            ),
            Refusal::Forbidden { message, scope } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                message,
                Some(match scope {
                    Some(s) => format!(", error=\"insufficient_scope\", scope=\"{}\"", s.as_str()),
                    None => ", error=\"insufficient_scope\"".to_owned(),
                }),
                scope,
            ),
        };
        let mut p = problem(status, code, &message);
        p.scope = scope.map(|s| s.as_str().to_owned());
        let mut r = p.into_response();
        r.extensions_mut()
            .insert(Challenge(extra.unwrap_or_default()));
        r
    }
}

/// `http://{Host}`: where the caller reached us.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

/// Turns a refusal's challenge into the `WWW-Authenticate` header with the absolute
/// RFC 9728 metadata URL.
pub async fn add_challenge(req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).cloned();
    let mut r = next.run(req).await;
    if let Some(Challenge(extra)) = r.extensions_mut().remove::<Challenge>() {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(header::HOST, h);
        }
        let v = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"{extra}",
            base_url(&headers)
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        );
    }
    r
}
