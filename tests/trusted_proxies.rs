//! Behind a load balancer: with `--trusted-proxies` naming the peer, the client address
//! comes from `X-Forwarded-For` / `Forwarded`, so two forwarded clients are two visitors
//! and two rate-limit buckets, over REST and MCP; from any other peer those headers are
//! ignored. And a spoofed `Host` changes neither the `WWW-Authenticate` challenge nor the
//! RFC 9728 document: both use the configured public URL. Real servers on port 0.

mod common;

use common::*;
use referral_mcp::api::edge::{Edge, TrustedProxies};
use referral_mcp::cli::HttpOptions;
use referral_mcp::config::Config;
use referral_mcp::core::StatsQuery;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PER_MINUTE: i64 = 2;

/// A server whose public rate limit is [`PER_MINUTE`] and which trusts `proxies`.
async fn server(db: &TestDb, proxies: &str, allow_anonymous: bool) -> Served {
    let mut cfg = Config::with_database(&db.url);
    cfg.public_rate_per_minute = PER_MINUTE;
    let opts = HttpOptions {
        allow_anonymous,
        edge: Edge::new(
            "http://127.0.0.1:8080",
            TrustedProxies::parse(proxies).unwrap(),
        )
        .unwrap(),
        ..HttpOptions::default()
    };
    serve_with(db, opts, cfg).await
}

async fn code_of(s: &Served) -> String {
    register(&s.app.core, "alice", "alice@example.com", "198.51.100.1")
        .await
        .as_str()
        .to_owned()
}

async fn unique_clicks(s: &Served) -> i64 {
    let q = StatsQuery {
        from: 0,
        to: 4_000_000_000,
        campaign: None,
        interval: None,
    };
    s.app.core.stats(q).await.unwrap().clicks.unique
}

/// A REST click with these extra headers; returns the status.
async fn rest_click(s: &Served, code: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut r = reqwest::Client::new()
        .post(format!("{}/referrals/click", s.base))
        .json(&json!({"code": code}));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status()
}

/// An anonymous MCP `capture_referral_click`; returns the tool result.
async fn mcp_click(s: &Served, code: &str, xff: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "capture_referral_click", "arguments": {"code": code}}});
    let r = reqwest::Client::new()
        .post(&s.url)
        .header("accept", "application/json, text/event-stream")
        .header("x-forwarded-for", xff)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["result"].clone()
}

#[tokio::test]
async fn rest_clicks_forwarded_by_a_trusted_proxy_are_one_visitor_and_bucket_per_client() {
    for db in databases().await {
        let s = server(&db, "127.0.0.1", false).await;
        let code = code_of(&s).await;
        let a = [("x-forwarded-for", "203.0.113.1")];
        // a client's own claim in front of the proxy's entry is not believed
        let b = [("x-forwarded-for", "192.0.2.99, 203.0.113.2")];
        for n in 0..PER_MINUTE {
            assert_eq!(rest_click(&s, &code, &a).await, StatusCode::OK, "a {n}");
            assert_eq!(rest_click(&s, &code, &b).await, StatusCode::OK, "b {n}");
        }
        assert_eq!(
            rest_click(&s, &code, &a).await,
            StatusCode::TOO_MANY_REQUESTS,
            "[{}] client a's own bucket is full",
            db.label
        );
        let c = [("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
        assert_eq!(rest_click(&s, &code, &c).await, StatusCode::OK);
        assert_eq!(unique_clicks(&s).await, 3, "[{}] three visitors", db.label);
    }
}

#[tokio::test]
async fn forwarding_headers_from_a_peer_that_is_not_trusted_are_ignored() {
    // nothing trusted (the default), and a list that does not hold the peer
    for proxies in ["", "10.0.0.0/8, 192.0.2.1"] {
        let db = sqlite_db().await;
        let s = server(&db, proxies, false).await;
        let code = code_of(&s).await;
        for n in 0..PER_MINUTE {
            let xff = format!("203.0.113.{n}");
            let st = rest_click(&s, &code, &[("x-forwarded-for", &xff)]).await;
            assert_eq!(st, StatusCode::OK, "{proxies:?} click {n}");
        }
        let st = rest_click(&s, &code, &[("forwarded", "for=198.51.100.200")]).await;
        assert_eq!(
            st,
            StatusCode::TOO_MANY_REQUESTS,
            "{proxies:?}: every click is the peer's"
        );
        assert_eq!(unique_clicks(&s).await, 1, "{proxies:?}: one visitor");
    }
}

#[tokio::test]
async fn mcp_clicks_use_the_forwarded_client_only_from_a_trusted_proxy() {
    for (proxies, visitors) in [("127.0.0.0/8", 2), ("", 1)] {
        let db = sqlite_db().await;
        let s = server(&db, proxies, true).await;
        let code = code_of(&s).await;
        for xff in ["203.0.113.1", "203.0.113.2"] {
            let r = mcp_click(&s, &code, xff).await;
            assert_eq!(r["isError"], false, "{proxies:?} {xff}: {r}");
        }
        assert_eq!(unique_clicks(&s).await, visitors, "{proxies:?}");
        let r = mcp_click(&s, &code, "203.0.113.1").await;
        let limited = r["isError"] == true;
        assert_eq!(
            limited,
            visitors == 1,
            "{proxies:?}: third click from client 1 is limited only when all share a bucket: {r}"
        );
    }
}

#[tokio::test]
async fn a_spoofed_host_changes_neither_the_challenge_nor_the_resource_document() {
    let db = sqlite_db().await;
    let opts = HttpOptions {
        allowed_hosts: vec!["127.0.0.1".into(), "evil.example".into()],
        edge: Edge::new("https://mcp.example.com/", TrustedProxies::default()).unwrap(),
        ..HttpOptions::default()
    };
    let s = serve(&db, opts).await;
    let want = "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\"";
    let http = reqwest::Client::new();
    for host in [None, Some("evil.example")] {
        let with_host = |r: reqwest::RequestBuilder| match host {
            Some(h) => r.header("host", h),
            None => r,
        };
        let r = with_host(http.get(format!("{}/admin/referrals", s.base)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let www = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(www.contains(want), "REST, Host {host:?}: {www}");

        let r = with_host(http.post(&s.url))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let www = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(www.contains(want), "MCP, Host {host:?}: {www}");

        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let doc: Value = with_host(http.get(format!("{}{path}", s.base)))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(doc["resource"], "https://mcp.example.com/mcp", "{path}");
            assert_eq!(
                doc["resource_documentation"],
                "https://mcp.example.com/openapi.json"
            );
        }
    }
}

#[tokio::test]
async fn serve_refuses_to_start_with_a_malformed_proxy_or_resource_url() {
    let db = sqlite_db().await;
    for (flag, value, named) in [
        (
            "--trusted-proxies",
            "10.0.0.0/8,proxy.internal",
            "proxy.internal",
        ),
        ("--trusted-proxies", "10.0.0.0/40", "10.0.0.0/40"),
        ("--resource-url", "mcp.example.com", "--resource-url"),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
            .args(["serve", "--bind", "127.0.0.1:0", flag, value])
            .env("DATABASE_URL", &db.url)
            .env_remove("REFERRAL_TRUSTED_PROXIES")
            .env_remove("REFERRAL_RESOURCE_URL")
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} must stop start-up");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{flag} {value}: {err}");
    }
}
