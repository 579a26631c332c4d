//! The fast lane: a plain stateless `tools/call` handed straight to the server's handler.
//!
//! Why: for every stateless POST, rmcp's `StreamableHttpService` builds a server for the
//! request (our factory clones one), a one-shot transport, a service loop task and a
//! waiter task with their channels and cancellation tokens, then parses the body again.
//! Measured on the hot path (`get_referral` over MCP vs the same call over REST, same
//! process): that set-up cost more than the database work, and MCP answered ~0.5× what
//! REST did. Here the already-parsed request is answered in this task: a tool whose
//! answer is one JSON document by the server's [`ReferralServer::call_direct`] (the same
//! checks and the same tool code, the answer written without a `Value`; `direct.rs`
//! says why), any other by the very same `Service::handle_request` rmcp would call (so
//! the handler's protocol checks, our filter, authorization and tools are all the same
//! code). Either is written as the JSON-RPC message rmcp would write.
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
    CallToolRequestParams, CallToolResponse, ClientJsonRpcMessage, ClientRequest, GetExtensions,
    JsonObject, JsonRpcRequest, Request, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{RequestContext, RunningService, Service, serve_directly};
use rmcp::{Peer, RoleServer};
use serde::Deserialize;

use super::server::{Caller, ReferralServer};

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
        let plain = c.params.meta.is_none() && self.lane_takes(&c.params.name, parts);
        plain.then_some(r)
    }

    /// The body read as a plain `tools/call` and nothing else, when it is one that may
    /// take the lane; `None` sends the body down the whole way (envelope check, rmcp's
    /// reading), which also gives every malformed body its precise error.
    ///
    /// Why a reading of its own: rmcp reads a message by buffering it and trying each
    /// kind of message in turn, and the envelope check read it once more as a JSON
    /// value first; for the commonest request that was a tenth of the server's work
    /// per call. This reading takes only the exact shape `{"jsonrpc": "2.0", "id",
    /// "method": "tools/call", "params": {"name", "arguments"?}}` (no other field, none
    /// twice; the id read by rmcp's own rules), which the envelope check and rmcp both
    /// accept as this very request.
    pub(crate) fn admit_plain(
        &self,
        parts: &Parts,
        body: &[u8],
    ) -> Option<JsonRpcRequest<ClientRequest>> {
        let (id, params) = read_plain_call(body)?;
        if !self.lane_takes(&params.name, parts) {
            return None;
        }
        let mut request = CallToolRequestParams::new(params.name);
        if let Some(arguments) = params.arguments {
            request = request.with_arguments(arguments);
        }
        Some(JsonRpcRequest::new(
            id,
            ClientRequest::CallToolRequest(Request::new(request)),
        ))
    }

    /// Whether a call of tool `name` with these headers may take the lane: a tool that
    /// sends no notification, and plain headers.
    fn lane_takes(&self, name: &str, parts: &Parts) -> bool {
        !NOTIFYING_TOOLS.contains(&name) && self.plain_headers(&parts.headers)
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
        if let ClientRequest::CallToolRequest(call) = &mut request
            && let Some(caller) = parts.extensions.get::<Caller>()
        {
            let p = &mut call.params;
            match self
                .server
                .call_direct(&p.name, &mut p.arguments, caller)
                .await
            {
                Some(Ok(json)) => return structured_response(&id, &json),
                Some(Err(e)) => {
                    // As rmcp answers a peer before 2026-07-28 (the only ones in the lane).
                    let mut result = ServerResult::from(CallToolResponse::from(e.result()));
                    result.strip_result_type_for_legacy_peer();
                    return json_response(&ServerJsonRpcMessage::response(result, id));
                }
                None => {}
            }
        }
        let mut ctx = RequestContext::new(id.clone(), self.peer.clone());
        std::mem::swap(&mut ctx.extensions, request.extensions_mut());
        ctx.extensions.insert(parts);
        // Boxed: rmcp's handler future is large (it holds any tool's), and the lane's own
        // future would otherwise be that size on every call, also those answered above.
        let msg = match Box::pin(Service::handle_request(&self.server, request, ctx)).await {
            Ok(result) => ServerJsonRpcMessage::response(result, id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
        };
        json_response(&msg)
    }
}

/// The JSON-RPC answer to a tool call whose structured content is `json`, written as
/// rmcp writes a `CallToolResult::structured` (see `direct.rs`).
fn structured_response(id: &RequestId, json: &str) -> Response {
    let mut body = Vec::with_capacity(2 * json.len() + 128);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    let written = serde_json::to_writer(&mut body, id).and_then(|()| {
        body.extend_from_slice(br#","result":{"content":[{"type":"text","text":"#);
        serde_json::to_writer(&mut body, json)
    });
    if let Err(e) = written {
        tracing::error!(error = %e, "serialize a tool result");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    body.extend_from_slice(br#"}],"structuredContent":"#);
    body.extend_from_slice(json.as_bytes());
    body.extend_from_slice(br#","isError":false}}"#);
    json_body(body)
}

fn json_body(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

fn json_response(msg: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(msg) {
        Ok(body) => json_body(body),
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

/// The id and params of a body that is exactly a plain `tools/call` (see
/// [`FastLane::admit_plain`]).
fn read_plain_call(body: &[u8]) -> Option<(RequestId, PlainParams)> {
    let MapOnly(call) = serde_json::from_slice::<MapOnly<PlainCall<'_>>>(body).ok()?;
    let MapOnly(params) = call.params;
    (call.jsonrpc == "2.0" && call.method == "tools/call").then_some((call.id, params))
}

/// The only shape [`FastLane::admit_plain`] takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainCall<'a> {
    jsonrpc: &'a str,
    id: RequestId,
    method: &'a str,
    params: MapOnly<PlainParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

/// A `T` read only from a JSON object: a derived struct would also read an array of its
/// fields in order, which JSON-RPC does not allow here.
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(std::marker::PhantomData))
            .map(MapOnly)
    }
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
    fn only_the_exact_shape_of_a_plain_tool_call_is_read_in_one_go() {
        let read = |body: &str| read_plain_call(body.as_bytes());
        let (id, params) = read(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_referral","arguments":{"id":1}}}"#,
        )
        .unwrap();
        assert_eq!(id, RequestId::Number(7));
        assert_eq!(params.name, "get_referral");
        assert_eq!(params.arguments.unwrap()["id"], 1);
        let (id, params) = read(
            r#"{"params":{"name":"list_referrals"},"method":"tools/call","id":"a","jsonrpc":"2.0"}"#,
        )
        .unwrap();
        assert_eq!(
            (id, params.arguments),
            (RequestId::String("a".into()), None)
        );
        // Anything else goes the whole way, to the envelope check and rmcp.
        for body in [
            r#"["2.0",1,"tools/call",{"name":"get_referral"}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["get_referral",{"id":1}]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_referral","_meta":{"progressToken":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_referral","requestState":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_referral"},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_referral"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_referral","arguments":[1]}}"#,
        ] {
            assert!(read(body).is_none(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_structured_answer_is_the_json_rpc_message_rmcp_would_write() {
        // Keys sorted and no escape that serde_json would write differently: rmcp's text
        // copy is its `Value` written again, which must come out as the same bytes.
        let json = r#"{"n":[1,2],"note":"say \"hi\"\né </script>"}"#;
        for id in [RequestId::Number(-7), RequestId::String("a\"b\\c".into())] {
            let res = structured_response(&id, json);
            assert_eq!(res.status(), StatusCode::OK);
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            let ours: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let structured: serde_json::Value = serde_json::from_str(json).unwrap();
            let result = rmcp::model::CallToolResult::structured(structured);
            let mut result = ServerResult::from(CallToolResponse::from(result));
            result.strip_result_type_for_legacy_peer();
            let rmcp = serde_json::to_value(ServerJsonRpcMessage::response(result, id)).unwrap();
            assert_eq!(ours, rmcp);
        }
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

    /// Every MCP call holds the lane's future, and axum's middleware moves it (its whole
    /// size, into a box) on every call. The tools' futures are boxed one by one and
    /// rmcp's fallback is boxed, so the lane's future holds none of them: unboxed it was
    /// 24 KB (the largest tool's), and the envelope middleware's around it 49.6 KB,
    /// copied per call (measured: ~2.5 µs of `memmove` per call; without it, 5 % more
    /// calls/s).
    #[tokio::test]
    async fn the_lane_future_does_not_hold_the_tools_futures() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("lane.db").display());
        let app = crate::config::App::start(&crate::config::Config::with_database(&url))
            .await
            .unwrap();
        let server = ReferralServer::new(app, super::super::ToolFilter::default(), None);
        let lane = FastLane::new(server, vec![]);
        let (parts, ()) = axum::http::Request::new(()).into_parts();
        let call = CallToolRequestParams::new("get_referral");
        let req = JsonRpcRequest::new(
            RequestId::Number(1),
            ClientRequest::CallToolRequest(Request::new(call)),
        );
        let future = lane.call(parts, req);
        let size = std::mem::size_of_val(&future);
        assert!(size < 8 * 1024, "the fast lane's future is {size} bytes");
    }
}
