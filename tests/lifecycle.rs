//! The referral lifecycle end to end, on SQLite and PostgreSQL.

mod common;

use common::*;
use referral_mcp::core::SignupEvent;
use referral_mcp::core::types::{AttributionStatus, RewardStatus, Side};

#[tokio::test]
async fn click_signup_qualification_grants_both_rewards_and_balances_add_up() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;

        let receipt = t
            .core
            .record_click(click(&code, "203.0.113.7"))
            .await
            .unwrap();
        assert!(receipt.counted_as_unique, "[{}]", db.label);
        t.clock.advance(600);

        let out = t
            .core
            .record_signup(SignupEvent {
                account: account("bob"),
                email: Some(
                    referral_mcp::core::text::Email::parse("e", "bob@other.example").unwrap(),
                ),
                ip: Some("203.0.113.7".parse().unwrap()),
                code: None,
                click_id: Some(receipt.click_id.clone()),
            })
            .await
            .unwrap();
        let referral = out.referral.expect("attributed");
        assert_eq!(referral.referrer_account, "alice", "[{}]", db.label);
        assert_eq!(referral.status, AttributionStatus::Attributed);

        let q = qualify(&t.core, "bob").await;
        let r = q.referral.unwrap();
        assert_eq!(r.status, AttributionStatus::Rewarded, "[{}]", db.label);
        assert_eq!(r.rewards.len(), 2);
        assert!(r.rewards.iter().all(|w| w.status == RewardStatus::Granted));

        // default campaign: 100 to the referrer, 50 to the referred account
        assert_eq!(rewards_credited(&db, "alice").await, 100, "[{}]", db.label);
        assert_eq!(rewards_credited(&db, "bob").await, 50, "[{}]", db.label);
        assert_eq!(t.store.balance("alice").await.unwrap(), 100);
        assert_eq!(t.store.balance("bob").await.unwrap(), 50);

        // a replayed qualification changes nothing
        qualify(&t.core, "bob").await;
        assert_eq!(
            t.store.balance("alice").await.unwrap(),
            100,
            "[{}]",
            db.label
        );
    }
}

#[tokio::test]
async fn self_referral_is_refused_and_changes_nothing() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let err = t
            .core
            .record_signup(SignupEvent {
                account: account("alice"),
                email: None,
                ip: None,
                code: Some(code),
                click_id: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "[{}]", db.label);
        assert!(err.to_string().contains("self-referral"));
        let page = t.core.query_referrals(Default::default()).await.unwrap();
        assert!(page.referrals.is_empty(), "[{}]", db.label);
    }
}

#[tokio::test]
async fn an_account_is_referred_at_most_once() {
    for db in databases().await {
        let t = app(&db).await;
        let a = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let c = register(&t.core, "carol", "carol@example.org", "198.51.100.3").await;
        let first = signup_via(&t.core, "bob", "bob@x.example", "203.0.113.2", &a).await;
        assert!(first.created);
        // a replay of the same signup is harmless
        let again = signup_via(&t.core, "bob", "bob@x.example", "203.0.113.2", &a).await;
        assert!(!again.created, "[{}]", db.label);
        // another referrer is refused
        let err = t
            .core
            .record_signup(SignupEvent {
                account: account("bob"),
                email: None,
                ip: None,
                code: Some(c),
                click_id: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "conflict", "[{}]", db.label);
        let page = t.core.query_referrals(Default::default()).await.unwrap();
        assert_eq!(page.referrals.len(), 1);
    }
}

#[tokio::test]
async fn a_click_older_than_the_window_does_not_attribute() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let receipt = t
            .core
            .record_click(click(&code, "203.0.113.7"))
            .await
            .unwrap();
        t.clock.advance(31 * 86_400);
        let out = t
            .core
            .record_signup(SignupEvent {
                account: account("bob"),
                email: None,
                ip: None,
                code: None,
                click_id: Some(receipt.click_id),
            })
            .await
            .unwrap();
        assert!(out.referral.is_none(), "[{}]", db.label);
    }
}

#[tokio::test]
async fn last_click_wins_among_the_visitors_clicks() {
    for db in databases().await {
        let t = app(&db).await;
        let a = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let c = register(&t.core, "carol", "carol@example.org", "198.51.100.3").await;
        let first = t.core.record_click(click(&a, "203.0.113.7")).await.unwrap();
        t.clock.advance(3600);
        t.core.record_click(click(&c, "203.0.113.7")).await.unwrap();
        t.clock.advance(60);
        let out = t
            .core
            .record_signup(SignupEvent {
                account: account("bob"),
                email: None,
                ip: None,
                code: None,
                click_id: Some(first.click_id),
            })
            .await
            .unwrap();
        assert_eq!(
            out.referral.unwrap().referrer_account,
            "carol",
            "[{}]",
            db.label
        );
    }
}

#[tokio::test]
async fn repeat_clicks_within_an_hour_and_bots_are_not_unique() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        assert!(
            t.core
                .record_click(click(&code, "203.0.113.7"))
                .await
                .unwrap()
                .counted_as_unique
        );
        t.clock.advance(1800);
        assert!(
            !t.core
                .record_click(click(&code, "203.0.113.7"))
                .await
                .unwrap()
                .counted_as_unique
        );
        t.clock.advance(3601);
        assert!(
            t.core
                .record_click(click(&code, "203.0.113.7"))
                .await
                .unwrap()
                .counted_as_unique
        );
        let mut bot = click(&code, "203.0.113.99");
        bot.raw.user_agent = Some("Googlebot/2.1 (+http://www.google.com/bot.html)".into());
        let r = t.core.record_click(bot).await.unwrap();
        assert!(r.bot && !r.counted_as_unique, "[{}]", db.label);

        let q = referral_mcp::core::StatsQuery::parse(None, None, None, t.clock.now()).unwrap();
        let s = t.core.stats(q).await.unwrap();
        assert_eq!(
            (s.clicks.total, s.clicks.unique, s.clicks.bots),
            (4, 2, 1),
            "[{}]",
            db.label
        );
        let me = t.core.summary_for(&account("alice")).await.unwrap();
        assert_eq!((me.stats.clicks, me.stats.unique_clicks), (4, 2));
    }
}

#[tokio::test]
async fn a_visitors_first_click_on_each_code_is_unique_within_the_same_hour() {
    for db in databases().await {
        let t = app(&db).await;
        let alice = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let bob = register(&t.core, "bob", "bob@example.com", "198.51.100.2").await;
        let mut unique = Vec::new();
        for code in [&alice, &bob, &alice, &bob] {
            let r = t
                .core
                .record_click(click(code, "203.0.113.7"))
                .await
                .unwrap();
            unique.push(r.counted_as_unique);
            t.clock.advance(60);
        }
        assert_eq!(unique, [true, true, false, false], "[{}]", db.label);
        let a = t.core.summary_for(&account("alice")).await.unwrap();
        let b = t.core.summary_for(&account("bob")).await.unwrap();
        assert_eq!(
            (a.stats.unique_clicks, b.stats.unique_clicks),
            (1, 1),
            "[{}]",
            db.label
        );
    }
}

#[tokio::test]
async fn list_filters_and_cursor_pages_through_everything_once() {
    for db in databases().await {
        let t = app(&db).await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        for i in 0..7 {
            signup_via(
                &t.core,
                &format!("u{i}"),
                &format!("u{i}@x{i}.example"),
                &format!("203.0.113.{}", i + 10),
                &code,
            )
            .await;
        }
        qualify(&t.core, "u0").await;
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = t
                .core
                .query_referrals(referral_mcp::core::ListQuery {
                    limit: referral_mcp::core::types::Limit::parse("limit", 3, 100).unwrap(),
                    cursor,
                    ..Default::default()
                })
                .await
                .unwrap();
            seen.extend(page.referrals.iter().map(|r| r.id));
            match page.next_cursor {
                Some(c) => {
                    cursor = Some(referral_mcp::core::types::Cursor::parse("cursor", &c).unwrap())
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 7, "[{}]", db.label);
        let mut sorted = seen.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first");

        let rewarded = t
            .core
            .query_referrals(referral_mcp::core::ListQuery {
                status: Some(AttributionStatus::Rewarded),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rewarded.referrals.len(), 1);
        assert_eq!(rewarded.referrals[0].referred_account, "u0");
        assert_eq!(rewarded.referrals[0].rewards[0].side, Side::Referrer);

        let by_user = t
            .core
            .query_referrals(referral_mcp::core::ListQuery {
                user: Some(account("u3")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_user.referrals.len(), 1, "[{}]", db.label);

        let events = t
            .core
            .events_for(
                &account("alice"),
                referral_mcp::core::EventsQuery {
                    limit: referral_mcp::core::types::Limit::parse("limit", 10, 100).unwrap(),
                    cursor: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(events.events.len(), 7);
        assert!(
            events
                .events
                .iter()
                .all(|e| e.other_email.as_deref().is_some_and(|m| m.contains("***")))
        );
    }
}
