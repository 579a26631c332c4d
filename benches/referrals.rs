//! Benchmarks for the design's performance targets, on an embedded SQLite file:
//!
//! - click capture, one at a time and from 64 concurrent callers (target ≥ 10,000/s);
//! - `list_referrals` over 100,000 attributions (target p50 ≤ 3 ms);
//! - stats over 1,000,000 clicks (target p50 ≤ 10 ms);
//! - `recover` of 10,000 rewards (target ≤ 2 s);
//! - metering overhead on a read (target ≤ 25 %);
//! - REST vs MCP `tools/call` throughput over real HTTP (target MCP ≥ 0.8 × REST).
//!
//! `cargo bench` prints the figures (criterion's median is the p50). Bulk data is loaded
//! with SQL straight into the tables, because going through the core would take minutes;
//! the measured calls all go through the core or the HTTP server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use referral_mcp::billing::LedgerSink;
use referral_mcp::cli::{HttpOptions, router};
use referral_mcp::config::{App, Config};
use referral_mcp::core::access::{Principal, ScopeSet, Via};
use referral_mcp::core::click::RawClick;
use referral_mcp::core::clock::Clock;
use referral_mcp::core::types::{AccountId, AttributionStatus, Interval, Limit, ReferralCode};
use referral_mcp::core::{
    ClickRequest, ListQuery, RecoverRequest, Referrals, Settings, StatsQuery,
};
use referral_mcp::store::Store;
use tokio_util::sync::CancellationToken;

const NOW: i64 = 1_793_534_400; // 2026-11-01T12:00:00Z

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

struct Fixture {
    core: Referrals,
    store: Store,
    url: String,
    _dir: tempfile::TempDir,
}

/// A fresh SQLite file with the schema, then `sql` run against it.
async fn fixture(sql: &[String]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url).await.expect("store");
    let raw = sqlx::SqlitePool::connect(&url).await.expect("raw pool");
    for statement in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&raw)
            .await
            .expect("seed");
    }
    raw.close().await;
    let clock = Clock::manual(NOW);
    let sink = Arc::new(LedgerSink::new(store.clone(), clock.clone()));
    let core = Referrals::new(store.clone(), sink, Settings::default(), clock);
    core.ensure_default_campaign().await.expect("campaign");
    Fixture {
        core,
        store,
        url,
        _dir: dir,
    }
}

/// `n` rows numbered 1..=n, as a recursive CTE.
fn series(n: i64) -> String {
    format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})")
}

fn referrers(n: i64) -> String {
    format!(
        "INSERT INTO accounts (id, referral_code, created_at) {} SELECT 'bench_r' || i, 'benchcode' || i, {} FROM s",
        series(n),
        NOW - 90 * 86_400
    )
}

/// `n` attributions by 1,000 referrers over the last 60 days, in every status, with
/// reward pairs for the qualified (failed: recover's work) and rewarded (granted) ones.
fn attributions(n: i64) -> Vec<String> {
    let statuses = "CASE i % 5 WHEN 0 THEN 'attributed' WHEN 1 THEN 'review_required' WHEN 2 THEN 'qualified' WHEN 3 THEN 'rewarded' ELSE 'rejected' END";
    vec![
        referrers(1000),
        format!(
            "INSERT INTO accounts (id, referral_code, created_at) {} SELECT 'bench_u' || i, 'benchuser' || i, {} FROM s",
            series(n),
            NOW - 60 * 86_400
        ),
        format!(
            "INSERT INTO attributions (id, referrer_account, referred_account, code, campaign, status, qualified_at, created_at, updated_at)
             {} SELECT i, 'bench_r' || (i % 1000 + 1), 'bench_u' || i, 'benchcode' || (i % 1000 + 1), 'default', {statuses},
                CASE WHEN i % 5 IN (2, 3) THEN {now} - ({n} - i) * 50 END, {now} - ({n} - i) * 50, {now} FROM s",
            series(n),
            now = NOW
        ),
        "INSERT INTO rewards (attribution_id, side, account, credits, status, grant_key, created_at, granted_at)
         SELECT id, 'referrer', referrer_account, 100, CASE status WHEN 'rewarded' THEN 'granted' ELSE 'failed' END,
                'referral:' || id || ':referrer', created_at, CASE status WHEN 'rewarded' THEN created_at END
         FROM attributions WHERE status IN ('qualified', 'rewarded')"
            .into(),
        "INSERT INTO rewards (attribution_id, side, account, credits, status, grant_key, created_at, granted_at)
         SELECT id, 'referred', referred_account, 50, CASE status WHEN 'rewarded' THEN 'granted' ELSE 'failed' END,
                'referral:' || id || ':referred', created_at, CASE status WHEN 'rewarded' THEN created_at END
         FROM attributions WHERE status IN ('qualified', 'rewarded')"
            .into(),
    ]
}

/// `n` clicks over the last 30 days and their daily counters (as click capture keeps them).
fn clicks(n: i64) -> Vec<String> {
    vec![
        format!(
            "INSERT INTO clicks (public_id, code, referrer_account, campaign, landing_path, ua_family, is_bot, ip_hash, is_unique, created_at)
             {} SELECT 'clk_bench' || i, 'benchcode' || (i % 1000 + 1), 'bench_r' || (i % 1000 + 1), 'default', '/r/x',
                'chrome', i % 20 = 0, 'ip' || (i % 50000), i % 3 <> 0, {now} - (i % (30 * 86400)) FROM s",
            series(n),
            now = NOW
        ),
        "INSERT INTO click_daily (day, campaign, total, unique_count, bots)
         SELECT created_at / 86400, campaign, count(*), sum(is_unique), sum(is_bot) FROM clicks GROUP BY 1, 2"
            .into(),
    ]
}

fn admin() -> Principal {
    Principal {
        account: AccountId::parse("account", "acct_ops").expect("id"),
        via: Via::Jwt { admin: true },
        scopes: ScopeSet::empty(),
    }
}

fn click(n: u64) -> ClickRequest {
    ClickRequest {
        code: ReferralCode::parse("code", &format!("benchcode{}", n % 1000 + 1)).expect("code"),
        campaign: None,
        raw: RawClick {
            landing_url: Some(
                "https://app.example/r/x?utm_source=newsletter&utm_medium=email".into(),
            ),
            referrer_url: Some("https://news.example/item/1".into()),
            user_agent: Some(
                "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15".into(),
            ),
            ip: Some(std::net::IpAddr::from([
                10,
                (n >> 16) as u8,
                (n >> 8) as u8,
                n as u8,
            ])),
        },
    }
}

fn click_capture(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(fixture(&[referrers(1000)]));
    let mut g = c.benchmark_group("click_capture");
    g.throughput(Throughput::Elements(1));
    let n = std::sync::atomic::AtomicU64::new(0);
    // Through `capture_click`, as the public route calls it: the per-IP rate limiter
    // counts every click (each bench click comes from its own address, so none is
    // refused, but every one pays for its counter).
    g.bench_function("one_at_a_time", |b| {
        b.to_async(&rt).iter(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f.core.capture_click(None, click(i))
        })
    });
    g.bench_function("64_concurrent_callers", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let core = f.core.clone();
            let start_at = n.fetch_add(iters, std::sync::atomic::Ordering::Relaxed);
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..64u64)
                    .map(|t| {
                        let core = core.clone();
                        tokio::spawn(async move {
                            let mut i = t;
                            while i < iters {
                                core.capture_click(None, click(start_at + i))
                                    .await
                                    .expect("click");
                                i += 64;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                start.elapsed()
            }
        })
    });
    g.finish();
}

fn list_referrals(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(fixture(&attributions(100_000)));
    let limit = Limit::parse("limit", 20, 100).expect("limit");
    let mut g = c.benchmark_group("list_referrals_100k");
    let queries = [
        (
            "newest_20",
            ListQuery {
                limit,
                ..Default::default()
            },
        ),
        (
            "status_review_required",
            ListQuery {
                status: Some(AttributionStatus::ReviewRequired),
                limit,
                ..Default::default()
            },
        ),
        (
            "one_referrer",
            ListQuery {
                user: Some(AccountId::parse("user", "bench_r7").expect("id")),
                limit,
                ..Default::default()
            },
        ),
        (
            "pending_grant",
            ListQuery {
                pending_grant: Some(true),
                limit,
                ..Default::default()
            },
        ),
    ];
    for (name, q) in queries {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| f.core.query_referrals(q.clone()))
        });
    }
    g.finish();
}

fn stats(c: &mut Criterion) {
    let rt = runtime();
    let mut sql = attributions(100_000);
    sql.extend(clicks(1_000_000));
    let f = rt.block_on(fixture(&sql));
    let mut g = c.benchmark_group("stats_1m_clicks");
    g.bench_function("last_30_days", |b| {
        b.to_async(&rt).iter(|| {
            f.core.stats(StatsQuery {
                from: NOW - 30 * 86_400,
                to: NOW,
                campaign: None,
                interval: None,
            })
        })
    });
    // The series and top referrers of the same range: daily counters for the clicks,
    // day-grouped counts for the rest, one group-by for the referrers.
    for interval in [Interval::Day, Interval::Week] {
        g.bench_function(
            format!("last_30_days_per_{interval:?}").to_lowercase(),
            |b| {
                b.to_async(&rt).iter(|| {
                    f.core.stats(StatsQuery {
                        from: NOW - 30 * 86_400,
                        to: NOW,
                        campaign: None,
                        interval: Some(interval),
                    })
                })
            },
        );
    }
    g.finish();
}

fn recover(c: &mut Criterion) {
    let rt = runtime();
    // 12,500 attributions → 2,500 qualified → 5,000 failed rewards; twice that for 10k.
    let f = rt.block_on(fixture(&attributions(25_000)));
    let reset = "UPDATE rewards SET status = 'failed', granted_at = NULL, claimed_until = NULL, attempts = 0 WHERE attribution_id % 5 = 2;
                 DELETE FROM ledger WHERE kind = 'referral_reward'; DELETE FROM balances;";
    let mut g = c.benchmark_group("recover");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("10k_rewards", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let core = f.core.clone();
            let url = f.url.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let raw = sqlx::SqlitePool::connect(&url).await.expect("pool");
                    sqlx::raw_sql(reset).execute(&raw).await.expect("reset");
                    raw.close().await;
                    let start = Instant::now();
                    let r = core
                        .run_recover(
                            RecoverRequest {
                                limit: Limit::parse("limit", 10_000, 10_000).expect("limit"),
                            },
                            &|_| {},
                            &CancellationToken::new(),
                        )
                        .await
                        .expect("recover");
                    total += start.elapsed();
                    assert_eq!(r.granted, 10_000, "{r:?}");
                }
                total
            }
        })
    });
    g.finish();
}

fn metering(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(fixture(&attributions(100_000)));
    rt.block_on(f.core.top_up(&admin().account, 1_000_000_000, "bench"))
        .expect("top up");
    let q = ListQuery {
        limit: Limit::parse("limit", 20, 100).expect("limit"),
        ..Default::default()
    };
    let p = admin();
    let mut g = c.benchmark_group("metering");
    g.bench_function("list_referrals_unmetered", |b| {
        b.to_async(&rt).iter(|| f.core.query_referrals(q.clone()))
    });
    g.bench_function("list_referrals_metered", |b| {
        b.to_async(&rt)
            .iter(|| f.core.list_referrals(Some(&p), q.clone()))
    });
    g.finish();
    drop(f.store);
}

fn http(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(fixture(&attributions(100_000)));
    let (base, token) = rt.block_on(async {
        let mut cfg = Config::with_database(&f.url);
        cfg.jwt_secret = Some("bench".into());
        let app = App::start_with(&cfg, None, Clock::System)
            .await
            .expect("app");
        app.core
            .top_up(&admin().account, 1_000_000_000, "bench-http")
            .await
            .expect("top up");
        let token = app
            .auth
            .jwt()
            .mint(&admin().account, true, 3600)
            .expect("jwt");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let r = router(app, HttpOptions::default(), CancellationToken::new());
        tokio::spawn(async move {
            axum::serve(
                listener,
                r.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        });
        (base, token)
    });
    let client = reqwest::Client::new();
    let mut g = c.benchmark_group("http_list_referrals_16_concurrent");
    g.throughput(Throughput::Elements(1));
    let run = |mcp: bool| {
        let client = client.clone();
        let base = base.clone();
        let token = token.clone();
        move |iters: u64| {
            let client = client.clone();
            let base = base.clone();
            let token = token.clone();
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..16u64)
                    .map(|t| {
                        let (client, base, token) = (client.clone(), base.clone(), token.clone());
                        tokio::spawn(async move {
                            let mut i = t;
                            while i < iters {
                                let r = if mcp {
                                    client
                                        .post(format!("{base}/mcp"))
                                        .bearer_auth(&token)
                                        .header("accept", "application/json, text/event-stream")
                                        .header("mcp-protocol-version", "2025-11-25")
                                        .json(&serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                            "params": {"name": "list_referrals", "arguments": {"limit": 20}}}))
                                        .send()
                                        .await
                                } else {
                                    client
                                        .get(format!("{base}/admin/referrals?limit=20"))
                                        .bearer_auth(&token)
                                        .send()
                                        .await
                                };
                                let r = r.expect("request");
                                assert!(r.status().is_success());
                                r.bytes().await.expect("body");
                                i += 16;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                start.elapsed()
            }
        }
    };
    g.bench_function("rest", |b| b.to_async(&rt).iter_custom(run(false)));
    g.bench_function("mcp_tools_call", |b| b.to_async(&rt).iter_custom(run(true)));
    g.finish();
}

criterion_group! {
    name = benches;
    // No plots: the crate's own plotters (for stats charts) is built with an embedded
    // font only, and criterion's plot backend would look for system fonts and panic.
    // The figures are printed; the HTML report is not needed.
    config = Criterion::default().without_plots();
    targets = click_capture, list_referrals, stats, recover, metering, http
}
criterion_main!(benches);
