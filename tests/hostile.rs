//! The hostile-input matrix: hundreds of generated malformed, oversized, mistyped and
//! malicious requests against a real server on port 0, over REST (every route of
//! `src/api/endpoints.rs`) and MCP (`POST /mcp`, every tool plus envelope attacks), on
//! SQLite and PostgreSQL. Each must get a clean refusal (REST: a 4xx, never a 5xx; MCP: a
//! JSON-RPC error or a tool error with `error.code`), within a hang guard, without SQL,
//! stack traces or file paths in the answer; afterwards the database is what it was.
//!
//! Requests go over a raw socket so that the test, not an HTTP client library, decides
//! the bytes: `../` and `%2e%2e` stay in the path, invalid UTF-8 reaches the server.

mod common;

use std::time::Duration;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::Scope;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hang guard per request: nothing here should take more than a fraction of it.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Text an answer must never carry unless the request itself did (an echoed input is the
/// caller's own text, not a leak): SQL, driver names, panics, backtraces, source paths.
const LEAKS: &[&str] = &[
    "select ",
    "insert into",
    "update ",
    "delete from",
    "sqlx",
    "sqlstate",
    "panicked",
    "stack backtrace",
    "rust_backtrace",
    "/src/",
    "src/",
    ".rs:",
    "/home/",
    "/work/",
    "/tmp/",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Rest,
    Mcp,
}

/// What a case must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// REST: any 4xx (the exact code is the route's business), never 2xx/3xx/5xx.
    Refused,
    /// REST or MCP: 413 or 431, or the connection closed without an answer (the server
    /// may stop reading a request it will not take; no client sees a success).
    Oversized,
    /// MCP: a JSON-RPC error (any status below 500) or a 200 tool result with
    /// `isError: true` and an `error.code`.
    McpRefused,
    /// MCP: refused at the HTTP level before the protocol (401/403/4xx, no success).
    McpHttpRefused,
    /// MCP: a message that is not a request (a notification, a response): the streamable
    /// HTTP transport answers `202 Accepted` with no body by specification, since there is
    /// no id to answer; what matters is that it does nothing (the snapshot checks that).
    McpAccepted,
}

struct Case {
    face: Face,
    label: String,
    method: &'static str,
    /// The request target exactly as sent.
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    want: Want,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the answer.
/// `None`: the server closed (or reset) without sending a status line.
async fn send(addr: &str, c: &Case) -> Option<Answer> {
    let mut req = Vec::new();
    req.extend_from_slice(c.method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(&c.target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(addr.as_bytes());
    req.extend_from_slice(b"\r\nConnection: close\r\n");
    for (k, v) in &c.headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", c.body.len()).as_bytes());
    req.extend_from_slice(&c.body);
    let sock = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut rd, mut wr) = sock.into_split();
    // Written from its own task: the server may answer (413, 431) and close before it has
    // read everything, and the answer must still be read.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&req).await;
        let _ = wr.flush().await;
        wr
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    drop(writer.await);
    parse_answer(&got)
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body);
    }
    Some(Answer { status, body })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..nl]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[(nl + 2 + size + 2).min(b.len())..];
    }
    out
}

// ---- the cases -------------------------------------------------------------------------

/// Strings that no field accepts as valid: SQL, path traversal, invisible and bidi
/// characters, control characters, markup, and an oversized one.
fn hostile_strings() -> Vec<(&'static str, String)> {
    vec![
        ("sql drop", "'; DROP TABLE ledger; --".into()),
        ("sql or", "x' OR '1'='1".into()),
        (
            "sql union",
            "1 UNION SELECT secret_hash FROM api_keys".into(),
        ),
        ("traversal", "../../etc/passwd".into()),
        ("windows traversal", "..\\..\\windows\\win.ini".into()),
        ("zero-width space", "\u{200b}".into()),
        ("bidi override", "abc\u{202e}def".into()),
        ("nul", "a\u{0}b".into()),
        ("newline", "a\r\nX-Injected: 1".into()),
        ("markup", "<script>alert(1)</script>".into()),
        ("huge", "x".repeat(20_000)),
    ]
}

/// Query-string values (already percent-encoded) that no query field accepts.
const QUERY_VALUES: &[(&str, &str)] = &[
    ("sql", "%27%3B%20DROP%20TABLE%20ledger%3B%20--"),
    ("sql or", "x%27%20OR%20%271%27%3D%271"),
    ("traversal", "..%2F..%2Fetc%2Fpasswd"),
    ("dot-dot", "%2e%2e"),
    ("invalid utf-8", "%FF%FE"),
    ("lone surrogate bytes", "%ED%A0%80"),
    ("nul", "a%00b"),
    ("zero-width space", "%E2%80%8B"),
    ("bidi override", "a%E2%80%AEb"),
    ("markup", "%3Cscript%3E"),
];

fn json_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn json_headers(cred: &(String, String)) -> Vec<(String, Vec<u8>)> {
    vec![
        (cred.0.clone(), cred.1.clone().into_bytes()),
        ("Content-Type".into(), b"application/json".to_vec()),
    ]
}

fn rest(
    label: String,
    method: &'static str,
    target: impl Into<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    want: Want,
) -> Case {
    Case {
        face: Face::Rest,
        label,
        method,
        target: target.into(),
        headers,
        body,
        want,
    }
}

/// Malformed bodies: not JSON, JSON that is not an object, broken encodings, nesting.
fn malformed_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("truncated", b"{\"limit\":".to_vec()),
        ("trailing comma", b"{\"limit\":1,}".to_vec()),
        ("single quotes", b"{'limit':1}".to_vec()),
        ("array", b"[]".to_vec()),
        ("string", b"\"limit\"".to_vec()),
        ("number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("garbage after", b"{}garbage".to_vec()),
        (
            "invalid utf-8 in a string",
            b"{\"reason\":\"\xff\xfe\xfd\"}".to_vec(),
        ),
        ("invalid utf-8 key", b"{\"\xc3\x28\":1}".to_vec()),
        ("nan", b"{\"limit\":NaN}".to_vec()),
        ("deep nesting", {
            let mut b = b"{\"a\":".to_vec();
            b.extend(std::iter::repeat_n(b'[', 5000));
            b
        }),
        ("utf-16 bom", b"\xff\xfe{\x00}\x00".to_vec()),
    ]
}

struct Ids {
    held: i64,
    rewarded: i64,
}

fn rest_cases(admin: &(String, String), user: &(String, String), ids: &Ids) -> Vec<Case> {
    let mut v = Vec::new();
    let admin_json = json_headers(admin);
    let held = ids.held;

    // Path ids on the three id routes: traversal, encoded traversal, SQL, out of range,
    // negative, zero, floats, invisible characters, invalid UTF-8 (all as sent).
    let bad_ids: &[&[u8]] = &[
        b"../../etc/passwd",
        b"..%2f..%2fetc%2fpasswd",
        b"%2e%2e",
        b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        b"..",
        b"1;DROP%20TABLE%20ledger",
        b"1%3BDROP%20TABLE%20attributions",
        b"1%27%20OR%20%271%27%3D%271",
        b"99999999999999999999999",
        b"9223372036854775808",
        b"9223372036854775807",
        b"-1",
        b"-9223372036854775808",
        b"0",
        b"1.5",
        b"1e3",
        b"0x10",
        b"%00",
        b"%FF%FE",
        b"\xff\xfe",
        b"%E2%80%8B1",
        b"1%E2%80%8B",
        b"%EF%BB%BF1",
        b"%EF%BC%91",
        b"NaN",
        b"null",
        b"%20",
    ];
    for id in bad_ids {
        let shown = String::from_utf8_lossy(id);
        let mut t = b"/admin/referrals/".to_vec();
        t.extend_from_slice(id);
        v.push(rest(
            format!("GET /admin/referrals/{shown}"),
            "GET",
            t.clone(),
            admin_json.clone(),
            vec![],
            Want::Refused,
        ));
        for (action, body) in [
            ("approve", json!({"note": "hostile"})),
            ("reject", json!({"reason": "hostile"})),
        ] {
            let mut t = t.clone();
            t.extend_from_slice(format!("/{action}").as_bytes());
            v.push(rest(
                format!("POST /admin/referrals/{shown}/{action}"),
                "POST",
                t,
                admin_json.clone(),
                json_bytes(&body),
                Want::Refused,
            ));
        }
    }

    // Query strings of the GET routes: every field × hostile values; per-field wrong
    // types and ranges; unknown and repeated fields.
    let query_routes: &[(&str, &[&str], &(String, String))] = &[
        (
            "/admin/referrals",
            &[
                "user_id",
                "status",
                "campaign",
                "pending_grant",
                "limit",
                "cursor",
            ],
            admin,
        ),
        ("/admin/referrals/stats", &["from", "to", "campaign"], admin),
        ("/referrals/me/events", &["limit", "cursor"], user),
    ];
    for (path, fields, cred) in query_routes {
        for field in *fields {
            for (what, value) in QUERY_VALUES {
                // `..` is a well-formed account id (letters, digits and `_.:@-`): a
                // filter on it is a valid query that finds nothing, bound as a value.
                if *field == "user_id" && *what == "dot-dot" {
                    continue;
                }
                v.push(rest(
                    format!("GET {path}?{field}= {what}"),
                    "GET",
                    format!("{path}?{field}={value}"),
                    json_headers(cred),
                    vec![],
                    Want::Refused,
                ));
            }
        }
        for q in ["unknown=1", "__proto__=1", "limit=1&limit=2"] {
            v.push(rest(
                format!("GET {path}?{q}"),
                "GET",
                format!("{path}?{q}"),
                json_headers(cred),
                vec![],
                Want::Refused,
            ));
        }
    }
    let typed: &[(&str, &str, &(String, String))] = &[
        ("/admin/referrals", "limit=-1", admin),
        ("/admin/referrals", "limit=0", admin),
        ("/admin/referrals", "limit=101", admin),
        ("/admin/referrals", "limit=99999999999999999999999", admin),
        ("/admin/referrals", "limit=-9223372036854775809", admin),
        ("/admin/referrals", "limit=1.5", admin),
        ("/admin/referrals", "limit=1e300", admin),
        ("/admin/referrals", "limit=Infinity", admin),
        ("/admin/referrals", "limit=true", admin),
        ("/admin/referrals", "pending_grant=yes", admin),
        ("/admin/referrals", "pending_grant=2", admin),
        ("/admin/referrals", "status=REWARDED", admin),
        ("/admin/referrals", "status=granted", admin),
        ("/admin/referrals", "cursor=AAAA", admin),
        ("/admin/referrals", "cursor=eyJpZCI6LTF9", admin),
        ("/admin/referrals", "cursor=-1", admin),
        ("/admin/referrals", "cursor=0", admin),
        ("/admin/referrals", "cursor=____________________", admin),
        ("/admin/referrals", "user_id=a%20b", admin),
        ("/admin/referrals", "campaign=UPPER", admin),
        ("/admin/referrals/stats", "from=2026-13-45", admin),
        ("/admin/referrals/stats", "from=9999-99-99", admin),
        ("/admin/referrals/stats", "from=0000-00-00", admin),
        ("/admin/referrals/stats", "to=2026-02-30", admin),
        ("/admin/referrals/stats", "from=-2026-01-01", admin),
        ("/admin/referrals/stats", "from=%2B275760-01-01", admin),
        ("/admin/referrals/stats", "to=2026-01-01T99:99:99Z", admin),
        ("/admin/referrals/stats", "from=2026-01-01x", admin),
        ("/admin/referrals/stats", "from=99999999999", admin),
        ("/referrals/me/events", "limit=-1", user),
        ("/referrals/me/events", "limit=0", user),
        ("/referrals/me/events", "limit=101", user),
        ("/referrals/me/events", "limit=18446744073709551616", user),
        ("/referrals/me/events", "cursor=AAAA", user),
        ("/referrals/me/events", "cursor=eyJpZCI6LTF9", user),
        ("/referrals/me", "unknown=1", user),
        ("/referrals/me", "limit=5", user),
    ];
    for (path, q, cred) in typed {
        v.push(rest(
            format!("GET {path}?{q}"),
            "GET",
            format!("{path}?{q}"),
            json_headers(cred),
            vec![],
            Want::Refused,
        ));
    }

    // JSON bodies of the POST routes. Approve, reject and recover target the held
    // referral where an id is needed, so only the refusal of the input keeps it held.
    let held_approve = format!("/admin/referrals/{held}/approve");
    let held_reject = format!("/admin/referrals/{held}/reject");
    let post_routes: Vec<&str> = vec![
        &held_approve,
        &held_reject,
        "/admin/referrals/recover",
        "/referrals/click",
        "/ingest/signups",
        "/ingest/qualifications",
    ];
    for path in &post_routes {
        for (what, body) in malformed_bodies() {
            v.push(rest(
                format!("POST {path} {what}"),
                "POST",
                path.to_string(),
                admin_json.clone(),
                body,
                Want::Refused,
            ));
        }
        // Valid JSON, wrong media type.
        v.push(rest(
            format!("POST {path} text/plain"),
            "POST",
            path.to_string(),
            vec![
                (admin.0.clone(), admin.1.clone().into_bytes()),
                ("Content-Type".into(), b"text/plain".to_vec()),
            ],
            b"{\"unknown\":1}".to_vec(),
            Want::Refused,
        ));
        // Unknown fields.
        for body in [
            json!({"unknown": 1}),
            json!({"__proto__": {"admin": true}}),
            json!({"id": 1}),
        ] {
            v.push(rest(
                format!("POST {path} {body}"),
                "POST",
                path.to_string(),
                admin_json.clone(),
                json_bytes(&body),
                Want::Refused,
            ));
        }
        // A 2 MB body (the REST limit is 64 KiB).
        let mut big = b"{\"note\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', 2 << 20));
        big.extend_from_slice(b"\"}");
        v.push(rest(
            format!("POST {path} 2 MB body"),
            "POST",
            path.to_string(),
            admin_json.clone(),
            big,
            Want::Oversized,
        ));
    }
    // Per-field wrong types, ranges and hostile strings.
    let mut field_bodies: Vec<(String, Value)> = Vec::new();
    let rewarded_reject = format!("/admin/referrals/{}/reject", ids.rewarded);
    for bad in [
        json!(123),
        json!([]),
        json!({}),
        json!(true),
        json!(null),
        json!(""),
    ] {
        field_bodies.push((held_reject.clone(), json!({ "reason": bad })));
        // A null note is no note: approving with it is a real approval, not a refusal.
        if !bad.is_null() {
            field_bodies.push((held_approve.clone(), json!({ "note": bad })));
        }
        field_bodies.push(("/referrals/click".into(), json!({ "code": bad })));
        field_bodies.push(("/ingest/signups".into(), json!({ "account": bad })));
        field_bodies.push(("/ingest/qualifications".into(), json!({ "account": bad })));
    }
    for (_, s) in hostile_strings() {
        // Reject: a hostile reason on a referral that is not held (409 or 422, never a
        // change). A cleaned-up reason on the held one would be a legitimate rejection.
        field_bodies.push((rewarded_reject.clone(), json!({ "reason": s })));
        field_bodies.push(("/referrals/click".into(), json!({ "code": s })));
        field_bodies.push((
            "/referrals/click".into(),
            json!({ "code": "zzzz9999", "campaign": s }),
        ));
        field_bodies.push(("/ingest/signups".into(), json!({ "account": s })));
        field_bodies.push(("/ingest/qualifications".into(), json!({ "account": s })));
        field_bodies.push(("/admin/referrals/recover".into(), json!({ "limit": s })));
    }
    for n in [
        json!(-1),
        json!(0),
        json!(10_001),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(1e300),
        json!(-0.5),
        json!("5"),
    ] {
        field_bodies.push(("/admin/referrals/recover".into(), json!({ "limit": n })));
        // 0 and 10,001 are amounts in range (0 to 10^12): a qualification is valid.
        if n == json!(0) || n == json!(10_001) {
            continue;
        }
        field_bodies.push((
            "/ingest/qualifications".into(),
            json!({ "account": "nobody-hostile", "amount": n }),
        ));
    }
    field_bodies.push((
        "/ingest/signups".into(),
        json!({"account": "hostile-1", "ip": "999.1.1.1"}),
    ));
    field_bodies.push((
        "/ingest/signups".into(),
        json!({"account": "hostile-2", "email": "not an email"}),
    ));
    field_bodies.push((
        "/ingest/signups".into(),
        json!({"account": "hostile-3", "code": "../../etc"}),
    ));
    field_bodies.push((
        "/ingest/qualifications".into(),
        json!({"account": "hostile-4", "amount": 1_000_000_000_001_i64}),
    ));
    for (path, body) in field_bodies {
        v.push(rest(
            format!("POST {path} {}", truncate(&body.to_string())),
            "POST",
            path,
            admin_json.clone(),
            json_bytes(&body),
            Want::Refused,
        ));
    }
    // Raw `{"limit":1,"limit":2}`: a duplicate key.
    v.push(rest(
        "POST recover duplicate key".into(),
        "POST",
        "/admin/referrals/recover",
        admin_json.clone(),
        b"{\"limit\":1,\"limit\":2}".to_vec(),
        Want::Refused,
    ));
    // A huge integer literal beyond every numeric type.
    v.push(rest(
        "POST recover 400-digit limit".into(),
        "POST",
        "/admin/referrals/recover",
        admin_json.clone(),
        format!("{{\"limit\":{}}}", "9".repeat(400)).into_bytes(),
        Want::Refused,
    ));

    // Credentials: forged, malformed, oversized and mixed-up, on every authenticated
    // route (401, or 400/431 for headers the HTTP layer refuses).
    let bad_creds: Vec<(&str, Vec<u8>)> = vec![
        ("x-api-key", b"rk_' OR 1=1 --".to_vec()),
        ("x-api-key", b"rk_../../etc/passwd".to_vec()),
        ("x-api-key", b"".to_vec()),
        ("x-api-key", vec![b'a'; 8 * 1024]),
        ("x-api-key", b"rk_\xff\xfe".to_vec()),
        ("x-api-key", format!("\u{200b}{}", admin.1).into_bytes()),
        ("x-api-key", format!("{}\u{200b}", admin.1).into_bytes()),
        ("Authorization", b"Bearer ".to_vec()),
        ("Authorization", b"Bearer a.b.c".to_vec()),
        // alg none, sub ops, role admin.
        (
            "Authorization",
            b"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJvcHMiLCJyb2xlIjoiYWRtaW4iLCJleHAiOjQxMDI0NDQ4MDB9.".to_vec(),
        ),
        ("Authorization", b"Basic b3BzOm9wcw==".to_vec()),
        ("Authorization", b"Bearer ' OR 1=1 --".to_vec()),
    ];
    let authed: &[(&str, &str)] = &[
        ("GET", "/admin/referrals"),
        ("GET", "/admin/referrals/1"),
        ("POST", "/admin/referrals/1/approve"),
        ("POST", "/admin/referrals/recover"),
        ("GET", "/admin/referrals/stats"),
        ("GET", "/referrals/me"),
        ("GET", "/referrals/me/events"),
        ("POST", "/ingest/signups"),
        ("POST", "/ingest/qualifications"),
        ("GET", "/auth/whoami"),
    ];
    for (method, path) in authed {
        for (name, value) in &bad_creds {
            v.push(rest(
                format!(
                    "{method} {path} with {name}: {}",
                    truncate(&String::from_utf8_lossy(value))
                ),
                method,
                path.to_string(),
                vec![
                    (name.to_string(), value.clone()),
                    ("Content-Type".into(), b"application/json".to_vec()),
                ],
                b"{\"limit\":1}".to_vec(),
                Want::Refused,
            ));
        }
        // A 100 KB header value (the limit is 32 KiB).
        v.push(rest(
            format!("{method} {path} 100 KB header"),
            method,
            path.to_string(),
            vec![
                (admin.0.clone(), admin.1.clone().into_bytes()),
                ("X-Padding".into(), vec![b'a'; 100 * 1024]),
            ],
            vec![],
            Want::Oversized,
        ));
    }
    // Wrong kind of credential: an API key on the user's own routes (403).
    for path in ["/referrals/me", "/referrals/me/events"] {
        v.push(rest(
            format!("GET {path} with an API key"),
            "GET",
            path,
            admin_json.clone(),
            vec![],
            Want::Refused,
        ));
    }
    // Wrong methods and unknown paths.
    for (method, path) in [
        ("DELETE", "/admin/referrals/1"),
        ("PUT", "/admin/referrals/1/approve"),
        ("GET", "/admin/referrals/recover"),
        ("GET", "/referrals/click"),
        ("PATCH", "/ingest/signups"),
        ("GET", "/admin/referrals/1/approve/extra"),
        ("GET", "/admin//referrals"),
        ("GET", "/../../etc/passwd"),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
        ("GET", "/src/main.rs"),
    ] {
        v.push(rest(
            format!("{method} {path}"),
            method,
            path,
            admin_json.clone(),
            vec![],
            Want::Refused,
        ));
    }
    v
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_owned()
    }
}

// ---- MCP --------------------------------------------------------------------------------

fn mcp(label: String, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>, want: Want) -> Case {
    Case {
        face: Face::Mcp,
        label,
        method: "POST",
        target: b"/mcp".to_vec(),
        headers,
        body,
        want,
    }
}

fn mcp_headers(cred: &(String, String)) -> Vec<(String, Vec<u8>)> {
    vec![
        (cred.0.clone(), cred.1.clone().into_bytes()),
        ("Content-Type".into(), b"application/json".to_vec()),
        (
            "Accept".into(),
            b"application/json, text/event-stream".to_vec(),
        ),
    ]
}

fn call(id: i64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

fn mcp_cases(admin: &(String, String), user: &(String, String), ids: &Ids) -> Vec<Case> {
    let mut v = Vec::new();
    let h = mcp_headers(admin);
    let uh = mcp_headers(user);
    let held = ids.held;
    let mut n = 0i64;
    let mut push_call =
        |v: &mut Vec<Case>, tool: &str, args: Value, headers: &[(String, Vec<u8>)]| {
            n += 1;
            v.push(mcp(
                format!("tools/call {tool} {}", truncate(&args.to_string())),
                headers.to_vec(),
                json_bytes(&call(n, tool, args)),
                Want::McpRefused,
            ));
        };

    // Every tool × unknown fields and arguments of the wrong shape.
    let tools: &[(&str, bool)] = &[
        ("list_referrals", false),
        ("get_referral", false),
        ("approve_referral", false),
        ("reject_referral", false),
        ("recover_referral_grants", false),
        ("get_referral_stats", false),
        ("capture_referral_click", false),
        ("get_my_referral_summary", true),
        ("list_my_referral_events", true),
    ];
    for (tool, as_user) in tools {
        let hh = if *as_user { &uh } else { &h };
        for args in [
            json!({"unknown": 1}),
            json!({"__proto__": {"admin": true}}),
            json!([]),
            json!("string"),
            json!(42),
        ] {
            push_call(&mut v, tool, args, hh);
        }
    }
    // Ids: missing, wrong types, out of range, and a well-formed one that does not exist.
    for tool in ["get_referral", "approve_referral", "reject_referral"] {
        for id in [
            json!(null),
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1.5),
            json!(1e300),
            json!("1"),
            json!("../../etc/passwd"),
            json!("1; DROP TABLE ledger"),
            json!([held]),
            json!({"id": held}),
            json!(true),
            json!(i64::MAX),
        ] {
            push_call(&mut v, tool, json!({"id": id, "reason": "hostile"}), &h);
        }
    }
    // The held referral with bad companion fields: only the refusal keeps it held.
    for bad in [
        json!(5),
        json!([]),
        json!(""),
        json!("   "),
        json!("x".repeat(501)),
    ] {
        push_call(
            &mut v,
            "approve_referral",
            json!({"id": held, "note": bad}),
            &h,
        );
        push_call(
            &mut v,
            "reject_referral",
            json!({"id": held, "reason": bad}),
            &h,
        );
    }
    push_call(&mut v, "reject_referral", json!({"id": held}), &h);
    push_call(
        &mut v,
        "approve_referral",
        json!({"id": held, "note": "ok", "force": true}),
        &h,
    );
    // Hostile strings in every string field.
    for (_, s) in hostile_strings() {
        for (tool, field, as_user) in [
            ("list_referrals", "user_id", false),
            ("list_referrals", "status", false),
            ("list_referrals", "campaign", false),
            ("list_referrals", "cursor", false),
            ("get_referral_stats", "from", false),
            ("get_referral_stats", "to", false),
            ("get_referral_stats", "campaign", false),
            ("capture_referral_click", "code", false),
            ("list_my_referral_events", "cursor", true),
        ] {
            let mut args = serde_json::Map::new();
            args.insert(field.into(), json!(s));
            push_call(
                &mut v,
                tool,
                Value::Object(args),
                if as_user { &uh } else { &h },
            );
        }
        push_call(
            &mut v,
            "reject_referral",
            json!({"id": ids.rewarded, "reason": s}),
            &h,
        );
    }
    // Numbers: negative, zero, over the bound, huge, fractional, wrong type.
    for n in [
        json!(-1),
        json!(0),
        json!(101),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(1e300),
        json!("20"),
        json!(true),
    ] {
        push_call(&mut v, "list_referrals", json!({ "limit": n }), &h);
        push_call(
            &mut v,
            "list_my_referral_events",
            json!({ "limit": n }),
            &uh,
        );
        if n != json!(101) {
            push_call(&mut v, "recover_referral_grants", json!({ "limit": n }), &h);
        }
    }
    push_call(
        &mut v,
        "recover_referral_grants",
        json!({"limit": 10_001}),
        &h,
    );
    push_call(
        &mut v,
        "list_referrals",
        json!({"pending_grant": "yes"}),
        &h,
    );
    push_call(&mut v, "list_referrals", json!({"status": "REWARDED"}), &h);
    // Bad cursors: made up, malformed, wrong type.
    for c in [
        json!("AAAA"),
        json!("eyJpZCI6LTF9"),
        json!("-1"),
        json!(""),
        json!(12),
        json!("x".repeat(5000)),
    ] {
        push_call(&mut v, "list_referrals", json!({ "cursor": c }), &h);
        push_call(
            &mut v,
            "list_my_referral_events",
            json!({ "cursor": c }),
            &uh,
        );
    }
    // Dates that are not dates.
    for d in [
        "2026-13-45",
        "9999-99-99",
        "0000-00-00",
        "2026-02-30",
        "+275760-01-01",
        "2026-01-01T99:99:99Z",
    ] {
        push_call(&mut v, "get_referral_stats", json!({ "from": d }), &h);
    }
    // Clicks with a code that does not exist (a real code would write by design).
    for code in ["zzzz9999", "aaaa", &"a".repeat(33), "abc", "\u{200b}abcd"] {
        push_call(
            &mut v,
            "capture_referral_click",
            json!({ "code": code }),
            &h,
        );
    }
    // Tools the caller may not use: a user JWT on admin tools, an API key on `me` tools.
    for tool in [
        "list_referrals",
        "approve_referral",
        "recover_referral_grants",
    ] {
        push_call(&mut v, tool, json!({"id": held}), &uh);
    }
    push_call(&mut v, "get_my_referral_summary", json!({}), &h);
    // Unknown or malformed tool names.
    for name in [
        json!("drop_tables"),
        json!("../../etc/passwd"),
        json!("list_referrals\u{200b}"),
        json!(""),
    ] {
        n += 1;
        v.push(mcp(
            format!("tools/call name {name}"),
            h.clone(),
            json_bytes(&json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                               "params": {"name": name, "arguments": {}}})),
            Want::McpRefused,
        ));
    }

    // The envelope.
    let envelope: Vec<(&str, Vec<u8>)> = vec![
        ("batch of two", json_bytes(&json!([call(1, "list_referrals", json!({})), call(2, "list_referrals", json!({}))]))),
        ("batch approving the held referral", json_bytes(&json!([call(1, "approve_referral", json!({"id": held}))]))),
        ("empty batch", b"[]".to_vec()),
        ("object id", json_bytes(&json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/call", "params": {"name": "approve_referral", "arguments": {"id": held}}}))),
        ("array id", json_bytes(&json!({"jsonrpc": "2.0", "id": [1], "method": "tools/call", "params": {"name": "approve_referral", "arguments": {"id": held}}}))),
        ("float id", json_bytes(&json!({"jsonrpc": "2.0", "id": 1.5, "method": "tools/call", "params": {"name": "approve_referral", "arguments": {"id": held}}}))),
        ("bool id", json_bytes(&json!({"jsonrpc": "2.0", "id": true, "method": "tools/list"}))),
        ("params as array", json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["approve_referral", {"id": held}]}))),
        ("params as string", json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "approve_referral"}))),
        ("no tool name", json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {"id": held}}}))),
        ("jsonrpc 1.0", json_bytes(&json!({"jsonrpc": "1.0", "id": 1, "method": "tools/call", "params": {"name": "approve_referral", "arguments": {"id": held}}}))),
        ("no method", json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "params": {}}))),
        ("unknown method", json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "method": "admin/dropDatabase"}))),
        ("method as number", json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "method": 7}))),
        ("unparseable", b"{\"jsonrpc\": \"2.0\", ".to_vec()),
        ("invalid utf-8", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_referrals\",\"arguments\":{\"cursor\":\"\xff\xfe\"}}}".to_vec()),
        ("invalid utf-8 method", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/\xc3\x28call\"}".to_vec()),
        ("a string", b"\"tools/call\"".to_vec()),
        ("null", b"null".to_vec()),
        ("deep nesting", {
            let mut b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_referrals\",\"arguments\":".to_vec();
            b.extend(std::iter::repeat_n(b'[', 100_000));
            b
        }),
        ("deep nesting, closed", {
            let mut b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_referrals\",\"arguments\":{\"cursor\":".to_vec();
            b.extend(std::iter::repeat_n(b'[', 1000));
            b.extend(std::iter::repeat_n(b']', 1000));
            b.extend_from_slice(b"}}}");
            b
        }),
    ];
    for (what, body) in envelope {
        v.push(mcp(
            format!("envelope: {what}"),
            h.clone(),
            body,
            Want::McpRefused,
        ));
    }
    for (what, body) in [
        (
            "a notification calling approve",
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "approve_referral", "arguments": {"id": held}}}),
        ),
        (
            "a notification calling recover",
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "recover_referral_grants", "arguments": {}}}),
        ),
        (
            "a response posted as a request",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}),
        ),
    ] {
        v.push(mcp(
            format!("envelope: {what}"),
            h.clone(),
            json_bytes(&body),
            Want::McpAccepted,
        ));
    }
    // A 2 MB body (the MCP limit is 1 MiB) and a 100 KB header.
    let mut big = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_referrals\",\"arguments\":{\"cursor\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2 << 20));
    big.extend_from_slice(b"\"}}}");
    v.push(mcp("2 MB body".into(), h.clone(), big, Want::Oversized));
    let mut padded = h.clone();
    padded.push(("X-Padding".into(), vec![b'a'; 100 * 1024]));
    v.push(mcp(
        "100 KB header".into(),
        padded,
        json_bytes(&call(1, "list_referrals", json!({}))),
        Want::Oversized,
    ));
    // Credentials and the DNS-rebinding checks: refused at the HTTP level.
    let approve_held = json_bytes(&call(1, "approve_referral", json!({"id": held})));
    let base = |cred: Option<(&str, Vec<u8>)>| {
        let mut hs: Vec<(String, Vec<u8>)> = vec![
            ("Content-Type".into(), b"application/json".to_vec()),
            (
                "Accept".into(),
                b"application/json, text/event-stream".to_vec(),
            ),
        ];
        if let Some((k, val)) = cred {
            hs.push((k.into(), val));
        }
        hs
    };
    for (what, cred) in [
        ("no credential", None),
        ("forged key", Some(("x-api-key", b"rk_0000000000_nope".to_vec()))),
        ("sql key", Some(("x-api-key", b"rk_' OR 1=1 --".to_vec()))),
        ("invalid utf-8 key", Some(("x-api-key", b"rk_\xff".to_vec()))),
        ("garbage bearer", Some(("Authorization", b"Bearer a.b.c".to_vec()))),
        (
            "alg none",
            Some((
                "Authorization",
                b"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJvcHMiLCJyb2xlIjoiYWRtaW4iLCJleHAiOjQxMDI0NDQ4MDB9.".to_vec(),
            )),
        ),
    ] {
        v.push(mcp(
            format!("credential: {what}"),
            base(cred),
            approve_held.clone(),
            Want::McpHttpRefused,
        ));
    }
    let mut foreign_origin = h.clone();
    foreign_origin.push(("Origin".into(), b"http://evil.example".to_vec()));
    v.push(mcp(
        "foreign Origin".into(),
        foreign_origin,
        approve_held.clone(),
        Want::McpHttpRefused,
    ));
    v
}

// ---- the database snapshot --------------------------------------------------------------

/// Row counts of every table and the rows that carry money and state. Left out on
/// purpose, as the design allows them to change:
/// - `rate_limits`: public calls (refused ones too) count against the caller's per-IP
///   budget;
/// - the metering pairs in `ledger` (`usage:…` debits and their `refund:…`): the core
///   charges before it runs an operation and refunds it when the operation fails (see
///   the README's Architecture), so a refused call may leave a debit and its refund.
///   [`metering_rows`] checks each such debit has its refund; balances and per-account
///   ledger sums stay in the snapshot, so a failed call that cost anything still fails.
async fn snapshot(db: &TestDb) -> Vec<String> {
    let mut c = sql(db).await;
    let mut out = Vec::new();
    for t in [
        "settings",
        "campaigns",
        "accounts",
        "clicks",
        "click_daily",
        "attributions",
        "review_reasons",
        "rewards",
        "audit_events",
        "ledger",
        "balances",
        "api_keys",
    ] {
        let not_metering = if t == "ledger" { METERING_EXCLUDED } else { "" };
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {t}{not_metering}"
        )))
        .fetch_one(&mut c)
        .await
        .expect("count rows");
        out.push(format!("{t}: {n} rows"));
    }
    for (what, q) in [
        (
            "ledger",
            "SELECT account || '|' || CAST(delta AS TEXT) || '|' || kind || '|' || idempotency_key FROM ledger WHERE idempotency_key NOT LIKE 'usage:%' AND idempotency_key NOT LIKE 'refund:%' ORDER BY idempotency_key",
        ),
        (
            "ledger sum",
            "SELECT account || '|' || CAST(SUM(delta) AS TEXT) FROM ledger GROUP BY account ORDER BY account",
        ),
        (
            "balances",
            "SELECT account || '|' || CAST(balance AS TEXT) FROM balances ORDER BY account",
        ),
        (
            "attributions",
            "SELECT CAST(id AS TEXT) || '|' || status || '|' || COALESCE(review_decision, '-') || '|' || CAST(updated_at AS TEXT) FROM attributions ORDER BY id",
        ),
        (
            "rewards",
            "SELECT CAST(id AS TEXT) || '|' || status || '|' || CAST(attempts AS TEXT) || '|' || CAST(credits AS TEXT) || '|' || COALESCE(CAST(granted_at AS TEXT), '-') FROM rewards ORDER BY id",
        ),
        (
            "accounts",
            "SELECT id || '|' || CAST(clicks_total AS TEXT) || '|' || CAST(clicks_unique AS TEXT) FROM accounts ORDER BY id",
        ),
        (
            "api keys",
            "SELECT prefix || '|' || scopes || '|' || COALESCE(CAST(revoked_at AS TEXT), '-') FROM api_keys ORDER BY prefix",
        ),
    ] {
        let rows = sqlx::query(q)
            .fetch_all(&mut c)
            .await
            .expect("snapshot query");
        for r in rows {
            let s: String = r.try_get(0).expect("text column");
            out.push(format!("{what}: {s}"));
        }
    }
    out
}

const METERING_EXCLUDED: &str =
    " WHERE idempotency_key NOT LIKE 'usage:%' AND idempotency_key NOT LIKE 'refund:%'";

/// The metering rows of the ledger: (idempotency key, account, delta).
async fn metering_rows(db: &TestDb) -> Vec<(String, String, i64)> {
    let mut c = sql(db).await;
    sqlx::query(
        "SELECT idempotency_key, account, CAST(delta AS BIGINT) FROM ledger WHERE idempotency_key LIKE 'usage:%' OR idempotency_key LIKE 'refund:%'",
    )
    .fetch_all(&mut c)
    .await
    .expect("metering rows")
    .into_iter()
    .map(|r| {
        (
            r.try_get(0).expect("key"),
            r.try_get(1).expect("account"),
            r.try_get(2).expect("delta"),
        )
    })
    .collect()
}

/// Every debit added during the matrix has its refund (same call, same account, the
/// opposite amount), and no refund came without a debit: failed calls cost nothing.
fn unrefunded(before: &[(String, String, i64)], after: &[(String, String, i64)]) -> Vec<String> {
    let added: Vec<_> = after.iter().filter(|r| !before.contains(r)).collect();
    let mut wrong = Vec::new();
    for (key, account, delta) in &added {
        let (twin, ok) = match key.split_once(':') {
            Some(("usage", call)) => (format!("refund:{call}"), true),
            Some(("refund", call)) => (format!("usage:{call}"), true),
            _ => (String::new(), false),
        };
        let paired = ok
            && added
                .iter()
                .any(|(k, a, d)| *k == twin && a == account && *d == -delta);
        if !paired {
            wrong.push(format!("{key} {account} {delta} has no counterpart"));
        }
    }
    wrong
}

// ---- the check ----------------------------------------------------------------------------

/// What is wrong with this answer, if anything.
fn verdict(c: &Case, a: Option<&Answer>) -> Option<String> {
    let Some(a) = a else {
        return (c.want != Want::Oversized)
            .then(|| "the connection closed without an answer".to_owned());
    };
    if a.status >= 500 {
        return Some(format!("server error {}", a.status));
    }
    let text = String::from_utf8_lossy(&a.body).to_lowercase();
    let sent = String::from_utf8_lossy(&c.body).to_lowercase()
        + &String::from_utf8_lossy(&c.target).to_lowercase();
    for leak in LEAKS {
        if text.contains(leak) && !sent.contains(leak) {
            return Some(format!("the answer leaks {leak:?}"));
        }
    }
    match c.want {
        Want::Refused | Want::McpHttpRefused => {
            (!(400..500).contains(&a.status)).then(|| format!("status {} is not a 4xx", a.status))
        }
        Want::McpAccepted => (!(a.status == 202 && a.body.is_empty()
            || (400..500).contains(&a.status)))
        .then(|| format!("status {}, neither 202 without a body nor a 4xx", a.status)),
        Want::Oversized => (![413, 431].contains(&a.status))
            .then(|| format!("status {} is neither 413 nor 431", a.status)),
        Want::McpRefused => {
            let Ok(v) = serde_json::from_slice::<Value>(&a.body) else {
                return Some(format!("status {}, the body is not JSON", a.status));
            };
            if v["error"]["code"].is_i64() && (400..500).contains(&a.status)
                || a.status == 200 && v["error"]["code"].is_i64()
            {
                return None;
            }
            if a.status != 200 {
                return Some(format!("status {} without a JSON-RPC error", a.status));
            }
            if v["result"]["isError"] != true {
                return Some("a tool result that is not an error".into());
            }
            let code = v["result"]["structuredContent"]["error"]["code"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    v["result"]["content"][0]["text"]
                        .as_str()
                        .and_then(|t| serde_json::from_str::<Value>(t).ok())
                        .and_then(|e| e["error"]["code"].as_str().map(str::to_owned))
                });
            code.is_none()
                .then(|| "a tool error without error.code".into())
        }
    }
}

#[tokio::test]
async fn hostile_input_over_rest_and_mcp_gets_clean_refusals_and_changes_nothing() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let rewarded = 1; // alice → bob, the first attribution, rewarded by the seed.
        assert_eq!(
            detail(&s.app, rewarded).await.referral.status.to_string(),
            "rewarded"
        );
        let admin_key = s
            .app
            .auth
            .keys()
            .create(
                "hostile",
                &account("ops"),
                Scope::ALL.iter().copied().collect(),
                0,
            )
            .await
            .expect("admin key")
            .key;
        let user_jwt = s
            .app
            .auth
            .jwt()
            .mint(&account("alice"), false, 600)
            .expect("user token");
        let admin = ("x-api-key".to_owned(), admin_key);
        let user = ("Authorization".to_owned(), format!("Bearer {user_jwt}"));
        let ids = Ids { held, rewarded };

        // Controls: the same raw client with the same credentials does get through, so
        // the refusals below are the inputs' doing (free calls: nothing is charged).
        for (label, cred, face, target, body) in [
            (
                "whoami, admin key",
                &admin,
                Face::Rest,
                "/auth/whoami",
                vec![],
            ),
            (
                "whoami, user token",
                &user,
                Face::Rest,
                "/auth/whoami",
                vec![],
            ),
            (
                "tools/list, admin key",
                &admin,
                Face::Mcp,
                "/mcp",
                json_bytes(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            ),
        ] {
            let c = Case {
                face,
                label: label.into(),
                method: if face == Face::Rest { "GET" } else { "POST" },
                target: target.into(),
                headers: mcp_headers(cred),
                body,
                want: Want::Refused,
            };
            let a = send(s.base.trim_start_matches("http://"), &c)
                .await
                .expect("an answer");
            assert_eq!(
                a.status,
                200,
                "[{}] control {label}: {}",
                db.label,
                String::from_utf8_lossy(&a.body)
            );
        }

        let before = snapshot(&db).await;
        let metering_before = metering_rows(&db).await;
        let addr = s.base.trim_start_matches("http://").to_owned();
        let mut cases = rest_cases(&admin, &user, &ids);
        cases.extend(mcp_cases(&admin, &user, &ids));

        let mut failures = Vec::new();
        let (mut rest_n, mut mcp_n) = (0, 0);
        for c in &cases {
            match c.face {
                Face::Rest => rest_n += 1,
                Face::Mcp => mcp_n += 1,
            }
            let answer = match tokio::time::timeout(HANG_GUARD, send(&addr, c)).await {
                Ok(a) => a,
                Err(_) => {
                    failures.push(format!(
                        "[{}] {}: no answer within {HANG_GUARD:?}",
                        db.label, c.label
                    ));
                    continue;
                }
            };
            if let Some(why) = verdict(c, answer.as_ref()) {
                let body = answer
                    .as_ref()
                    .map(|a| truncate(&String::from_utf8_lossy(&a.body)))
                    .unwrap_or_default();
                let status = answer.as_ref().map_or(0, |a| a.status);
                failures.push(format!(
                    "[{}] {}: {why} ({status} {body})",
                    db.label, c.label
                ));
            }
        }
        let after = snapshot(&db).await;
        let unpaid = unrefunded(&metering_before, &metering_rows(&db).await);
        eprintln!(
            "hostile matrix on {}: {rest_n} REST cases, {mcp_n} MCP cases, {} in all, {} failed",
            db.label,
            rest_n + mcp_n,
            failures.len()
        );
        let changed: Vec<_> = before
            .iter()
            .filter(|r| !after.contains(r))
            .map(|r| format!("- {r}"))
            .chain(
                after
                    .iter()
                    .filter(|r| !before.contains(r))
                    .map(|r| format!("+ {r}")),
            )
            .collect();
        assert!(
            failures.is_empty() && changed.is_empty(),
            "{} refusals went wrong:\n{}\n[{}] hostile input changed the database:\n{}",
            failures.len(),
            failures.join("\n"),
            db.label,
            changed.join("\n")
        );
        assert!(
            unpaid.is_empty(),
            "[{}] failed calls were charged:\n{}",
            db.label,
            unpaid.join("\n")
        );
        assert!(rest_n + mcp_n >= 200, "only {} cases", rest_n + mcp_n);
        s.stop.cancel();
    }
}
