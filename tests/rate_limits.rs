//! The public rate limit keeps working minute after minute while its table stays small:
//! old windows are pruned as part of normal operation — on SQLite and PostgreSQL, with
//! two instances sharing one database.

mod common;

use common::*;
use referral_mcp::core::Settings;

const LIMIT: i64 = 3;
const VISITORS: usize = 4;
const MINUTES: usize = 30;

#[tokio::test]
async fn rate_limit_rows_stay_bounded_over_many_minutes_and_the_limit_still_refuses() {
    for db in databases().await {
        let settings = || Settings {
            public_rate_per_minute: LIMIT,
            ..Default::default()
        };
        // Two instances on one database, as behind a load balancer; their clocks move
        // together.
        let a = app_with(&db, None, settings()).await;
        let b = app_with(&db, None, settings()).await;
        let code = register(&a.core, "alice", "alice@example.com", "198.51.100.1").await;
        let mut most_rows = 0;
        for minute in 0..MINUTES {
            for visitor in 0..VISITORS {
                let node = if (minute + visitor) % 2 == 0 { &a } else { &b };
                node.core
                    .capture_click(None, click(&code, &format!("203.0.113.{visitor}")))
                    .await
                    .unwrap_or_else(|e| panic!("[{}] minute {minute}: {e}", db.label));
            }
            // Visitor 0 uses up its limit across both instances; the next call is refused.
            for n in 1..LIMIT {
                let node = if n % 2 == 0 { &a } else { &b };
                node.core
                    .capture_click(None, click(&code, "203.0.113.0"))
                    .await
                    .unwrap_or_else(|e| panic!("[{}] minute {minute}, call {n}: {e}", db.label));
            }
            let err = a
                .core
                .capture_click(None, click(&code, "203.0.113.0"))
                .await
                .expect_err("one call over the limit");
            assert_eq!(err.code(), "rate_limited", "[{}] minute {minute}", db.label);

            let rows = rate_limit_rows(&db).await;
            most_rows = most_rows.max(rows);
            assert!(
                rows <= 2 * VISITORS as i64,
                "[{}] minute {minute}: {rows} rows; only this window and the previous one are kept",
                db.label
            );
            a.clock.advance(60);
            b.clock.advance(60);
        }
        assert!(
            most_rows >= VISITORS as i64,
            "[{}] the current window was counted",
            db.label
        );
    }
}

/// One row of the counters click capture keeps, read straight from the database.
async fn counters(db: &common::TestDb, account: &str) -> [i64; 5] {
    let mut c = sql(db).await;
    let (total, unique): (i64, i64) =
        sqlx::query_as("SELECT clicks_total, clicks_unique FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_one(&mut c)
            .await
            .expect("account counters");
    let (day_total, day_unique): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT), CAST(COALESCE(SUM(unique_count), 0) AS BIGINT) FROM click_daily",
    )
    .fetch_one(&mut c)
    .await
    .expect("daily counters");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clicks")
        .fetch_one(&mut c)
        .await
        .expect("clicks");
    [total, unique, day_total, day_unique, rows]
}

/// Clicks are written in batches; a flood from one visitor across two instances must
/// still be admitted up to the limit exactly, count once as unique, and leave every
/// counter equal to the rows stored.
#[tokio::test]
async fn a_concurrent_flood_from_one_visitor_is_admitted_up_to_the_limit_and_counted_once() {
    const FLOOD: usize = 60;
    const LIMIT: i64 = 25;
    for db in databases().await {
        let settings = || Settings {
            public_rate_per_minute: LIMIT,
            ..Default::default()
        };
        let a = app_with(&db, None, settings()).await;
        let b = app_with(&db, None, settings()).await;
        let code = register(&a.core, "alice", "alice@example.com", "198.51.100.1").await;
        let calls = (0..FLOOD).map(|n| {
            let core = if n % 2 == 0 {
                a.core.clone()
            } else {
                b.core.clone()
            };
            let req = click(&code, "203.0.113.9");
            tokio::spawn(async move { core.capture_click(None, req).await })
        });
        let (mut stored, mut unique, mut refused) = (0, 0, 0);
        for call in futures::future::join_all(calls).await {
            match call.expect("task") {
                Ok(receipt) => {
                    stored += 1;
                    unique += i64::from(receipt.counted_as_unique);
                }
                Err(e) => {
                    assert_eq!(e.code(), "rate_limited", "[{}] {e}", db.label);
                    refused += 1;
                }
            }
        }
        assert_eq!(stored, LIMIT, "[{}] admitted exactly the limit", db.label);
        assert_eq!(refused, FLOOD as i64 - LIMIT, "[{}]", db.label);
        assert_eq!(unique, 1, "[{}] one visitor, one unique click", db.label);
        assert_eq!(
            counters(&db, "alice").await,
            [LIMIT, 1, LIMIT, 1, LIMIT],
            "[{}] account total/unique, daily total/unique, rows",
            db.label
        );
    }
}

/// Many visitors at once: every click is stored and unique, and the counters agree.
#[tokio::test]
async fn concurrent_clicks_from_many_visitors_are_each_stored_once_and_counted() {
    const VISITORS: usize = 150;
    for db in databases().await {
        let a = app(&db).await;
        let b = app(&db).await;
        let code = register(&a.core, "alice", "alice@example.com", "198.51.100.1").await;
        let calls = (0..VISITORS).map(|n| {
            let core = if n % 2 == 0 {
                a.core.clone()
            } else {
                b.core.clone()
            };
            let req = click(&code, &format!("10.0.{}.{}", n / 200, n % 200));
            tokio::spawn(async move { core.capture_click(None, req).await })
        });
        let mut ids = std::collections::HashSet::new();
        for call in futures::future::join_all(calls).await {
            let receipt = call
                .expect("task")
                .unwrap_or_else(|e| panic!("[{}] {e}", db.label));
            assert!(receipt.counted_as_unique, "[{}] a new visitor", db.label);
            ids.insert(receipt.click_id);
        }
        let n = VISITORS as i64;
        assert_eq!(ids.len(), VISITORS, "[{}] one id per click", db.label);
        assert_eq!(
            counters(&db, "alice").await,
            [n, n, n, n, n],
            "[{}]",
            db.label
        );
    }
}

/// Calls with a code that does not exist are refused, and still count against the
/// visitor's limit, so that guessing codes is throttled like clicking them.
#[tokio::test]
async fn unknown_codes_count_against_the_limit() {
    for db in databases().await {
        let a = app_with(
            &db,
            None,
            Settings {
                public_rate_per_minute: 2,
                ..Default::default()
            },
        )
        .await;
        let code = register(&a.core, "alice", "alice@example.com", "198.51.100.1").await;
        let unknown = referral_mcp::core::types::ReferralCode::parse("code", "no-such-code")
            .expect("a well-formed code");
        for _ in 0..2 {
            let e = a
                .core
                .capture_click(None, click(&unknown, "203.0.113.7"))
                .await
                .expect_err("unknown code");
            assert_eq!(e.code(), "not_found", "[{}]", db.label);
        }
        let e = a
            .core
            .capture_click(None, click(&code, "203.0.113.7"))
            .await
            .expect_err("the limit was used up by the guesses");
        assert_eq!(e.code(), "rate_limited", "[{}]", db.label);
        assert_eq!(
            counters(&db, "alice").await[4],
            0,
            "[{}] nothing stored",
            db.label
        );
    }
}

/// Clicks arriving together are written as one batch whose counters are summed per
/// account and per day: with two referrers, repeat visitors and bots mixed in, each
/// account's counters and the day's must still equal the rows stored.
#[tokio::test]
async fn concurrent_clicks_on_two_referrers_with_bots_leave_every_counter_equal_to_its_rows() {
    const CLICKS: usize = 120;
    for db in databases().await {
        let a = app(&db).await;
        let b = app(&db).await;
        let alice = register(&a.core, "alice", "alice@example.com", "198.51.100.1").await;
        let bob = register(&a.core, "bob", "bob@example.com", "198.51.100.2").await;
        let calls = (0..CLICKS).map(|n| {
            let core = if n % 2 == 0 {
                a.core.clone()
            } else {
                b.core.clone()
            };
            // Every third click a bot; visitors repeat every 40 clicks, on either code.
            let mut req = click(
                if n % 5 < 2 { &alice } else { &bob },
                &format!("10.1.0.{}", n % 40),
            );
            if n % 3 == 0 {
                req.raw.user_agent = Some("Googlebot/2.1 (+http://www.google.com/bot.html)".into());
            }
            tokio::spawn(async move { core.capture_click(None, req).await })
        });
        let mut unique_answers = 0;
        for call in futures::future::join_all(calls).await {
            let receipt = call
                .expect("task")
                .unwrap_or_else(|e| panic!("[{}] {e}", db.label));
            unique_answers += i64::from(receipt.counted_as_unique);
        }
        let mut c = sql(&db).await;
        for account in ["alice", "bob"] {
            let (rows, unique): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(is_unique), 0) AS BIGINT) FROM clicks WHERE referrer_account = $1",
            )
            .bind(account)
            .fetch_one(&mut c)
            .await
            .expect("rows");
            let (total, counted_unique): (i64, i64) =
                sqlx::query_as("SELECT clicks_total, clicks_unique FROM accounts WHERE id = $1")
                    .bind(account)
                    .fetch_one(&mut c)
                    .await
                    .expect("account counters");
            assert!(rows > 0, "[{}] {account} got clicks", db.label);
            assert_eq!(
                (total, counted_unique),
                (rows, unique),
                "[{}] {account}'s counters against its rows",
                db.label
            );
        }
        let (rows, unique, bots): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(is_unique) AS BIGINT), CAST(SUM(is_bot) AS BIGINT) FROM clicks",
        )
        .fetch_one(&mut c)
        .await
        .expect("rows");
        let daily: (i64, i64, i64) = sqlx::query_as(
            "SELECT CAST(SUM(total) AS BIGINT), CAST(SUM(unique_count) AS BIGINT), CAST(SUM(bots) AS BIGINT) FROM click_daily",
        )
        .fetch_one(&mut c)
        .await
        .expect("daily counters");
        assert_eq!(rows, CLICKS as i64, "[{}] every click stored", db.label);
        assert_eq!(bots, CLICKS.div_ceil(3) as i64, "[{}] the bots", db.label);
        assert_eq!(
            daily,
            (rows, unique, bots),
            "[{}] the day's total/unique/bots against the rows",
            db.label
        );
        assert_eq!(unique, unique_answers, "[{}] as answered", db.label);
        // 40 visitors on two codes: at most one unique click per visitor and code.
        assert!((1..=80).contains(&unique), "[{}] {unique} unique", db.label);
    }
}
