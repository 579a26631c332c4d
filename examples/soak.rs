//! A bounded soak of the release `serve` binary: it starts the server on the loopback
//! interface over a fresh SQLite database (or `--database-url` on this machine), seeds it
//! with `demo`, drives a steady mixed load from a few clients for `--minutes`, samples the
//! server's resident memory, stops the server with SIGTERM and prints a summary.
//!
//! ```sh
//! cargo build --release && cargo run --release --example soak -- --minutes 10
//! ```
//!
//! The load, at `--rate` requests per second in all: public clicks (each from one of a
//! thousand made-up visitors, passed as `X-Forwarded-For` by a trusted proxy: 127.0.0.1),
//! signups through those clicks and their qualifications (`/ingest/…`; some held for
//! review), approvals of held referrals over REST and MCP, metered `list_referrals`,
//! `get_referral` and stats over REST and MCP, and small recover runs.
//!
//! It exits non-zero when any request got a `5xx`, a JSON-RPC error or no answer, when
//! the server died or logged an error, or when its RSS at the end exceeds its RSS after
//! the warm-up by more than `--max-rss-growth-mb` (default 64 MiB: a leak of a few bytes
//! per request shows up well before that over ten minutes, while allocator and pool
//! warm-up stay well under it). `4xx` answers (a `409` when two clients approve one
//! referral, a `429`) are counted and shown, but are answers, not failures.
//!
//! Why an example and not a `serve` subcommand: it measures the server from outside, as
//! a separate process whose memory it reads from `/proc`, and load generation has no
//! place in the binary operators deploy.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

#[derive(Parser, Debug)]
#[command(about = "Soak the release serve binary on 127.0.0.1 for a bounded time")]
struct Args {
    /// How long to drive load (at most 180).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Database to use; a fresh temporary SQLite file when absent. PostgreSQL only on
    /// this machine (localhost, 127.0.0.0/8, ::1 or a Unix socket).
    #[arg(long)]
    database_url: Option<String>,
    /// Where `serve` listens; loopback only.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// The `referral-mcp` binary; by default the one next to this example's directory
    /// (`target/release/referral-mcp`).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Requests per second, all clients together.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 5)]
    sample_secs: u64,
    /// Largest allowed growth of the server's RSS from the end of the warm-up to the end.
    #[arg(long, default_value_t = 64)]
    max_rss_growth_mb: u64,
    /// Seed of the load's choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The database must be this machine's: a soak is never pointed at a shared server.
fn check_database_is_local(url: &str) -> Result<()> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("--database-url must be sqlite:… or postgres://…");
    }
    let u = url::Url::parse(url).context("--database-url")?;
    let local = match u.host() {
        None => true,
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    };
    if !local {
        bail!("refusing a database that is not on this machine: the soak runs on loopback only");
    }
    Ok(())
}

fn default_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/release/examples/soak → target/release/referral-mcp
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("cannot locate the target directory")?;
    Ok(dir.join("referral-mcp"))
}

// ---- the server ----------------------------------------------------------------------

struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    /// Lines the server logged at WARN or ERROR, and how many at ERROR.
    warnings: Arc<Mutex<Vec<String>>>,
    errors: Arc<AtomicU64>,
}

/// Runs one `referral-mcp` command to completion and returns its stdout.
async fn run_command(binary: &PathBuf, db: &str, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(binary)
        .args(args)
        .env("DATABASE_URL", db)
        .env("REFERRAL_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} {}", binary.display(), args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn start_server(binary: &PathBuf, db: &str, bind: SocketAddr) -> Result<Server> {
    let mut child = tokio::process::Command::new(binary)
        .args([
            "serve",
            "--bind",
            &bind.to_string(),
            "--trusted-proxies",
            "127.0.0.1",
        ])
        .env("DATABASE_URL", db)
        .env("REFERRAL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("serve has no pid")?;
    let stderr = child.stderr.take().context("serve stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("MCP at http://").nth(1) {
                let addr = rest.split("/mcp").next().unwrap_or_default();
                return Ok(format!("http://{addr}"));
            }
            eprintln!("serve: {line}");
        }
        bail!("serve exited before listening")
    })
    .await
    .context("serve did not listen within 60 s")??;
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let (w, e) = (warnings.clone(), errors.clone());
    // Drain stderr for as long as the server runs: a full pipe would stall it.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ERROR") {
                e.fetch_add(1, Ordering::Relaxed);
            }
            let mut w = lock(&w);
            if w.len() < 1000 {
                w.push(line);
            }
        }
    });
    Ok(Server {
        child,
        pid,
        base,
        warnings,
        errors,
    })
}

/// The server's resident set size in KiB, from `/proc/PID/status`.
async fn rss_kib(pid: u32) -> Option<u64> {
    let mut s = String::new();
    tokio::fs::File::open(format!("/proc/{pid}/status"))
        .await
        .ok()?
        .read_to_string(&mut s)
        .await
        .ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

// ---- the load --------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    /// Microseconds per request, by operation.
    latency: BTreeMap<&'static str, Vec<u64>>,
    /// Answers that were not a success, by operation and kind.
    errors: BTreeMap<(String, String), u64>,
    /// Of those, the ones that fail the soak.
    failures: u64,
}

struct Shared {
    http: reqwest::Client,
    base: String,
    key: String,
    stats: Mutex<Stats>,
    /// Clicks not yet used by a signup: (click id, visitor address).
    clicks: Mutex<VecDeque<(String, IpAddr)>>,
    codes: Mutex<Vec<String>>,
    referral_ids: Mutex<Vec<i64>>,
    held: Mutex<Vec<i64>>,
    next_account: AtomicU64,
    stop: AtomicBool,
}

enum Answer {
    Ok(Value),
    /// A kind of error, and whether it fails the soak.
    Err(String, bool),
}

impl Shared {
    fn book(&self, op: &'static str, started: Instant, answer: &Answer) {
        let micros = started.elapsed().as_micros() as u64;
        let mut s = lock(&self.stats);
        s.latency.entry(op).or_default().push(micros);
        if let Answer::Err(kind, fatal) = answer {
            *s.errors.entry((op.to_owned(), kind.clone())).or_default() += 1;
            if *fatal {
                s.failures += 1;
            }
        }
    }

    async fn rest(
        &self,
        op: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        visitor: Option<IpAddr>,
    ) -> Answer {
        let started = Instant::now();
        let mut rq = self.http.request(method, format!("{}{path}", self.base));
        match visitor {
            // Public click capture: no credential, the visitor's address from the proxy.
            Some(ip) => rq = rq.header("x-forwarded-for", ip.to_string()),
            None => rq = rq.header("x-api-key", &self.key),
        }
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let answer = match rq.send().await {
            Err(e) => Answer::Err(format!("transport: {}", short(&e)), true),
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Err(e) => Answer::Err(format!("body lost: {}", short(&e)), true),
                    Ok(text) if (200..300).contains(&status) => match serde_json::from_str(&text) {
                        Ok(v) => Answer::Ok(v),
                        Err(_) => Answer::Err(format!("{status} not JSON"), true),
                    },
                    Ok(text) => {
                        let v = serde_json::from_str::<Value>(&text).unwrap_or_default();
                        let code = v["code"].as_str().unwrap_or_default();
                        let kind = match v["field"].as_str() {
                            Some(field) => format!("{status} {code} ({field})"),
                            None => format!("{status} {code}"),
                        };
                        Answer::Err(kind, status >= 500)
                    }
                }
            }
        };
        self.book(op, started, &answer);
        answer
    }

    async fn mcp(&self, tool: &'static str, args: Value) -> Answer {
        let started = Instant::now();
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": args}});
        let answer = match self
            .http
            .post(format!("{}/mcp", self.base))
            .header("x-api-key", &self.key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&call)
            .send()
            .await
        {
            Err(e) => Answer::Err(format!("transport: {}", short(&e)), true),
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Err(e) => Answer::Err(format!("body lost: {}", short(&e)), true),
                    Ok(_) if status != 200 => Answer::Err(format!("HTTP {status}"), status >= 500),
                    Ok(text) => match serde_json::from_str::<Value>(&text) {
                        Err(_) => Answer::Err("not JSON".into(), true),
                        Ok(v) if v["result"]["isError"] == true => {
                            let code = tool_error_code(&v["result"]);
                            let fatal = matches!(code.as_str(), "internal" | "unavailable");
                            Answer::Err(format!("tool error {code}"), fatal)
                        }
                        Ok(v) if v["result"].is_object() => {
                            Answer::Ok(v["result"]["structuredContent"].clone())
                        }
                        Ok(v) => {
                            Answer::Err(format!("JSON-RPC error {}", v["error"]["code"]), true)
                        }
                    },
                }
            }
        };
        // Reported under the tool's name, as REST calls are: one row per operation.
        self.book(tool, started, &answer);
        answer
    }

    fn remember_referrals(&self, v: &Value) {
        let Some(list) = v["referrals"].as_array() else {
            return;
        };
        let mut ids = lock(&self.referral_ids);
        let mut codes = lock(&self.codes);
        for r in list {
            if let Some(id) = r["id"].as_i64()
                && ids.len() < 10_000
                && !ids.contains(&id)
            {
                ids.push(id);
            }
            if let Some(code) = r["code"].as_str()
                && codes.len() < 10_000
                && !codes.iter().any(|c| c == code)
            {
                codes.push(code.to_owned());
            }
        }
    }

    fn random_code(&self, rng: &mut StdRng) -> Option<String> {
        let codes = lock(&self.codes);
        (!codes.is_empty()).then(|| codes[rng.random_range(0..codes.len())].clone())
    }

    async fn click(&self, rng: &mut StdRng) {
        let Some(code) = self.random_code(rng) else {
            return;
        };
        let visitor = IpAddr::V4(Ipv4Addr::new(
            10,
            rng.random_range(0..4),
            rng.random_range(0..250),
            1,
        ));
        let body = json!({
            "code": code,
            "landing_url": format!("https://app.example/r/{code}?utm_source=soak&utm_medium=test"),
            "referrer_url": "https://news.example/item?id=1",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
        });
        if let Answer::Ok(v) = self
            .rest(
                "capture_referral_click",
                reqwest::Method::POST,
                "/referrals/click",
                Some(body),
                Some(visitor),
            )
            .await
            && let Some(id) = v["click_id"].as_str()
        {
            let mut clicks = lock(&self.clicks);
            if clicks.len() >= 1000 {
                clicks.pop_front();
            }
            clicks.push_back((id.to_owned(), visitor));
        }
    }

    /// A signup through a click (some with a disposable address: held for review), then
    /// its qualification.
    async fn signup(&self, rng: &mut StdRng) {
        let Some((click_id, ip)) = lock(&self.clicks).pop_front() else {
            return;
        };
        let n = self.next_account.fetch_add(1, Ordering::Relaxed);
        let account = format!("soak_{n}");
        let email = if rng.random_bool(0.3) {
            format!("soak{n}@mailinator.com")
        } else {
            format!("soak{n}@s{n}.example")
        };
        let out = self
            .rest(
                "ingest_signup",
                reqwest::Method::POST,
                "/ingest/signups",
                Some(json!({"account": account, "email": email, "ip": ip, "click_id": click_id})),
                None,
            )
            .await;
        let Answer::Ok(v) = out else { return };
        if let Some(code) = v["referral_code"].as_str() {
            let mut codes = lock(&self.codes);
            if codes.len() < 10_000 {
                codes.push(code.to_owned());
            }
        }
        if v["referral"]["status"] == "review_required"
            && let Some(id) = v["referral"]["id"].as_i64()
        {
            lock(&self.held).push(id);
        }
        self.rest(
            "ingest_qualification",
            reqwest::Method::POST,
            "/ingest/qualifications",
            Some(json!({"account": account, "event": "first_payment", "amount": 2500})),
            None,
        )
        .await;
    }

    async fn approve(&self, rng: &mut StdRng) {
        let held = lock(&self.held).pop();
        let Some(id) = held else {
            // Refill the queue from the server.
            if let Answer::Ok(v) = self
                .rest(
                    "list_referrals",
                    reqwest::Method::GET,
                    "/admin/referrals?status=review_required&limit=50",
                    None,
                    None,
                )
                .await
                && let Some(list) = v["referrals"].as_array()
            {
                lock(&self.held).extend(list.iter().filter_map(|r| r["id"].as_i64()));
            }
            return;
        };
        if rng.random_bool(0.5) {
            self.rest(
                "approve_referral",
                reqwest::Method::POST,
                &format!("/admin/referrals/{id}/approve"),
                Some(json!({"note": "soak"})),
                None,
            )
            .await;
        } else {
            self.mcp("approve_referral", json!({"id": id, "note": "soak"}))
                .await;
        }
    }

    async fn read(&self, rng: &mut StdRng) {
        let id = {
            let ids = lock(&self.referral_ids);
            (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())])
        };
        let limit = rng.random_range(1..=50);
        let answer = match (rng.random_range(0..6), id) {
            (0, _) | (_, None) => {
                self.rest(
                    "list_referrals",
                    reqwest::Method::GET,
                    &format!("/admin/referrals?limit={limit}"),
                    None,
                    None,
                )
                .await
            }
            (1, _) => {
                self.mcp(
                    "list_referrals",
                    json!({"limit": limit, "pending_grant": rng.random_bool(0.5)}),
                )
                .await
            }
            (2, Some(id)) => {
                self.rest(
                    "get_referral",
                    reqwest::Method::GET,
                    &format!("/admin/referrals/{id}"),
                    None,
                    None,
                )
                .await
            }
            (3, Some(id)) => self.mcp("get_referral", json!({"id": id})).await,
            (4, _) => {
                self.rest(
                    "get_referral_stats",
                    reqwest::Method::GET,
                    "/admin/referrals/stats",
                    None,
                    None,
                )
                .await
            }
            _ => self.mcp("get_referral_stats", json!({})).await,
        };
        if let Answer::Ok(v) = answer {
            self.remember_referrals(&v);
        }
    }

    async fn recover(&self) {
        self.rest(
            "recover_referral_grants",
            reqwest::Method::POST,
            "/admin/referrals/recover",
            Some(json!({"limit": 20})),
            None,
        )
        .await;
    }
}

/// The `code` of a tool error, from its structured content or else its text.
fn tool_error_code(result: &Value) -> String {
    let from_text = || {
        let text = result["content"][0]["text"].as_str()?;
        let v: Value = serde_json::from_str(text).ok()?;
        v["error"]["code"].as_str().map(str::to_owned)
    };
    result["structuredContent"]["error"]["code"]
        .as_str()
        .map(str::to_owned)
        .or_else(from_text)
        .unwrap_or_else(|| "?".to_owned())
}

fn short(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connect".into()
    } else if e.is_timeout() {
        "timeout".into()
    } else {
        let s = e.to_string();
        s.chars().take(60).collect()
    }
}

async fn client(shared: Arc<Shared>, seed: u64, period: Duration) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        match rng.random_range(0..100) {
            0..35 => shared.click(&mut rng).await,
            35..45 => shared.signup(&mut rng).await,
            45..55 => shared.approve(&mut rng).await,
            55..95 => shared.read(&mut rng).await,
            _ => shared.recover().await,
        }
    }
}

// ---- the summary -----------------------------------------------------------------------

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.minutes > 0.0 && args.minutes <= 180.0) {
        bail!("--minutes must be more than 0 and at most 180");
    }
    if !args.bind.ip().is_loopback() {
        bail!(
            "refusing --bind {}: the soak serves on loopback only",
            args.bind
        );
    }
    if args.clients == 0 || args.rate == 0 || args.sample_secs == 0 {
        bail!("--clients, --rate and --sample-secs must be at least 1");
    }
    let binary = match args.binary.clone() {
        Some(b) => b,
        None => default_binary()?,
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it first (cargo build --release)",
            binary.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let db = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}/soak.db", tmp.path().display()),
    };
    check_database_is_local(&db)?;

    // Seed, give the demo key's account enough credits for the whole run, then serve.
    let demo: Value = serde_json::from_str(&run_command(&binary, &db, &["demo", "--json"]).await?)
        .context("demo --json output")?;
    let key = demo["api_key"]
        .as_str()
        .context("demo --json gave no api_key")?
        .to_owned();
    let account = demo["api_key_account"].as_str().unwrap_or("acct_ops");
    run_command(
        &binary,
        &db,
        &["credits", "--account", account, "--amount", "1000000000"],
    )
    .await?;
    let mut server = start_server(&binary, &db, args.bind).await?;
    let started = Instant::now();
    eprintln!(
        "soak: {} (pid {}) at {} over {db}; {} clients, {} req/s, {} min",
        binary.display(),
        server.pid,
        server.base,
        args.clients,
        args.rate,
        args.minutes
    );

    let shared = Arc::new(Shared {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: server.base.clone(),
        key,
        stats: Mutex::new(Stats::default()),
        clicks: Mutex::new(VecDeque::new()),
        codes: Mutex::new(Vec::new()),
        referral_ids: Mutex::new(Vec::new()),
        held: Mutex::new(Vec::new()),
        next_account: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    // The demo's referrals give the first codes and ids.
    if let Answer::Ok(v) = shared
        .rest(
            "list_referrals",
            reqwest::Method::GET,
            "/admin/referrals?limit=100",
            None,
            None,
        )
        .await
    {
        shared.remember_referrals(&v);
    }

    let rss_start = rss_kib(server.pid).await.unwrap_or(0);
    let period = Duration::from_secs_f64(f64::from(args.clients) / f64::from(args.rate));
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            tokio::spawn(client(
                shared.clone(),
                args.seed.wrapping_mul(1000) + u64::from(i),
                period,
            ))
        })
        .collect();

    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    // Warm-up: the first fifth of the run, at most a minute (pools fill, the allocator
    // settles); growth is measured from its end.
    let warm_up = (duration / 5).min(Duration::from_secs(60));
    let mut samples: Vec<(f64, u64)> = vec![(0.0, rss_start)];
    let mut rss_warm = None;
    let mut died = None;
    let mut interrupted = false;
    let mut tick = tokio::time::interval(Duration::from_secs(args.sample_secs));
    tick.tick().await;
    while started.elapsed() < duration {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => { interrupted = true; break; }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            died = Some(status);
            break;
        }
        if let Some(kib) = rss_kib(server.pid).await {
            samples.push((started.elapsed().as_secs_f64(), kib));
            if rss_warm.is_none() && started.elapsed() >= warm_up {
                rss_warm = Some(kib);
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(35), c).await;
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib(server.pid).await.unwrap_or(0);
    if rss_end > 0 {
        samples.push((elapsed.as_secs_f64(), rss_end));
    }

    // Stop the server as an operator would, and see that it drains and exits cleanly.
    let stopped = if died.is_none() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &server.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                let _ = server.child.kill().await;
                None
            }
        }
    } else {
        None
    };

    // ---- report ----
    let stats = std::mem::take(&mut *lock(&shared.stats));
    let total: usize = stats.latency.values().map(Vec::len).sum();
    let errors: u64 = stats.errors.values().sum();
    println!("soak summary");
    println!(
        "  ran {:.0} s of {:.0} s{}; {} clients at {} req/s target; database {}",
        elapsed.as_secs_f64(),
        duration.as_secs_f64(),
        if interrupted { " (interrupted)" } else { "" },
        args.clients,
        args.rate,
        if args.database_url.is_some() {
            db.as_str()
        } else {
            "temporary SQLite file"
        }
    );
    println!(
        "  requests: {total} ({:.1}/s), not successful: {errors}, failures: {}",
        total as f64 / elapsed.as_secs_f64().max(0.001),
        stats.failures
    );
    let mut all: Vec<u64> = Vec::with_capacity(total);
    println!(
        "  {:<26} {:>8} {:>9} {:>9}",
        "operation", "requests", "p50 ms", "p99 ms"
    );
    for (op, lat) in &stats.latency {
        let mut l = lat.clone();
        l.sort_unstable();
        println!(
            "  {:<26} {:>8} {:>9.2} {:>9.2}",
            op,
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.99)
        );
        all.extend(l);
    }
    all.sort_unstable();
    println!(
        "  {:<26} {:>8} {:>9.2} {:>9.2}",
        "all",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    if stats.errors.is_empty() {
        println!("  errors: none");
    } else {
        println!("  errors by kind:");
        for ((op, kind), n) in &stats.errors {
            println!("    {op}: {kind}: {n}");
        }
    }
    let kibs: Vec<u64> = samples.iter().map(|s| s.1).filter(|k| *k > 0).collect();
    let (min, max) = (
        kibs.iter().copied().min().unwrap_or(0),
        kibs.iter().copied().max().unwrap_or(0),
    );
    let warm = rss_warm.unwrap_or(rss_start);
    let growth = rss_end.saturating_sub(warm);
    println!(
        "  server RSS: start {}, after warm-up ({:.0} s) {}, min {}, max {}, end {} ({} samples); growth after warm-up {} (bound {} MiB)",
        mib(rss_start),
        warm_up.as_secs_f64(),
        mib(warm),
        mib(min),
        mib(max),
        mib(rss_end),
        samples.len(),
        mib(growth),
        args.max_rss_growth_mb
    );
    let log_errors = server.errors.load(Ordering::Relaxed);
    let warnings = lock(&server.warnings).clone();
    println!(
        "  server log: {} lines at WARN or above, {log_errors} at ERROR",
        warnings.len()
    );
    for w in warnings.iter().take(5) {
        println!("    {w}");
    }
    match (&died, &stopped) {
        (Some(s), _) => println!("  server: DIED during the soak ({s})"),
        (None, Some(s)) => println!("  server: stopped by SIGTERM, {s}"),
        (None, None) => println!("  server: did not exit within 30 s of SIGTERM; killed"),
    }

    let mut failed = Vec::new();
    if stats.failures > 0 {
        failed.push(format!(
            "{} requests failed (5xx, transport or JSON-RPC error)",
            stats.failures
        ));
    }
    if died.is_some() || !stopped.is_some_and(|s| s.success()) {
        failed.push("the server did not run and stop cleanly".to_owned());
    }
    if log_errors > 0 {
        failed.push(format!("the server logged {log_errors} errors"));
    }
    if growth > args.max_rss_growth_mb * 1024 {
        failed.push(format!("RSS grew by {} after the warm-up", mib(growth)));
    }
    if total == 0 {
        failed.push("no requests were made".to_owned());
    }
    drop(tmp);
    if failed.is_empty() {
        println!("  result: PASS");
        Ok(())
    } else {
        println!("  result: FAIL: {}", failed.join("; "));
        std::process::exit(1);
    }
}
