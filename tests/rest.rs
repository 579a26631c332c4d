//! REST end to end: a real server on port 0, plain HTTP requests with reqwest, on SQLite
//! and PostgreSQL. What a program that is not an agent sees.

mod common;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::config::Config;
use referral_mcp::core::access::{Scope, ScopeSet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    #[must_use = "every request asserts its status"]
    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            r = if k.starts_with("rk_") {
                r.header("x-api-key", k)
            } else {
                r.bearer_auth(k)
            };
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, v)
    }

    #[must_use = "every request asserts its status"]
    async fn get(
        &self,
        path: &str,
        key: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(Method::GET, path, key, None).await
    }

    #[must_use = "every request asserts its status"]
    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(Method::POST, path, key, Some(body)).await
    }
}

async fn key(s: &Served, account_id: &str, scopes: &[Scope]) -> String {
    s.app
        .auth
        .keys()
        .create(
            "test",
            &account(account_id),
            scopes.iter().copied().collect(),
            0,
        )
        .await
        .unwrap()
        .key
}

/// Checks the RFC 9457 shape and that nothing internal leaks.
fn assert_problem(
    label: &str,
    status: StatusCode,
    h: &reqwest::header::HeaderMap,
    body: &Value,
    want: StatusCode,
    code: &str,
) {
    assert_eq!(status, want, "[{label}] {body}");
    assert_eq!(
        h.get("content-type").unwrap(),
        "application/problem+json",
        "[{label}]"
    );
    assert_eq!(body["status"], want.as_u16(), "[{label}] {body}");
    assert_eq!(body["code"], code, "[{label}] {body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    let text = body.to_string().to_lowercase();
    for leak in ["sqlx", "select ", "src/", "panicked", "stack"] {
        assert!(!text.contains(leak), "[{label}] leaks {leak}: {body}");
    }
    assert!(h.get("x-request-id").is_some(), "[{label}] request id");
}

#[tokio::test]
async fn every_documented_path_is_in_the_openapi_document_and_answers() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let admin = key(&s, "ops", &Scope::ALL).await;
        let user = s
            .app
            .auth
            .jwt()
            .mint(&account("alice"), false, 600)
            .unwrap();
        let c = Client::new(&s.base);
        let (status, _, doc) = c.get("/openapi.json", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        let meta: Value =
            serde_json::from_str(include_str!("fixtures/openapi-3.1-schema.json")).unwrap();
        let validator = jsonschema::validator_for(&meta).unwrap();
        let problems: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(
            problems.is_empty(),
            "not a valid OpenAPI 3.1 document: {problems:?}"
        );
        let mut broken = doc.clone();
        broken["paths"]["/admin/referrals"]["get"]["responses"] = json!("none");
        assert!(
            !validator.is_valid(&broken),
            "the meta-schema check is not vacuous"
        );
        // The nine paths of the product docs, plus the lifecycle events, voiding a
        // reward, campaigns and whoami.
        let expected = [
            ("get", "/admin/referrals"),
            ("get", "/admin/referrals/{id}"),
            ("post", "/admin/referrals/{id}/approve"),
            ("post", "/admin/referrals/{id}/reject"),
            ("post", "/admin/referrals/recover"),
            ("get", "/admin/referrals/stats"),
            ("post", "/referrals/click"),
            ("get", "/referrals/me"),
            ("get", "/referrals/me/events"),
            ("post", "/ingest/signups"),
            ("post", "/ingest/qualifications"),
            ("post", "/ingest/refunds"),
            ("post", "/admin/referrals/{id}/void"),
            ("get", "/admin/campaigns"),
            ("post", "/admin/campaigns"),
            ("get", "/admin/campaigns/{id}"),
            ("patch", "/admin/campaigns/{id}"),
            ("get", "/auth/whoami"),
            ("get", "/admin/webhooks"),
            ("post", "/admin/webhooks"),
            ("post", "/admin/webhooks/{id}/disable"),
            ("get", "/admin/webhooks/deliveries"),
            ("post", "/admin/webhooks/deliveries/replay-dead"),
            ("post", "/admin/webhooks/deliveries/{id}/replay"),
        ];
        let mut documented = Vec::new();
        let mut statuses = std::collections::HashMap::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                documented.push((method.clone(), path.clone()));
                statuses.insert(
                    (method.clone(), path.clone()),
                    op["responses"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                assert!(
                    ["200", "201", "202", "204"]
                        .iter()
                        .any(|c| op["responses"][c].is_object()),
                    "{method} {path} documents its success"
                );
                assert!(op["operationId"].is_string(), "{method} {path}");
                assert!(op["security"].is_array(), "{method} {path}");
            }
        }
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        want.sort();
        documented.sort();
        assert_eq!(documented, want, "[{}] documented routes", db.label);
        assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearerJwt"].is_object());
        // every $ref points at a component that exists
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
        // every documented route answers with a valid credential, with a status its
        // documentation lists (approve runs before reject, so reject is a 409 here)
        let code = s
            .app
            .core
            .summary_for(&account("alice"))
            .await
            .unwrap()
            .referral_code;
        for (method, path) in &documented {
            let p = if path.starts_with("/admin/campaigns") {
                path.replace("{id}", "default")
            } else {
                path.replace("{id}", &held.to_string())
            };
            let body = match (method.as_str(), p.as_str()) {
                (_, "/referrals/click") => json!({"code": code}),
                (_, "/ingest/signups") => json!({"account": "newbie", "code": code}),
                (_, "/ingest/qualifications" | "/ingest/refunds") => json!({"account": "newbie"}),
                ("post", "/admin/campaigns") => json!({
                    "id": "summer", "name": "Summer", "referrer_credits": 10, "referred_credits": 5
                }),
                ("patch", _) => json!({"holding_days": 7}),
                ("post", "/admin/webhooks") => json!({"url": "https://hooks.example/in"}),
                (_, x) if x.ends_with("/reject") => json!({"reason": "duplicate account"}),
                (_, x) if x.ends_with("/void") => json!({"side": "referrer", "reason": "test"}),
                _ => json!({}),
            };
            let cred = if p.starts_with("/referrals/me") {
                &user
            } else {
                &admin
            };
            let (status, _, v) = match method.as_str() {
                "get" => c.get(&p, Some(cred)).await,
                "patch" => c.send(Method::PATCH, &p, Some(cred), Some(body)).await,
                _ => c.post(&p, Some(cred), body).await,
            };
            assert!(
                status != StatusCode::NOT_FOUND || v["code"] == "not_found",
                "[{}] {method} {p} is not routed",
                db.label
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {p}");
            assert!(
                statuses[&(method.clone(), path.clone())].contains(&status.as_u16().to_string()),
                "[{}] {method} {p} answered {status}, which its documentation does not list: {v}",
                db.label
            );
            // Approve moved the referral on and granted its rewards: reject conflicts,
            // and a granted reward cannot be voided (a refund takes it back).
            // No webhook endpoint or delivery has the referral's id: those are 404s.
            let refused = p.ends_with("/reject")
                || p.ends_with("/void")
                || (p.starts_with("/admin/webhooks/") && p.ends_with(&format!("{held}/replay")))
                || p.ends_with("/disable");
            assert_eq!(
                status.is_success(),
                !refused,
                "[{}] {method} {p}: {v}",
                db.label
            );
        }
    }
}

#[tokio::test]
async fn errors_are_problem_documents_with_the_right_status_and_code() {
    for db in databases().await {
        let mut cfg = Config::with_database(&db.url);
        cfg.public_rate_per_minute = 3;
        let s = serve_with(&db, HttpOptions::default(), cfg).await;
        let held = seed(&s.app).await;
        let admin = key(&s, "ops", &Scope::ALL).await;
        let reader = key(&s, "ops", &[Scope::Read]).await;
        let broke = key(&s, "nobody", &[Scope::Read]).await;
        let c = Client::new(&s.base);
        let l = db.label;

        let (st, h, v) = c.get("/admin/referrals", None).await;
        assert_problem(l, st, &h, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
        let www = h.get("www-authenticate").unwrap().to_str().unwrap();
        assert!(www.contains("resource_metadata="), "{www}");

        let (st, h, v) = c.get("/admin/referrals", Some("rk_0123456789_wrong")).await;
        assert_problem(l, st, &h, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert!(
            h["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );

        let (st, h, v) = c.get("/admin/referrals?colour=red", Some(&admin)).await;
        assert_problem(l, st, &h, &v, StatusCode::BAD_REQUEST, "invalid_argument");
        assert!(v["detail"].as_str().unwrap().contains("colour"));

        let (st, h, v) = c.get("/admin/referrals?limit=0", Some(&admin)).await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
        );
        assert_eq!(v["field"], "limit");

        let (st, h, v) = c.get("/admin/referrals", Some(&broke)).await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_credits",
        );

        let (st, h, v) = c
            .post(
                &format!("/admin/referrals/{held}/approve"),
                Some(&reader),
                json!({}),
            )
            .await;
        assert_problem(l, st, &h, &v, StatusCode::FORBIDDEN, "forbidden");
        let www = h["www-authenticate"].to_str().unwrap();
        assert!(
            www.contains("insufficient_scope") && www.contains("referrals:review"),
            "{www}"
        );

        let (st, h, v) = c.get("/admin/referrals/999999", Some(&admin)).await;
        assert_problem(l, st, &h, &v, StatusCode::NOT_FOUND, "not_found");

        let (st, _, v) = c
            .post(
                &format!("/admin/referrals/{held}/approve"),
                Some(&admin),
                json!({"note": "ok"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "[{l}] {v}");
        let (st, h, v) = c
            .post(
                &format!("/admin/referrals/{held}/reject"),
                Some(&admin),
                json!({"reason": "late"}),
            )
            .await;
        assert_problem(l, st, &h, &v, StatusCode::CONFLICT, "conflict");
        assert_eq!(v["current_status"], "attributed");

        let (st, h, v) = c
            .post(
                &format!("/admin/referrals/{held}/reject"),
                Some(&admin),
                json!({"reason": 7}),
            )
            .await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
        );
        assert_eq!(v["field"], "reason", "a shape error names its field: {v}");

        // JSON Schema's integer includes 3.0; a fraction is refused.
        let (st, h, v) = c
            .post(
                "/admin/referrals/recover",
                Some(&admin),
                json!({"limit": 2.5}),
            )
            .await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
        );
        assert!(v["detail"].as_str().unwrap().contains("integer"), "{v}");
        let (st, _, v) = c
            .post(
                "/admin/referrals/recover",
                Some(&admin),
                json!({"limit": 3.0}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, h, v) = c.get("/admin/referrals?limit=many", Some(&admin)).await;
        assert_problem(l, st, &h, &v, StatusCode::BAD_REQUEST, "invalid_argument");

        let big = json!({"note": "x".repeat(100_000)});
        let (st, h, v) = c
            .post(
                &format!("/admin/referrals/{held}/approve"),
                Some(&admin),
                big,
            )
            .await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );

        let r = c
            .http
            .post(format!("{}/admin/referrals/recover", s.base))
            .header("x-api-key", &admin)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);

        // public click capture: 3 per minute per IP, then 429 with Retry-After
        let code = s
            .app
            .core
            .summary_for(&account("alice"))
            .await
            .unwrap()
            .referral_code;
        for n in 1..=3 {
            let (st, _, v) = c
                .post("/referrals/click", None, json!({"code": code}))
                .await;
            assert_eq!(st, StatusCode::OK, "[{l}] click {n} of 3: {v}");
        }
        let (st, h, v) = c
            .post("/referrals/click", None, json!({"code": code}))
            .await;
        assert_problem(l, st, &h, &v, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
    }
}

#[tokio::test]
async fn a_failed_request_charges_nothing_and_a_successful_one_charges_one_credit() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let admin = key(&s, "ops", &Scope::ALL).await;
        let c = Client::new(&s.base);
        let before = s.app.store.balance("ops").await.unwrap();
        let (st, _, v) = c.get("/admin/referrals?limit=0", Some(&admin)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "[{}] {v}", db.label);
        let (st, _, v) = c.get("/admin/referrals/999999", Some(&admin)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "[{}] {v}", db.label);
        assert_eq!(
            s.app.store.balance("ops").await.unwrap(),
            before,
            "[{}]",
            db.label
        );
        let (st, _, v) = c
            .get(&format!("/admin/referrals/{held}"), Some(&admin))
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["referral"]["id"], held);
        assert_eq!(v["referral"]["status"], "review_required");
        assert!(!v["review_reasons"].as_array().unwrap().is_empty());
        assert_eq!(
            s.app.store.balance("ops").await.unwrap(),
            before - 1,
            "[{}]",
            db.label
        );
    }
}

#[tokio::test]
async fn the_backend_drives_a_referral_to_granted_rewards_over_rest() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        seed(&s.app).await;
        let ingest = key(&s, "ops", &[Scope::Ingest, Scope::Read]).await;
        let c = Client::new(&s.base);
        let code = s
            .app
            .core
            .summary_for(&account("alice"))
            .await
            .unwrap()
            .referral_code;
        let (st, _, click) = c
            .post(
                "/referrals/click",
                None,
                json!({"code": code, "landing_url": "https://app.example/r/x?utm_source=news&token=secret"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{click}");
        let (st, _, v) = c
            .post(
                "/ingest/signups",
                Some(&ingest),
                json!({"account": "erin", "email": "erin@erin.example", "ip": "192.0.2.50", "click_id": click["click_id"]}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "[{}] {v}", db.label);
        assert_eq!(v["referral"]["status"], "attributed");
        let id = v["referral"]["id"].as_i64().unwrap();
        // Amounts from outside are bounded: refused with 422 naming the field, and
        // nothing is rewarded.
        for amount in [
            json!(-500),
            json!(-1),
            json!(i64::MAX),
            json!(1_000_000_000_001_i64),
        ] {
            let (st, _, v) = c
                .post(
                    "/ingest/qualifications",
                    Some(&ingest),
                    json!({"account": "erin", "amount": amount}),
                )
                .await;
            assert_eq!(
                st,
                StatusCode::UNPROCESSABLE_ENTITY,
                "[{}] {amount}: {v}",
                db.label
            );
            assert_eq!(v["field"], "amount", "{v}");
        }
        assert_eq!(rewards_credited(&db, "erin").await, 0, "[{}]", db.label);
        let (st, _, v) = c
            .post(
                "/ingest/qualifications",
                Some(&ingest),
                json!({"account": "erin", "amount": 4900}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, _, v) = c
            .get(&format!("/admin/referrals/{id}"), Some(&ingest))
            .await;
        assert_eq!(st, StatusCode::OK, "[{}] {v}", db.label);
        assert_eq!(v["referral"]["status"], "rewarded", "[{}] {v}", db.label);
        let rewards = v["referral"]["rewards"].as_array().unwrap();
        assert!(rewards.iter().all(|r| r["status"] == "granted"), "{v}");
        assert_eq!(rewards_credited(&db, "erin").await, 50);
        // the signup's scope is checked: a read-only key may not ingest
        let reader = key(&s, "ops", &[Scope::Read]).await;
        let (st, _, v) = c
            .post(
                "/ingest/signups",
                Some(&reader),
                json!({"account": "frank"}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "[{}] {v}", db.label);
        // whoami is free and tells the scopes
        let (st, _, v) = c.get("/auth/whoami", Some(&ingest)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["account"], "ops");
        assert_eq!(v["scopes"], json!(["referrals:read", "referrals:ingest"]));
        let _ = ScopeSet::all();
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_callers() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let c = Client::new(&s.base);
    let (st, h, _) = c.get("/healthz", None).await;
    assert_eq!(st, StatusCode::OK);
    let id = h["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_"), "{id}");
    let (st, h2, _) = c.get("/healthz", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_ne!(h2["x-request-id"], h["x-request-id"]);
    let r = c
        .http
        .get(format!("{}/readyz", s.base))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    assert_eq!(r.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn post_routes_honour_the_documented_query_and_refuse_unknown_ones_and_clicks_are_never_charged()
 {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        let held = seed(&s.app).await;
        let admin = key(&s, "ops", &Scope::ALL).await;
        let c = Client::new(&s.base);
        let l = db.label;
        // `POST /admin/referrals/recover?limit=…` is read (the public docs' form): an
        // out-of-range query limit is refused, as it is in the body.
        let (st, h, v) = c
            .send(
                Method::POST,
                "/admin/referrals/recover?limit=0",
                Some(&admin),
                None,
            )
            .await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
        );
        assert_eq!(v["field"], "limit", "{v}");
        let (st, _, v) = c
            .send(
                Method::POST,
                "/admin/referrals/recover?limit=5",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "[{l}] {v}");
        assert!(v["attempted"].as_u64().unwrap() <= 5, "{v}");
        let (st, h, v) = c
            .send(
                Method::POST,
                "/admin/referrals/recover?limit=2",
                Some(&admin),
                Some(json!({"limit": 3})),
            )
            .await;
        assert_problem(
            l,
            st,
            &h,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
        );
        // A POST's unknown query parameter is refused like a GET's, and nothing happens.
        let (st, h, v) = c
            .send(
                Method::POST,
                &format!("/admin/referrals/{held}/approve?force=true"),
                Some(&admin),
                None,
            )
            .await;
        assert_problem(l, st, &h, &v, StatusCode::BAD_REQUEST, "invalid_argument");
        assert_eq!(
            detail(&s.app, held).await.referral.status.as_str(),
            "review_required"
        );
        // Approve with no body and no content type at all.
        let r = reqwest::Client::new()
            .post(format!("{}/admin/referrals/{held}/approve", s.base))
            .header("x-api-key", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "[{l}]");
        assert_eq!(
            detail(&s.app, held)
                .await
                .referral
                .review_decision
                .as_deref(),
            Some("approved")
        );
        // Public click capture is free, also when the caller sends a credential.
        let code = s
            .app
            .core
            .summary_for(&account("alice"))
            .await
            .unwrap()
            .referral_code;
        let before = s.app.store.balance("ops").await.unwrap();
        let (st, _, v) = c
            .post("/referrals/click", Some(&admin), json!({"code": code}))
            .await;
        assert_eq!(st, StatusCode::OK, "[{l}] {v}");
        assert_eq!(
            s.app.store.balance("ops").await.unwrap(),
            before,
            "[{l}] a click was charged"
        );
    }
}
