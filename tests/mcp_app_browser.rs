//! The review queue MCP App in a real browser: the `serve --demo` binary, a host page with
//! the official ext-apps host bridge (`tests/app_host/`, driven by playwright-core in
//! headless Chromium), Approve clicked in the app, a conflict shown in its row, Reject
//! clicked with a hostile reason typed into the inline field (markup with an `onerror`
//! handler and a right-to-left override) that must come back as visible text and run
//! nothing, then the referrals' status and audit trail checked over REST. Leaves a
//! screenshot at `target/artifacts/review-queue.png`.
//!
//! Needs Chromium and the Node packages `.ci/app-host` installs into `target/app-host`.
//! Without them it says why and passes, unless `REFERRAL_TEST_BROWSER` is set (CI sets
//! it), when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A referral as the REST API shows it (the server's own view, beside what the app showed).
async fn referral(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    id: impl std::fmt::Display,
) -> Value {
    http.get(format!("{base}/admin/referrals/{id}"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromium() -> Option<PathBuf> {
    let candidates = std::env::var("CHROMIUM")
        .ok()
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(String::from));
    candidates.map(PathBuf::from).find(|p| p.is_file())
}

fn node_modules(root: &Path) -> PathBuf {
    std::env::var("REFERRAL_APP_HOST_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/app-host/node_modules"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing(root: &Path) -> Option<String> {
    if chromium().is_none() {
        return Some("no Chromium (apt-get install chromium, or set CHROMIUM)".into());
    }
    let m = node_modules(root);
    for p in [
        "playwright-core",
        "esbuild",
        "@modelcontextprotocol/ext-apps",
    ] {
        if !m.join(p).is_dir() {
            return Some(format!("{p} is not in {} (run .ci/app-host)", m.display()));
        }
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("no node on PATH".into());
    }
    None
}

#[tokio::test]
async fn approve_clicked_in_the_review_queue_app_approves_through_the_tools_with_an_audit_trail() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(why) = missing(&root) {
        if std::env::var_os("REFERRAL_TEST_BROWSER").is_some() {
            panic!("REFERRAL_TEST_BROWSER is set but the browser test cannot run: {why}");
        }
        eprintln!("SKIPPED: the MCP App browser test: {why}");
        return;
    }

    let db = sqlite_db().await;
    let port = free_port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env_remove("REFERRAL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut key = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.trim().starts_with("rk_") {
            key = Some(line.trim().to_owned());
            break;
        }
    }
    let key = key.expect("serve --demo prints an API key");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let screenshot = root.join("target/artifacts/review-queue.png");
    let _ = std::fs::remove_file(&screenshot);
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/app_host/run.mjs"))
        .env("REFERRAL_BASE", &base)
        .env("REFERRAL_API_KEY", &key)
        .env("CHROMIUM", chromium().unwrap())
        .env("NODE_PATH_DIR", node_modules(&root))
        .env("SCREENSHOT", &screenshot)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser run finishes within 3 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("one JSON line from run.mjs ({e}): {stdout}"));
    eprintln!("browser run: {report}");

    // The app's actions went through the host bridge as ordinary tool calls.
    let approved = report["approved"].as_i64().unwrap();
    let conflicted = report["conflicted"].as_i64().unwrap();
    let calls = report["calls"].as_array().unwrap();
    let called = |name: &str, id: i64| {
        calls
            .iter()
            .any(|c| c["name"] == name && c["arguments"]["id"] == id)
    };
    assert!(called("get_referral", approved), "{report}");
    assert!(called("approve_referral", approved), "{report}");
    assert!(called("approve_referral", conflicted), "{report}");
    assert!(
        report["conflict"].as_str().unwrap().contains("rejected"),
        "the row names the current status: {report}"
    );
    assert_eq!(
        report["foreign"],
        serde_json::json!([]),
        "no request left the host"
    );
    assert_eq!(report["console"], serde_json::json!([]), "no script errors");

    // The server agrees: approved, with the API key's account in the audit trail.
    let detail: Value = referral(&http, &base, &key, approved).await;
    let status = detail["referral"]["status"].as_str().unwrap();
    assert!(
        ["attributed", "qualified", "rewarded"].contains(&status),
        "approved referral moved on: {detail}"
    );
    assert_eq!(
        detail["referral"]["review_decision"], "approved",
        "{detail}"
    );
    let trail = detail["audit_trail"].as_array().unwrap();
    assert!(
        trail
            .iter()
            .any(|a| a["action"] == "approved" && a["actor"].as_str().unwrap().contains("acct_ops")),
        "the approval is in the audit trail with who decided: {detail}"
    );
    // The conflicting click changed nothing: still the REST rejection only.
    let other: Value = referral(&http, &base, &key, conflicted).await;
    assert_eq!(other["referral"]["status"], "rejected", "{other}");
    let other_trail = other["audit_trail"].as_array().unwrap();
    assert!(
        !other_trail.iter().any(|a| a["action"] == "approved"),
        "{other}"
    );

    // Rejected through the UI: the hostile reason stayed text in the page.
    let rejected = report["rejected"].as_i64().unwrap();
    let typed = report["reason"].as_str().unwrap();
    assert!(
        calls.iter().any(|c| c["name"] == "reject_referral"
            && c["arguments"]["id"] == rejected
            && c["arguments"]["reason"] == typed),
        "the app sent the reason as typed: {report}"
    );
    // Stored as typed, less the bidi override the server drops from outsider text.
    let stored: String = typed.chars().filter(|&c| c != '\u{202E}').collect();
    assert!(stored.contains(r#"<img src=x onerror="window.__pwned=1">"#));
    let hostile = &report["hostile"];
    assert_eq!(hostile["pwned"], "undefined", "{report}");
    assert_eq!(hostile["hostPwned"], "undefined", "{report}");
    assert_eq!(hostile["imgs"], 0, "no <img> in the app: {report}");
    assert_eq!(hostile["hostImgs"], 0, "{report}");
    assert_eq!(hostile["text"], stored.as_str(), "shown as text: {report}");
    assert_eq!(hostile["rendered"], stored.as_str(), "{report}");
    assert_eq!(hostile["visible"], true, "{report}");
    assert_eq!(hostile["bidiInDom"], false, "{report}");
    assert!(
        report["rejectOutcome"]
            .as_str()
            .unwrap()
            .starts_with("Rejected"),
        "{report}"
    );
    assert!(
        report["conflictDecision"]
            .as_str()
            .unwrap()
            .contains("decided elsewhere (browser test)"),
        "the conflict row says who decided and why: {report}"
    );
    let gone: Value = referral(&http, &base, &key, rejected).await;
    assert_eq!(gone["referral"]["status"], "rejected", "{gone}");
    assert_eq!(gone["referral"]["review_decision"], "rejected", "{gone}");
    assert!(
        gone["audit_trail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "rejected"
                && a["reason"] == stored.as_str()
                && a["actor"].as_str().unwrap().contains("acct_ops")),
        "the rejection and its reason are in the audit trail: {gone}"
    );

    let png = std::fs::metadata(&screenshot).expect("a screenshot was saved");
    assert!(png.len() > 10_000, "screenshot is {} bytes", png.len());
    server.kill().await.ok();
}
