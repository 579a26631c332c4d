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
