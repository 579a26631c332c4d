//! Webhooks end to end against a local receiver on port 0 that verifies Standard Webhooks
//! signatures on its own, and can be told to fail, hang or answer slowly; on SQLite and
//! PostgreSQL. Events are written by the database in the transaction of their change, so
//! these tests drive the ordinary core and watch what arrives.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use hmac::{Hmac, Mac};
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::{Scope, ScopeSet};
use referral_mcp::webhooks::{DispatchConfig, Dispatcher, Webhooks};
use serde_json::{Value, json};
use sha2::Sha256;

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;
const SLOW: u8 = 3;

#[derive(Clone, Debug)]
struct Received {
    id: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    mode: Arc<AtomicU8>,
    /// Every request, answered or not: (webhook-id, whether its signature verified).
    attempts: Arc<Mutex<Vec<(String, bool)>>>,
    /// Requests answered 2xx.
    delivered: Arc<Mutex<Vec<Received>>>,
}

/// Verifies as a receiver following the spec would: `v1,` + base64(HMAC-SHA256(key,
/// "{id}.{timestamp}.{body}")), the key being the base64 after `whsec_`.
fn verified(secret: &str, h: &HeaderMap, body: &str) -> bool {
    let get = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, ts, sig) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    );
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (t - chrono::Utc::now().timestamp()).abs() < 300);
    fresh && sig.split(' ').any(|s| s == want)
}

async fn receive(State(r): State<Receiver>, h: HeaderMap, body: String) -> StatusCode {
    let id = h
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ok = verified(&r.secret.lock().unwrap(), &h, &body);
    r.attempts.lock().unwrap().push((id.clone(), ok));
    match r.mode.load(Ordering::SeqCst) {
        FAIL => return StatusCode::INTERNAL_SERVER_ERROR,
        HANG => tokio::time::sleep(Duration::from_secs(30)).await,
        SLOW => tokio::time::sleep(Duration::from_millis(300)).await,
        _ => {}
    }
    if !ok {
        return StatusCode::UNAUTHORIZED;
    }
    r.delivered.lock().unwrap().push(Received {
        id,
        body: serde_json::from_str(&body).unwrap(),
    });
    StatusCode::NO_CONTENT
}

/// A receiver on port 0; returns it and its URL.
async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

fn fast() -> DispatchConfig {
    DispatchConfig {
        poll: Duration::from_millis(20),
        timeout: Duration::from_millis(1500),
        max_attempts: 3,
        first_retry: Duration::ZERO,
        lease: Duration::from_secs(5),
        batch: 16,
        ..Default::default()
    }
}

/// Sends until nothing is due (retries included), at most `rounds` batches.
async fn drain(d: &Dispatcher, rounds: usize) {
    for _ in 0..rounds {
        if d.send_due().await.unwrap() == 0 {
            return;
        }
    }
}

async fn registered(t: &TestApp, url: &str, events: &str, r: &Receiver) -> Webhooks {
    let w = Webhooks::new(t.store.clone());
    let created = w.create(url, events).await.unwrap();
    assert!(created.secret.starts_with("whsec_"));
    *r.secret.lock().unwrap() = created.secret;
    w
}

/// An app on `db`, a receiver, and an endpoint for `events` registered on it.
async fn subscribed(db: &TestDb, events: &str) -> (TestApp, Receiver, Webhooks) {
    let t = app(db).await;
    let (r, url) = receiver().await;
    let w = registered(&t, &url, events, &r).await;
    (t, r, w)
}

fn types(r: &Receiver) -> Vec<String> {
    let mut t: Vec<String> = r
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|x| x.body["type"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn every_lifecycle_change_arrives_signed_once_with_its_data() {
    for db in databases().await {
        let (t, r, _) = subscribed(&db, "*").await;
        let held = seed(&TestAppRef(&t)).await;
        t.core
            .reject_as(
                "ops",
                AttributionId::parse("id", held).unwrap(),
                RejectRequest {
                    reason: SafeText::parse("reason", "disposable email", 200).unwrap(),
                    note: None,
                },
            )
            .await
            .unwrap();
        let d = Dispatcher::new(t.store.clone(), fast());
        drain(&d, 20).await;
        assert_eq!(
            types(&r),
            [
                "referral.attributed",
                "referral.attributed",
                "referral.attributed",
                "referral.rejected",
                "referral.review_required",
                "reward.granted",
                "reward.granted",
            ],
            "[{}] alice referred bob (qualified: two rewards), carol (held, then rejected), dave",
            db.label
        );
        let delivered = r.delivered.lock().unwrap().clone();
        let mut ids: Vec<&str> = delivered.iter().map(|x| x.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            delivered.len(),
            "[{}] one id per event",
            db.label
        );
        assert!(
            r.attempts.lock().unwrap().iter().all(|(_, ok)| *ok),
            "[{}] signed",
            db.label
        );
        let rejected = delivered
            .iter()
            .find(|x| x.body["type"] == "referral.rejected")
            .unwrap();
        assert_eq!(
            rejected.body["data"]["referral_id"],
            json!(held),
            "[{}]",
            db.label
        );
        assert_eq!(rejected.body["data"]["status"], "rejected");
        assert!(rejected.body["timestamp"].as_str().unwrap().ends_with('Z'));
        let granted = delivered
            .iter()
            .find(|x| x.body["type"] == "reward.granted")
            .unwrap();
        assert!(granted.body["data"]["credits"].as_i64().unwrap() > 0);
        let log = Webhooks::new(t.store.clone())
            .deliveries(Some("delivered"), 100)
            .await
            .unwrap();
        assert_eq!(log.len(), 7, "[{}] the delivery log", db.label);
    }
}

/// `seed` takes an `App`; the core tests here have a `TestApp`: the same core and store.
struct TestAppRef<'a>(&'a TestApp);

async fn seed(t: &TestAppRef<'_>) -> i64 {
    let core = &t.0.core;
    let code = register(core, "alice", "alice@example.com", "198.51.100.1").await;
    signup_via(core, "bob", "bob@b.example", "203.0.113.2", &code).await;
    qualify(core, "bob").await;
    let held = signup_via(core, "carol", "carol@mailinator.com", "203.0.113.3", &code).await;
    signup_via(core, "dave", "dave@d.example", "203.0.113.4", &code).await;
    held.referral.unwrap().id
}

async fn outbox_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events")
        .fetch_one(&mut sql(db).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_endpoint_gets_only_its_event_types_and_nothing_is_written_without_one() {
    for db in databases().await {
        let t = app(&db).await;
        register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let code = register(&t.core, "zed", "zed@example.com", "198.51.100.9").await;
        signup_via(&t.core, "yan", "yan@y.example", "203.0.113.20", &code).await;
        assert_eq!(
            outbox_rows(&db).await,
            0,
            "[{}] no endpoint, no outbox rows",
            db.label
        );

        let (r, url) = receiver().await;
        registered(&t, &url, "reward.granted", &r).await;
        qualify(&t.core, "yan").await;
        signup_via(&t.core, "xia", "xia@x.example", "203.0.113.21", &code).await;
        let d = Dispatcher::new(t.store.clone(), fast());
        drain(&d, 10).await;
        assert_eq!(
            types(&r),
            ["reward.granted", "reward.granted"],
            "[{}]",
            db.label
        );
        assert_eq!(
            outbox_rows(&db).await,
            2,
            "[{}] only wanted events are kept",
            db.label
        );
    }
}

#[tokio::test]
async fn failing_hanging_and_slow_receivers_are_retried_dead_lettered_and_replayed() {
    for db in databases().await {
        let (t, r, w) = subscribed(&db, "referral.attributed").await;
        let d = Dispatcher::new(t.store.clone(), fast());
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;

        // Failing: three attempts (the same event id each time), then dead-lettered.
        r.mode.store(FAIL, Ordering::SeqCst);
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        for _ in 0..3 {
            d.send_due().await.unwrap();
            // Retries wait at least a second (the jittered backoff's floor).
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let dead = w.deliveries(Some("dead"), 10).await.unwrap();
        assert_eq!(dead.len(), 1, "[{}] {dead:?}", db.label);
        assert_eq!((dead[0].attempts, dead[0].last_status), (3, Some(500)));
        let tried: Vec<String> = r
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.0.clone())
            .collect();
        assert_eq!(
            tried,
            vec![dead[0].event_id.clone(); 3],
            "[{}] retries keep the id",
            db.label
        );

        // Replayed once the receiver is back: delivered, with the same id.
        r.mode.store(OK, Ordering::SeqCst);
        assert_eq!(w.replay_dead().await.unwrap(), 1);
        drain(&d, 5).await;
        assert_eq!(
            r.delivered.lock().unwrap()[0].id,
            dead[0].event_id,
            "[{}]",
            db.label
        );

        // Hanging: the attempt times out and is retried later; nothing is stuck.
        r.mode.store(HANG, Ordering::SeqCst);
        signup_via(&t.core, "carl", "carl@c.example", "203.0.113.3", &code).await;
        drain(&d, 1).await;
        let pending = w.deliveries(Some("pending"), 10).await.unwrap();
        assert_eq!(pending.len(), 1, "[{}]", db.label);
        assert_eq!(
            pending[0].last_error.as_deref(),
            Some("timed out"),
            "[{}]",
            db.label
        );

        // Slow but within the timeout: delivered.
        r.mode.store(SLOW, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        drain(&d, 5).await;
        assert_eq!(r.delivered.lock().unwrap().len(), 2, "[{}]", db.label);
        assert!(w.deliveries(Some("pending"), 10).await.unwrap().is_empty());

        // One delivery replayed by id.
        let done = w.deliveries(Some("delivered"), 10).await.unwrap();
        w.replay(done[0].id).await.unwrap();
        drain(&d, 5).await;
        assert_eq!(r.delivered.lock().unwrap().len(), 3, "[{}]", db.label);
    }
}

#[tokio::test]
async fn two_dispatchers_on_one_database_send_each_event_once() {
    for db in databases().await {
        let (t, r, _) = subscribed(&db, "referral.attributed").await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        for n in 0..40 {
            signup_via(
                &t.core,
                &format!("user{n}"),
                &format!("user{n}@u{n}.example"),
                &format!("203.0.113.{}", n + 10),
                &code,
            )
            .await;
        }
        // Two instances, each with its own store (pool) and dispatcher, at once.
        let other = Store::connect(&db.url).await.unwrap();
        let (a, b) = (
            Dispatcher::new(t.store.clone(), DispatchConfig { batch: 4, ..fast() }),
            Dispatcher::new(other, DispatchConfig { batch: 4, ..fast() }),
        );
        let (x, y) = tokio::join!(drain(&a, 50), drain(&b, 50));
        let _ = (x, y);
        let mut ids: Vec<String> = r
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.0.clone())
            .collect();
        assert_eq!(ids.len(), 40, "[{}] forty events, forty requests", db.label);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "[{}] none sent twice", db.label);
    }
}

#[tokio::test]
async fn a_delivery_claimed_by_a_process_that_died_is_sent_after_its_lease() {
    for db in databases().await {
        let (t, r, _) = subscribed(&db, "referral.attributed").await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        // The change is committed; a dispatcher claims the delivery and dies before
        // sending it (nothing records an outcome).
        let now = chrono::Utc::now().timestamp();
        let claimed = t.store.claim_webhook_deliveries(now, 1, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "[{}] due at once", db.label);
        let d = Dispatcher::new(t.store.clone(), fast());
        drain(&d, 2).await;
        assert!(
            r.attempts.lock().unwrap().is_empty(),
            "[{}] still claimed",
            db.label
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        drain(&d, 2).await;
        assert_eq!(
            types(&r),
            ["referral.attributed"],
            "[{}] sent once the lease ended",
            db.label
        );
    }
}

#[tokio::test]
async fn a_refused_change_writes_no_event() {
    for db in databases().await {
        let (t, r, _) = subscribed(&db, "referral.approved,referral.rejected").await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let bob = signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        let id = bob.referral.unwrap().id;
        // bob is not held for review: approving him is refused, and nothing is emitted.
        let e = t
            .core
            .approve_as("ops", AttributionId::parse("id", id).unwrap(), None)
            .await
            .expect_err("not in review");
        assert_eq!(e.code(), "conflict");
        let d = Dispatcher::new(t.store.clone(), fast());
        drain(&d, 3).await;
        assert!(r.attempts.lock().unwrap().is_empty(), "[{}]", db.label);
    }
}

#[tokio::test]
async fn settled_deliveries_are_pruned_and_pending_ones_kept() {
    for db in databases().await {
        let (t, r, _) = subscribed(&db, "referral.attributed").await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        let d = Dispatcher::new(t.store.clone(), fast());
        drain(&d, 3).await;
        r.mode.store(FAIL, Ordering::SeqCst);
        signup_via(&t.core, "carl", "carl@c.example", "203.0.113.3", &code).await;
        drain(&d, 1).await;
        let later = chrono::Utc::now().timestamp() + 10;
        assert_eq!(
            t.store.prune_webhooks(later).await.unwrap(),
            1,
            "[{}]",
            db.label
        );
        let w = Webhooks::new(t.store.clone());
        assert!(
            w.deliveries(Some("delivered"), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            w.deliveries(Some("pending"), 10).await.unwrap().len(),
            1,
            "[{}]",
            db.label
        );
        assert_eq!(
            outbox_rows(&db).await,
            1,
            "[{}] the pending event stays",
            db.label
        );
    }
}

/// The loop `serve` runs (polling, pruning, sending) until it is stopped.
#[tokio::test]
async fn the_dispatcher_loop_sends_what_arrives_and_stops_when_told() {
    let db = sqlite_db().await;
    let (t, r, _) = subscribed(&db, "referral.attributed").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let d = Dispatcher::new(t.store.clone(), fast());
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { d.run(stop).await }
    });
    let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
    signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while r.delivered.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "delivered while running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops when told")
        .expect("the loop did not panic");
    assert_eq!(types(&r), ["referral.attributed"]);
}

#[tokio::test]
async fn webhooks_are_managed_over_rest_with_their_own_scope() {
    let db = sqlite_db().await;
    let s = serve(&db, HttpOptions::default()).await;
    let keys = s.app.auth.keys();
    let reader = keys
        .create(
            "reader",
            &account("ops"),
            ScopeSet::from_iter([Scope::Read]),
            0,
        )
        .await
        .unwrap();
    let ops = keys
        .create(
            "ops",
            &account("ops"),
            ScopeSet::from_iter([Scope::Webhooks]),
            0,
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let post = |key: &str, path: &str, body: Value| {
        http.post(format!("{}{path}", s.base))
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    let r = post(
        &reader.key,
        "/admin/webhooks",
        json!({"url": "https://h.example/x"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "referrals:read is not webhooks:manage");
    let r = post(
        &ops.key,
        "/admin/webhooks",
        json!({"url": "ftp://h.example"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("url"));
    let r = post(
        &ops.key,
        "/admin/webhooks",
        json!({"url": "https://h.example/x", "events": ["reward.granted"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let listed: Value = http
        .get(format!("{}/admin/webhooks", s.base))
        .header("x-api-key", &ops.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["events"], json!(["reward.granted"]));
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once"
    );
    let log = http
        .get(format!("{}/admin/webhooks/deliveries?status=dead", s.base))
        .header("x-api-key", &ops.key)
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    let r = post(&ops.key, "/admin/webhooks/deliveries/999/replay", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let id = created["id"].as_str().unwrap();
    let r = post(
        &ops.key,
        &format!("/admin/webhooks/{id}/disable"),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    s.stop.cancel();
}

use referral_mcp::core::RejectRequest;
use referral_mcp::core::text::SafeText;
use referral_mcp::core::types::AttributionId;
use referral_mcp::store::Store;
