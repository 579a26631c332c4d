//! The `serve` binary as an operator runs it: SIGTERM drains a request in flight before
//! the process exits, and `--log-json` writes one JSON object per line carrying the
//! request id that the response carried.

mod common;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The admin API key `serve --demo` prints on stdout, once the server answers `/readyz`;
/// with the server's base URL and a client.
async fn demo_key_when_ready(
    child: &mut tokio::process::Child,
    port: u16,
) -> (String, String, reqwest::Client) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut key = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.trim().starts_with("rk_") {
            key = Some(line.trim().to_owned());
            break;
        }
    }
    let key = key.expect("demo prints an API key");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (key, base, http)
}

#[tokio::test]
async fn sigterm_drains_a_request_in_flight_and_logs_are_json_with_request_ids() {
    let db = sqlite_db().await;
    let (slow, billing) = slow_billing(150).await;
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args([
            "serve",
            "--demo",
            "--log-json",
            "--log-requests",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DATABASE_URL", &db.url)
        .env("REFERRAL_BILLING_URL", &billing)
        .env_remove("REFERRAL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (key, base, http) = demo_key_when_ready(&mut child, port).await;

    slow.store(true, Ordering::SeqCst);
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/admin/referrals/recover");
        let key = key.clone();
        async move {
            http.post(url)
                .header("x-api-key", key)
                .json(&json!({"limit": 100}))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let resp = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let report: Value = resp.json().await.unwrap();
    assert!(report["granted"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["cancelled"], false);

    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after draining")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // New connections are refused once it stopped.
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());

    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let json_lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !json_lines.is_empty(),
        "JSON log lines expected, got:\n{stderr}"
    );
    assert!(
        json_lines
            .iter()
            .any(|l| l.to_string().contains(&request_id)),
        "a log line carries the request id {request_id}:\n{stderr}"
    );
}

#[tokio::test]
async fn serve_logs_at_most_one_line_per_request_and_no_colours_into_a_file() {
    let db = sqlite_db().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args([
            "serve",
            "--demo",
            "--log-requests",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DATABASE_URL", &db.url)
        .env_remove("REFERRAL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (key, base, http) = demo_key_when_ready(&mut child, port).await;
    let before = std::fs::read_to_string(&log_path).unwrap().lines().count();

    let calls = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "secret-client-name", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "list_referrals", "arguments": {"limit": 1}}}),
    ];
    for call in &calls {
        let r = http
            .post(format!("{base}/mcp"))
            .header("x-api-key", &key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(call)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI escapes in a file:\n{logs}"
    );
    let added = logs.lines().count() - before;
    assert_eq!(
        added,
        calls.len(),
        "one log line per request with --log-requests:\n{logs}"
    );
    assert!(
        !logs.contains("secret-client-name"),
        "initialize parameters are not logged:\n{logs}"
    );
}

/// By default a busy server logs its problems, not its traffic: successful requests
/// write nothing, a refused one writes its line.
#[tokio::test]
async fn by_default_only_refused_and_failed_requests_are_logged() {
    let db = sqlite_db().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env_remove("REFERRAL_LOG")
        .env_remove("REFERRAL_LOG_REQUESTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (key, base, http) = demo_key_when_ready(&mut child, port).await;
    let before = std::fs::read_to_string(&log_path).unwrap().lines().count();
    for _ in 0..5 {
        let r = http
            .get(format!("{base}/admin/referrals?limit=1"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        logs.lines().count(),
        before,
        "successes are not logged:\n{logs}"
    );
    let r = http
        .get(format!("{base}/admin/referrals?limit=0"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let added: Vec<&str> = logs.lines().skip(before).collect();
    assert!(
        added.len() == 1 && added[0].contains("422") && added[0].contains("req_"),
        "one line for the refusal, with its status and request id:\n{logs}"
    );
}
