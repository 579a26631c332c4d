//! What a browser sees: CORS on `/mcp` (preflight before authentication, readable
//! challenges, the Origin allow-list still enforced), CORS on the public click route, and
//! `404` for paths that do not exist (so OAuth discovery ends cleanly).

mod common;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::ScopeSet;
use reqwest::{Method, Response};
use serde_json::json;

const WEB: &str = "http://localhost:6274";
const EVIL: &str = "http://evil.example";

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn preflight(url: &str, origin: &str, headers: &str) -> Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn assert_exposes_mcp_headers(r: &Response) {
    let expose = header(r, "access-control-expose-headers");
    for h in ["www-authenticate", "mcp-session-id", "mcp-protocol-version"] {
        assert!(expose.contains(h), "{h} not exposed: {expose:?}");
    }
}

#[tokio::test]
async fn unknown_paths_answer_404_not_401() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/register",
        "/nope",
    ] {
        let r = http.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 404, "GET {path}");
        let r = http.post(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 404, "POST {path}");
    }
    // `/mcp` itself still asks for credentials.
    let r = http.post(&s.url).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_browser_preflight_to_mcp_is_answered_before_authentication() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let r = preflight(&s.url, WEB, "x-api-key,content-type,mcp-protocol-version").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), WEB);
    assert!(header(&r, "access-control-allow-methods").contains("post"));
    let allowed = header(&r, "access-control-allow-headers");
    for h in [
        "x-api-key",
        "authorization",
        "content-type",
        "mcp-protocol-version",
    ] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed:?}");
    }
    assert_eq!(header(&r, "access-control-allow-credentials"), "");
}

#[tokio::test]
async fn every_mcp_answer_exposes_the_headers_a_web_client_reads_including_401() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let key = s
        .app
        .auth
        .keys()
        .create(
            "web",
            &account("ops"),
            ScopeSet::parse("referrals:read").unwrap(),
            0,
        )
        .await
        .unwrap();
    s.app.core.top_up(&account("ops"), 10, "t").await.unwrap();
    let http = reqwest::Client::new();
    let post = || {
        http.post(&s.url)
            .header("origin", WEB)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
    };
    let r = post().send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), WEB);
    assert_exposes_mcp_headers(&r);
    assert!(header(&r, "www-authenticate").starts_with("bearer"));

    let r = post().header("x-api-key", &key.key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), WEB);
    assert_exposes_mcp_headers(&r);
}

#[tokio::test]
async fn a_foreign_origin_gets_no_cors_grant_and_is_still_refused_403() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let r = preflight(&s.url, EVIL, "x-api-key").await;
    assert_eq!(header(&r, "access-control-allow-origin"), "");

    let key = s
        .app
        .auth
        .keys()
        .create(
            "web",
            &account("ops"),
            ScopeSet::parse("referrals:read").unwrap(),
            0,
        )
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(&s.url)
        .header("origin", EVIL)
        .header("x-api-key", &key.key)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "DNS-rebinding check on Origin");
    assert_eq!(header(&r, "access-control-allow-origin"), "");
}

#[tokio::test]
async fn the_click_route_answers_cors_only_for_configured_origins() {
    let db = sqlite_db().await;
    let app_origin = "https://app.example";
    let s = serve(
        &db,
        HttpOptions {
            click_cors_origins: vec![app_origin.into()],
            ..HttpOptions::default()
        },
    )
    .await;
    let code = register(&s.app.core, "alice", "alice@example.com", "198.51.100.1").await;
    let click = format!("{}/referrals/click", s.base);

    let r = preflight(&click, app_origin, "content-type").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), app_origin);
    let r = preflight(&click, EVIL, "content-type").await;
    assert_eq!(header(&r, "access-control-allow-origin"), "");

    let r = reqwest::Client::new()
        .post(&click)
        .header("origin", app_origin)
        .json(&json!({"code": code.as_str(), "landing_url": "https://app.example/r/x"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), app_origin);

    // Authenticated REST routes get no CORS grant, even from that origin.
    let r = preflight(
        &format!("{}/admin/referrals", s.base),
        app_origin,
        "x-api-key",
    )
    .await;
    assert_eq!(header(&r, "access-control-allow-origin"), "");
}
