//! MCP behaviour an agent relies on beyond single calls: cancelling a recovery run,
//! log notifications at the level the client chose, completions, the protocol-version
//! header, the size of the tool list, and two `serve` instances on one database.

// rmcp marks the logging API deprecated (SEP-2577); the server still offers it.
#![allow(deprecated)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::config::{App, Config};
use referral_mcp::core::access::ScopeSet;
use referral_mcp::core::clock::Clock;
use referral_mcp::core::types::RewardStatus;
use rmcp::model::*;
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// Records what the server sends unasked.
#[derive(Clone, Default)]
struct Listener {
    progress: Arc<Mutex<Vec<f64>>>,
    logs: Arc<Mutex<Vec<(LoggingLevel, Value)>>>,
}

impl ClientHandler for Listener {
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(p.progress);
    }
    async fn on_logging_message(
        &self,
        p: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push((p.level, p.data));
    }
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("run-test", "0.1.0"),
        )
    }
}

fn params(name: &str, a: Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(m) = a {
        p = p.with_arguments(m);
    }
    p
}

/// `pairs` referrals qualified while billing was down: 2 × pairs rewards waiting.
async fn pending_rewards(db: &TestDb, pairs: usize) {
    let (t, sink) = flaky_app(db).await;
    sink.down.store(true, Ordering::SeqCst);
    for i in 0..pairs {
        let code = register(
            &t.core,
            &format!("r{i}"),
            &format!("r{i}@r{i}.example"),
            &format!("198.51.100.{}", i + 1),
        )
        .await;
        signup_via(
            &t.core,
            &format!("u{i}"),
            &format!("u{i}@u{i}.example"),
            &format!("203.0.113.{}", i + 1),
            &code,
        )
        .await;
        qualify(&t.core, &format!("u{i}")).await;
    }
}

async fn granted(app: &App) -> usize {
    let page = app
        .core
        .query_referrals(referral_mcp::core::ListQuery {
            limit: referral_mcp::core::types::Limit::parse("limit", 100, 100).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    page.referrals
        .iter()
        .flat_map(|r| &r.rewards)
        .filter(|w| w.status == RewardStatus::Granted)
        .count()
}

#[tokio::test]
async fn cancelling_recover_over_stdio_stops_between_grants_and_logs_follow_the_chosen_level() {
    for db in databases().await {
        pending_rewards(&db, 40).await;
        let app = App::start_with(&Config::with_database(&db.url), None, Clock::System)
            .await
            .unwrap();
        app.core.top_up(&account("ops"), 100, "seed").await.unwrap();
        let key = app
            .auth
            .keys()
            .create("recovery agent", &account("ops"), ScopeSet::all(), 0)
            .await
            .unwrap()
            .key;
        let (slow, billing) = slow_billing(150).await;
        slow.store(true, Ordering::SeqCst);
        let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp")).configure(|c| {
            c.arg("stdio")
                .env("DATABASE_URL", &db.url)
                .env("REFERRAL_API_KEY", &key)
                .env("REFERRAL_BILLING_URL", &billing)
                .env_remove("REFERRAL_TOKEN");
        });
        let listener = Listener::default();
        let c = listener
            .clone()
            .serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .unwrap();
        c.set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
            .await
            .unwrap();

        let handle = c
            .peer()
            .send_cancellable_request(
                ClientRequest::CallToolRequest(CallToolRequest::new(params(
                    "recover_referral_grants",
                    json!({"limit": 100}),
                ))),
                PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        // Wait until some grants went through (they run 32 at a time), then cancel.
        for _ in 0..100 {
            if listener.progress.lock().unwrap().iter().any(|p| *p >= 2.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle
            .cancel(Some("operator stopped the run".into()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after_cancel = granted(&app).await;
        assert!(
            (2..80).contains(&after_cancel),
            "[{}] partial run: {after_cancel} of 80 granted",
            db.label
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            granted(&app).await,
            after_cancel,
            "[{}] the run stopped",
            db.label
        );
        assert!(
            listener.logs.lock().unwrap().is_empty(),
            "[{}] nothing at or above warning was logged",
            db.label
        );

        // At info, the finished run is logged; it grants the rest, once.
        c.set_level(SetLevelRequestParams::new(LoggingLevel::Info))
            .await
            .unwrap();
        let r = c
            .call_tool(params("recover_referral_grants", json!({"limit": 100})))
            .await
            .unwrap();
        let report = r.structured_content.unwrap();
        assert_eq!(
            report["granted"].as_u64().unwrap() + report["already_granted"].as_u64().unwrap(),
            (80 - after_cancel) as u64,
            "[{}] {report}",
            db.label
        );
        assert_eq!(report["remaining"], 0);
        assert_eq!(granted(&app).await, 80);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logs = listener.logs.lock().unwrap().clone();
        assert!(
            logs.iter()
                .any(|(l, d)| *l == LoggingLevel::Info && d["event"] == "recover_finished"),
            "[{}] {logs:?}",
            db.label
        );
        c.cancel().await.unwrap();
    }
}

async fn http(url: &str, bearer: &str) -> RunningService<RoleClient, Listener> {
    let cfg =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url)
            .auth_header(bearer);
    Listener::default()
        .serve(StreamableHttpClientTransport::with_client(
            reqwest::Client::new(),
            cfg,
        ))
        .await
        .unwrap()
}

#[tokio::test]
async fn completions_offer_statuses_and_campaigns() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let c = http(&s.url, &admin).await;
    let mut values = c
        .complete_prompt_simple("list_referrals", "status", "re")
        .await
        .unwrap();
    values.sort();
    assert_eq!(
        values,
        ["rejected", "reversed", "review_required", "rewarded"]
    );
    let values = c
        .complete_prompt_simple("list_referrals", "campaign", "")
        .await
        .unwrap();
    assert!(values.contains(&"default".to_owned()), "{values:?}");
    let values = c
        .complete_prompt_simple("list_referrals", "limit", "1")
        .await
        .unwrap();
    assert!(values.is_empty());
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn the_newest_protocol_is_negotiated_and_a_bad_version_header_is_refused() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let c = http(&s.url, &admin).await;
    let version = c.peer_info().unwrap().protocol_version.to_string();
    assert!(version.as_str() >= "2025-11-25", "negotiated {version}");
    c.cancel().await.unwrap();

    let post = |v: &'static str| {
        reqwest::Client::new()
            .post(&s.url)
            .bearer_auth(&admin)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", v)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
    };
    let bad = post("1999-01-01").await.unwrap();
    assert_eq!(
        bad.status(),
        400,
        "an unsupported MCP-Protocol-Version is refused"
    );
    let good = post("2025-11-25").await.unwrap();
    assert_eq!(good.status(), 200);
}

#[tokio::test]
async fn the_admin_tool_list_stays_under_16000_characters() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let c = http(&s.url, &admin).await;
    let tools = c.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 9, "the default toolset");
    let size = serde_json::to_string(&ListToolsResult::with_all_items(tools))
        .unwrap()
        .len();
    assert!(
        size < 16_000,
        "tools/list for an admin is {size} characters"
    );
    println!("tools/list for an admin: {size} characters");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn two_serve_instances_on_one_database_answer_alike_and_share_the_work() {
    for db in databases().await {
        let a = serve(&db, HttpOptions::default()).await;
        let b = serve(&db, HttpOptions::default()).await;
        let held = seed(&a.app).await;
        pending_rewards(&db, 10).await;
        let admin = a.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        // The JWT secret lives in the database, so instance B accepts A's token.
        let ca = http(&a.url, &admin).await;
        let cb = http(&b.url, &admin).await;
        for (name, args) in [
            ("list_referrals", json!({"limit": 5})),
            ("get_referral", json!({"id": held})),
            (
                "get_referral_stats",
                json!({"from": "2020-01-01", "to": "2030-01-01"}),
            ),
        ] {
            let ra = ca.call_tool(params(name, args.clone())).await.unwrap();
            let rb = cb.call_tool(params(name, args)).await.unwrap();
            assert_eq!(
                ra.structured_content, rb.structured_content,
                "[{}] {name}",
                db.label
            );
        }
        // A change through A is what B reads next.
        let r = ca
            .call_tool(params("approve_referral", json!({"id": held})))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true));
        let rb = cb
            .call_tool(params("get_referral", json!({"id": held})))
            .await
            .unwrap();
        assert_eq!(
            rb.structured_content.unwrap()["referral"]["review_decision"],
            "approved",
            "[{}]",
            db.label
        );
        // Recover runs on both instances at once share the 20 waiting rewards exactly.
        let (ra, rb) = tokio::join!(
            ca.call_tool(params("recover_referral_grants", json!({"limit": 100}))),
            cb.call_tool(params("recover_referral_grants", json!({"limit": 100}))),
        );
        let (ra, rb) = (
            ra.unwrap().structured_content.unwrap(),
            rb.unwrap().structured_content.unwrap(),
        );
        let done =
            |r: &Value| r["granted"].as_u64().unwrap() + r["already_granted"].as_u64().unwrap();
        assert_eq!(done(&ra) + done(&rb), 20, "[{}] {ra} {rb}", db.label);
        assert_eq!(
            granted(&a.app).await,
            20 + 2,
            "[{}] plus the seeded reward pair",
            db.label
        );
        for i in 0..10 {
            assert_eq!(rewards_credited(&db, &format!("r{i}")).await, 100);
        }
        ca.cancel().await.unwrap();
        cb.cancel().await.unwrap();
    }
}
