//! How an HTTP request names its caller, and the one way to refuse one.
//!
//! Both faces read credentials and the peer address the same way, and every `401` and
//! `403` either face answers is built by [`Refusal::response`]: a problem document with
//! the code `unauthenticated` or `forbidden` and a `WWW-Authenticate` challenge. The
//! challenge names the absolute metadata URL, built from the configured public URL (the
//! request's `Host` is the caller's to choose, so it is never used), and
//! [`add_challenge`] (one middleware around the whole server) renders it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::edge::Edge;
use super::problem::problem;
use crate::auth::Credentials;
use crate::core::access::{Access, Operation, Scope};
use crate::core::error::Error;

/// What a caller without credentials is told, wherever it is refused.
pub const NO_CREDENTIALS: &str = "send an API key in x-api-key or a token in Authorization: Bearer";

/// Largest REST body: the longest legitimate one (a click) is about 10 KB.
pub const REST_BODY_MAX: usize = 64 * 1024;
/// Largest MCP body: a tool call with its JSON-RPC envelope; generous, since MCP clients
/// may send larger client metadata than any REST body holds.
pub const MCP_BODY_MAX: usize = 1 << 20;

/// The longest a whole request body may take to arrive, when the listener set none. The
/// connection's idle timeout only notices a body that stops; this also ends one that
/// trickles in a byte at a time.
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole-body deadline the listener configured (`--body-read-timeout`), as a request
/// extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub std::time::Duration);

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    /// Over the route's size limit: `413`.
    TooLarge,
    /// It did not arrive in time (stalled, or slower than [`BODY_DEADLINE`]): `408`.
    TooSlow,
    /// The client broke off or sent a malformed body: `400`.
    Broken,
}

impl BodyFailure {
    /// Classifies the error of reading a body, by the errors in its source chain.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Self {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if err.is::<http_body_util::LengthLimitError>() {
                return BodyFailure::TooLarge;
            }
            if err.is::<tower_http::timeout::TimeoutError>() {
                return BodyFailure::TooSlow;
            }
            cur = err.source();
        }
        BodyFailure::Broken
    }
}

/// Reads a whole body of at most `max` bytes within the request's [`BodyDeadline`] (or
/// [`BODY_DEADLINE`]).
pub async fn read_body(
    extensions: &Extensions,
    body: axum::body::Body,
    max: usize,
) -> Result<axum::body::Bytes, BodyFailure> {
    let deadline = extensions
        .get::<BodyDeadline>()
        .map_or(BODY_DEADLINE, |d| d.0);
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, max)).await {
        Err(_) => Err(BodyFailure::TooSlow),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(BodyFailure::of(&e)),
    }
}

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
/// it is the proxy's: use [`client_ip`] for the caller's.
pub fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The caller's address, the one both faces use for click capture, dedupe and the public
/// rate limit: the TCP peer, or, when the peer is a configured trusted proxy, the client
/// it forwarded for ([`Edge::client_ip`]). Without an [`Edge`] (a server composed without
/// one) no proxy is trusted.
pub fn client_ip(extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer_ip(extensions)?;
    Some(match extensions.get::<Edge>() {
        Some(edge) => edge.client_ip(peer, headers),
        None => peer.to_canonical(),
    })
}

/// Where clients reach this server (no trailing slash): the configured public URL, or
/// the default one when the server was composed without an [`Edge`].
pub fn public_base(extensions: &Extensions) -> String {
    extensions
        .get::<Edge>()
        .map_or(super::edge::DEFAULT_PUBLIC_BASE, Edge::public_base)
        .to_owned()
}

/// The RFC 9728 document's URL, named in every challenge.
pub fn resource_metadata_url(base: &str) -> String {
    format!("{base}/.well-known/oauth-protected-resource")
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

/// Turns a refusal's challenge into the `WWW-Authenticate` header with the absolute
/// RFC 9728 metadata URL.
pub async fn add_challenge(req: Request, next: Next) -> Response {
    let base = public_base(req.extensions());
    let mut r = next.run(req).await;
    if let Some(Challenge(extra)) = r.extensions_mut().remove::<Challenge>() {
        let v = format!(
            "Bearer resource_metadata=\"{}\"{extra}",
            resource_metadata_url(&base)
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        );
    }
    r
}
