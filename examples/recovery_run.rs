//! An agent-style recovery run over MCP, with rmcp's client: find referrals whose rewards
//! did not reach billing, retry them with `recover_referral_grants` while showing the
//! server's progress notifications, and print a summary. Ctrl-C cancels the run cleanly:
//! the server finishes the grants in flight and stops; a later run picks up the rest.
//!
//! ```sh
//! cargo run -- serve --demo            # prints an admin API key
//! REFERRAL_API_KEY=rk_… cargo run --example recovery_run
//! REFERRAL_API_KEY=rk_… cargo run --example recovery_run -- http://127.0.0.1:8080/mcp 500
//! ```
//!
//! Arguments: the MCP URL (default `http://127.0.0.1:8080/mcp`) and the most rewards to
//! retry (default 100). The credential comes from `REFERRAL_API_KEY` (a key with
//! `referrals:read` and `referrals:recover`) or `REFERRAL_TOKEN` (an admin JWT).

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
    Implementation, ProgressNotificationParam, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// Shows the server's progress notifications on a progress bar.
#[derive(Clone)]
struct Progress(ProgressBar);

impl ClientHandler for Progress {
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        if let Some(total) = p.total {
            self.0.set_length(total as u64);
        }
        self.0.set_position(p.progress as u64);
    }
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("recovery-run-example", env!("CARGO_PKG_VERSION")),
        )
    }
}

fn args(name: &str, v: Value) -> CallToolRequestParams {
    let p = CallToolRequestParams::new(name.to_owned());
    match v {
        Value::Object(m) => p.with_arguments(m),
        _ => p,
    }
}

/// The tool's JSON answer, or its error message as an error.
fn answer(r: rmcp::model::CallToolResult) -> Result<Value> {
    let text = r
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    if r.is_error == Some(true) {
        bail!("tool error: {text}");
    }
    Ok(r.structured_content
        .unwrap_or_else(|| serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let url = argv
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080/mcp".into());
    let limit: u32 = argv
        .next()
        .map_or(Ok(100), |s| s.parse())
        .context("limit")?;
    let credential = std::env::var("REFERRAL_API_KEY")
        .or_else(|_| std::env::var("REFERRAL_TOKEN"))
        .context("set REFERRAL_API_KEY or REFERRAL_TOKEN (see `referral-mcp serve --demo`)")?;

    let bar = ProgressBar::hidden();
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        StreamableHttpClientTransportConfig::with_uri(url.as_str()).auth_header(credential),
    );
    let client = Progress(bar.clone())
        .serve(transport)
        .await
        .with_context(|| format!("connecting to {url}"))?;

    // 1. What is waiting: every referral with a reward not yet granted.
    let mut waiting = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut a = json!({"pending_grant": true, "limit": 100});
        if let Some(c) = &cursor {
            a["cursor"] = json!(c);
        }
        let page = answer(client.call_tool(args("list_referrals", a)).await?)?;
        waiting.extend(page["referrals"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    println!(
        "{} referral(s) with rewards waiting for billing:",
        waiting.len()
    );
    for r in &waiting {
        let rewards: Vec<String> = r["rewards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["status"] == "pending" || w["status"] == "failed")
            .map(|w| {
                format!(
                    "{} {} credits ({})",
                    w["side"].as_str().unwrap_or("?"),
                    w["credits"],
                    w["status"].as_str().unwrap_or("?")
                )
            })
            .collect();
        println!(
            "  #{:<5} {} -> {}  {}",
            r["id"].as_i64().unwrap_or_default(),
            r["referrer_account"].as_str().unwrap_or("?"),
            r["referred_account"].as_str().unwrap_or("?"),
            rewards.join(", ")
        );
    }
    if waiting.is_empty() {
        client.cancel().await?;
        return Ok(());
    }

    // 2. Retry them, showing progress; Ctrl-C cancels between grants.
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} recovering [{bar:30}] {pos}/{len} rewards")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let handle = client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(args(
                "recover_referral_grants",
                json!({"limit": limit}),
            ))),
            PeerRequestOptions::no_options(),
        )
        .await?;
    let id = handle.id.clone();
    let peer = handle.peer.clone();
    let result = tokio::select! {
        r = handle.await_response() => r?,
        _ = tokio::signal::ctrl_c() => {
            bar.abandon_with_message("cancelled");
            peer.notify_cancelled(rmcp::model::CancelledNotificationParam::new(Some(id), Some("cancelled by the operator".into()))).await?;
            eprintln!("cancelled; the server finishes the grants in flight and stops; run again to finish");
            client.cancel().await?;
            return Ok(());
        }
    };
    bar.finish_and_clear();
    let ServerResult::CallToolResult(r) = result else {
        bail!("unexpected answer to tools/call");
    };
    let report = answer(r)?;

    // 3. Summary.
    println!(
        "attempted {}, granted {}, already granted (not paid twice) {}, failed {}, still waiting {}",
        report["attempted"],
        report["granted"],
        report["already_granted"],
        report["failed"].as_array().map_or(0, Vec::len),
        report["remaining"]
    );
    for f in report["failed"].as_array().into_iter().flatten() {
        println!(
            "  failed: referral #{} {} -> {}: {}",
            f["referral_id"],
            f["side"].as_str().unwrap_or("?"),
            f["account"].as_str().unwrap_or("?"),
            f["error"].as_str().unwrap_or("?")
        );
    }
    client.cancel().await?;
    Ok(())
}
