//! The TCP edge of `serve`: accepts connections and hands them to hyper with the limits
//! that `axum::serve` has no knobs for. A client that opens a socket and sends half a
//! request (or nothing), sends huge headers, or opens thousands of sockets must not hold
//! the server's file descriptors or memory forever:
//!
//! - the request line and headers must arrive within `header_read_timeout` (hyper starts
//!   that clock whenever it waits for a request, so it also closes a kept-alive connection
//!   that stays idle that long);
//! - a request body that sends nothing for `body_read_timeout` is cut off, and a whole
//!   body must arrive within that time too (`BodyDeadline`, so a body that trickles in a
//!   byte at a time is answered `408` instead of holding the connection);
//! - headers larger than `max_header_bytes` are answered `431` and the connection closed;
//! - at most `max_connections` connections are served at once; further ones wait in the
//!   kernel's accept queue (and are refused by the kernel when that is full) until one
//!   closes, so the process never runs out of descriptors.
//!
//! Connections speak HTTP/1.1 (see `builder`). Graceful shutdown works as with `axum::serve`: once `shutdown` resolves no new
//! connection is accepted, idle ones are closed and requests in flight are answered.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::api::caller::BodyDeadline;

use axum::Router;
use axum::extract::{ConnectInfo, Extension};
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Per-connection limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Longest wait for a request's line and headers (also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Longest pause while a request body is being sent.
    pub body_read_timeout: Duration,
    /// Largest request head (line plus headers); larger ones get `431`.
    pub max_header_bytes: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains. Handlers see the
/// peer address as `ConnectInfo<SocketAddr>`, as with
/// `into_make_service_with_connect_info::<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let builder = builder(&limits);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Take a slot before accepting: over the cap, connections stay in the kernel's
        // queue instead of costing a descriptor and a task here.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = ServiceBuilder::new()
            .layer(Extension(ConnectInfo(peer)))
            .layer(Extension(BodyDeadline(limits.body_read_timeout)))
            .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
            .service(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(conn).await {
                // Timeouts, resets and malformed requests end up here; none is the
                // server's fault, so they are not worth more than a debug line.
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1.1 only. hyper-util's HTTP/1-or-2 detection waits for a client's first bytes
/// with no timeout, so a socket that sends nothing would be held forever; HTTP/2 is
/// what a TLS-terminating proxy in front speaks to browsers, not what it speaks to us.
fn builder(limits: &ConnLimits) -> Builder {
    let mut b = Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    b
}

/// Errors of one connection (reset before accept) are skipped; others (out of
/// descriptors) get a pause so the loop does not spin, as `axum::serve` does.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; pausing");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
