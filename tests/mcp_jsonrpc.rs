//! The JSON-RPC envelope of `POST /mcp` over raw HTTP against a real server on port 0: a
//! malformed message gets a JSON-RPC error (`-32700`, `-32600`, `-32602`) in an
//! `application/json` body with HTTP 400, as the official TypeScript SDK answers; a
//! caller without a credential is refused (401) before its body is looked at; a normal
//! request still works.

mod common;

use common::*;
use referral_mcp::cli::HttpOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(s: &Served, token: Option<&str>, body: &str) -> (StatusCode, String, Value) {
    post_with(s, token, body, &[]).await
}

/// [`post`] with extra request headers.
async fn post_with(
    s: &Served,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let mut r = reqwest::Client::new()
        .post(&s.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, v)
}

#[tokio::test]
async fn malformed_messages_get_json_rpc_errors_with_http_400() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let cases = [
        (
            "unparseable JSON",
            "{\"jsonrpc\": \"2.0\", ",
            -32700,
            json!(null),
        ),
        (
            "a batch",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            -32600,
            json!(null),
        ),
        (
            "an object id",
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
            -32600,
            json!(null),
        ),
        (
            "an array id",
            r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#,
            -32600,
            json!(null),
        ),
        (
            "a bool id",
            r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
            -32600,
            json!(null),
        ),
        (
            "a float id",
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            -32600,
            json!(null),
        ),
        (
            "params as an array",
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":[]}"#,
            -32602,
            json!(7),
        ),
        (
            "params as a string",
            r#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":"list_referrals"}"#,
            -32602,
            json!("s"),
        ),
        (
            "tools/call without a tool name",
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}"#,
            -32602,
            json!(8),
        ),
    ];
    for (what, body, code, id) in cases {
        let (status, ct, v) = post(&s, Some(&admin), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert_eq!(ct, "application/json", "{what}");
        assert_eq!(v["jsonrpc"], "2.0", "{what}: {v}");
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
        assert_eq!(v["id"], id, "{what}: {v}");
    }
    let (_, _, v) = post(&s, Some(&admin), "{oops").await;
    assert_eq!(
        v,
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
}

#[tokio::test]
async fn a_caller_without_credentials_is_refused_before_its_body_is_read() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    for body in [
        "{oops",
        "[]",
        r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
    ] {
        let (status, _, v) = post(&s, None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}: {v}");
        assert_eq!(v["code"], "unauthenticated", "{body}: {v}");
    }
    let (status, _, _) = post(&s, Some("not-a-token"), "{oops").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn well_formed_requests_pass_through_unchanged() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let (status, ct, v) = post(
        &s,
        Some(&admin),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(v["id"], 1);
    assert_eq!(
        v["result"]["tools"].as_array().map(Vec::len),
        Some(9),
        "{v}"
    );
    // without params, with a string id, and an integer written as a float
    for (body, id) in [
        (
            r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}"#,
            json!("a-1"),
        ),
        (r#"{"jsonrpc":"2.0","id":3.0,"method":"ping"}"#, json!(3)),
    ] {
        let (status, _, v) = post(&s, Some(&admin), body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {v}");
        assert_eq!(v["id"], id, "{body}: {v}");
        assert!(v["result"].is_object(), "{body}: {v}");
    }
    // a notification is accepted as before
    let (status, _, _) = post(
        &s,
        Some(&admin),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn rmcp_keeps_answering_what_is_not_a_json_post() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
    let r = reqwest::Client::new()
        .post(&s.url)
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .header("accept", "application/json, text/event-stream")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = reqwest::Client::new()
        .post(&s.url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
}

/// A plain stateless `tools/call` is answered without rmcp's per-request service (the
/// fast lane, `src/mcp/fast_lane.rs`), most tools without rmcp's tool router either
/// (`src/mcp/direct.rs`); the same call that rmcp answers (here made to go there by an
/// `Origin` it allows, or a `_meta`) must give the same JSON-RPC message: a result, a
/// tool error, a JSON-RPC error for an unknown tool and for one the server's toolsets
/// leave out, and a refusal by scope. The text copy of a result is compared as the JSON
/// it holds: the lane writes an answer's keys in the view's order, rmcp sorted.
#[tokio::test]
async fn the_fast_lane_answers_exactly_as_rmcp_does() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let id = seed(&s.app).await;
        let admin = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let user = s.app.auth.jwt().mint(&account("u1"), false, 600).unwrap();
        let call = |name: &str, args: Value, meta: bool| {
            let mut params = json!({"name": name, "arguments": args});
            if meta {
                params["_meta"] = json!({});
            }
            json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": params})
                .to_string()
        };
        let cases = [
            ("get_referral", json!({"id": id}), &admin),
            ("get_referral", json!({"id": 999_999}), &admin),
            ("get_referral", json!({"id": "x"}), &admin),
            ("no_such_tool", json!({}), &admin),
            ("list_referrals", json!({"limit": 2}), &admin),
            (
                "list_referrals",
                json!({"limit": 2, "colour": "red"}),
                &admin,
            ),
            ("get_referral", json!({"id": id}), &user),
            ("get_my_referral_summary", json!({}), &user),
            ("list_my_referral_events", json!({"limit": 1}), &user),
            ("list_campaigns", json!({}), &admin),
        ];
        for (name, args, token) in cases {
            let (status, ct, lane) = post(&s, Some(token), &call(name, args.clone(), false)).await;
            let (origin_status, _, via_origin) = post_with(
                &s,
                Some(token),
                &call(name, args.clone(), false),
                &[("origin", "http://localhost:3000")],
            )
            .await;
            assert_eq!(origin_status, status, "{name} {args}");
            let (_, _, via_meta) = post(&s, Some(token), &call(name, args.clone(), true)).await;
            assert_eq!(status, StatusCode::OK, "{name} {args}: {lane}");
            assert!(ct.starts_with("application/json"), "{ct}");
            assert_eq!(lane["id"], 41, "{lane}");
            let lane = text_as_json(lane);
            if lane["result"]["isError"] == false {
                assert_eq!(
                    lane["result"]["content"][0]["text"], lane["result"]["structuredContent"],
                    "{name} {args}"
                );
            }
            assert_eq!(lane, text_as_json(via_origin), "{name} {args}");
            assert_eq!(lane, text_as_json(via_meta), "{name} {args}");
        }
        // the tool error is a result with isError, the unknown tool a JSON-RPC error
        let (_, _, v) = post(
            &s,
            Some(&admin),
            &call("get_referral", json!({"id": 999_999}), false),
        )
        .await;
        assert_eq!(v["result"]["isError"], true, "{v}");
        let (_, _, v) = post(&s, Some(&admin), &call("no_such_tool", json!({}), false)).await;
        assert!(v["error"]["code"].is_i64(), "{v}");
    }
}

/// A JSON-RPC message with the text of each content block read as the JSON it holds.
fn text_as_json(mut msg: Value) -> Value {
    if let Some(blocks) = msg["result"]["content"].as_array_mut() {
        for b in blocks {
            if let Some(json) = b["text"]
                .as_str()
                .and_then(|t| serde_json::from_str(t).ok())
            {
                b["text"] = json;
            }
        }
    }
    msg
}
