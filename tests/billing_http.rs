//! The HTTP billing sink against a real local billing stub (axum on port 0) that can fail,
//! hang, commit-then-fail (a lost answer) and replay keys. Whatever it does, no key is
//! credited twice and `recover` finishes once it heals.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::*;
use referral_mcp::billing::{HttpSink, RetryPolicy};
use referral_mcp::core::text::SafeText;
use referral_mcp::core::types::{
    AccountId, AttributionId, AttributionStatus, Limit, RewardStatus, Side,
};
use referral_mcp::core::{ListQuery, RecoverRequest, RefundEvent, Settings, StatsQuery};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const HANGING: u8 = 2;
/// Commits the grant, then answers 500 as if the response was lost.
const COMMIT_THEN_FAIL: u8 = 3;

#[derive(Default)]
struct Billing {
    mode: AtomicU8,
    /// key → (account, credits): what the billing service has credited.
    grants: Mutex<HashMap<String, (String, i64)>>,
    posts: AtomicUsize,
    /// Requests whose Idempotency-Key header was missing or differed from the body key.
    bad_keys: AtomicUsize,
}

impl Billing {
    fn credited(&self, account: &str) -> i64 {
        self.grants
            .lock()
            .unwrap()
            .values()
            .filter(|(a, _)| a == account)
            .map(|(_, c)| c)
            .sum()
    }
}

async fn grant(
    State(b): State<Arc<Billing>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    b.posts.fetch_add(1, Ordering::SeqCst);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if key.is_empty() || body["key"] != key.as_str() {
        b.bad_keys.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST.into_response();
    }
    match b.mode.load(Ordering::SeqCst) {
        FAILING => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        HANGING => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        _ => {}
    }
    let account = body["account"].as_str().unwrap_or_default().to_owned();
    let credits = body["credits"].as_i64().unwrap_or_default();
    let existing = b.grants.lock().unwrap().get(&key).cloned();
    // A reversal takes back what the account still has (never below zero), and says how
    // much; a replay answers the first answer again.
    if body["reason"] == "referral_reversal" {
        let (status, replayed, taken) = match existing {
            Some((_, c)) => (StatusCode::OK, "true", -c),
            None => {
                let taken = (-credits).min(b.credited(&account)).max(0);
                b.grants
                    .lock()
                    .unwrap()
                    .insert(key.clone(), (account, -taken));
                (StatusCode::CREATED, "false", taken)
            }
        };
        if b.mode.load(Ordering::SeqCst) == COMMIT_THEN_FAIL {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        return (
            status,
            [("idempotent-replayed", replayed)],
            Json(json!({"key": key, "reversed": taken})),
        )
            .into_response();
    }
    let response = match existing {
        Some((a, c)) if a == account && c == credits => (
            StatusCode::OK,
            [("idempotent-replayed", "true")],
            Json(json!({"key": key, "status": "granted"})),
        )
            .into_response(),
        Some((a, c)) => (
            StatusCode::CONFLICT,
            Json(json!({"detail": format!("key exists: {c} credits to {a}")})),
        )
            .into_response(),
        None => {
            b.grants
                .lock()
                .unwrap()
                .insert(key.clone(), (account, credits));
            (
                StatusCode::CREATED,
                Json(json!({"key": key, "status": "granted"})),
            )
                .into_response()
        }
    };
    if b.mode.load(Ordering::SeqCst) == COMMIT_THEN_FAIL {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    response
}

async fn billing_stub() -> (Arc<Billing>, String) {
    let b = Arc::new(Billing::default());
    let app = axum::Router::new()
        .route("/v1/credit-grants", axum::routing::post(grant))
        .with_state(b.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/credit-grants", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (b, url)
}

fn sink(url: &str) -> Arc<HttpSink> {
    Arc::new(
        HttpSink::new(
            url,
            None,
            RetryPolicy {
                timeout: Duration::from_millis(300),
                attempts: 2,
                first_backoff: Duration::from_millis(5),
            },
        )
        .unwrap(),
    )
}

fn limit(n: u32) -> RecoverRequest {
    RecoverRequest {
        limit: Limit::parse("limit", i64::from(n), 10_000).unwrap(),
    }
}

#[tokio::test]
async fn billing_outage_hang_and_lost_answers_never_credit_twice_and_recover_finishes() {
    for db in databases().await {
        let (billing, url) = billing_stub().await;
        let t = app_with(&db, Some(sink(&url)), Settings::default()).await;
        let pairs = [("alice", "bob"), ("carol", "dave"), ("erin", "frank")];
        billing.mode.store(FAILING, Ordering::SeqCst);
        for (n, (referrer, referred)) in pairs.iter().enumerate() {
            let code = register(
                &t.core,
                referrer,
                &format!("{referrer}@{referrer}.example"),
                &format!("198.51.100.{}", n + 1),
            )
            .await;
            signup_via(
                &t.core,
                referred,
                &format!("{referred}@{referred}.example"),
                &format!("203.0.113.{}", n + 1),
                &code,
            )
            .await;
            let q = qualify(&t.core, referred).await;
            let rewards = q.referral.unwrap().rewards;
            assert!(
                rewards.iter().all(|r| r.status == RewardStatus::Failed),
                "[{}] billing down: {rewards:?}",
                db.label
            );
        }
        assert!(billing.grants.lock().unwrap().is_empty());

        // A hanging billing service: every attempt times out, nothing is marked granted.
        billing.mode.store(HANGING, Ordering::SeqCst);
        let r = t
            .core
            .run_recover(limit(2), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (r.granted, r.failed.len(), r.remaining),
            (0, 2, 6),
            "[{}]",
            db.label
        );

        // The service commits but the answer is lost: we must not believe it granted.
        billing.mode.store(COMMIT_THEN_FAIL, Ordering::SeqCst);
        let r = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!((r.granted, r.remaining), (0, 6), "[{}]", db.label);
        assert_eq!(
            billing.grants.lock().unwrap().len(),
            6,
            "billing committed all six"
        );

        // Healed: the same keys are sent again; billing replays them; all are settled.
        billing.mode.store(HEALTHY, Ordering::SeqCst);
        let r = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (r.attempted, r.granted, r.already_granted, r.remaining),
            (6, 0, 6, 0),
            "[{}] {r:?}",
            db.label
        );
        let again = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(again.attempted, 0, "[{}] nothing left to do", db.label);

        for (referrer, referred) in pairs {
            assert_eq!(billing.credited(referrer), 100, "[{}] {referrer}", db.label);
            assert_eq!(billing.credited(referred), 50, "[{}] {referred}", db.label);
        }
        assert_eq!(
            billing.bad_keys.load(Ordering::SeqCst),
            0,
            "every POST carried its key"
        );
        assert!(billing.posts.load(Ordering::SeqCst) > 6, "retries happened");
    }
}

#[tokio::test]
async fn a_healthy_billing_service_is_credited_at_qualification() {
    for db in databases().await {
        let (billing, url) = billing_stub().await;
        let t = app_with(&db, Some(sink(&url)), Settings::default()).await;
        let code = register(&t.core, "alice", "alice@alice.example", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@bob.example", "203.0.113.2", &code).await;
        let q = qualify(&t.core, "bob").await;
        let r = q.referral.unwrap();
        assert!(
            r.rewards.iter().all(|w| w.status == RewardStatus::Granted),
            "[{}]",
            db.label
        );
        let keys: Vec<String> = billing.grants.lock().unwrap().keys().cloned().collect();
        let ns = &t.core.settings().grant_namespace;
        assert!(
            keys.contains(&format!("{ns}:referral:{}:referrer", r.id)),
            "{keys:?}"
        );
        assert!(
            keys.contains(&format!("{ns}:referral:{}:referred", r.id)),
            "{keys:?}"
        );
        assert_eq!(billing.credited("alice"), 100);
    }
}

/// Billing answering "same key, different amount" makes the reward a terminal `conflict`:
/// visible with its reason, counted in stats, never retried by recover, and voidable by an
/// operator (which settles the referral).
#[tokio::test]
async fn a_key_billing_holds_with_another_amount_becomes_a_conflict_an_operator_voids() {
    for db in databases().await {
        let (billing, url) = billing_stub().await;
        let t = app_with(&db, Some(sink(&url)), Settings::default()).await;
        let code = register(&t.core, "alice", "alice@alice.example", "198.51.100.1").await;
        let s = signup_via(&t.core, "bob", "bob@bob.example", "203.0.113.2", &code).await;
        let id = s.referral.unwrap().id;
        let key = format!(
            "{}:referral:{id}:referrer",
            t.core.settings().grant_namespace
        );
        billing
            .grants
            .lock()
            .unwrap()
            .insert(key.clone(), ("alice".into(), 999));
        let q = qualify(&t.core, "bob").await;
        let rewards = q.referral.unwrap().rewards;
        let referrer = rewards
            .iter()
            .find(|w| w.side.as_str() == "referrer")
            .unwrap();
        assert_eq!(referrer.status, RewardStatus::Conflict, "[{}]", db.label);
        assert!(
            referrer
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("different")),
            "{referrer:?}"
        );
        assert_eq!(
            billing.grants.lock().unwrap()[&key],
            ("alice".to_owned(), 999),
            "billing's record is untouched"
        );
        assert_eq!(billing.credited("bob"), 50, "the other side is granted");
        let calls_before = billing.posts.load(Ordering::SeqCst);
        for _ in 0..2 {
            let r = t
                .core
                .run_recover(limit(100), &|_| {}, &CancellationToken::new())
                .await
                .unwrap();
            assert_eq!(
                (r.attempted, r.remaining),
                (0, 0),
                "[{}] a conflict is never retried: {r:?}",
                db.label
            );
        }
        assert_eq!(
            billing.posts.load(Ordering::SeqCst),
            calls_before,
            "billing was not called again"
        );
        let s = t
            .core
            .stats(StatsQuery::parse(None, None, None, t.clock.now()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            (s.rewards.conflict.count, s.rewards.conflict.credits),
            (1, 100)
        );
        let listed = t
            .core
            .query_referrals(ListQuery {
                reward_status: Some(RewardStatus::Conflict),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.referrals.len(), 1);
        assert_eq!(listed.referrals[0].status, AttributionStatus::Qualified);
        // An operator voids it; the referral settles, billing is untouched.
        let reason =
            SafeText::parse("reason", "billing holds key 999; settled by hand", 200).unwrap();
        let id = AttributionId::parse("id", id).unwrap();
        let v = t
            .core
            .void_as("ops", id, Side::Referrer, reason.clone())
            .await
            .unwrap();
        assert_eq!(v.status, AttributionStatus::Rewarded, "[{}]", db.label);
        let voided = v.rewards.iter().find(|w| w.side == Side::Referrer).unwrap();
        assert_eq!(voided.status, RewardStatus::Voided);
        assert_eq!(voided.void_reason.as_deref(), Some(reason.as_str()));
        let detail = t.core.referral_detail(id).await.unwrap();
        let last = detail.audit_trail.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.actor.as_str()),
            ("reward_voided", "ops")
        );
        // Voiding again, or voiding a granted reward, is a conflict naming the status.
        let e = t
            .core
            .void_as("ops", id, Side::Referrer, reason.clone())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "conflict");
        let e = t
            .core
            .void_as("ops", id, Side::Referred, reason)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("granted"), "{e}");
        assert_eq!(
            billing.grants.lock().unwrap()[&key],
            ("alice".to_owned(), 999)
        );
    }
}

/// A refund sent over HTTP billing: each granted reward is taken back once under its own
/// `…:reversal` key, even when billing commits the reversal and the answer is lost; a
/// repeat of the event and recover runs change nothing more.
#[tokio::test]
async fn a_refund_takes_granted_rewards_back_through_billing_exactly_once() {
    for db in databases().await {
        let (billing, url) = billing_stub().await;
        let t = app_with(&db, Some(sink(&url)), Settings::default()).await;
        let code = register(&t.core, "alice", "alice@alice.example", "198.51.100.1").await;
        let id = signup_via(&t.core, "bob", "bob@bob.example", "203.0.113.2", &code)
            .await
            .referral
            .unwrap()
            .id;
        qualify(&t.core, "bob").await;
        assert_eq!(
            (billing.credited("alice"), billing.credited("bob")),
            (100, 50)
        );
        // Billing takes the reversals, then the answers are lost.
        billing.mode.store(COMMIT_THEN_FAIL, Ordering::SeqCst);
        let refund = || RefundEvent {
            account: AccountId::parse("account", "bob").unwrap(),
            event: SafeText::parse("event", "chargeback", 64).unwrap(),
            amount: Some(4900),
        };
        let out = t.core.record_refund(refund()).await.unwrap();
        let r = out.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Reversed, "[{}]", db.label);
        assert!(
            r.rewards
                .iter()
                .all(|w| w.status == RewardStatus::Reversing),
            "[{}] unconfirmed reversals stay reversing: {:?}",
            db.label,
            r.rewards
        );
        assert_eq!((billing.credited("alice"), billing.credited("bob")), (0, 0));
        // The event again, and recover runs, with billing answering again.
        billing.mode.store(HEALTHY, Ordering::SeqCst);
        t.clock.advance(60);
        let again = t.core.record_refund(refund()).await.unwrap();
        assert_eq!(
            again.reversed, 2,
            "[{}] the replay confirmed both",
            db.label
        );
        let r = again.referral.unwrap();
        assert!(r.rewards.iter().all(|w| w.status == RewardStatus::Voided));
        assert!(
            r.rewards
                .iter()
                .all(|w| w.reversed_credits == Some(w.credits))
        );
        assert!(
            r.rewards
                .iter()
                .all(|w| w.void_reason.as_deref() == Some("chargeback")),
            "{:?}",
            r.rewards
        );
        let rec = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(rec.attempted, 0);
        assert_eq!((billing.credited("alice"), billing.credited("bob")), (0, 0));
        let keys: Vec<String> = billing.grants.lock().unwrap().keys().cloned().collect();
        let ns = &t.core.settings().grant_namespace;
        for side in ["referrer", "referred"] {
            assert!(
                keys.contains(&format!("{ns}:referral:{id}:{side}:reversal")),
                "{keys:?}"
            );
        }
        assert_eq!(billing.bad_keys.load(Ordering::SeqCst), 0);
    }
}

/// A second database of the same kind as `db`.
async fn another_like(db: &TestDb) -> TestDb {
    if db.label == "postgres" {
        postgres_db().await.expect("postgres configured")
    } else {
        sqlite_db().await
    }
}

#[tokio::test]
async fn two_deployments_sharing_one_billing_service_each_get_their_grants_paid() {
    use referral_mcp::config::{App, Config};
    use referral_mcp::core::clock::Clock;
    for db in databases().await {
        let (billing, url) = billing_stub().await;
        let other = another_like(&db).await;
        let mut namespaces = Vec::new();
        for d in [&db, &other] {
            let app = App::start_with(
                &Config::with_database(&d.url),
                Some(sink(&url)),
                Clock::System,
            )
            .await
            .unwrap();
            // The same story in both databases, so both have referral 1.
            let code = register(&app.core, "alice", "alice@alice.example", "198.51.100.1").await;
            signup_via(&app.core, "bob", "bob@bob.example", "203.0.113.2", &code).await;
            let q = qualify(&app.core, "bob").await;
            let rewards = q.referral.unwrap().rewards;
            assert!(
                rewards.iter().all(|w| w.status == RewardStatus::Granted),
                "[{}] {rewards:?}",
                db.label
            );
            namespaces.push(app.core.settings().grant_namespace.clone());
            app.store.close().await;
        }
        assert_ne!(namespaces[0], namespaces[1], "[{}]", db.label);
        // Four distinct keys reached billing and each deployment's alice was paid: none of
        // the second deployment's grants was taken for a replay of the first's.
        assert_eq!(billing.grants.lock().unwrap().len(), 4, "[{}]", db.label);
        assert_eq!(billing.credited("alice"), 200, "[{}]", db.label);
        assert_eq!(billing.credited("bob"), 100, "[{}]", db.label);

        // The namespace is stable for the life of a database, and configuration wins.
        let again = App::start_with(&Config::with_database(&db.url), None, Clock::System)
            .await
            .unwrap();
        assert_eq!(again.core.settings().grant_namespace, namespaces[0]);
        again.store.close().await;
        let mut cfg = Config::with_database(&db.url);
        cfg.grant_namespace = Some("prod-eu".into());
        let set = App::start_with(&cfg, None, Clock::System).await.unwrap();
        assert_eq!(set.core.settings().grant_namespace.as_str(), "prod-eu");
        set.store.close().await;
        cfg.grant_namespace = Some("not a namespace".into());
        assert!(App::start_with(&cfg, None, Clock::System).await.is_err());
    }
}
