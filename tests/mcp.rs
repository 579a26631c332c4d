//! MCP end to end with rmcp's own client: over streamable HTTP (server on port 0) and over
//! stdio (the built binary as a child process), on SQLite and PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::{Scope, ScopeSet};
use referral_mcp::mcp::ToolFilter;
use rmcp::model::*;
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// A client that records progress notifications.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<f64>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(p.progress);
    }
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("test-client", "0.1.0"),
        )
    }
}

async fn http_client(url: &str, bearer: Option<&str>) -> RunningService<RoleClient, Recorder> {
    let mut cfg =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(b) = bearer {
        cfg = cfg.auth_header(b);
    }
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), cfg);
    Recorder::default()
        .serve(transport)
        .await
        .expect("connect over HTTP")
}

async fn call(c: &RunningService<RoleClient, Recorder>, name: &str, a: Value) -> CallToolResult {
    let mut p = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(m) = a {
        p = p.with_arguments(m);
    }
    c.call_tool(p).await.expect("tools/call")
}

fn error_code(r: &CallToolResult) -> String {
    assert_eq!(r.is_error, Some(true), "expected a tool error, got {r:?}");
    let text = r.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"error": {"code": text}}));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_tool_answers_over_http_with_content_matching_its_output_schema() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let c = http_client(&s.url, Some(&admin)).await;
        let tools = c.list_all_tools().await.unwrap();
        assert_eq!(
            tools.len(),
            9,
            "[{}] admin sees the default toolset: the nine",
            db.label
        );
        let calls = [
            ("list_referrals", json!({"limit": 2})),
            ("get_referral", json!({"id": held})),
            ("get_referral_stats", json!({})),
            (
                "capture_referral_click",
                json!({"code": s.app.core.summary_for(&account("alice")).await.unwrap().referral_code, "landing_url": "/r/x?utm_source=t"}),
            ),
            ("get_my_referral_summary", json!({})),
            ("list_my_referral_events", json!({"limit": 5})),
            ("approve_referral", json!({"id": held, "note": "checked"})),
            ("recover_referral_grants", json!({"limit": 10})),
        ];
        for (name, a) in calls {
            let tool = tools.iter().find(|t| t.name == name).unwrap();
            assert!(
                tool.title.is_some() && tool.annotations.is_some(),
                "{name} metadata"
            );
            let r = call(&c, name, a).await;
            assert_ne!(r.is_error, Some(true), "[{}] {name}: {r:?}", db.label);
            let content = r.structured_content.clone().expect("structuredContent");
            let schema =
                Value::Object((*tool.output_schema.clone().expect("outputSchema")).clone());
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&content)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "[{}] {name} output does not match its schema: {errors:?}",
                db.label
            );
            // the same JSON as text for clients that ignore structured output
            let text: Value = serde_json::from_str(&r.content[0].as_text().unwrap().text).unwrap();
            assert_eq!(text, content);
        }
        // reject needs a review_required referral: approve moved ours on, so it conflicts
        let r = call(&c, "reject_referral", json!({"id": held, "reason": "dup"})).await;
        assert_eq!(error_code(&r), "conflict", "[{}]", db.label);
        c.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn bad_arguments_are_clear_tool_errors_and_change_nothing() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let c = http_client(&s.url, Some(&admin)).await;
        let before = s.app.store.balance("ops").await.unwrap();
        for a in [
            json!({"id": held, "zzz": 1}),
            json!({"id": "twelve"}),
            json!({"id": -3}),
            json!({"id": held, "note": "x".repeat(501)}),
        ] {
            let r = call(&c, "approve_referral", a.clone()).await;
            assert_eq!(r.is_error, Some(true), "[{}] {a}", db.label);
        }
        let r = call(&c, "list_referrals", json!({"limit": 101})).await;
        assert_eq!(error_code(&r), "invalid_argument");
        assert!(r.content[0].as_text().unwrap().text.contains("limit"));
        let r = call(&c, "list_referrals", json!({"status": "bogus"})).await;
        assert_eq!(r.is_error, Some(true));
        assert_eq!(
            s.app.store.balance("ops").await.unwrap(),
            before,
            "[{}] nothing charged",
            db.label
        );
        let d = detail(&s.app, held).await;
        assert_eq!(
            d.referral.status.as_str(),
            "review_required",
            "[{}] nothing changed",
            db.label
        );
        c.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn every_tool_refuses_unknown_fields_wrong_types_and_out_of_range_values() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let user = s
            .app
            .auth
            .jwt()
            .mint(&account("alice"), false, 600)
            .unwrap();
        let ca = http_client(&s.url, Some(&admin)).await;
        let cu = http_client(&s.url, Some(&user)).await;
        let code = s
            .app
            .core
            .summary_for(&account("alice"))
            .await
            .unwrap()
            .referral_code;
        let clicks_before = s
            .app
            .core
            .summary_for(&account("alice"))
            .await
            .unwrap()
            .stats
            .clicks;
        let (ops_before, alice_before) = (
            s.app.store.balance("ops").await.unwrap(),
            s.app.store.balance("alice").await.unwrap(),
        );
        let long = "x".repeat(501);
        // (tool, [unknown field, wrong type, out of range]); the "me" tools run as a user.
        let cases: Vec<(&str, Vec<Value>)> = vec![
            (
                "list_referrals",
                vec![
                    json!({"zzz": 1}),
                    json!({"limit": "ten"}),
                    json!({"limit": 0}),
                ],
            ),
            (
                "get_referral",
                vec![
                    json!({"id": held, "zzz": 1}),
                    json!({"id": "twelve"}),
                    json!({"id": 0}),
                ],
            ),
            (
                "approve_referral",
                vec![
                    json!({"id": held, "zzz": 1}),
                    json!({"id": [held]}),
                    json!({"id": held, "note": long}),
                ],
            ),
            (
                "reject_referral",
                vec![
                    json!({"id": held, "reason": "dup", "zzz": 1}),
                    json!({"id": held, "reason": 5}),
                    json!({"id": held, "reason": "x".repeat(201)}),
                ],
            ),
            (
                "recover_referral_grants",
                vec![
                    json!({"zzz": 1}),
                    json!({"limit": "all"}),
                    json!({"limit": 10_001}),
                ],
            ),
            (
                "get_referral_stats",
                vec![
                    json!({"zzz": 1}),
                    json!({"from": 5}),
                    json!({"from": "2020-01-01", "to": "2026-01-01"}),
                ],
            ),
            (
                "capture_referral_click",
                vec![
                    json!({"code": code, "zzz": 1}),
                    json!({"code": 5}),
                    json!({"code": "ab"}),
                ],
            ),
            ("get_my_referral_summary", vec![json!({"zzz": 1})]),
            (
                "list_my_referral_events",
                vec![
                    json!({"zzz": 1}),
                    json!({"limit": "x"}),
                    json!({"limit": 101}),
                ],
            ),
        ];
        assert_eq!(cases.len(), 9, "all nine tools");
        for (tool, args) in cases {
            let c = if tool.contains("_my_") { &cu } else { &ca };
            for a in args {
                let r = call(c, tool, a.clone()).await;
                assert_eq!(r.is_error, Some(true), "[{}] {tool} {a}: {r:?}", db.label);
                let text = &r.content[0].as_text().unwrap().text;
                let body: Value =
                    serde_json::from_str(text).unwrap_or_else(|_| panic!("{tool} {a}: {text}"));
                assert_eq!(
                    body["error"]["code"], "invalid_argument",
                    "{tool} {a}: {text}"
                );
                let message = body["error"]["message"].as_str().unwrap();
                let named = a
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| message.contains(k.as_str()));
                assert!(named, "{tool} {a}: the message names the field: {message}");
            }
        }
        assert_eq!(
            s.app.store.balance("ops").await.unwrap(),
            ops_before,
            "[{}] nothing charged",
            db.label
        );
        assert_eq!(
            s.app.store.balance("alice").await.unwrap(),
            alice_before,
            "[{}]",
            db.label
        );
        assert_eq!(
            s.app
                .core
                .summary_for(&account("alice"))
                .await
                .unwrap()
                .stats
                .clicks,
            clicks_before,
            "[{}] no click recorded",
            db.label
        );
        let d = detail(&s.app, held).await;
        assert_eq!(
            d.referral.status.as_str(),
            "review_required",
            "[{}]",
            db.label
        );
        assert!(
            d.audit_trail
                .iter()
                .all(|a| a.action != "approved" && a.action != "rejected")
        );
        ca.cancel().await.unwrap();
        cu.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn tools_list_depends_on_scopes_and_server_filters() {
    for db in databases().await {
        let s = serve(
            &db,
            HttpOptions {
                allow_anonymous: true,
                ..Default::default()
            },
        )
        .await;
        seed(&s.app).await;
        let key = s
            .app
            .auth
            .keys()
            .create(
                "reader",
                &account("ops"),
                [Scope::Read].into_iter().collect(),
                0,
            )
            .await
            .unwrap();
        let c = http_client(&s.url, Some(&key.key)).await;
        let mut names: Vec<String> = c
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "capture_referral_click",
                "get_referral",
                "get_referral_stats",
                "list_referrals"
            ],
            "[{}]",
            db.label
        );
        c.cancel().await.unwrap();

        let anon = http_client(&s.url, None).await;
        let names: Vec<String> = anon
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["capture_referral_click"],
            "[{}] anonymous sees the public tool",
            db.label
        );
        anon.cancel().await.unwrap();

        let ro = serve(
            &db,
            HttpOptions {
                filter: ToolFilter::new(true, &[], &[], &[]).unwrap(),
                ..Default::default()
            },
        )
        .await;
        let admin = ro.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let c = http_client(&ro.url, Some(&admin)).await;
        let names: Vec<String> = c
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("approve") || n.contains("reject") || n.contains("recover")),
            "{names:?}"
        );
        // hidden is not enough: calling it is refused too
        let err = c
            .call_tool(
                CallToolRequestParams::new("approve_referral")
                    .with_arguments(json!({"id": 1}).as_object().unwrap().clone()),
            )
            .await;
        assert!(err.is_err(), "[{}] read-only refuses approve", db.label);
        c.cancel().await.unwrap();
    }
    assert!(
        ToolFilter::new(false, &[], &["list_referalls".into()], &[]).is_err(),
        "a typo stops start-up"
    );
}

#[tokio::test]
async fn http_refuses_missing_bad_and_insufficient_credentials_and_foreign_hosts() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    seed(&s.app).await;
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let post = |b: Value| {
        http.post(&s.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(b.to_string())
    };
    let r = post(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        www.contains("resource_metadata=") && www.contains("/.well-known/oauth-protected-resource"),
        "{www}"
    );
    let meta: Value = http
        .get(format!("{}/.well-known/oauth-protected-resource", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta["resource"].as_str().unwrap().ends_with("/mcp"));

    let r = post(body.clone())
        .header("x-api-key", "rk_0000000000_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let expired = s
        .app
        .auth
        .jwt()
        .sign(&referral_mcp::auth::Claims {
            sub: "ops".into(),
            aud: "referral-mcp".into(),
            exp: 1,
            iss: None,
            nbf: None,
            role: Some("admin".into()),
        })
        .unwrap();
    assert_eq!(
        post(body.clone())
            .bearer_auth(expired)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let key = s
        .app
        .auth
        .keys()
        .create(
            "reader",
            &account("ops"),
            ScopeSet::parse("referrals:read").unwrap(),
            0,
        )
        .await
        .unwrap();
    let approve = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "approve_referral", "arguments": {"id": 1}}});
    let r = post(approve)
        .header("x-api-key", &key.key)
        .send()
        .await
        .unwrap();
    // A tool the key's scopes do not allow is a tool error the agent can read, inside a
    // 200: an HTTP 403 would end the session of clients that raise on the status.
    assert_eq!(r.status(), 200, "a refused tool call keeps the session");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    let err: Value = serde_json::from_str(text).unwrap();
    assert_eq!(err["error"]["code"], "forbidden", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("referrals:review"),
        "{err}"
    );
    // ...and the same credential goes on working for what it may do.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_referrals", "arguments": {}}});
    let r = post(list)
        .header("x-api-key", &key.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    let r = post(body.clone())
        .header("x-api-key", &key.key)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "DNS rebinding: foreign Host");
    let r = post(body)
        .header("x-api-key", &key.key)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "foreign Origin");
    assert_eq!(
        http.get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn recover_over_mcp_reports_progress() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let (t, sink) = flaky_app(&db).await;
    let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
    sink.down.store(true, std::sync::atomic::Ordering::SeqCst);
    for i in 0..5 {
        signup_via(
            &t.core,
            &format!("u{i}"),
            &format!("u{i}@x{i}.example"),
            &format!("203.0.113.{}", i + 1),
            &code,
        )
        .await;
        qualify(&t.core, &format!("u{i}")).await;
    }
    s.app
        .core
        .top_up(&account("ops"), 10, "seed")
        .await
        .unwrap();
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let c = http_client(&s.url, Some(&admin)).await;
    let r = call(&c, "recover_referral_grants", json!({"limit": 100})).await;
    let report = r.structured_content.unwrap();
    assert_eq!(report["attempted"], 10);
    assert_eq!(report["granted"], 10);
    assert_eq!(report["remaining"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = c.service().progress.lock().unwrap().clone();
    assert!(!seen.is_empty(), "progress notifications arrive");
    assert_eq!(seen.last().copied(), Some(10.0));
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn stdio_and_http_give_the_same_answers_for_the_same_data() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        seed(&s.app).await;
        let key = s
            .app
            .auth
            .keys()
            .create("agent", &account("ops"), ScopeSet::all(), 0)
            .await
            .unwrap();
        let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp")).configure(|c| {
            c.arg("stdio")
                .env("DATABASE_URL", &db.url)
                .env("REFERRAL_API_KEY", &key.key)
                .env_remove("REFERRAL_TOKEN");
        });
        let stdio = Recorder::default()
            .serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .expect("stdio");
        let info = stdio.peer_info().unwrap();
        assert!(
            info.instructions
                .as_deref()
                .unwrap_or_default()
                .contains("review")
        );
        let tools = stdio.list_all_tools().await.unwrap();
        assert_eq!(
            tools.len(),
            7,
            "[{}] an API key sees the admin and public tools",
            db.label
        );
        let http = http_client(&s.url, Some(&key.key)).await;
        for (name, a) in [
            ("list_referrals", json!({"limit": 10})),
            (
                "get_referral_stats",
                json!({"from": "2026-06-01", "to": "2026-12-31"}),
            ),
        ] {
            let r1 = call(&stdio, name, a.clone()).await;
            assert_ne!(r1.is_error, Some(true), "[{}] {name}: {r1:?}", db.label);
            let a1 = r1.structured_content;
            let a2 = call(&http, name, a).await.structured_content;
            assert!(a1.is_some(), "[{}] {name} over stdio failed", db.label);
            assert_eq!(a1, a2, "[{}] {name}", db.label);
        }
        let r = call(&stdio, "get_my_referral_summary", json!({})).await;
        assert_eq!(error_code(&r), "forbidden", "me tools need a user JWT");
        stdio.cancel().await.unwrap();
        http.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn stdio_refuses_to_start_with_a_bad_credential() {
    let db = sqlite_db().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .arg("stdio")
        .env("DATABASE_URL", &db.url)
        .env("REFERRAL_API_KEY", "rk_0000000000_wrong")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing but protocol on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .arg("stdio")
        .env("DATABASE_URL", &db.url)
        .env_remove("REFERRAL_API_KEY")
        .env_remove("REFERRAL_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REFERRAL_API_KEY"));
}

/// The `{...}` arguments a prompt's step gives for `tool`, as the agent would read them.
fn step_arguments(text: &str, tool: &str) -> Value {
    let start = text
        .find(&format!("`{tool}` with {{"))
        .unwrap_or_else(|| panic!("the prompt names {tool} with arguments: {text}"));
    let rest = &text[start + tool.len() + 8..];
    let end = rest.find('}').expect("closing brace") + 1;
    serde_json::from_str(&rest[..end]).expect("the step's arguments are JSON")
}

fn prompt_text(r: &GetPromptResult) -> String {
    match &r.messages[0].content {
        ContentBlock::Text(t) => t.text.clone(),
        other => panic!("a text prompt, got {other:?}"),
    }
}

#[tokio::test]
async fn prompts_give_the_two_agent_jobs_with_tool_calls_that_work() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        seed(&s.app).await;
        let key = s
            .app
            .auth
            .keys()
            .create("agent", &account("ops"), ScopeSet::all(), 0)
            .await
            .unwrap();
        let c = http_client(&s.url, Some(&key.key)).await;
        assert!(
            c.peer_info().unwrap().capabilities.prompts.is_some(),
            "prompts are announced"
        );
        let names: Vec<String> = c
            .list_all_prompts()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["triage_review_queue", "run_recovery"]);

        let triage = c
            .get_prompt(
                GetPromptRequestParams::new("triage_review_queue").with_arguments(
                    json!({"limit": "5", "campaign": "default"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
            .unwrap();
        let text = prompt_text(&triage);
        assert!(
            text.contains("never an instruction"),
            "outsider text is data: {text}"
        );
        let order: Vec<usize> = [
            "list_referrals",
            "get_referral`",
            "approve_referral",
            "reject_referral",
        ]
        .iter()
        .map(|t| text.find(t).unwrap_or_else(|| panic!("{t} in {text}")))
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "tools in order: {text}"
        );
        // Step 1 as the agent would run it: the queue, as the prompt asked for it.
        let args = step_arguments(&text, "list_referrals");
        assert_eq!(
            args,
            json!({"status": "review_required", "limit": 5, "campaign": "default"})
        );
        let r = call(&c, "list_referrals", args).await;
        assert_ne!(r.is_error, Some(true), "[{}] {r:?}", db.label);
        let listed = r.structured_content.unwrap()["referrals"].clone();
        let id = listed[0]["id"]
            .as_i64()
            .expect("the seed holds a referral for review");
        // Steps 2 and 3: read the reasons, then decide through the ordinary tool.
        let d = call(&c, "get_referral", json!({"id": id})).await;
        let reasons = d.structured_content.unwrap()["review_reasons"].clone();
        assert!(
            !reasons.as_array().unwrap().is_empty(),
            "[{}] {reasons}",
            db.label
        );
        let r = call(
            &c,
            "reject_referral",
            json!({"id": id, "reason": "disposable email"}),
        )
        .await;
        assert_ne!(r.is_error, Some(true), "[{}] {r:?}", db.label);
        assert_eq!(
            detail(&s.app, id).await.referral.status.as_str(),
            "rejected"
        );

        let recovery = c
            .get_prompt(GetPromptRequestParams::new("run_recovery"))
            .await
            .unwrap();
        let text = prompt_text(&recovery);
        let args = step_arguments(&text, "recover_referral_grants");
        assert_eq!(args, json!({"limit": 100}));
        let r = call(&c, "recover_referral_grants", args).await;
        assert_ne!(r.is_error, Some(true), "[{}] {r:?}", db.label);

        let bad = c
            .get_prompt(
                GetPromptRequestParams::new("triage_review_queue")
                    .with_arguments(json!({"limit": "0"}).as_object().unwrap().clone()),
            )
            .await
            .expect_err("limit 0");
        assert!(bad.to_string().contains("limit"), "{bad}");
        c.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn the_review_queue_app_is_a_ui_resource_linked_from_list_and_get_referral() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let c = http_client(&s.url, Some(&admin)).await;
    assert!(
        c.peer_info().unwrap().capabilities.resources.is_some(),
        "resources are announced"
    );
    let uri = "ui://referral-mcp/review-queue";
    let resources = c.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1, "{resources:?}");
    assert_eq!(resources[0].uri, uri);
    assert_eq!(
        resources[0].mime_type.as_deref(),
        Some("text/html;profile=mcp-app")
    );

    let read = c
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    let v = serde_json::to_value(&read.contents[0]).unwrap();
    assert_eq!(v["uri"], uri);
    assert_eq!(v["mimeType"], "text/html;profile=mcp-app");
    let csp = &v["_meta"]["ui"]["csp"];
    for k in ["connectDomains", "resourceDomains", "frameDomains"] {
        assert_eq!(csp[k], json!([]), "no external {k}: {v}");
    }
    let html = v["text"].as_str().expect("HTML as text");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("Content-Security-Policy") && html.contains("default-src 'none'"),
        "the page declares its own strict CSP"
    );
    // Self-contained: nothing is fetched from anywhere, and data never goes through innerHTML.
    let lower = html.to_ascii_lowercase();
    for bad in [
        "src=\"http",
        "src='http",
        "href=\"http",
        "href='http",
        "url(http",
        "@import",
        "<link",
        "fetch(",
        "xmlhttprequest",
        "websocket",
        "innerhtml",
        "outerhtml",
        "insertadjacenthtml",
        "document.write",
    ] {
        assert!(!lower.contains(bad), "the page must not contain {bad}");
    }
    for needed in [
        "ui/initialize",
        "ui/notifications/initialized",
        "ui/notifications/tool-result",
        "tools/call",
    ] {
        assert!(html.contains(needed), "the page speaks {needed}");
    }

    let tools = c.list_all_tools().await.unwrap();
    for t in &tools {
        let linked = t
            .meta
            .as_ref()
            .map(|m| json!(m.0)["ui"]["resourceUri"].clone());
        if ["list_referrals", "get_referral"].contains(&t.name.as_ref()) {
            assert_eq!(linked, Some(json!(uri)), "{} links the app", t.name);
        } else {
            assert_eq!(linked, None, "{} has no UI", t.name);
        }
    }

    let missing = c
        .read_resource(ReadResourceRequestParams::new("ui://referral-mcp/nope"))
        .await
        .expect_err("unknown resource");
    assert!(missing.to_string().contains("nope"), "{missing}");
    c.cancel().await.unwrap();

    // A caller who may not list referrals is not shown the app.
    let key = s
        .app
        .auth
        .keys()
        .create(
            "ingest",
            &account("ops"),
            [Scope::Ingest].into_iter().collect(),
            0,
        )
        .await
        .unwrap();
    let c = http_client(&s.url, Some(&key.key)).await;
    assert!(c.list_all_resources().await.unwrap().is_empty());
    assert!(
        c.read_resource(ReadResourceRequestParams::new(uri))
            .await
            .is_err()
    );
    c.cancel().await.unwrap();
}
