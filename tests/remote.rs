//! Remote mode: `stdio --remote URL` in front of a real server on port 0 gives the same
//! answers as a local `stdio` on the same data, without opening a database itself.

mod common;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::ScopeSet;
use rmcp::model::*;
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

async fn stdio(args: &[&str], database_url: &str, key: &str) -> RunningService<RoleClient, ()> {
    let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp")).configure(|c| {
        c.args(args)
            .env("DATABASE_URL", database_url)
            .env("REFERRAL_API_KEY", key)
            .env_remove("REFERRAL_TOKEN")
            .env_remove("REFERRAL_REMOTE_URL");
    });
    ().serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .expect("stdio server starts")
}

async fn call(c: &RunningService<RoleClient, ()>, name: &str, a: Value) -> CallToolResult {
    let mut p = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(m) = a {
        p = p.with_arguments(m);
    }
    c.call_tool(p).await.expect("tools/call")
}

fn summary(r: &CallToolResult) -> (Option<bool>, Option<Value>, String) {
    (
        r.is_error,
        r.structured_content.clone(),
        r.content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn remote_mode_gives_the_same_answers_as_local_mode() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let key = s
            .app
            .auth
            .keys()
            .create("desktop", &account("ops"), ScopeSet::all(), 0)
            .await
            .unwrap()
            .key;
        let local = stdio(&["stdio"], &db.url, &key).await;
        // The remote server is given a database URL it could never open: it must not try.
        let remote = stdio(
            &["stdio", "--remote", &s.base],
            "postgres://nobody@127.0.0.1:1/none",
            &key,
        )
        .await;

        let mut local_tools: Vec<_> = local
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let mut remote_tools: Vec<_> = remote
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        local_tools.sort();
        remote_tools.sort();
        assert_eq!(
            remote_tools, local_tools,
            "[{}] same tools listed",
            db.label
        );
        assert_eq!(remote_tools.len(), 7);

        let rewarded = s
            .app
            .core
            .query_referrals(referral_mcp::core::ListQuery {
                user: Some(account("bob")),
                ..Default::default()
            })
            .await
            .unwrap()
            .referrals[0]
            .id;
        let calls = [
            ("list_referrals", json!({"limit": 2})),
            ("list_referrals", json!({"status": "review_required"})),
            (
                "list_referrals",
                json!({"pending_grant": true, "campaign": "default"}),
            ),
            ("get_referral", json!({"id": held})),
            ("get_referral", json!({"id": 999_999})),
            (
                "get_referral_stats",
                json!({"from": "2020-01-01", "to": "2030-01-01"}),
            ),
            (
                "get_referral_stats",
                json!({"from": "2026-01-01", "to": "2026-12-31", "interval": "month", "chart": true}),
            ),
            ("approve_referral", json!({"id": rewarded})),
            (
                "reject_referral",
                json!({"id": rewarded, "reason": "too late"}),
            ),
            ("list_referrals", json!({"limit": 0})),
            ("list_referrals", json!({"colour": "red"})),
            ("get_my_referral_summary", json!({})),
        ];
        for (name, a) in calls {
            let l = call(&local, name, a.clone()).await;
            let r = call(&remote, name, a.clone()).await;
            assert_eq!(summary(&r), summary(&l), "[{}] {name} {a}", db.label);
            let images = |x: &CallToolResult| {
                x.content
                    .iter()
                    .filter(|c| matches!(c, ContentBlock::Image(i) if i.mime_type == "image/png"))
                    .count()
            };
            let want = usize::from(a.get("chart").is_some());
            assert_eq!(
                (images(&l), images(&r)),
                (want, want),
                "[{}] {name} {a}",
                db.label
            );
        }

        // A change made through remote mode lands in the deployment's database.
        let r = call(
            &remote,
            "approve_referral",
            json!({"id": held, "note": "ok"}),
        )
        .await;
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let detail = detail(&s.app, held).await;
        assert_eq!(detail.referral.status.as_str(), "attributed");
        assert!(detail.audit_trail.iter().any(|a| a.action == "approved"));
        local.cancel().await.unwrap();
        remote.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn remote_mode_refuses_to_start_when_the_deployment_refuses_the_key() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args(["stdio", "--remote", &s.base])
        .env("REFERRAL_API_KEY", "rk_0123456789_wrong")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
}
