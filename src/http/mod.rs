//! The HTTP server: REST at the documented paths, `/openapi.json`, health probes and the
//! RFC 9728 protected-resource document, around an MCP router that the caller mounts at
//! `/mcp` (built by `mcp`; this module never looks inside it). Every response carries an
//! `x-request-id`, and every log line of a request is inside a span with the same id.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Extensions, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub mod error;
pub mod openapi;
pub mod rest;
pub mod webhooks;

use crate::api::caller::{REST_BODY_MAX, add_challenge, public_base};
use crate::api::cors::{self, OriginList};
use crate::config::App;
use crate::core::access::Scope;

/// Options of the REST surface.
#[derive(Debug, Clone)]
pub struct RestOptions {
    /// Longest a REST request may run before it is answered 408.
    pub request_timeout: Duration,
    /// Origins whose pages may post to `/referrals/click` (`*`: any, as the route is
    /// public and takes no credentials).
    pub click_cors_origins: Vec<String>,
}

impl Default for RestOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            click_cors_origins: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct HttpState {
    app: App,
}

/// The whole HTTP application, with `mcp` (a router that serves `/mcp`) merged in under
/// the same request ids, logs and challenges.
pub fn router(app: App, opts: RestOptions, mcp: Router) -> Router {
    let click_cors = cors::layer(
        OriginList::parse(&opts.click_cors_origins, true),
        &[Method::POST],
        &["content-type"],
        &["retry-after", "x-request-id"],
    );
    let rest_router = rest::routes(click_cors)
        .merge(webhooks::routes())
        .layer(axum::extract::DefaultBodyLimit::max(REST_BODY_MAX))
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
        .with_state(HttpState { app })
        .merge(mcp)
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
                        .on_response(log_response)
                        // The response line already says 5xx; an expected 503 during an
                        // outage is not worth a second line at ERROR.
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// One line per answered request: at `info` for refusals and failures (4xx, 5xx), at
/// `debug` for successes, so a busy server's default log is its problems, not its
/// traffic (writing a line per call cost measurable throughput). `--log-requests` (or
/// `REFERRAL_LOG=…,referral_mcp=debug`) shows every request.
fn log_response(res: &axum::response::Response, latency: std::time::Duration, _: &tracing::Span) {
    let status = res.status().as_u16();
    let ms = latency.as_secs_f64() * 1000.0;
    if status >= 400 {
        tracing::info!(status, latency_ms = ms, "finished processing request");
    } else {
        tracing::debug!(status, latency_ms = ms, "finished processing request");
    }
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

async fn readyz(State(st): State<HttpState>) -> Response {
    match st.app.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// RFC 9728: where this resource is and how to present a token. The URLs come from the
/// configured public URL, not the request's `Host`, so a caller cannot make the server
/// advertise another origin.
async fn protected_resource(extensions: Extensions) -> Json<serde_json::Value> {
    let base = public_base(&extensions);
    Json(serde_json::json!({
        "resource": format!("{base}/mcp"),
        "resource_name": "referral-mcp",
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "resource_documentation": format!("{base}/openapi.json"),
    }))
}
