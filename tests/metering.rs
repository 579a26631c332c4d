//! Credits per call: charged once iff the call succeeds, never overdrawn — on SQLite and
//! PostgreSQL, with real concurrent callers.

mod common;

use common::*;
use referral_mcp::core::types::AttributionId;

#[tokio::test]
async fn a_hundred_concurrent_calls_on_a_balance_of_fifty_let_exactly_fifty_through() {
    for db in databases().await {
        let t = app(&db).await;
        t.core.top_up(&account("ops"), 50, "topup:1").await.unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let core = t.core.clone();
                tokio::spawn(async move {
                    core.list_referrals(Some(&admin("ops")), Default::default())
                        .await
                })
            })
            .collect();
        let (mut ok, mut short) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(e.code(), "insufficient_credits", "[{}] {e}", db.label);
                    short += 1;
                }
            }
        }
        assert_eq!((ok, short), (50, 50), "[{}]", db.label);
        assert_eq!(t.store.balance("ops").await.unwrap(), 0, "[{}]", db.label);
        assert_eq!(
            ledger_sum(&db, "ops", None).await,
            0,
            "[{}] ledger agrees",
            db.label
        );
    }
}

#[tokio::test]
async fn a_failed_call_costs_nothing_and_a_successful_one_costs_its_price() {
    for db in databases().await {
        let t = app(&db).await;
        t.core.top_up(&account("ops"), 10, "topup:1").await.unwrap();
        let err = t
            .core
            .get_referral(
                Some(&admin("ops")),
                AttributionId::parse("id", 404).unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert_eq!(
            t.store.balance("ops").await.unwrap(),
            10,
            "[{}] refunded",
            db.label
        );
        t.core
            .list_referrals(Some(&admin("ops")), Default::default())
            .await
            .unwrap();
        assert_eq!(t.store.balance("ops").await.unwrap(), 9, "[{}]", db.label);
    }
}

#[tokio::test]
async fn without_credits_the_call_is_refused_and_nothing_happens() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let held = signup_via(&t.core, "bob", "bob@mailinator.com", "203.0.113.2", &code).await;
        let id = AttributionId::parse("id", held.referral.unwrap().id).unwrap();
        let err = t
            .core
            .approve_referral(Some(&admin("broke")), id, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "insufficient_credits", "[{}]", db.label);
        assert!(err.to_string().contains("balance"), "{err}");
        let d = t.core.referral_detail(id).await.unwrap();
        assert_eq!(
            d.referral.status.as_str(),
            "review_required",
            "[{}] not approved",
            db.label
        );
    }
}

#[tokio::test]
async fn unauthorized_calls_are_refused_before_charging() {
    for db in databases().await {
        let t = app(&db).await;
        t.core.top_up(&account("u1"), 10, "topup:1").await.unwrap();
        let err = t
            .core
            .list_referrals(Some(&user("u1")), Default::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "forbidden");
        let err = t
            .core
            .list_referrals(None, Default::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unauthenticated");
        assert_eq!(t.store.balance("u1").await.unwrap(), 10, "[{}]", db.label);
        // the user's own page is charged to the user
        t.core.my_summary(Some(&user("u1"))).await.unwrap();
        assert_eq!(t.store.balance("u1").await.unwrap(), 9, "[{}]", db.label);
    }
}

#[tokio::test]
async fn public_clicks_are_free_but_rate_limited_per_ip() {
    for db in databases().await {
        let settings = referral_mcp::core::Settings {
            public_rate_per_minute: 3,
            ..Default::default()
        };
        let t = app_with(&db, None, settings).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        for _ in 0..3 {
            t.core
                .capture_click(None, click(&code, "203.0.113.5"))
                .await
                .unwrap();
        }
        let err = t
            .core
            .capture_click(None, click(&code, "203.0.113.5"))
            .await
            .unwrap_err();
        match err {
            referral_mcp::core::error::Error::RateLimited { retry_after_secs } => {
                assert!((1..=60).contains(&retry_after_secs))
            }
            other => panic!("[{}] expected rate limit, got {other:?}", db.label),
        }
        // another visitor is not affected
        t.core
            .capture_click(None, click(&code, "203.0.113.6"))
            .await
            .unwrap();
        t.clock.advance(60);
        t.core
            .capture_click(None, click(&code, "203.0.113.5"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn top_ups_out_of_bounds_are_refused_and_change_nothing() {
    for db in databases().await {
        let t = app(&db).await;
        let ops = account("ops");
        for (i, credits) in [0, -1, -500, i64::MAX, 1_000_000_000_001]
            .into_iter()
            .enumerate()
        {
            let e = t
                .core
                .top_up(&ops, credits, &format!("bad-{i}"))
                .await
                .unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "[{}] {credits}", db.label);
        }
        assert_eq!(t.core.balance(&ops).await.unwrap(), 0, "[{}]", db.label);
        t.core.top_up(&ops, 1_000_000_000_000, "max").await.unwrap();
        assert_eq!(t.core.balance(&ops).await.unwrap(), 1_000_000_000_000);
    }
}

/// `n` concurrent debits of 1 credit, alternating between the two accounts (the first,
/// the second, the first, …), all started at once so they are charged in batches; for
/// each account, whether each of its debits was charged, in arrival order.
async fn debit_alternately(t: &TestApp, accounts: [&str; 2], n: usize) -> [Vec<bool>; 2] {
    let calls = (0..n).map(|i| {
        let store = t.store.clone();
        let who = accounts[i % 2];
        async move {
            store
                .debit(&format!("usage:{who}{i}"), who, 1, "get_referral", START)
                .await
                .unwrap()
                .is_some()
        }
    });
    let charged: Vec<bool> = futures::future::join_all(calls).await;
    [0, 1].map(|k| charged.iter().skip(k).step_by(2).copied().collect())
}

/// `who`'s balance is `left`, and its ledger adds up to the same.
async fn assert_left(t: &TestApp, db: &TestDb, who: &str, left: i64) {
    let label = &db.label;
    assert_eq!(t.store.balance(who).await.unwrap(), left, "[{label}] {who}");
    assert_eq!(ledger_sum(db, who, None).await, left, "[{label}] {who}");
}

/// Concurrent debits are charged in batches (one statement or query per batch): within a
/// batch, each account gets exactly what its own balance covers, whatever else is in it.
#[tokio::test]
async fn batched_debits_of_several_accounts_each_stop_at_their_own_balance() {
    for db in databases().await {
        let t = app(&db).await;
        t.core.top_up(&account("seven"), 7, "t7").await.unwrap();
        t.core.top_up(&account("three"), 3, "t3").await.unwrap();
        let [seven, three] = debit_alternately(&t, ["seven", "three"], 40).await;
        let count = |c: &[bool]| c.iter().filter(|c| **c).count();
        assert_eq!((count(&seven), count(&three)), (7, 3), "[{}]", db.label);
        for who in ["seven", "three"] {
            assert_left(&t, &db, who, 0).await;
        }
    }
}

/// A batch where one account's balance covers all its debits and another's does not:
/// the first is charged every debit, the second its first three (all its balance
/// allows), and neither account's outcome depends on the other's.
#[tokio::test]
async fn an_account_that_runs_out_in_a_batch_does_not_hold_back_one_that_does_not() {
    for db in databases().await {
        let t = app(&db).await;
        t.core.top_up(&account("rich"), 100, "t100").await.unwrap();
        t.core.top_up(&account("poor"), 3, "t3").await.unwrap();
        let [rich, poor] = debit_alternately(&t, ["rich", "poor"], 40).await;
        assert_eq!(rich, vec![true; 20], "[{}] rich", db.label);
        let mut expected = vec![false; 20];
        expected[..3].fill(true);
        assert_eq!(poor, expected, "[{}] poor", db.label);
        for (who, left) in [("rich", 80), ("poor", 0)] {
            assert_left(&t, &db, who, left).await;
        }
    }
}

/// Debits of one account that arrive together and cost more in total than its balance:
/// each is charged, in arrival order, exactly when what is left covers it, as if it came
/// alone (a later cheaper one still fits after a dearer one was refused).
#[tokio::test]
async fn debits_arriving_together_beyond_the_balance_each_take_only_what_is_left() {
    for db in databases().await {
        let t = app(&db).await;
        t.core.top_up(&account("five"), 5, "t5").await.unwrap();
        let calls = [3, 3, 1, 2].into_iter().enumerate().map(|(i, cost)| {
            let store = t.store.clone();
            async move {
                store
                    .debit(
                        &format!("usage:together{i}"),
                        "five",
                        cost,
                        "get_referral",
                        START,
                    )
                    .await
                    .unwrap()
                    .is_some()
            }
        });
        let charged: Vec<bool> = futures::future::join_all(calls).await;
        assert_eq!(charged, [true, false, true, false], "[{}]", db.label);
        assert_eq!(t.store.balance("five").await.unwrap(), 1, "[{}]", db.label);
        assert_eq!(ledger_sum(&db, "five", None).await, 1, "[{}]", db.label);
        assert_eq!(
            ledger_rows_with_prefix(&db, "usage:together").await,
            2,
            "[{}] a ledger row per charged debit",
            db.label
        );
    }
}

/// The local ledger credits a recover group in one write (`credit_many`): each key adds
/// its credits once, a key written before is "already added" when account and amount
/// match, and a conflict naming what the key holds when they do not; a conflict adds
/// nothing.
#[tokio::test]
async fn crediting_many_adds_each_key_once_and_names_conflicts() {
    use referral_mcp::store::ledger::{Credit, NewCredit};
    let credit = |key: &str, account: &str, delta: i64| NewCredit {
        key: key.into(),
        account: account.into(),
        delta,
    };
    for db in databases().await {
        let t = app(&db).await;
        let many = |credits| t.store.credit_many(credits, "referral_reward", START);
        let first = many(vec![
            credit("g:1", "ann", 100),
            credit("g:2", "ann", 50),
            credit("g:3", "ben", 7),
        ])
        .await
        .unwrap();
        assert_eq!(first, vec![Credit::Added; 3], "[{}]", db.label);
        let again = many(vec![
            credit("g:1", "ann", 100),
            credit("g:3", "ben", 8),
            credit("g:4", "ben", 1),
            credit("g:2", "ann", 50),
        ])
        .await
        .unwrap();
        assert_eq!(
            again,
            vec![
                Credit::AlreadyAdded,
                Credit::Conflicting {
                    account: "ben".into(),
                    delta: 7
                },
                Credit::Added,
                Credit::AlreadyAdded,
            ],
            "[{}]",
            db.label
        );
        assert_eq!(t.store.balance("ann").await.unwrap(), 150, "[{}]", db.label);
        assert_eq!(t.store.balance("ben").await.unwrap(), 8, "[{}]", db.label);
    }
}
