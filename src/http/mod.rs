//! The HTTP server: MCP (streamable HTTP) at `/mcp`, REST at the documented paths,
//! `/openapi.json`, health probes, and the RFC 9728 protected-resource document.
//! Authentication for MCP is an axum middleware that turns headers into a [`Caller`] for
//! the tools; rmcp itself checks Host and Origin (DNS rebinding). REST handlers take the
//! caller through an extractor. Every response carries an `x-request-id`, and every log
//! line of a request is inside a span with the same id.
//!
//! MCP runs in stateless mode: every POST is self-contained, so any number of `serve`
//! instances behind a load balancer give the same answers (all state is in the database).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub mod endpoints;
pub mod openapi;
pub mod problem;
pub mod rest;

use crate::auth::{Credentials, Operation, Scope, authorize};
use crate::config::App;
use crate::core::error::Error;
use crate::mcp::{Caller, ReferralServer, ToolFilter};

/// Options of `serve` that shape the HTTP surface.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allow_anonymous: bool,
    pub filter: ToolFilter,
    /// Longest a REST request may run before it is answered 408.
    pub request_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "https://localhost:*".into(),
            ],
            allow_anonymous: false,
            filter: ToolFilter::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub(crate) struct HttpState {
    app: App,
    allow_anonymous: bool,
}

/// Largest JSON-RPC body we read to check scopes before MCP handling.
const MAX_BODY: usize = 1 << 20;

/// The whole HTTP application.
pub fn router(app: App, opts: HttpOptions, shutdown: CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_allowed_hosts(opts.allowed_hosts.clone())
        .with_allowed_origins(opts.allowed_origins.clone())
        .with_cancellation_token(shutdown.child_token());
    let server = ReferralServer::new(app.clone(), opts.filter.clone(), None);
    let mcp = StreamableHttpService::new(
        move || Ok(server.new_session()),
        LocalSessionManager::default().into(),
        config,
    );
    let state = HttpState {
        app: app.clone(),
        allow_anonymous: opts.allow_anonymous,
    };
    let mcp_router = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let rest_router = rest::routes()
        .layer(axum::extract::DefaultBodyLimit::max(rest::MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            opts.request_timeout,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(openapi_json))
        .route("/readyz", get(readyz))
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .merge(rest_router)
        .with_state(state)
        .merge(mcp_router)
        .layer(middleware::from_fn(add_challenge))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(NewRequestId))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                        })
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// Request ids are random (`req_…`); a caller's own `x-request-id` is kept.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&crate::core::types::random_id("req_"))
            .ok()
            .map(RequestId::new)
    }
}

async fn openapi_json() -> Json<serde_json::Value> {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(openapi::document).clone())
}

/// Adds `WWW-Authenticate` to REST 401/403 answers; the metadata URL needs the Host the
/// caller used, which only the request knows.
async fn add_challenge(req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let mut r = next.run(req).await;
    if let Some(problem::Challenge(extra)) = r.extensions_mut().remove::<problem::Challenge>() {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge(&headers, &extra));
    }
    r
}

async fn readyz(State(st): State<HttpState>) -> Response {
    match st.app.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

/// RFC 9728: where this resource is and how to present a token.
async fn protected_resource(headers: HeaderMap) -> Json<serde_json::Value> {
    let base = base_url(&headers);
    Json(serde_json::json!({
        "resource": format!("{base}/mcp"),
        "resource_name": "referral-mcp",
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "resource_documentation": format!("{base}/openapi.json"),
    }))
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

fn challenge(headers: &HeaderMap, extra: &str) -> HeaderValue {
    let v = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"{extra}",
        base_url(headers)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    problem::problem(status, code, message).into_response_with(None)
}

fn unauthorized(headers: &HeaderMap, message: &str, invalid: bool) -> Response {
    let mut r = problem(StatusCode::UNAUTHORIZED, "unauthenticated", message);
    let extra = if invalid {
        ", error=\"invalid_token\""
    } else {
        ""
    };
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge(headers, extra));
    r
}

/// The tool a JSON-RPC `tools/call` body names, if it is one.
fn called_tool(body: &[u8]) -> Option<Operation> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    Operation::from_name(v.get("params")?.get("name")?.as_str()?)
}

/// Authenticates every MCP request. No credentials: 401 unless anonymous access is on.
/// A `tools/call` the credential's scopes do not allow: 403 `insufficient_scope`.
async fn authenticate(State(st): State<HttpState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = req.headers().clone();
    let principal = match credentials(&headers) {
        Some(c) => match st.app.auth.authenticate(&c).await {
            Ok(p) => Some(p),
            Err(e) => return unauthorized(&headers, &e.public_message(), true),
        },
        None if st.allow_anonymous => None,
        None => {
            return unauthorized(
                &headers,
                "send an API key in x-api-key or a token in Authorization: Bearer",
                false,
            );
        }
    };
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body over 1 MiB",
            );
        }
    };
    if let Some(op) = called_tool(&bytes) {
        match authorize(principal.as_ref(), op) {
            Err(Error::Forbidden(m)) => {
                let scope = match op.access() {
                    crate::auth::Access::Scoped(s) => s.as_str(),
                    _ => "",
                };
                let mut r = problem(StatusCode::FORBIDDEN, "insufficient_scope", &m);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    challenge(
                        &headers,
                        &format!(", error=\"insufficient_scope\", scope=\"{scope}\""),
                    ),
                );
                return r;
            }
            Err(Error::Unauthenticated(m)) => return unauthorized(&headers, &m, false),
            _ => {}
        }
    }
    parts.extensions.insert(Caller { principal, ip });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
