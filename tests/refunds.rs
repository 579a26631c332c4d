//! Refunds and chargebacks reverse rewards exactly once — also when the event is sent
//! twice, when the process dies between billing's answer and the status change, and when
//! a grant is in flight — and never take a balance below zero; on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::sink::{
    CreditSink, Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError,
};
use referral_mcp::core::text::SafeText;
use referral_mcp::core::types::{AttributionId, AttributionStatus, Limit, RewardStatus};
use referral_mcp::core::views::RefundOutcome;
use referral_mcp::core::{CampaignEdit, RecoverRequest, Referrals, RefundEvent, Settings};
use referral_mcp::mcp::ToolFilter;
use referral_mcp::store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn refund(core: &Referrals, who: &str) -> RefundOutcome {
    core.record_refund(RefundEvent {
        account: account(who),
        event: SafeText::parse("event", "refund", 64).unwrap(),
        amount: Some(2500),
    })
    .await
    .expect("refund")
}

async fn recover(core: &Referrals) -> referral_mcp::core::views::RecoverReport {
    core.run_recover(
        RecoverRequest {
            limit: Limit::parse("limit", 100, 10_000).unwrap(),
        },
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

async fn reversal_rows(db: &TestDb) -> i64 {
    let mut c = sql(db).await;
    sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE kind = 'referral_reversal'")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// alice refers bob, bob pays: both rewards granted (100 and 50).
async fn rewarded(t: &TestApp) -> i64 {
    let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
    let id = signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code)
        .await
        .referral
        .unwrap()
        .id;
    let q = qualify(&t.core, "bob").await.referral.unwrap();
    assert!(q.rewards.iter().all(|r| r.status == RewardStatus::Granted));
    id
}

#[tokio::test]
async fn a_refund_takes_granted_rewards_back_once_even_when_sent_twice() {
    for db in databases().await {
        let t = app(&db).await;
        let l = db.label;
        let id = rewarded(&t).await;
        assert_eq!(t.store.balance("alice").await.unwrap(), 100);
        let out = refund(&t.core, "bob").await;
        assert_eq!(
            (out.referred, out.reversed, out.unrecovered_credits),
            (true, 2, 0),
            "[{l}]"
        );
        let r = out.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Reversed);
        for w in &r.rewards {
            assert_eq!(w.status, RewardStatus::Voided, "[{l}] {w:?}");
            assert_eq!(w.reversed_credits, Some(w.credits));
            assert_eq!(w.void_reason.as_deref(), Some("refund"));
        }
        assert_eq!(t.store.balance("alice").await.unwrap(), 0, "[{l}]");
        assert_eq!(t.store.balance("bob").await.unwrap(), 0);
        let ns = &t.core.settings().grant_namespace;
        assert_eq!(
            ledger_rows_with_prefix(&db, &format!("{ns}:referral:{id}:referrer:reversal")).await,
            1
        );
        // The same event again, and recover: nothing more is taken.
        let again = refund(&t.core, "bob").await;
        assert_eq!(again.reversed, 0, "[{l}]");
        assert_eq!(recover(&t.core).await.attempted, 0);
        assert_eq!(reversal_rows(&db).await, 2, "[{l}]");
        assert_eq!(ledger_sum(&db, "alice", None).await, 0);
        let audit = trail(&t, id).await;
        let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions.last(), Some(&"reversed"), "{actions:?}");
        assert_eq!(actions.iter().filter(|a| **a == "reversed").count(), 1);
        // Not referred: nothing to reverse.
        let stranger = refund(&t.core, "alice").await;
        assert!(!stranger.referred);
    }
}

async fn trail(t: &TestApp, id: i64) -> Vec<referral_mcp::core::views::AuditView> {
    t.core
        .referral_detail(AttributionId::parse("id", id).unwrap())
        .await
        .unwrap()
        .audit_trail
}

#[tokio::test]
async fn a_refund_of_credits_already_spent_takes_what_is_left_and_never_goes_below_zero() {
    for db in databases().await {
        let t = app(&db).await;
        let l = db.label;
        rewarded(&t).await;
        // bob spends 30 of his 50 credits on API calls.
        t.store
            .debit("spend-1", "bob", 30, "api_call", START)
            .await
            .unwrap()
            .unwrap();
        let out = refund(&t.core, "bob").await;
        assert_eq!((out.reversed, out.unrecovered_credits), (2, 30), "[{l}]");
        let bob = out
            .referral
            .unwrap()
            .rewards
            .into_iter()
            .find(|w| w.account == "bob")
            .unwrap();
        assert_eq!((bob.credits, bob.reversed_credits), (50, Some(20)));
        assert_eq!(
            t.store.balance("bob").await.unwrap(),
            0,
            "[{l}] never negative"
        );
        assert_eq!(
            ledger_sum(&db, "bob", None).await,
            0,
            "ledger and balance agree"
        );
    }
}

#[tokio::test]
async fn a_refund_voids_held_rewards_so_they_are_never_granted() {
    for db in databases().await {
        let t = app(&db).await;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                holding_days: Some(14),
                ..Default::default()
            },
        )
        .await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        qualify(&t.core, "bob").await;
        let out = refund(&t.core, "bob").await;
        assert_eq!(out.reversed, 0, "nothing was granted, nothing to take back");
        let r = out.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Reversed, "[{}]", db.label);
        assert!(
            r.rewards
                .iter()
                .all(|w| w.status == RewardStatus::Voided && w.reversed_credits.is_none())
        );
        t.clock.advance(15 * 86_400);
        assert_eq!(recover(&t.core).await.attempted, 0);
        assert_eq!(rewards_credited(&db, "alice").await, 0, "[{}]", db.label);
        assert_eq!(reversal_rows(&db).await, 0);
    }
}

#[tokio::test]
async fn a_campaign_that_keeps_rewards_on_refund_only_records_the_refund() {
    for db in databases().await {
        let t = app(&db).await;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                reverse_on_refund: Some(false),
                ..Default::default()
            },
        )
        .await;
        let id = rewarded(&t).await;
        // Switching the policy back on later does not change rewards created under it.
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                reverse_on_refund: Some(true),
                ..Default::default()
            },
        )
        .await;
        let out = refund(&t.core, "bob").await;
        let r = out.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Rewarded, "[{}]", db.label);
        assert!(r.rewards.iter().all(|w| w.status == RewardStatus::Granted));
        assert_eq!(t.store.balance("alice").await.unwrap(), 100);
        let audit = trail(&t, id).await;
        assert_eq!(audit.last().unwrap().action, "refunded");
        refund(&t.core, "bob").await;
        let again = trail(&t, id).await;
        assert_eq!(again.len(), audit.len(), "a repeat is not recorded twice");
    }
}

#[tokio::test]
async fn a_refund_before_any_reward_makes_the_referral_wait_for_a_new_payment() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        // Held for review (disposable address), pays, is refunded, then approved.
        let id = signup_via(&t.core, "bob", "bob@mailinator.com", "203.0.113.2", &code)
            .await
            .referral
            .unwrap()
            .id;
        qualify(&t.core, "bob").await;
        refund(&t.core, "bob").await;
        let v = t
            .core
            .approve_as("ops", AttributionId::parse("id", id).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(v.status, AttributionStatus::Attributed, "[{}]", db.label);
        assert!(v.rewards.is_empty(), "no rewards for a refunded payment");
        // A new payment qualifies it.
        let q = qualify(&t.core, "bob").await.referral.unwrap();
        assert_eq!(q.status, AttributionStatus::Rewarded, "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "alice").await, 100);
    }
}

/// The process dies after billing took the credits back but before the reward was marked:
/// the reward stays `reversing`; the event sent again (or a recover run) finishes it with
/// the same key, and billing's ledger shows each reversal once.
#[tokio::test]
async fn dying_between_the_reversal_and_marking_it_reverses_exactly_once() {
    for db in databases().await {
        let l = db.label;
        let (t, sink) = flaky_app(&db).await;
        rewarded(&t).await;
        // A second rewarded referral, finished by recover instead of a replay.
        let code = register(&t.core, "carol", "carol@example.com", "198.51.100.3").await;
        signup_via(&t.core, "dan", "dan@d.example", "203.0.113.4", &code).await;
        qualify(&t.core, "dan").await;

        sink.hang_after_reverse.store(true, Ordering::SeqCst);
        for who in ["bob", "dan"] {
            let core = t.core.clone();
            let task = tokio::spawn(async move { refund(&core, who).await });
            // Wait until billing has taken the first reward back, then "kill" the worker.
            let before = reversal_rows(&db).await;
            for _ in 0..200 {
                if reversal_rows(&db).await > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            task.abort();
            let _ = task.await;
        }
        assert_eq!(
            reversal_rows(&db).await,
            2,
            "[{l}] one reversal of each referral landed"
        );
        let stuck = t
            .core
            .query_referrals(referral_mcp::core::ListQuery {
                reward_status: Some(RewardStatus::Reversing),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stuck.referrals.len(), 2, "[{l}] both are still reversing");

        // A restarted process: a fresh core on the same database, after the dead one's
        // claims ran out.
        sink.hang_after_reverse.store(false, Ordering::SeqCst);
        let store = Store::connect(&db.url).await.unwrap();
        let clock = t.clock.clone();
        clock.advance(60);
        let restarted = Referrals::new(store, sink.clone(), Settings::default(), clock);
        let replay = refund(&restarted, "bob").await;
        assert_eq!(replay.reversed, 2, "[{l}]");
        let r = recover(&restarted).await;
        assert_eq!((r.reversed, r.remaining), (2, 0), "[{l}] {r:?}");
        for who in ["alice", "bob", "carol", "dan"] {
            assert_eq!(t.store.balance(who).await.unwrap(), 0, "[{l}] {who}");
            assert_eq!(
                ledger_sum(&db, who, None).await,
                0,
                "[{l}] {who}: taken once"
            );
        }
        assert_eq!(reversal_rows(&db).await, 4, "[{l}]");
        assert_eq!(recover(&restarted).await.attempted, 0);
    }
}

/// A grant that billing completes after a refund of its referral is taken back.
struct GateSink {
    inner: referral_mcp::billing::LedgerSink,
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl CreditSink for GateSink {
    async fn grant(&self, g: &Grant) -> Result<GrantOutcome, SinkError> {
        let _permit = self.gate.acquire().await;
        self.inner.grant(g).await
    }
    async fn reverse(&self, r: &Reversal) -> Result<ReversalOutcome, SinkError> {
        self.inner.reverse(r).await
    }
}

#[tokio::test]
async fn a_grant_landing_after_the_refund_is_taken_back_by_recover() {
    for db in databases().await {
        let store = Store::connect(&db.url).await.unwrap();
        let clock = referral_mcp::core::clock::Clock::manual(START);
        let sink = Arc::new(GateSink {
            inner: referral_mcp::billing::LedgerSink::new(store.clone(), clock.clone()),
            gate: tokio::sync::Semaphore::new(0),
        });
        let t = app_with(&db, Some(sink.clone()), Settings::default()).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        let core = t.core.clone();
        let grant = tokio::spawn(async move { qualify(&core, "bob").await });
        // Both grants are now waiting at billing; the refund arrives.
        for _ in 0..200 {
            let open = t
                .core
                .query_referrals(referral_mcp::core::ListQuery {
                    reward_status: Some(RewardStatus::Pending),
                    ..Default::default()
                })
                .await
                .unwrap();
            if !open.referrals.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // In flight, so not voided (the grant may land): marked to be taken back.
        let out = refund(&t.core, "bob").await;
        let rewards = out.referral.unwrap().rewards;
        assert!(
            rewards
                .iter()
                .all(|w| w.status == RewardStatus::Pending
                    && w.void_reason.as_deref() == Some("refund")),
            "[{}] {rewards:?}",
            db.label
        );
        sink.gate.add_permits(10);
        grant.await.unwrap();
        assert_eq!(
            rewards_credited(&db, "alice").await,
            100,
            "[{}] billing paid it",
            db.label
        );
        let r = recover(&t.core).await;
        assert_eq!(r.reversed, 2, "[{}] {r:?}", db.label);
        assert_eq!(t.store.balance("alice").await.unwrap(), 0);
        assert_eq!(t.store.balance("bob").await.unwrap(), 0);
    }
}

#[tokio::test]
async fn refunds_arrive_over_rest_and_the_mcp_ingest_toolset() {
    for db in databases().await {
        let filter =
            ToolFilter::new(false, &["ingest".into(), "rewards".into()], &[], &[]).unwrap();
        let s = serve(
            &db,
            HttpOptions {
                filter,
                ..HttpOptions::default()
            },
        )
        .await;
        s.app
            .core
            .top_up(&account("ops"), 100, "ops")
            .await
            .unwrap();
        let token = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let cfg =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                s.url.as_str(),
            )
            .auth_header(token.clone());
        let c = rmcp::ServiceExt::serve(
            (),
            rmcp::transport::StreamableHttpClientTransport::with_client(
                reqwest::Client::new(),
                cfg,
            ),
        )
        .await
        .unwrap();
        let names: Vec<String> = c
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "void_reward",
                "ingest_signup",
                "ingest_qualification",
                "ingest_refund"
            ]
        );
        let call = |name: &str, args: Value| {
            let mut p = rmcp::model::CallToolRequestParams::new(name.to_owned());
            if let Value::Object(m) = args {
                p = p.with_arguments(m);
            }
            c.call_tool(p)
        };
        let alice = call(
            "ingest_signup",
            json!({"account": "alice", "email": "alice@example.com"}),
        )
        .await
        .unwrap();
        let code = alice.structured_content.unwrap()["referral_code"]
            .as_str()
            .unwrap()
            .to_owned();
        call(
            "ingest_signup",
            json!({"account": "bob", "code": code, "ip": "203.0.113.2"}),
        )
        .await
        .unwrap();
        let q = call(
            "ingest_qualification",
            json!({"account": "bob", "amount": 900}),
        )
        .await
        .unwrap();
        assert_eq!(
            q.structured_content.unwrap()["referral"]["status"],
            "rewarded",
            "[{}]",
            db.label
        );
        let r = call(
            "ingest_refund",
            json!({"account": "bob", "event": "chargeback"}),
        )
        .await
        .unwrap();
        let v = r.structured_content.unwrap();
        assert_eq!(
            (v["reversed"].as_i64(), v["referral"]["status"].as_str()),
            (Some(2), Some("reversed")),
            "{v}"
        );
        let r = call("ingest_refund", json!({"account": "bob", "amount": -5}))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert!(r.content[0].as_text().unwrap().text.contains("amount"));
        c.cancel().await.unwrap();
        // REST: the same event again is answered, and changes nothing.
        let resp = reqwest::Client::new()
            .post(format!("{}/ingest/refunds", s.base))
            .bearer_auth(&token)
            .json(&json!({"account": "bob", "event": "chargeback"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["reversed"], 0);
        assert_eq!(s.app.store.balance("bob").await.unwrap(), 0);
    }
}

/// A billing conflict seen and voided from the outside: REST lists it by reward status,
/// MCP's `rewards` toolset voids it, and a granted reward cannot be voided.
#[tokio::test]
async fn an_operator_finds_a_conflict_and_voids_it_over_rest_and_mcp() {
    for db in databases().await {
        let filter = ToolFilter::new(false, &["rewards".into()], &[], &[]).unwrap();
        let s = serve(
            &db,
            HttpOptions {
                filter,
                ..HttpOptions::default()
            },
        )
        .await;
        let core = &s.app.core;
        core.top_up(&account("ops"), 100, "ops").await.unwrap();
        let code = register(core, "alice", "alice@example.com", "198.51.100.1").await;
        let id = signup_via(core, "bob", "bob@b.example", "203.0.113.2", &code)
            .await
            .referral
            .unwrap()
            .id;
        // Billing already holds the referrer's key with another amount.
        let ns = &core.settings().grant_namespace;
        s.app
            .store
            .credit(
                &format!("{ns}:referral:{id}:referrer"),
                "alice",
                999,
                "referral_reward",
                START,
            )
            .await
            .unwrap();
        qualify(core, "bob").await;
        let token = s.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        let http = reqwest::Client::new();
        let listed: Value = http
            .get(format!("{}/admin/referrals?reward_status=conflict", s.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = &listed["referrals"][0];
        assert_eq!(found["id"], id, "[{}] {listed}", db.label);
        assert_eq!(found["status"], "qualified");
        let conflict = found["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["side"] == "referrer")
            .unwrap();
        assert_eq!(conflict["status"], "conflict");
        assert!(
            conflict["last_error"]
                .as_str()
                .unwrap()
                .contains("different"),
            "{conflict}"
        );

        let cfg =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                s.url.as_str(),
            )
            .auth_header(token.clone());
        let c = rmcp::ServiceExt::serve(
            (),
            rmcp::transport::StreamableHttpClientTransport::with_client(
                reqwest::Client::new(),
                cfg,
            ),
        )
        .await
        .unwrap();
        let mut p = rmcp::model::CallToolRequestParams::new("void_reward");
        p = p.with_arguments(
            json!({"id": id, "side": "referrer", "reason": "billing holds 999; paid by hand"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let r = c.call_tool(p).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let v = r.structured_content.unwrap();
        assert_eq!(
            v["status"], "rewarded",
            "[{}] voiding the conflict settles it: {v}",
            db.label
        );
        c.cancel().await.unwrap();

        let resp = http
            .post(format!("{}/admin/referrals/{id}/void", s.base))
            .bearer_auth(&token)
            .json(&json!({"side": "referred", "reason": "oops"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["current_status"], "granted", "{v}");
        let d = core
            .referral_detail(AttributionId::parse("id", id).unwrap())
            .await
            .unwrap();
        let last = d.audit_trail.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.actor.as_str()),
            ("reward_voided", "ops (admin)")
        );
        assert_eq!(
            last.reason.as_deref(),
            Some("billing holds 999; paid by hand")
        );
    }
}

/// The process granting a reward dies after billing paid it and before recording that,
/// while a refund arrives: the reward was in flight, so the refund only marks it; once
/// the dead process's claim lapses, recover grants it again (billing: already granted),
/// which turns it into a reversal, and takes it back. Never paid without being reversed.
#[tokio::test]
async fn a_process_dying_with_a_grant_in_flight_during_a_refund_never_leaves_it_paid() {
    for db in databases().await {
        let l = db.label;
        let (t, sink) = flaky_app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        sink.hang_after_grant.store(true, Ordering::SeqCst);
        let core = t.core.clone();
        let task = tokio::spawn(async move { qualify(&core, "bob").await });
        for _ in 0..200 {
            if ledger_sum(&db, "alice", None).await + ledger_sum(&db, "bob", None).await > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let out = refund(&t.core, "bob").await;
        assert_eq!(
            out.referral.unwrap().status,
            AttributionStatus::Reversed,
            "[{l}]"
        );
        task.abort();
        let _ = task.await;
        let paid = ledger_sum(&db, "alice", None).await + ledger_sum(&db, "bob", None).await;
        assert!(paid > 0, "[{l}] one grant reached billing before the death");

        sink.hang_after_grant.store(false, Ordering::SeqCst);
        t.clock.advance(60);
        let mut runs = 0;
        loop {
            let r = recover(&t.core).await;
            runs += 1;
            if r.remaining == 0 || runs > 5 {
                break;
            }
        }
        for who in ["alice", "bob"] {
            assert_eq!(
                ledger_sum(&db, who, None).await,
                0,
                "[{l}] {who} keeps nothing"
            );
            assert_eq!(t.store.balance(who).await.unwrap(), 0);
        }
        let r = t
            .core
            .query_referrals(referral_mcp::core::ListQuery {
                user: Some(account("bob")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            r.referrals[0]
                .rewards
                .iter()
                .all(|w| w.status == RewardStatus::Voided),
            "[{l}] {:?}",
            r.referrals[0].rewards
        );
    }
}
