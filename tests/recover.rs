//! Recovery of grants that did not reach billing — on SQLite and PostgreSQL.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::*;
use referral_mcp::core::RecoverRequest;
use referral_mcp::core::types::{AttributionStatus, Limit, RewardStatus};
use tokio_util::sync::CancellationToken;

fn limit(n: i64) -> RecoverRequest {
    RecoverRequest {
        limit: Limit::parse("limit", n, 10_000).unwrap(),
    }
}

#[tokio::test]
async fn a_crash_after_the_grant_is_finished_by_recover_without_a_second_credit() {
    for db in databases().await {
        let (t, sink) = flaky_app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        sink.crash_after_grant.store(true, Ordering::SeqCst);
        let q = qualify(&t.core, "bob").await;
        let r = q.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Qualified, "[{}]", db.label);
        assert!(r.rewards.iter().all(|w| w.status == RewardStatus::Failed));
        // the credits did reach the ledger before the "crash"
        assert_eq!(rewards_credited(&db, "alice").await, 100);

        sink.crash_after_grant.store(false, Ordering::SeqCst);
        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.attempted, 2, "[{}]", db.label);
        assert_eq!(report.already_granted, 2);
        assert_eq!(report.granted, 0);
        assert_eq!(report.remaining, 0);
        assert_eq!(
            rewards_credited(&db, "alice").await,
            100,
            "[{}] no second credit",
            db.label
        );
        assert_eq!(rewards_credited(&db, "bob").await, 50);
        let d = t.core.query_referrals(Default::default()).await.unwrap();
        assert_eq!(
            d.referrals[0].status,
            AttributionStatus::Rewarded,
            "[{}]",
            db.label
        );
    }
}

#[tokio::test]
async fn a_failed_billing_call_is_reported_and_retried_later() {
    for db in databases().await {
        let (t, sink) = flaky_app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        sink.down.store(true, Ordering::SeqCst);
        qualify(&t.core, "bob").await;
        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.failed.len(), 2, "[{}]", db.label);
        assert_eq!(report.remaining, 2);
        assert!(report.failed[0].error.contains("billing"));
        sink.down.store(false, Ordering::SeqCst);
        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!((report.granted, report.remaining), (2, 0), "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "alice").await, 100);
    }
}

/// 1,000 referrals qualified while billing was down: 2,000 rewards waiting.
async fn seed_open_rewards(t: &TestApp, sink: &FlakySink, referrals: usize) {
    let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
    sink.down.store(true, Ordering::SeqCst);
    for i in 0..referrals {
        let id = format!("u{i}");
        signup_via(
            &t.core,
            &id,
            &format!("{id}@d{i}.example"),
            "203.0.113.2",
            &code,
        )
        .await;
        // every 24 hours the velocity window resets; keep the referrals out of review
        t.clock.advance(86_400 / 9);
        qualify(&t.core, &id).await;
    }
    sink.down.store(false, Ordering::SeqCst);
}

#[tokio::test]
async fn four_concurrent_recover_runs_grant_each_of_2000_rewards_exactly_once() {
    for db in databases().await {
        let (t, sink) = flaky_app(&db).await;
        seed_open_rewards(&t, &sink, 1000).await;
        assert_eq!(t.store.count_open_rewards().await.unwrap(), 2000);
        sink.calls.store(0, Ordering::SeqCst);

        // four independent "instances": separate pools on one database
        let mut runs = Vec::new();
        for _ in 0..4 {
            let (other, _) = flaky_app(&db).await;
            other.clock.advance(t.clock.now() - START);
            runs.push(tokio::spawn(async move {
                other
                    .core
                    .run_recover(limit(10_000), &|_| {}, &CancellationToken::new())
                    .await
                    .unwrap()
            }));
        }
        let mut attempted = 0;
        for r in runs {
            let report = r.await.unwrap();
            assert!(
                report.failed.is_empty(),
                "[{}] {:?}",
                db.label,
                report.failed
            );
            attempted += report.attempted;
        }
        assert_eq!(
            attempted, 2000,
            "[{}] every reward claimed by exactly one run",
            db.label
        );
        assert_eq!(t.store.count_open_rewards().await.unwrap(), 0);
        // the ledger is the truth: 1,000 × 100 to alice, 50 to each referred account
        assert_eq!(
            rewards_credited(&db, "alice").await,
            100_000,
            "[{}]",
            db.label
        );
        let mut referred_total = 0;
        for i in 0..1000 {
            referred_total += rewards_credited(&db, &format!("u{i}")).await;
        }
        assert_eq!(referred_total, 50_000, "[{}]", db.label);
    }
}

#[tokio::test]
async fn cancelling_a_run_finishes_the_grants_in_flight_then_stops_and_reports() {
    for db in databases().await {
        let (t, sink) = flaky_app(&db).await;
        seed_open_rewards(&t, &sink, 20).await;
        let cancel = CancellationToken::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c2, s2) = (cancel.clone(), seen.clone());
        let progress = move |p: referral_mcp::core::RecoverProgress| {
            s2.lock().unwrap().push(p.done);
            if p.done == 5 {
                c2.cancel();
            }
        };
        let report = t
            .core
            .run_recover(limit(100), &progress, &cancel)
            .await
            .unwrap();
        // Grants run 8 at a time: the group in flight when the token fires completes
        // (none is abandoned half-way), then the run stops.
        assert!(report.cancelled, "[{}]", db.label);
        assert_eq!(report.attempted, 8);
        assert_eq!(report.granted, 8);
        assert_eq!(report.remaining, 32, "[{}]", db.label);
        assert_eq!(*seen.lock().unwrap(), (1..=8).collect::<Vec<u64>>());
        // released claims are picked up by the next run at once
        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (report.attempted, report.remaining),
            (32, 0),
            "[{}]",
            db.label
        );
        assert_eq!(rewards_credited(&db, "alice").await, 2000);
    }
}
