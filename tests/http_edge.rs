//! The TCP edge of `serve` against raw sockets: slow or half-sent requests are closed,
//! huge headers refused, and connections over the cap wait without breaking the server.
//! Timeouts are short here (1 s) and every wait has a generous upper bound; no test
//! asserts how fast anything is.

mod common;

use std::time::Duration;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::cli::listen::ConnLimits;
use referral_mcp::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any timeout configured here: only a server that never closes fails.
const BOUND: Duration = Duration::from_secs(30);

async fn edge(db: &TestDb, limits: ConnLimits) -> Served {
    serve_limited(
        db,
        HttpOptions::default(),
        Config::with_database(&db.url),
        limits,
    )
    .await
}

fn short() -> ConnLimits {
    ConnLimits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        max_header_bytes: 16 * 1024,
        max_connections: 64,
    }
}

async fn connect(s: &Served) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Everything the server sends until it closes the connection (a reset counts as a
/// close). Panics if it is still open after [`BOUND`].
async fn read_until_closed(sock: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

fn is_success(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 2")
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_read_timeout() {
    let db = sqlite_db().await;
    let s = edge(&db, short()).await;
    let mut sock = connect(&s).await;
    // The request line and one header, never the blank line that ends the head.
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut sock).await;
    assert!(!is_success(&answer), "{answer}");

    // A socket that never sends a byte is closed as well.
    let mut silent = connect(&s).await;
    read_until_closed(&mut silent).await;
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let db = sqlite_db().await;
    let s = edge(&db, short()).await;
    let mut sock = connect(&s).await;
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut sock).await;
    assert!(is_success(&answer), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}

#[tokio::test]
async fn a_200_kb_header_gets_431_and_never_a_success() {
    let db = sqlite_db().await;
    let s = edge(&db, short()).await;
    let mut sock = connect(&s).await;
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 200 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    // The server may close while the rest is still being written: that is a refusal too.
    let _ = sock.write_all(&req).await;
    let answer = read_until_closed(&mut sock).await;
    assert!(!is_success(&answer), "{answer}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // Headers under the limit are served as before.
    let r = reqwest::Client::new()
        .get(format!("{}/healthz", s.base))
        .header("x-fine", "a".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_off() {
    let db = sqlite_db().await;
    let s = edge(&db, short()).await;
    let mut sock = connect(&s).await;
    sock.write_all(
        b"POST /referrals/click HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut sock).await;
    assert!(!is_success(&answer), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_and_are_served_once_a_slot_frees() {
    let db = sqlite_db().await;
    let s = edge(
        &db,
        ConnLimits {
            // Long enough that the held sockets are not closed by the server meanwhile.
            header_read_timeout: Duration::from_secs(120),
            max_connections: 2,
            ..short()
        },
    )
    .await;
    let held = [connect(&s).await, connect(&s).await];
    // Both slots are taken once the server has accepted them; a request then waits.
    let mut third = connect(&s).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut peek = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.peek(&mut peek)).await;
    assert!(
        early.is_err(),
        "a connection over the cap was served while both slots were held"
    );

    drop(held);
    let answer = read_until_closed(&mut third).await;
    assert!(is_success(&answer), "{answer}");
    // ...and the server goes on answering new clients.
    let r = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Sends `head` and then a body one byte every 300 ms (never idle for the 1 s timeout),
/// and returns the server's first answer line, read within [`BOUND`].
async fn trickle(s: &Served, head: String, len: usize) -> String {
    let mut sock = connect(s).await;
    sock.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        for _ in 0..len {
            tokio::select! {
                r = sock.read(&mut buf) => {
                    return match r {
                        Ok(n) if n > 0 => String::from_utf8_lossy(&buf[..n]).into_owned(),
                        _ => String::new(),
                    };
                }
                () = tokio::time::sleep(Duration::from_millis(300)) => {
                    if sock.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            }
        }
        String::new()
    })
    .await;
    assert!(answer.is_ok(), "the server kept reading the trickle");
    answer.unwrap_or_default()
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_over_rest_and_mcp() {
    let db = sqlite_db().await;
    let s = edge(&db, short()).await;
    seed(&s.app).await;
    let key = s
        .app
        .auth
        .keys()
        .create(
            "ops",
            &account("ops"),
            referral_mcp::core::access::ScopeSet::all(),
            0,
        )
        .await
        .unwrap()
        .key;
    // An authenticated MCP call: no route timeout covers /mcp (recover may run long), so
    // only the whole-body deadline ends it.
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nx-api-key: {key}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n"
    );
    let answer = trickle(&s, head, 1000).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "MCP: {answer}");
    let head = "POST /referrals/click HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n".to_owned();
    let answer = trickle(&s, head, 1000).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "REST: {answer}");
}
