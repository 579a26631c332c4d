//! MCP over streamable HTTP, as a router to mount at `/mcp`. An axum middleware turns the
//! request's credentials into the [`Caller`] the tools see; rmcp itself checks Host and
//! Origin (DNS rebinding).
//!
//! Stateless mode: every POST is self-contained, so any number of `serve` instances
//! behind a load balancer give the same answers (all state is in the database).
//!
//! Browsers may call `/mcp` from the allowed origins: CORS is outermost, so a preflight
//! is answered before authentication and every answer (a `401` too) exposes the headers a
//! web client must read. All of it is attached with `route_layer`, so a path that is not
//! `/mcp` falls through to the server's `404` instead of being asked for credentials.
//!
//! Only the credential itself is refused at the HTTP level (`401`, so OAuth-aware clients
//! can ask for one). A valid credential calling a tool its scopes do not allow gets a tool
//! result with `isError: true` and the code `forbidden`, inside a `200`: an HTTP `403` on
//! a `tools/call` ends the whole session of some clients (the official Python SDK 1.x
//! raises on the status), while a tool error is something an agent can read and act on.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

use super::fast_lane::FastLane;
use super::{Caller, ReferralServer, ToolError, ToolFilter};
use crate::api::caller::{MCP_BODY_MAX, NO_CREDENTIALS, Refusal, client_ip, credentials};
use crate::api::cors::{self, OriginList};
use crate::config::App;
use crate::core::error::Error;

/// How `/mcp` is served.
#[derive(Debug, Clone)]
pub struct McpHttpOptions {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    /// Unauthenticated clients may connect and see only the public tool.
    pub allow_anonymous: bool,
    pub filter: ToolFilter,
}

impl Default for McpHttpOptions {
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
        }
    }
}

#[derive(Clone)]
struct AuthState {
    app: App,
    allow_anonymous: bool,
}

/// The router serving `/mcp`.
pub fn router(app: App, opts: McpHttpOptions, shutdown: &CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_allowed_hosts(opts.allowed_hosts.clone())
        .with_allowed_origins(opts.allowed_origins.clone())
        .with_cancellation_token(shutdown.child_token());
    let server = ReferralServer::new(app.clone(), opts.filter, None);
    let lane = Arc::new(FastLane::new(server.clone(), opts.allowed_hosts.clone()));
    // Shared, not cloned per request: axum clones a route's service for every request,
    // and rmcp's clones its whole configuration (the host and origin lists); most calls
    // never reach it (the fast lane answers them).
    let mcp = Arc::new(StreamableHttpService::new(
        move || Ok(server.new_session()),
        Arc::new(LocalSessionManager::default()),
        config,
    ));
    let mcp = tower::service_fn(move |req: Request| {
        let mcp = mcp.clone();
        async move { Ok::<_, std::convert::Infallible>(mcp.handle(req).await) }
    });
    let state = AuthState {
        app,
        allow_anonymous: opts.allow_anonymous,
    };
    Router::new()
        .nest_service("/mcp", mcp)
        .route_layer(middleware::from_fn_with_state(
            lane,
            super::jsonrpc::check_envelope,
        ))
        .route_layer(middleware::from_fn_with_state(state, authenticate))
        .route_layer(RequestBodyLimitLayer::new(MCP_BODY_MAX))
        .route_layer(cors::layer(
            OriginList::parse(&opts.allowed_origins, false),
            &[Method::GET, Method::POST, Method::DELETE],
            CORS_REQUEST_HEADERS,
            CORS_EXPOSED_HEADERS,
        ))
}

/// Headers a web MCP client sends: credentials, the protocol's own, and the JSON body's.
const CORS_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "content-type",
    "accept",
    "mcp-protocol-version",
    "mcp-session-id",
    "last-event-id",
];

/// Headers a web MCP client must read: the `401` challenge that starts OAuth discovery,
/// and the protocol's session and version.
const CORS_EXPOSED_HEADERS: &[&str] = &[
    "www-authenticate",
    "mcp-session-id",
    "mcp-protocol-version",
    "x-request-id",
];

/// Authenticates every MCP request. No credentials: 401 unless anonymous access is on; a
/// credential that does not verify: 401 `invalid_token`.
async fn authenticate(State(st): State<AuthState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(req.extensions(), req.headers());
    let caller = match credentials(req.headers()) {
        Some(c) => match st.app.auth.authenticate(&c).await {
            Ok(p) => Caller::new(Some(p), ip),
            Err(e @ Error::Unauthenticated(_)) => {
                return Refusal::InvalidCredential(e.public_message()).response();
            }
            // The credential could not be checked (the database is down): not a 401,
            // which would make a client drop a valid token. The request goes on and
            // every call in it is answered "unavailable, retry" inside the protocol,
            // so the client's session survives the outage.
            Err(e) => Caller {
                not_checked: Some(ToolError::from(e)),
                ..Caller::new(None, ip)
            },
        },
        None if st.allow_anonymous => Caller::new(None, ip),
        None => return Refusal::Missing(NO_CREDENTIALS.into()).response(),
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}
