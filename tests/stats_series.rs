//! Stats over time: `interval` adds a series (per UTC day, ISO week or calendar month) and
//! the top referrers; the buckets add up to the totals; `chart` draws the series as a PNG
//! over MCP (an image content block) and REST (`image/png`). On SQLite and PostgreSQL.

mod common;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::StatsQuery;
use referral_mcp::core::access::ScopeSet;
use referral_mcp::core::types::Interval;
use referral_mcp::core::views::StatsView;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

const DAY: i64 = 86_400;

/// Over ten days from START (Thursday 2026-05-28): alice gets 3 clicks and 2 signups on
/// day 0, one of which qualifies on day 1 (rewarded); carol gets 2 clicks and 1 signup on
/// day 8 (the next week, and June).
async fn history(t: &TestApp) {
    let alice = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
    let carol = register(&t.core, "carol", "carol@example.org", "198.51.100.2").await;
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        t.core.record_click(click(&alice, ip)).await.unwrap();
    }
    signup_via(&t.core, "bob", "bob@b.example", "203.0.113.11", &alice).await;
    signup_via(&t.core, "dan", "dan@d.example", "203.0.113.12", &alice).await;
    t.clock.advance(DAY);
    qualify(&t.core, "bob").await;
    t.clock.advance(7 * DAY);
    for ip in ["203.0.113.4", "203.0.113.5"] {
        t.core.record_click(click(&carol, ip)).await.unwrap();
    }
    signup_via(&t.core, "erin", "erin@e.example", "203.0.113.13", &carol).await;
}

fn query(interval: Option<Interval>) -> StatsQuery {
    StatsQuery::parse(Some("2026-05-25"), Some("2026-06-07"), None, START)
        .unwrap()
        .with_interval(interval)
        .unwrap()
}

fn sums(v: &StatsView) -> [i64; 5] {
    v.series.as_ref().unwrap().iter().fold([0; 5], |s, b| {
        [
            s[0] + b.clicks,
            s[1] + b.unique_clicks,
            s[2] + b.signups,
            s[3] + b.qualified,
            s[4] + b.rewarded_credits,
        ]
    })
}

#[tokio::test]
async fn series_buckets_add_up_to_the_totals_per_day_week_and_month() {
    for db in databases().await {
        let t = app(&db).await;
        history(&t).await;
        let plain = t.core.stats(query(None)).await.unwrap();
        assert_eq!(plain.clicks.total, 5, "[{}]", db.label);
        assert!(plain.series.is_none() && plain.top_referrers.is_none());
        let totals = [
            plain.clicks.total,
            plain.clicks.unique,
            plain.attributed_signups,
            plain.qualified,
            plain.rewarded.credits,
        ];
        assert!(totals[4] > 0, "[{}] bob's rewards were granted", db.label);

        let days = t.core.stats(query(Some(Interval::Day))).await.unwrap();
        let series = days.series.as_ref().unwrap();
        assert_eq!(series.len(), 14, "[{}] 2026-05-25 ..= 2026-06-07", db.label);
        assert_eq!(series[0].start, "2026-05-25");
        let thursday = &series[3];
        assert_eq!(thursday.start, "2026-05-28");
        assert_eq!(
            (thursday.clicks, thursday.signups),
            (3, 2),
            "[{}]",
            db.label
        );
        assert_eq!(
            series[4].qualified, 1,
            "[{}] bob qualified on day 1",
            db.label
        );
        assert_eq!(series[4].rewarded_credits, totals[4], "[{}]", db.label);
        assert_eq!(
            (series[11].clicks, series[11].signups),
            (2, 1),
            "[{}] day 8",
            db.label
        );
        assert_eq!(sums(&days), totals, "[{}] days add up", db.label);
        // Everything but the series is today's answer.
        let mut without = days.clone();
        (without.interval, without.series, without.top_referrers) = (None, None, None);
        assert_eq!(without, plain, "[{}] backward compatible", db.label);

        let weeks = t.core.stats(query(Some(Interval::Week))).await.unwrap();
        let starts: Vec<&str> = weeks
            .series
            .as_ref()
            .unwrap()
            .iter()
            .map(|b| b.start.as_str())
            .collect();
        assert_eq!(
            starts,
            ["2026-05-25", "2026-06-01"],
            "[{}] ISO weeks",
            db.label
        );
        assert_eq!(sums(&weeks), totals, "[{}] weeks add up", db.label);

        let months = t.core.stats(query(Some(Interval::Month))).await.unwrap();
        let m = months.series.as_ref().unwrap();
        assert_eq!(
            m.iter()
                .map(|b| (b.start.as_str(), b.signups))
                .collect::<Vec<_>>(),
            [("2026-05-01", 2), ("2026-06-01", 1)],
            "[{}] calendar months",
            db.label
        );
        assert_eq!(sums(&months), totals, "[{}] months add up", db.label);

        let top = months.top_referrers.unwrap();
        let top: Vec<(&str, i64, i64)> = top
            .iter()
            .map(|r| (r.account.as_str(), r.signups, r.qualified))
            .collect();
        assert_eq!(top, [("alice", 2, 1), ("carol", 1, 0)], "[{}]", db.label);
    }
}

#[tokio::test]
async fn too_many_buckets_and_a_chart_without_interval_are_refused_naming_the_field() {
    let e = StatsQuery::parse(Some("2024-01-01"), Some("2026-01-01"), None, START)
        .unwrap()
        .with_interval(Some(Interval::Day))
        .expect_err("731 days");
    assert!(e.to_string().contains("interval"), "{e}");
    let ok = StatsQuery::parse(Some("2024-01-01"), Some("2026-01-01"), None, START)
        .unwrap()
        .with_interval(Some(Interval::Week));
    assert!(ok.is_ok(), "105 weeks are fine");
    let args: referral_mcp::api::args::StatsArgs =
        serde_json::from_value(json!({"chart": true})).unwrap();
    let e = args.parse(START).expect_err("chart needs a series");
    assert!(e.to_string().contains("chart"), "{e}");
}

#[tokio::test]
async fn chart_comes_as_a_png_image_over_mcp_and_rest() {
    for db in databases().await {
        let t = app(&db).await;
        history(&t).await;
        let s = serve(&db, HttpOptions::default()).await;
        let key = s
            .app
            .auth
            .keys()
            .create("agent", &account("ops"), ScopeSet::all(), 0)
            .await
            .unwrap();
        s.app
            .core
            .top_up(&account("ops"), 100, "stats-chart")
            .await
            .unwrap();
        let cfg =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                s.url.as_str(),
            )
            .auth_header(key.key.clone());
        let c = ()
            .serve(StreamableHttpClientTransport::with_client(
                reqwest::Client::new(),
                cfg,
            ))
            .await
            .unwrap();
        let args =
            json!({"from": "2026-05-25", "to": "2026-06-07", "interval": "day", "chart": true});
        let r = c
            .call_tool(
                CallToolRequestParams::new("get_referral_stats")
                    .with_arguments(args.as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "[{}] {r:?}", db.label);
        let series = &r.structured_content.as_ref().unwrap()["series"];
        assert_eq!(series.as_array().unwrap().len(), 14, "[{}]", db.label);
        let png = r
            .content
            .iter()
            .find_map(|b| match b {
                ContentBlock::Image(i) => Some(i.clone()),
                _ => None,
            })
            .expect("an image block");
        assert_eq!(png.mime_type, "image/png");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&png.data)
            .unwrap();
        let info = png::Decoder::new(std::io::Cursor::new(&bytes))
            .read_info()
            .expect("a PNG")
            .info()
            .clone();
        assert_eq!((info.width, info.height), (960, 760));
        // Kept for people to look at (CI keeps target/artifacts).
        std::fs::create_dir_all("target/artifacts").unwrap();
        std::fs::write(
            format!("target/artifacts/stats-chart-{}.png", db.label),
            &bytes,
        )
        .unwrap();

        let rest = reqwest::Client::new()
            .get(format!(
                "{}/admin/referrals/stats?from=2026-05-25&to=2026-06-07&interval=week&chart=true",
                s.base
            ))
            .header("x-api-key", &key.key)
            .send()
            .await
            .unwrap();
        assert_eq!(rest.status(), 200);
        assert_eq!(rest.headers()["content-type"], "image/png");
        assert!(rest.bytes().await.unwrap().starts_with(b"\x89PNG"));
        let plain: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/admin/referrals/stats?from=2026-05-25&to=2026-06-07",
                s.base
            ))
            .header("x-api-key", &key.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            plain.get("series").is_none(),
            "no interval, no series: {plain}"
        );
        c.cancel().await.unwrap();
        s.stop.cancel();
    }
}
