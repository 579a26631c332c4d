//! The fast lane: a plain stateless `tools/call` handed straight to the server's handler.
//!
//! Why: for every stateless POST, rmcp's `StreamableHttpService` builds a server for the
//! request (our factory clones one), a one-shot transport, a service loop task and a
//! waiter task with their channels and cancellation tokens, then parses the body again.
//! Measured on the hot path (`get_referral` over MCP vs the same call over REST, same
//! process): that set-up cost more than the database work, and MCP answered ~0.5× what
//! REST did. Here the already-parsed request goes to the very same
//! `Service::handle_request` rmcp would call (so the handler's protocol checks, our
//! filter, authorization and tools are all the same code) and its result is written as
//! the same JSON-RPC message rmcp would write.
//!
//! Only requests whose answer cannot differ take the lane; anything else goes to rmcp
//! unchanged, which keeps its own answers (and errors) for the unusual cases:
//! - a `tools/call` without `_meta` (no progress token, no per-request protocol version),
//!   for a tool that sends no notification while it runs (all but
//!   `recover_referral_grants`, whose progress and log notifications make rmcp answer
//!   with an event stream);
//! - no `Origin` header (browsers go through rmcp's Origin check), a `Host` that the
//!   allow-list names as is, no `Mcp-Session-Id`, and no `MCP-Protocol-Version` header
//!   or one of the known versions before the 2026 standard headers (whose `Mcp-Method` /
//!   `Mcp-Name` checks rmcp does);
//! - an `Accept` naming both `application/json` and `text/event-stream` as media types
//!   (rmcp's own test; `check_envelope` looked only for the substrings).

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, GetExtensions, JsonRpcRequest, ServerJsonRpcMessage,
};
use rmcp::service::{RequestContext, RunningService, Service, serve_directly};
use rmcp::{Peer, RoleServer};

use super::server::ReferralServer;

/// Protocol versions whose requests carry no standard headers that rmcp checks against
/// the body (those begin with 2026-07-28).
const PLAIN_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Tools that send notifications while they run: rmcp answers those with a stream.
const NOTIFYING_TOOLS: &[&str] = &["recover_referral_grants"];

pub(crate) struct FastLane {
    server: ReferralServer,
    /// A peer for handler contexts. Its service loop has ended, so a notification sent
    /// through it fails at once and is dropped (no lane tool sends one).
    peer: Peer<RoleServer>,
    allowed_hosts: Vec<String>,
}

impl FastLane {
    /// Must run inside the tokio runtime (it starts and ends one service loop).
    pub(crate) fn new(server: ReferralServer, allowed_hosts: Vec<String>) -> Self {
        let running: RunningService<RoleServer, ReferralServer> =
            serve_directly(server.clone(), ClosedTransport, None);
        let peer = running.peer().clone();
        drop(running);
        Self {
            server,
            peer,
            allowed_hosts,
        }
    }

    /// The request, if it may take the lane (otherwise rmcp gets the body).
    pub(crate) fn admit(
        &self,
        parts: &Parts,
        msg: ClientJsonRpcMessage,
    ) -> Option<JsonRpcRequest<ClientRequest>> {
        let ClientJsonRpcMessage::Request(r) = msg else {
            return None;
        };
        let ClientRequest::CallToolRequest(c) = &r.request else {
            return None;
        };
        let plain = c.params.meta.is_none()
            && !NOTIFYING_TOOLS.contains(&c.params.name.as_ref())
            && self.plain_headers(&parts.headers);
        plain.then_some(r)
    }

    fn plain_headers(&self, h: &HeaderMap) -> bool {
        let version_ok = match h.get("mcp-protocol-version") {
            None => true,
            Some(v) => v.to_str().is_ok_and(|v| PLAIN_VERSIONS.contains(&v)),
        };
        version_ok
            && !h.contains_key(header::ORIGIN)
            && !h.contains_key("mcp-session-id")
            && accepts_json_and_sse(h)
            && host_allowed(&self.allowed_hosts, h)
    }

    /// Runs the call as rmcp's service loop would, and answers with its JSON-RPC message.
    pub(crate) async fn call(&self, parts: Parts, req: JsonRpcRequest<ClientRequest>) -> Response {
        let JsonRpcRequest {
            id, mut request, ..
        } = req;
        let mut ctx = RequestContext::new(id.clone(), self.peer.clone());
        std::mem::swap(&mut ctx.extensions, request.extensions_mut());
        ctx.extensions.insert(parts);
        let msg = match Service::handle_request(&self.server, request, ctx).await {
            Ok(result) => ServerJsonRpcMessage::response(result, id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
        };
        json_response(&msg)
    }
}

fn json_response(msg: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(msg) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "serialize a tool result");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The `Host` exactly as an allow-list entry writes it, or its host part when the entry
/// has no port (rmcp's rule for entries without a port). Anything subtler (case,
/// brackets, a missing header) is left to rmcp, which may still allow it.
fn host_allowed(allowed: &[String], h: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
        _ if host.contains(':') => return false,
        _ => host,
    };
    allowed.iter().any(|a| a == host || a == name)
}

/// rmcp's test of `Accept`: some listed media type is exactly each of the two.
fn accepts_json_and_sse(h: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for v in h
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for item in v.split(',') {
            let essence = item.split(';').next().unwrap_or("").trim();
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// A transport with nothing to receive: the service loop it is given ends at once.
struct ClosedTransport;

impl rmcp::transport::Transport<RoleServer> for ClosedTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        _item: rmcp::service::TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        std::future::ready(Ok(()))
    }

    async fn receive(&mut self) -> Option<rmcp::service::RxJsonRpcMessage<RoleServer>> {
        None
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn accept_needs_both_media_types_exactly() {
        let ok = headers(&[("accept", "application/json, text/event-stream")]);
        assert!(accepts_json_and_sse(&ok));
        let split = headers(&[
            ("accept", "application/json"),
            ("accept", "text/event-stream;q=0.5"),
        ]);
        assert!(accepts_json_and_sse(&split));
        let near = headers(&[("accept", "application/jsonx, text/event-streams")]);
        assert!(!accepts_json_and_sse(&near));
        assert!(!accepts_json_and_sse(&headers(&[(
            "accept",
            "application/json"
        )])));
    }

    #[test]
    fn only_a_host_the_allow_list_names_as_is_takes_the_lane() {
        let allowed = vec!["localhost".to_owned(), "api.example:8443".to_owned()];
        let lane = |host: &str| host_allowed(&allowed, &headers(&[("host", host)]));
        assert!(lane("localhost"));
        assert!(lane("localhost:8080"));
        assert!(lane("api.example:8443"));
        assert!(!lane("api.example:8444"));
        assert!(!lane("api.example"));
        assert!(!lane("evil.example"));
        assert!(!lane("localhost.evil.example"));
        assert!(!lane("[::1]:8080"));
        assert!(!lane("localhost:99999"));
        assert!(!host_allowed(&allowed, &HeaderMap::new()));
    }
}
