//! The JSON-RPC envelope of `POST /mcp`, checked before rmcp sees the body.
//!
//! rmcp answers a body it cannot deserialize with `415 text/plain` and reads `params` of
//! the wrong shape as an unknown method (`-32601`), which tells a client nothing it can
//! act on. This middleware answers those cases itself with a JSON-RPC error object in an
//! `application/json` body and HTTP `400`, as the official TypeScript SDK's streamable HTTP
//! server does (`{"jsonrpc":"2.0","error":{"code":…,"message":…},"id":null}`):
//!
//! | body | code |
//! |---|---|
//! | not JSON | `-32700` Parse error |
//! | an array (a batch: MCP 2025-06-18 removed batching) | `-32600` Invalid Request |
//! | not an object, `jsonrpc` not `"2.0"`, no `method` and no `result`/`error` | `-32600` |
//! | `id` not a string or an integer (object, array, bool, null, `1.5`) | `-32600` |
//! | `method` not a string | `-32600` |
//! | `params` present and not an object (array, string, number, bool) | `-32602` Invalid params |
//! | a standard method whose params do not fit (e.g. `tools/call` without `name`) | `-32602` |
//! | a response (`result`/`error`) that rmcp cannot read | `-32600` |
//!
//! The codes are JSON-RPC 2.0's (§5.1); where the TypeScript SDK folds every schema
//! failure into `-32700 "Parse error: Invalid JSON-RPC message"`, this server names the
//! part that is wrong. An integer written as a float (`1.0`) is an integer, as in the
//! TypeScript SDK and rmcp. `"params": null` passes as if absent: some clients send it,
//! and rmcp reads it so. The error carries the request's `id` when that id is valid.
//!
//! Order: the layer runs *inside* authentication, so a caller without a valid credential
//! gets `401` before its body is even read (an unauthenticated client learns nothing
//! about what the server accepts, and an anonymous flood costs no JSON parsing). It only
//! looks at `POST`s whose `Content-Type` is JSON and whose `Accept` rmcp would take;
//! anything else goes on untouched so rmcp's own `405`/`406`/`415` answers stay as they
//! are. Well-formed requests go on with the same bytes, except a plain `tools/call`,
//! which is read once, in its exact shape, and answered by the fast lane
//! (`FastLane::admit_plain`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
use serde_json::{Value, json};

use super::fast_lane::FastLane;
use crate::api::caller::{BodyFailure, MCP_BODY_MAX, read_body};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error the middleware answers itself.
#[derive(Debug, PartialEq)]
pub(crate) struct EnvelopeError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    /// The request's id, when it is a valid one.
    pub id: Value,
}

impl EnvelopeError {
    fn new(code: i64, message: impl Into<String>, id: Value) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            id,
        }
    }
}

impl IntoResponse for EnvelopeError {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "error": {"code": self.code, "message": self.message},
            "id": self.id,
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The middleware: see the module documentation.
pub(crate) async fn check_envelope(
    State(lane): State<Arc<FastLane>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST || !is_json(&req) || !accepts_rmcp(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_body(&parts.extensions, body, MCP_BODY_MAX).await {
        Ok(b) => b,
        Err(f) => {
            let (status, why) = match f {
                BodyFailure::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {MCP_BODY_MAX} bytes"),
                ),
                BodyFailure::TooSlow => (
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time".to_owned(),
                ),
                BodyFailure::Broken => (
                    StatusCode::BAD_REQUEST,
                    "the body could not be read".to_owned(),
                ),
            };
            return EnvelopeError {
                status,
                ..EnvelopeError::new(
                    INVALID_REQUEST,
                    format!("Invalid Request: {why}"),
                    Value::Null,
                )
            }
            .into_response();
        }
    };
    if let Some(call) = lane.admit_plain(&parts, &bytes) {
        return lane.call(parts, call).await;
    }
    let msg = match check(&bytes) {
        Ok(msg) => msg,
        Err(e) => return e.into_response(),
    };
    match lane.admit(&parts, msg) {
        Some(call) => lane.call(parts, call).await,
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// The envelope check itself, on the raw body; the message as rmcp reads it.
pub(crate) fn check(bytes: &Bytes) -> Result<ClientJsonRpcMessage, EnvelopeError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| EnvelopeError::new(PARSE_ERROR, "Parse error", Value::Null))?;
    let msg = match value {
        Value::Object(m) => m,
        Value::Array(_) => {
            return Err(EnvelopeError::new(
                INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send one message per request",
                Value::Null,
            ));
        }
        _ => {
            return Err(EnvelopeError::new(
                INVALID_REQUEST,
                "Invalid Request: a JSON-RPC message is an object",
                Value::Null,
            ));
        }
    };
    let id = match msg.get("id") {
        None => Value::Null,
        Some(id) if is_valid_id(id) => id.clone(),
        Some(_) => {
            return Err(EnvelopeError::new(
                INVALID_REQUEST,
                "Invalid Request: id must be a string or an integer",
                Value::Null,
            ));
        }
    };
    let invalid = |m: &str| EnvelopeError::new(INVALID_REQUEST, m, id.clone());
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("Invalid Request: jsonrpc must be \"2.0\""));
    }
    let is_request = match msg.get("method") {
        Some(Value::String(_)) => true,
        Some(_) => return Err(invalid("Invalid Request: method must be a string")),
        // A response to a server request (sampling, elicitation, roots).
        None if msg.contains_key("result") || msg.contains_key("error") => false,
        None => return Err(invalid("Invalid Request: method is missing")),
    };
    match msg.get("params") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(EnvelopeError::new(
                INVALID_PARAMS,
                "Invalid params: params must be an object",
                id,
            ));
        }
    }
    // The envelope is fine; what rmcp still cannot read is in the params (or, for a
    // response, in its result or error).
    match serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        Err(e) if is_request => Err(EnvelopeError::new(
            INVALID_PARAMS,
            format!("Invalid params: {e}"),
            id,
        )),
        Err(e) => Err(invalid(&format!("Invalid Request: {e}"))),
        // rmcp reads a standard method whose params do not fit as an unknown one.
        Ok(ClientJsonRpcMessage::Request(r)) => match &r.request {
            ClientRequest::CustomRequest(c) if STANDARD_METHODS.contains(&c.method.as_str()) => {
                Err(EnvelopeError::new(
                    INVALID_PARAMS,
                    format!("Invalid params for {}", c.method),
                    id,
                ))
            }
            _ => Ok(ClientJsonRpcMessage::Request(r)),
        },
        Ok(msg) => Ok(msg),
    }
}

/// The MCP client requests rmcp knows: one of these read as a custom request means its
/// params did not fit (rmcp would answer `-32601` Method not found).
const STANDARD_METHODS: &[&str] = &[
    "ping",
    "initialize",
    "completion/complete",
    "logging/setLevel",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// JSON-RPC ids are strings or numbers; MCP forbids `null`, and rmcp (like the TypeScript
/// SDK) takes only integers that fit an `i64`, also when written as `1.0`.
fn is_valid_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => {
            n.is_i64()
                || n.as_f64().is_some_and(|f| {
                    f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64
                })
        }
        _ => false,
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// rmcp answers `406` unless the client accepts both JSON and SSE; that answer stays
/// first, as in the TypeScript SDK.
fn accepts_rmcp(req: &Request) -> bool {
    let accept: String = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    accept.contains("application/json") && accept.contains("text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Option<(i64, Value)> {
        check(&Bytes::from(body.to_owned()))
            .err()
            .map(|e| (e.code, e.id))
    }

    #[test]
    fn well_formed_messages_pass() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":2.0,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":8,"method":"vendor/extension","params":{"a":1}}"#,
        ] {
            assert_eq!(code(ok), None, "{ok}");
        }
    }

    #[test]
    fn each_malformed_envelope_gets_its_json_rpc_code() {
        let cases = [
            ("{not json", -32700),
            ("", -32700),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
            ("42", -32600),
            (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1,"method":3}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}"#,
                -32602,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#,
                -32602,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
                -32602,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
                -32602,
            ),
            (r#"{"jsonrpc":"2.0","id":1,"error":5}"#, -32600),
        ];
        for (body, want) in cases {
            assert_eq!(code(body).map(|c| c.0), Some(want), "{body}");
        }
    }

    #[test]
    fn the_error_names_the_request_id_only_when_it_is_valid() {
        let (_, id) = code(r#"{"jsonrpc":"2.0","id":9,"method":"ping","params":[1]}"#).unwrap();
        assert_eq!(id, json!(9));
        let (_, id) = code(r#"{"jsonrpc":"2.0","id":false,"method":"ping"}"#).unwrap();
        assert_eq!(id, Value::Null);
    }
}
