//! The `serve` application: the HTTP server (`http`) with the MCP router (`mcp`) mounted
//! at `/mcp`. Composed here, at the top, so that neither face imports the other.

use std::time::Duration;

use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;

use crate::api::edge::Edge;
use crate::config::App;
use crate::http::RestOptions;
use crate::mcp::ToolFilter;
use crate::mcp::streamable::McpHttpOptions;

/// Options of `serve` that shape the HTTP surface.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allow_anonymous: bool,
    pub filter: ToolFilter,
    /// Longest a REST request may run before it is answered 408.
    pub request_timeout: Duration,
    /// The public URL and the trusted proxies, seen by both faces as a request extension.
    pub edge: Edge,
    /// Origins whose pages may post clicks (CORS on `POST /referrals/click`).
    pub click_cors_origins: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        let mcp = McpHttpOptions::default();
        Self {
            allowed_hosts: mcp.allowed_hosts,
            allowed_origins: mcp.allowed_origins,
            allow_anonymous: mcp.allow_anonymous,
            filter: mcp.filter,
            request_timeout: RestOptions::default().request_timeout,
            edge: Edge::default(),
            click_cors_origins: RestOptions::default().click_cors_origins,
        }
    }
}

/// The whole HTTP application: REST, probes, OpenAPI and MCP at `/mcp`. The [`Edge`] is
/// the outermost layer, so every handler and middleware of both faces (the challenge, the
/// caller's address) reads the same one.
pub fn router(app: App, opts: HttpOptions, shutdown: CancellationToken) -> Router {
    let mcp = crate::mcp::streamable::router(
        app.clone(),
        McpHttpOptions {
            allowed_hosts: opts.allowed_hosts,
            allowed_origins: opts.allowed_origins,
            allow_anonymous: opts.allow_anonymous,
            filter: opts.filter,
        },
        &shutdown,
    );
    crate::http::router(
        app,
        RestOptions {
            request_timeout: opts.request_timeout,
            click_cors_origins: opts.click_cors_origins,
        },
        mcp,
    )
    .layer(Extension(opts.edge))
}
