//! Test harness: every storage test runs on a fresh SQLite file and, when
//! `REFERRAL_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database of its own.
#![allow(dead_code)]

mod sql;
// Each test binary uses only some of these.
#[allow(unused_imports)]
pub use sql::*;

use std::sync::Arc;

use referral_mcp::billing::LedgerSink;
use referral_mcp::core::access::{Principal, ScopeSet, Via};
use referral_mcp::core::clock::Clock;
use referral_mcp::core::sink::CreditSink;
use referral_mcp::core::types::AccountId;
use referral_mcp::core::{Referrals, Settings};
use referral_mcp::store::Store;

use referral_mcp::cli::listen::{self, ConnLimits};
use referral_mcp::cli::{HttpOptions, router};
use referral_mcp::config::{App, Config};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

pub const START: i64 = 1_780_000_000; // 2026-05-28, a fixed "now" for manual clocks

/// A database that exists for one test only.
pub struct TestDb {
    pub url: String,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Drop the database from a separate thread and runtime: Drop cannot be async.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut c)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

fn unique_name() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    format!("referral_test_{}", hex::encode(b))
}

pub async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/test.db", dir.path().display());
    TestDb {
        url,
        label: "sqlite",
        _dir: Some(dir),
        pg: None,
    }
}

pub async fn postgres_db() -> Option<TestDb> {
    let base = std::env::var("REFERRAL_TEST_POSTGRES_URL").ok()?;
    let name = unique_name();
    let mut c = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to REFERRAL_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut c)
        .await
        .expect("create test database");
    let mut u = url::Url::parse(&base).expect("postgres url");
    u.set_path(&format!("/{name}"));
    Some(TestDb {
        url: u.to_string(),
        label: "postgres",
        _dir: None,
        pg: Some((base, name)),
    })
}

/// The databases this test should run on: SQLite always, PostgreSQL when configured.
pub async fn databases() -> Vec<TestDb> {
    let mut v = vec![sqlite_db().await];
    match postgres_db().await {
        Some(db) => v.push(db),
        None => eprintln!(
            "NOTE: PostgreSQL skipped for this test: set REFERRAL_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it too"
        ),
    }
    v
}

pub struct TestApp {
    pub core: Referrals,
    pub store: Store,
    pub clock: Clock,
}

pub async fn app(db: &TestDb) -> TestApp {
    app_with(db, None, Settings::default()).await
}

pub async fn app_with(
    db: &TestDb,
    sink: Option<Arc<dyn CreditSink>>,
    settings: Settings,
) -> TestApp {
    let store = Store::connect(&db.url).await.expect("connect store");
    let clock = Clock::manual(START);
    let sink = sink.unwrap_or_else(|| Arc::new(LedgerSink::new(store.clone(), clock.clone())));
    let core = Referrals::new(store.clone(), sink, settings, clock.clone());
    core.ensure_default_campaign()
        .await
        .expect("default campaign");
    TestApp { core, store, clock }
}

pub fn account(s: &str) -> AccountId {
    AccountId::parse("account", s).expect("account id")
}

pub fn admin(account_id: &str) -> Principal {
    Principal {
        account: account(account_id),
        via: Via::Jwt { admin: true },
        scopes: ScopeSet::empty(),
    }
}

pub fn user(account_id: &str) -> Principal {
    Principal {
        account: account(account_id),
        via: Via::Jwt { admin: false },
        scopes: ScopeSet::empty(),
    }
}

use referral_mcp::core::click::RawClick;
use referral_mcp::core::text::{Email, SafeText};
use referral_mcp::core::types::ReferralCode;
use referral_mcp::core::views::{QualifyOutcome, SignupOutcome};
use referral_mcp::core::{ClickRequest, QualifyEvent, SignupEvent};

/// Changes the `default` campaign as an operator would (audited as `ops`).
pub async fn edit_default_campaign(core: &Referrals, edit: referral_mcp::core::CampaignEdit) {
    core.update_campaign_as(
        "ops",
        &referral_mcp::core::types::CampaignId::default_campaign(),
        edit,
    )
    .await
    .expect("edit the default campaign");
}

/// Creates an account with no referrer; returns its referral code.
pub async fn register(core: &Referrals, id: &str, email: &str, ip: &str) -> ReferralCode {
    let out = core
        .record_signup(SignupEvent {
            account: account(id),
            email: Some(Email::parse("email", email).unwrap()),
            ip: Some(ip.parse().unwrap()),
            code: None,
            click_id: None,
        })
        .await
        .expect("register");
    ReferralCode::parse("code", &out.referral_code).unwrap()
}

/// Signs `id` up through `code`.
pub async fn signup_via(
    core: &Referrals,
    id: &str,
    email: &str,
    ip: &str,
    code: &ReferralCode,
) -> SignupOutcome {
    core.record_signup(SignupEvent {
        account: account(id),
        email: Some(Email::parse("email", email).unwrap()),
        ip: Some(ip.parse().unwrap()),
        code: Some(code.clone()),
        click_id: None,
    })
    .await
    .expect("signup")
}

pub async fn qualify(core: &Referrals, id: &str) -> QualifyOutcome {
    core.record_qualification(QualifyEvent {
        account: account(id),
        event: SafeText::parse("event", "first_payment", 64).unwrap(),
        amount: Some(2500),
    })
    .await
    .expect("qualify")
}

pub fn click(code: &ReferralCode, ip: &str) -> ClickRequest {
    ClickRequest {
        code: code.clone(),
        campaign: None,
        raw: RawClick {
            landing_url: Some(format!(
                "https://app.example/r/{}?utm_source=x",
                code.as_str()
            )),
            referrer_url: Some("https://news.example/item".into()),
            user_agent: Some("Mozilla/5.0 Chrome/126.0".into()),
            ip: Some(ip.parse().unwrap()),
        },
    }
}

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use referral_mcp::core::sink::{Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError};

/// A sink in front of the ledger that can be switched off, or made to "crash" after the
/// grant reached the ledger (the answer is lost).
pub struct FlakySink {
    pub inner: LedgerSink,
    pub down: AtomicBool,
    pub crash_after_grant: AtomicBool,
    /// After a reversal reached the ledger, never answer: the caller is stuck where a
    /// killed process would have died, between the sink's answer and the status change.
    pub hang_after_reverse: AtomicBool,
    /// The same after a grant reached the ledger.
    pub hang_after_grant: AtomicBool,
    pub calls: AtomicUsize,
}

impl FlakySink {
    pub fn new(store: &Store, clock: &Clock) -> Arc<Self> {
        Arc::new(Self {
            inner: LedgerSink::new(store.clone(), clock.clone()),
            down: AtomicBool::new(false),
            crash_after_grant: AtomicBool::new(false),
            hang_after_reverse: AtomicBool::new(false),
            hang_after_grant: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl CreditSink for FlakySink {
    async fn grant(&self, g: &Grant) -> Result<GrantOutcome, SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable("billing is down (test)".into()));
        }
        let out = self.inner.grant(g).await?;
        if self.hang_after_grant.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.crash_after_grant.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable(
                "connection reset after grant (test)".into(),
            ));
        }
        Ok(out)
    }

    async fn reverse(&self, r: &Reversal) -> Result<ReversalOutcome, SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable("billing is down (test)".into()));
        }
        let out = self.inner.reverse(r).await?;
        if self.hang_after_reverse.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(out)
    }
}

/// An app whose sink is a [`FlakySink`] on the same database.
pub async fn flaky_app(db: &TestDb) -> (TestApp, Arc<FlakySink>) {
    let store = Store::connect(&db.url).await.expect("connect store");
    let clock = Clock::manual(START);
    let sink = FlakySink::new(&store, &clock);
    let core = Referrals::new(
        store.clone(),
        sink.clone(),
        Settings::default(),
        clock.clone(),
    );
    core.ensure_default_campaign()
        .await
        .expect("default campaign");
    (TestApp { core, store, clock }, sink)
}

// ---- a real server on port 0 ------------------------------------------------------

pub struct Served {
    pub app: App,
    /// The MCP endpoint.
    pub url: String,
    /// The server root, for REST.
    pub base: String,
    pub stop: CancellationToken,
}

/// `serve` on port 0 over this database.
pub async fn serve(db: &TestDb, opts: HttpOptions) -> Served {
    serve_with(db, opts, Config::with_database(&db.url)).await
}

/// `serve` with a configuration of the test's own (its `database_url` is used).
pub async fn serve_with(db: &TestDb, opts: HttpOptions, cfg: Config) -> Served {
    serve_limited(db, opts, cfg, ConnLimits::default()).await
}

/// `serve` with connection limits of the test's own, through the same accept loop as the
/// binary.
pub async fn serve_limited(
    _db: &TestDb,
    opts: HttpOptions,
    cfg: Config,
    limits: ConnLimits,
) -> Served {
    let app = App::start_with(&cfg, None, Clock::System).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let r = router(app.clone(), opts, stop.clone());
    let s2 = stop.clone();
    tokio::spawn(async move {
        listen::serve(listener, r, limits, async move { s2.cancelled().await })
            .await
            .unwrap();
    });
    Served {
        app,
        url: format!("http://{addr}/mcp"),
        base: format!("http://{addr}"),
        stop,
    }
}

/// Seeds: alice referred bob (rewarded), carol (held: disposable e-mail), dave (pending
/// grant). Returns the held referral id.
/// One referral as the core sees it now (no metering), to check what a call changed.
pub async fn detail(app: &App, id: i64) -> referral_mcp::core::views::ReferralDetail {
    app.core
        .referral_detail(referral_mcp::core::types::AttributionId::parse("id", id).unwrap())
        .await
        .unwrap()
}

pub async fn seed(app: &App) -> i64 {
    let core = &app.core;
    let code = register(core, "alice", "alice@example.com", "198.51.100.1").await;
    signup_via(core, "bob", "bob@b.example", "203.0.113.2", &code).await;
    qualify(core, "bob").await;
    let held = signup_via(core, "carol", "carol@mailinator.com", "203.0.113.3", &code).await;
    signup_via(core, "dave", "dave@d.example", "203.0.113.4", &code).await;
    core.top_up(&account("ops"), 1000, "seed-ops")
        .await
        .unwrap();
    core.top_up(&account("alice"), 100, "seed-alice")
        .await
        .unwrap();
    held.referral.unwrap().id
}

// ---- a billing service on port 0 that can be slowed down ------------------------------

/// A billing service that grants everything (201), each grant taking `delay_ms` once the
/// returned flag is set. Returns the flag and the grant URL.
pub async fn slow_billing(delay_ms: u64) -> (Arc<std::sync::atomic::AtomicBool>, String) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let slow = Arc::new(AtomicBool::new(false));
    let app = axum::Router::new()
        .route(
            "/grants",
            axum::routing::post(
                move |axum::extract::State(slow): axum::extract::State<Arc<AtomicBool>>,
                      axum::Json(b): axum::Json<serde_json::Value>| async move {
                    if slow.load(Ordering::SeqCst) {
                        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                    }
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(serde_json::json!({"key": b["key"]})),
                    )
                },
            ),
        )
        .with_state(slow.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/grants", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (slow, url)
}
