//! Review holds, approve and reject, caps — on SQLite and PostgreSQL.

mod common;

use common::*;
use referral_mcp::core::text::SafeText;
use referral_mcp::core::types::{AttributionId, AttributionStatus, ReviewReason, RewardStatus};
use referral_mcp::core::{CampaignEdit, RejectRequest};

/// Signs up a referred account that trips exactly one signal; returns the referral id.
async fn held(t: &TestApp, reason: ReviewReason) -> i64 {
    let code = register(&t.core, "alice", "alice.smith@gmail.com", "198.51.100.1").await;
    let (id, email, ip) = match reason {
        ReviewReason::SameEmail => ("bob", "Alice.Smith+alt@googlemail.com", "203.0.113.2"),
        ReviewReason::SameEmailDomain => ("bob", "bob@corp.example", "203.0.113.2"),
        ReviewReason::SameIp => ("bob", "bob@elsewhere.example", "198.51.100.1"),
        ReviewReason::DisposableEmail => ("bob", "bob@mailinator.com", "203.0.113.2"),
        ReviewReason::ReferrerVelocity => ("bob", "bob@elsewhere.example", "203.0.113.2"),
    };
    if reason == ReviewReason::SameEmailDomain {
        // the referrer needs a company address for this signal
        register(&t.core, "dora", "dora@corp.example", "198.51.100.4").await;
        let dora = t.core.summary_for(&account("dora")).await.unwrap();
        let code =
            referral_mcp::core::types::ReferralCode::parse("c", &dora.referral_code).unwrap();
        return signup_via(&t.core, id, email, ip, &code)
            .await
            .referral
            .unwrap()
            .id;
    }
    if reason == ReviewReason::ReferrerVelocity {
        let threshold = t
            .store
            .campaign("default")
            .await
            .unwrap()
            .unwrap()
            .velocity_threshold;
        for i in 0..threshold {
            let out = signup_via(
                &t.core,
                &format!("v{i}"),
                &format!("v{i}@v{i}.example"),
                &format!("192.0.2.{i}"),
                &code,
            )
            .await;
            assert_eq!(out.referral.unwrap().status, AttributionStatus::Attributed);
        }
    }
    signup_via(&t.core, id, email, ip, &code)
        .await
        .referral
        .unwrap()
        .id
}

#[tokio::test]
async fn each_of_the_five_signals_holds_a_referral_with_its_reason() {
    for db in databases().await {
        for reason in ReviewReason::ALL.iter().copied() {
            let t = app(&db).await;
            // fresh tables per signal: use distinct account ids by resetting via a new db
            let id = held(&t, reason).await;
            let d = t
                .core
                .referral_detail(AttributionId::parse("id", id).unwrap())
                .await
                .unwrap();
            assert_eq!(
                d.referral.status,
                AttributionStatus::ReviewRequired,
                "[{}] {reason}",
                db.label
            );
            let reasons: Vec<_> = d.review_reasons.iter().map(|r| r.reason).collect();
            assert_eq!(reasons, vec![reason], "[{}] {reason}", db.label);
            // qualification while held creates no reward
            qualify(&t.core, "bob").await;
            let d = t
                .core
                .referral_detail(AttributionId::parse("id", id).unwrap())
                .await
                .unwrap();
            assert!(d.referral.rewards.is_empty(), "[{}] {reason}", db.label);
            assert_eq!(rewards_credited(&db, "bob").await, 0);
            // each signal needs its own clean database
            t.store.close().await;
            drop(t);
            reset(&db).await;
        }
    }
}

/// Each signal needs a clean database: empty the tables between signals.
async fn reset(db: &TestDb) {
    truncate_all(db).await;
}

#[tokio::test]
async fn approving_grants_once_and_approving_twice_grants_once() {
    for db in databases().await {
        let t = app(&db).await;
        let id = held(&t, ReviewReason::DisposableEmail).await;
        qualify(&t.core, "bob").await;
        let rid = AttributionId::parse("id", id).unwrap();
        let r = t.core.approve_as("ops", rid, None).await.unwrap();
        assert_eq!(r.status, AttributionStatus::Rewarded, "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "alice").await, 100);
        assert_eq!(rewards_credited(&db, "bob").await, 50);
        let d = t.core.referral_detail(rid).await.unwrap();
        assert!(
            d.audit_trail
                .iter()
                .any(|a| a.action == "approved" && a.actor == "ops")
        );

        let err = t.core.approve_as("ops", rid, None).await.unwrap_err();
        assert_eq!(err.code(), "conflict", "[{}]", db.label);
        assert!(err.to_string().contains("rewarded"), "{err}");
        assert_eq!(rewards_credited(&db, "alice").await, 100, "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "bob").await, 50);
    }
}

#[tokio::test]
async fn concurrent_approvals_grant_once() {
    for db in databases().await {
        let t = app(&db).await;
        let id = held(&t, ReviewReason::SameIp).await;
        qualify(&t.core, "bob").await;
        let rid = AttributionId::parse("id", id).unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let core = t.core.clone();
                tokio::spawn(async move { core.approve_as("ops", rid, None).await.is_ok() })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            ok += usize::from(task.await.unwrap());
        }
        assert_eq!(ok, 1, "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "alice").await, 100, "[{}]", db.label);
        assert_eq!(
            ledger_rows_with_prefix(
                &db,
                &format!("{}:referral:{id}:", t.core.settings().grant_namespace)
            )
            .await,
            2
        );
    }
}

#[tokio::test]
async fn approving_before_qualification_waits_for_it() {
    for db in databases().await {
        let t = app(&db).await;
        let id = held(&t, ReviewReason::SameEmail).await;
        let rid = AttributionId::parse("id", id).unwrap();
        let r = t
            .core
            .approve_as(
                "ops",
                rid,
                Some(SafeText::parse("note", "looks fine", 500).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(r.status, AttributionStatus::Attributed, "[{}]", db.label);
        assert_eq!(r.review_decision.as_deref(), Some("approved"));
        assert_eq!(rewards_credited(&db, "alice").await, 0);
        let q = qualify(&t.core, "bob").await;
        assert_eq!(
            q.referral.unwrap().status,
            AttributionStatus::Rewarded,
            "[{}]",
            db.label
        );
        assert_eq!(rewards_credited(&db, "alice").await, 100);
    }
}

#[tokio::test]
async fn rejecting_grants_nothing_and_records_why() {
    for db in databases().await {
        let t = app(&db).await;
        let id = held(&t, ReviewReason::SameEmail).await;
        qualify(&t.core, "bob").await;
        let rid = AttributionId::parse("id", id).unwrap();
        let r = t
            .core
            .reject_as(
                "ops",
                rid,
                RejectRequest {
                    reason: SafeText::parse("reason", "same person\u{202E} twice", 200).unwrap(),
                    note: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(r.status, AttributionStatus::Rejected, "[{}]", db.label);
        assert!(r.rewards.is_empty());
        let d = t.core.referral_detail(rid).await.unwrap();
        let entry = d
            .audit_trail
            .iter()
            .find(|a| a.action == "rejected")
            .unwrap();
        assert_eq!(
            entry.reason.as_deref(),
            Some("same person twice"),
            "invisible characters stripped"
        );
        qualify(&t.core, "bob").await;
        assert_eq!(rewards_credited(&db, "alice").await, 0, "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "bob").await, 0);
    }
}

#[tokio::test]
async fn approve_or_reject_on_any_other_status_is_a_conflict_naming_it() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let id = signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code)
            .await
            .referral
            .unwrap()
            .id;
        let rid = AttributionId::parse("id", id).unwrap();
        let reject = || RejectRequest {
            reason: SafeText::parse("reason", "x", 200).unwrap(),
            note: None,
        };
        for expected in ["attributed", "rewarded"] {
            let e = t.core.approve_as("ops", rid, None).await.unwrap_err();
            assert_eq!(e.code(), "conflict");
            assert!(e.to_string().contains(expected), "[{}] {e}", db.label);
            let e = t.core.reject_as("ops", rid, reject()).await.unwrap_err();
            assert!(e.to_string().contains(expected), "[{}] {e}", db.label);
            qualify(&t.core, "bob").await;
        }
        let e = t
            .core
            .approve_as("ops", AttributionId::parse("id", 9999).unwrap(), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_found");
    }
}

#[tokio::test]
async fn a_referrer_over_the_cap_gets_a_capped_reward_that_is_never_granted() {
    for db in databases().await {
        let t = app(&db).await;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                cap_count: Some(2),
                ..Default::default()
            },
        )
        .await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        for i in 0..3 {
            signup_via(
                &t.core,
                &format!("u{i}"),
                &format!("u{i}@u{i}.example"),
                &format!("203.0.113.{}", i + 1),
                &code,
            )
            .await;
            qualify(&t.core, &format!("u{i}")).await;
        }
        assert_eq!(rewards_credited(&db, "alice").await, 200, "[{}]", db.label);
        // the referred side is not capped
        assert_eq!(rewards_credited(&db, "u2").await, 50);
        let third = t
            .core
            .query_referrals(referral_mcp::core::ListQuery {
                user: Some(account("u2")),
                ..Default::default()
            })
            .await
            .unwrap();
        let r = &third.referrals[0];
        let referrer_reward = r.rewards.iter().find(|w| w.account == "alice").unwrap();
        assert_eq!(
            referrer_reward.status,
            RewardStatus::Capped,
            "[{}]",
            db.label
        );

        // recover never grants a capped reward
        let report = t
            .core
            .run_recover(
                referral_mcp::core::RecoverRequest {
                    limit: referral_mcp::core::types::Limit::parse("l", 100, 10_000).unwrap(),
                },
                &|_| {},
                &tokio_util::sync::CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(report.attempted, 0);
        assert_eq!(rewards_credited(&db, "alice").await, 200);

        let s = t
            .core
            .stats(referral_mcp::core::StatsQuery::parse(None, None, None, t.clock.now()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            (s.capped.count, s.capped.credits),
            (1, 100),
            "[{}]",
            db.label
        );
        assert_eq!((s.rewarded.count, s.rewarded.credits), (5, 350));
        assert_eq!(s.qualified, 3);
        // once the period passes, the cap resets
        t.clock.advance(31 * 86_400);
        signup_via(&t.core, "u9", "u9@u9.example", "203.0.113.99", &code).await;
        qualify(&t.core, "u9").await;
        assert_eq!(rewards_credited(&db, "alice").await, 300, "[{}]", db.label);
    }
}
