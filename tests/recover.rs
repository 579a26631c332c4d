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
        assert_eq!(
            t.store.count_open_rewards(t.clock.now()).await.unwrap().0,
            2000
        );
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
        assert_eq!(
            t.store.count_open_rewards(t.clock.now()).await.unwrap().0,
            0
        );
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
        // Grants run 32 at a time: the group in flight when the token fires completes
        // (none is abandoned half-way), then the run stops.
        assert!(report.cancelled, "[{}]", db.label);
        assert_eq!(report.attempted, 32);
        assert_eq!(report.granted, 32);
        assert_eq!(report.remaining, 8, "[{}]", db.label);
        assert_eq!(*seen.lock().unwrap(), (1..=32).collect::<Vec<u64>>());
        // released claims are picked up by the next run at once
        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (report.attempted, report.remaining),
            (8, 0),
            "[{}]",
            db.label
        );
        assert_eq!(rewards_credited(&db, "alice").await, 2000);
    }
}

/// A sink that grants through the ledger after `delay` (real time), or never answers.
struct SlowSink {
    inner: referral_mcp::billing::LedgerSink,
    delay: Option<std::time::Duration>,
}

#[async_trait::async_trait]
impl referral_mcp::core::sink::CreditSink for SlowSink {
    async fn grant(
        &self,
        g: &referral_mcp::core::sink::Grant,
    ) -> Result<referral_mcp::core::sink::GrantOutcome, referral_mcp::core::sink::SinkError> {
        match self.delay {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
        self.inner.grant(g).await
    }
    async fn reverse(
        &self,
        r: &referral_mcp::core::sink::Reversal,
    ) -> Result<referral_mcp::core::sink::ReversalOutcome, referral_mcp::core::sink::SinkError>
    {
        self.inner.reverse(r).await
    }
}

fn slow(t: &TestApp, delay: Option<std::time::Duration>) -> Arc<SlowSink> {
    Arc::new(SlowSink {
        inner: referral_mcp::billing::LedgerSink::new(t.store.clone(), t.clock.clone()),
        delay,
    })
}

#[tokio::test]
async fn the_rewards_of_a_crashed_process_are_recovered_once_its_short_lease_lapses() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        // Process A qualifies bob, creates and claims both rewards, and dies while billing
        // has not answered.
        let a = app_with(
            &db,
            Some(slow(&t, None)),
            referral_mcp::core::Settings::default(),
        )
        .await;
        let crashed = tokio::spawn({
            let core = a.core.clone();
            async move { qualify(&core, "bob").await }
        });
        let mut c = sql(&db).await;
        for _ in 0..200 {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM rewards WHERE claimed_until IS NOT NULL")
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            if n == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        crashed.abort();
        // Sixteen seconds later a recover run on another process finishes them.
        t.clock.advance(16);
        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.attempted, 2, "[{}] {report:?}", db.label);
        assert_eq!(report.remaining, 0, "[{}] {report:?}", db.label);
        assert_eq!(rewards_credited(&db, "alice").await, 100);
    }
}

#[tokio::test]
async fn a_live_run_renews_its_claims_so_a_second_run_never_takes_them() {
    for db in databases().await {
        // Real time: the claims must outlive a short lease while billing is slow.
        let store = referral_mcp::store::Store::connect(&db.url).await.unwrap();
        let clock = referral_mcp::core::clock::Clock::System;
        let settings = || referral_mcp::core::Settings {
            grant_lease_secs: 2,
            ..referral_mcp::core::Settings::default()
        };
        let sink = |delay| {
            Arc::new(SlowSink {
                inner: referral_mcp::billing::LedgerSink::new(store.clone(), clock.clone()),
                delay,
            })
        };
        let fast = referral_mcp::core::Referrals::new(
            store.clone(),
            sink(Some(std::time::Duration::ZERO)),
            settings(),
            clock.clone(),
        );
        fast.ensure_default_campaign().await.unwrap();
        let code = register(&fast, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&fast, "bob", "bob@b.example", "203.0.113.2", &code).await;
        // Billing is down when bob qualifies: both rewards wait for recovery.
        let down = referral_mcp::core::Referrals::new(
            store.clone(),
            Arc::new(FailingSink),
            settings(),
            clock.clone(),
        );
        qualify(&down, "bob").await;
        // Run A takes them and billing needs 5 s per grant; run B starts 3 s in, after
        // A's first lease would have lapsed without renewal.
        let slow_core = referral_mcp::core::Referrals::new(
            store.clone(),
            sink(Some(std::time::Duration::from_secs(5))),
            settings(),
            clock.clone(),
        );
        let a = tokio::spawn(async move {
            slow_core
                .run_recover(limit(100), &|_| {}, &CancellationToken::new())
                .await
                .unwrap()
        });
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let b = fast
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            b.attempted, 0,
            "[{}] B took A's live claims: {b:?}",
            db.label
        );
        let a = a.await.unwrap();
        assert_eq!(a.granted, 2, "[{}] {a:?}", db.label);
        assert_eq!(rewards_credited(&db, "alice").await, 100);
    }
}

/// A billing service that is down.
struct FailingSink;

#[async_trait::async_trait]
impl referral_mcp::core::sink::CreditSink for FailingSink {
    async fn grant(
        &self,
        _: &referral_mcp::core::sink::Grant,
    ) -> Result<referral_mcp::core::sink::GrantOutcome, referral_mcp::core::sink::SinkError> {
        Err(referral_mcp::core::sink::SinkError::Unavailable(
            "down (test)".into(),
        ))
    }
    async fn reverse(
        &self,
        _: &referral_mcp::core::sink::Reversal,
    ) -> Result<referral_mcp::core::sink::ReversalOutcome, referral_mcp::core::sink::SinkError>
    {
        Err(referral_mcp::core::sink::SinkError::Unavailable(
            "down (test)".into(),
        ))
    }
}

/// A process killed after marking a referral's last reward granted but before settling
/// it (possible before both were one transaction) left it `qualified` with nothing
/// open, where no claim would ever reach it again: recover settles it.
#[tokio::test]
async fn recover_settles_a_referral_left_qualified_with_every_reward_granted() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        let r = qualify(&t.core, "bob").await.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Rewarded, "[{}]", db.label);
        // What the crash left: the grants are marked, the referral is not settled.
        let mut c = sql(&db).await;
        sqlx::query("UPDATE attributions SET status = 'qualified' WHERE id = $1")
            .bind(r.id)
            .execute(&mut c)
            .await
            .unwrap();

        let report = t
            .core
            .run_recover(limit(100), &|_| {}, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (report.attempted, report.remaining),
            (0, 0),
            "[{}]",
            db.label
        );
        let d = t.core.query_referrals(Default::default()).await.unwrap();
        assert_eq!(
            d.referrals[0].status,
            AttributionStatus::Rewarded,
            "[{}]",
            db.label
        );
        assert_eq!(rewards_credited(&db, "alice").await, 100, "[{}]", db.label);
    }
}
