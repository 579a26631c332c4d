//! A PostgreSQL outage while `serve` runs: every answer says "unavailable, retry" (503
//! with Retry-After over REST, a tool error inside a 200 over MCP), never "bad
//! credential", and the server recovers without a restart. PostgreSQL only: an embedded
//! SQLite file cannot go away under a running process in the same way.

mod common;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::ScopeSet;
use serde_json::{Value, json};
use sqlx::Connection;

/// Refuses new connections to the test's database and ends the open ones, or lets them
/// in again.
async fn set_outage(db: &TestDb, down: bool) {
    let base = std::env::var("REFERRAL_TEST_POSTGRES_URL").unwrap();
    let name = url::Url::parse(&db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
    let allow = if down { "false" } else { "true" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allow}"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    if down {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .execute(&mut c)
            .await
            .unwrap();
    }
}

async fn mcp_call(http: &reqwest::Client, s: &Served, key: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(&s.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_database_outage_is_unavailable_not_unauthenticated_and_heals_without_restart() {
    let Some(db) = postgres_db().await else {
        eprintln!("NOTE: PostgreSQL skipped for this test: set REFERRAL_TEST_POSTGRES_URL");
        return;
    };
    let s = serve(&db, HttpOptions::default()).await;
    let held = seed(&s.app).await;
    let key = s
        .app
        .auth
        .keys()
        .create("ops", &account("ops"), ScopeSet::all(), 0)
        .await
        .unwrap()
        .key;
    let code = s
        .app
        .core
        .summary_for(&account("alice"))
        .await
        .unwrap()
        .referral_code;
    let http = reqwest::Client::new();
    let list = format!("{}/admin/referrals", s.base);
    // get_referral reads through connections of its own, outside the pool.
    let one = format!("{list}/{held}");
    let status_of = |url: String| {
        let req = http.get(url).header("x-api-key", &key);
        async move { req.send().await.unwrap().status() }
    };
    // Enough calls that each of those connections is open when the outage cuts it.
    for _ in 0..8 {
        assert_eq!(status_of(one.clone()).await, 200);
    }
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_referrals", "arguments": {}}});
    assert_eq!(
        http.get(&list)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    set_outage(&db, true).await;

    // REST: 503 with Retry-After and the problem code `unavailable`, not a 401.
    let r = http
        .get(&list)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "REST during the outage");
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get("www-authenticate").is_none());
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "unavailable", "{p}");
    assert_eq!(
        status_of(one.clone()).await,
        503,
        "get_referral during the outage"
    );

    // MCP: the answer stays inside the protocol, so the client's session survives.
    let (status, answer) = mcp_call(&http, &s, &key, call.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"code\":\"unavailable\""), "{text}");
    assert!(text.contains("retry"), "{text}");

    // Public click capture: 503 with Retry-After, not a 500.
    let r = http
        .post(format!("{}/referrals/click", s.base))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "click during the outage");
    assert!(r.headers().get("retry-after").is_some());

    // Readiness says so too.
    let r = http.get(format!("{}/readyz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 503);

    set_outage(&db, false).await;

    // Healed without a restart: the pool reconnects on the next request.
    let mut healed = false;
    for _ in 0..50 {
        let r = http
            .get(&list)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healed, "REST did not recover after the outage");
    let mut healed = false;
    for _ in 0..50 {
        if status_of(one.clone()).await == 200 {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healed, "get_referral did not recover after the outage");
    let (status, answer) = mcp_call(&http, &s, &key, call).await;
    assert_eq!(status, 200);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    s.stop.cancel();
}
