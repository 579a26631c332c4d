//! `kill -9` under mixed load: the real `serve` binary is killed at a random moment while
//! clients capture clicks, make metered REST and MCP calls, approve held referrals, send
//! refunds (some twice) and run recover; it is restarted on the same database, recover runs until nothing is pending,
//! and then every acknowledged write must be there and every grant key must be in the
//! ledger exactly once.
//!
//! What can be asserted after a crash, precisely:
//! - an acknowledged click (a `2xx` with its `click_id`) is stored;
//! - an acknowledged approval (`200`) left its referral out of `review_required`;
//! - metered calls are debited before they run and refunded if they fail, so a call in
//!   flight at the kill may stand charged (and may even have succeeded): per operation,
//!   the calls answered `200` are at most the charges that stand, and those are at most
//!   the `200`s plus the calls that never got an answer;
//! - an acknowledged refund left its referral `reversed`;
//! - no idempotency key is in the ledger twice; every granted reward's key is there
//!   exactly once, with the reward's account and credits, and nothing else is a grant;
//!   capped rewards were never paid; a voided reward was either never paid, or paid and
//!   taken back once under its reversal key (what the balance covered); every balance
//!   equals the sum of its ledger rows;
//! - after recovery nothing is pending and no referral is left `qualified` (a referral
//!   is `rewarded` once none of its rewards is pending or failed).
//!
//! - webhooks (an endpoint for every event, on a receiver in this process): every
//!   acknowledged approval has its `referral.approved` event in the outbox (written in
//!   the approval's transaction), and once the leases of the killed dispatchers lapse,
//!   every event in the outbox reaches the receiver (at least once).
//!
//! The kill moments come from a seeded RNG (`CRASH_SEED` to replay one; the seed is
//! printed). Claims of the killed process lapse after the 15 s grant lease, so each round
//! waits for that before its recovery can finish: three rounds stay well under 90 s.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use referral_mcp::config::{App, Config};
use referral_mcp::core::access::ScopeSet;
use referral_mcp::core::clock::Clock;
use referral_mcp::core::sink::{
    CreditSink, Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError,
};
use serde_json::{Value, json};
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};

const ROUNDS: u64 = 3;
/// Referrals per round whose rewards failed while billing was down (work for recover).
const FAILED_PER_ROUND: usize = 15;
/// Qualified referrals per round held for review (approving them grants at once).
const HELD_PER_ROUND: usize = 12;
/// The account the load is charged to; the checker's own calls go to another one.
const LOAD_ACCOUNT: &str = "crash_load";
const CHECK_ACCOUNT: &str = "crash_check";
const METERED: [&str; 5] = [
    "list_referrals",
    "get_referral",
    "approve_referral",
    "recover_referral_grants",
    "ingest_refund",
];

/// Billing that is down: seeded qualifications leave their rewards `failed`.
struct DownSink;

#[async_trait]
impl CreditSink for DownSink {
    async fn grant(&self, _: &Grant) -> Result<GrantOutcome, SinkError> {
        Err(SinkError::Unavailable(
            "billing is down (crash test)".into(),
        ))
    }
    async fn reverse(&self, _: &Reversal) -> Result<ReversalOutcome, SinkError> {
        Err(SinkError::Unavailable(
            "billing is down (crash test)".into(),
        ))
    }
}

// ---- the server process ---------------------------------------------------------------

struct Server {
    child: tokio::process::Child,
    base: String,
    /// The last lines the server wrote on stderr, for failure messages.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Starts `serve` on a free loopback port over `db`, returning once it answers
/// `/healthz`. Its stderr is drained for as long as it runs (a full pipe would stall the
/// server). The port is chosen here, so nothing depends on parsing the server's output.
async fn start_server(db: &TestDb) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"));
    for (k, _) in std::env::vars() {
        if k.starts_with("REFERRAL_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        // Every click comes from 127.0.0.1; the limit is not what is tested here.
        .env("REFERRAL_PUBLIC_RATE_LIMIT", "1000000")
        .env("REFERRAL_LOG", "warn")
        // Short attempts, so a killed dispatcher's claims lapse within seconds.
        .env("REFERRAL_WEBHOOK_TIMEOUT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start referral-mcp serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(VecDeque::new()));
    let tail = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut t = tail.lock().unwrap();
            t.push_back(line);
            if t.len() > 200 {
                t.pop_front();
            }
        }
    });
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "serve exited ({status}) before listening:\n{}",
                log.lock()
                    .unwrap()
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(Instant::now() < deadline, "serve listens within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, base, log }
}

// ---- seeding (while no server runs) ---------------------------------------------------

struct Keys {
    load: String,
    check: String,
}

/// Adds, through the library with billing down, referrals whose rewards failed and
/// qualified referrals held for review; on the first round also the two API keys.
async fn seed_round(db: &TestDb, round: u64) -> Option<Keys> {
    let app = App::start_with(
        &Config::with_database(&db.url),
        Some(Arc::new(DownSink)),
        Clock::System,
    )
    .await
    .expect("seeding app");
    let core = &app.core;
    for i in 0..FAILED_PER_ROUND + HELD_PER_ROUND {
        let held = i >= FAILED_PER_ROUND;
        let referrer = format!("r{round}x{i}");
        let referred = format!("f{round}x{i}");
        let code = register(
            core,
            &referrer,
            &format!("{referrer}@{referrer}.example"),
            &format!("198.51.{round}.{}", i + 1),
        )
        .await;
        let email = if held {
            format!("{referred}@mailinator.com")
        } else {
            format!("{referred}@{referred}.example")
        };
        let out = signup_via(
            core,
            &referred,
            &email,
            &format!("203.0.{round}.{}", i + 1),
            &code,
        )
        .await;
        let status = out.referral.expect("referred").status;
        assert_eq!(
            status.as_str(),
            if held {
                "review_required"
            } else {
                "attributed"
            }
        );
        qualify(core, &referred).await;
    }
    let keys = if round == 1 {
        let now = core.clock().now();
        let mut keys = Vec::new();
        for (name, acct, credits) in [
            ("crash load", LOAD_ACCOUNT, 10_000_000),
            ("crash check", CHECK_ACCOUNT, 1_000_000),
        ] {
            let a = account(acct);
            core.top_up(&a, credits, &format!("topup:{acct}"))
                .await
                .unwrap();
            keys.push(
                app.auth
                    .keys()
                    .create(name, &a, ScopeSet::all(), now)
                    .await
                    .unwrap()
                    .key,
            );
        }
        let check = keys.pop().unwrap();
        let load = keys.pop().unwrap();
        Some(Keys { load, check })
    } else {
        None
    };
    app.store.close().await;
    keys
}

// ---- the load -------------------------------------------------------------------------

/// What one operation's calls came to.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sent: u64,
    /// Answered with success (`2xx`, or an MCP result without `isError`).
    ok: u64,
    /// Answered with a refusal (`4xx`, or an MCP tool error).
    refused: u64,
    /// No answer (the server died, or was dead already); a `5xx` is booked here too,
    /// as a call whose outcome is unknown, and fails the round as unexpected.
    unanswered: u64,
}

#[derive(Default)]
struct Record {
    tallies: BTreeMap<&'static str, Tally>,
    clicks: Vec<String>,
    approvals: Vec<i64>,
    /// Referred accounts whose refund was acknowledged.
    refunds: Vec<String>,
    /// Anything that must not happen while the server is alive.
    unexpected: Vec<String>,
}

struct Load {
    http: reqwest::Client,
    base: String,
    key: String,
    codes: Vec<String>,
    referral_ids: Vec<i64>,
    held: Mutex<Vec<i64>>,
    /// Referred accounts of qualified referrals, to refund.
    refundable: Mutex<Vec<String>>,
    /// Set just before the SIGKILL: errors seen after it are the crash's.
    killed: AtomicBool,
    stop: AtomicBool,
    record: Mutex<Record>,
}

enum Outcome {
    Ok(Value),
    Refused(u16, String),
    ServerError(u16, String),
    Unanswered(String),
}

#[derive(Clone, Copy)]
enum Face {
    Rest,
    Mcp,
}

impl Load {
    async fn rest(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Outcome {
        let mut rq = self.http.request(method, format!("{}{path}", self.base));
        // Click capture is public: a credential would make it a metered call.
        if path != "/referrals/click" {
            rq = rq.header("x-api-key", &self.key);
        }
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let resp = match rq.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Unanswered(e.to_string()),
        };
        let status = resp.status().as_u16();
        match resp.text().await {
            Err(e) => Outcome::Unanswered(format!("{status}, body lost: {e}")),
            Ok(text) if (200..300).contains(&status) => match serde_json::from_str(&text) {
                Ok(v) => Outcome::Ok(v),
                Err(e) => Outcome::ServerError(status, format!("not JSON ({e}): {text}")),
            },
            Ok(text) if status >= 500 => Outcome::ServerError(status, text),
            Ok(text) => Outcome::Refused(status, text),
        }
    }

    async fn mcp(&self, tool: &str, args: Value) -> Outcome {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": args}});
        let resp = match self
            .http
            .post(format!("{}/mcp", self.base))
            .header("x-api-key", &self.key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&call)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Outcome::Unanswered(e.to_string()),
        };
        let status = resp.status().as_u16();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Outcome::Unanswered(format!("{status}, body lost: {e}")),
        };
        if status != 200 {
            return if status >= 500 {
                Outcome::ServerError(status, text)
            } else {
                Outcome::Refused(status, text)
            };
        }
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return Outcome::ServerError(status, format!("not JSON ({e}): {text}")),
        };
        match &v["result"] {
            r if r.is_object() && r["isError"] == true => Outcome::Refused(200, v.to_string()),
            r if r.is_object() => Outcome::Ok(r["structuredContent"].clone()),
            _ => Outcome::ServerError(200, v.to_string()),
        }
    }

    /// Books one call's outcome; returns false when the server did not answer (the
    /// worker then stops: the server is gone).
    fn book(&self, op: &'static str, what: &str, out: &Outcome) -> bool {
        let killed = self.killed.load(Ordering::SeqCst);
        let mut r = self.record.lock().unwrap();
        let t = r.tallies.entry(op).or_default();
        t.sent += 1;
        match out {
            Outcome::Ok(_) => t.ok += 1,
            Outcome::Refused(..) => t.refused += 1,
            Outcome::ServerError(..) | Outcome::Unanswered(_) => t.unanswered += 1,
        }
        match out {
            Outcome::ServerError(s, b) => r.unexpected.push(format!("{what}: {s} {b}")),
            Outcome::Unanswered(e) if !killed => r
                .unexpected
                .push(format!("{what}: no answer before the kill: {e}")),
            _ => {}
        }
        !matches!(out, Outcome::Unanswered(_))
    }

    async fn click(&self, rng: &mut StdRng) -> bool {
        let code = self.codes[rng.random_range(0..self.codes.len())].clone();
        let out = self
            .rest(
                reqwest::Method::POST,
                "/referrals/click",
                Some(json!({
                    "code": code,
                    "landing_url": format!("https://app.example/r/{code}?utm_source=crash"),
                    "user_agent": "Mozilla/5.0 Chrome/126.0",
                })),
            )
            .await;
        let alive = self.book("capture_referral_click", "click", &out);
        match out {
            Outcome::Ok(v) => match v["click_id"].as_str() {
                Some(id) => self.record.lock().unwrap().clicks.push(id.to_owned()),
                None => self
                    .record
                    .lock()
                    .unwrap()
                    .unexpected
                    .push(format!("click answered without click_id: {v}")),
            },
            Outcome::Refused(s, b) => self
                .record
                .lock()
                .unwrap()
                .unexpected
                .push(format!("click refused: {s} {b}")),
            _ => {}
        }
        alive
    }

    async fn read(&self, rng: &mut StdRng, face: Face) -> bool {
        let (op, out) = if rng.random_bool(0.5) {
            let limit = rng.random_range(1..=20);
            let out = match face {
                Face::Rest => {
                    self.rest(
                        reqwest::Method::GET,
                        &format!("/admin/referrals?limit={limit}"),
                        None,
                    )
                    .await
                }
                Face::Mcp => self.mcp("list_referrals", json!({"limit": limit})).await,
            };
            ("list_referrals", out)
        } else {
            let id = self.referral_ids[rng.random_range(0..self.referral_ids.len())];
            let out = match face {
                Face::Rest => {
                    self.rest(
                        reqwest::Method::GET,
                        &format!("/admin/referrals/{id}"),
                        None,
                    )
                    .await
                }
                Face::Mcp => self.mcp("get_referral", json!({"id": id})).await,
            };
            ("get_referral", out)
        };
        let alive = self.book(op, op, &out);
        if let Outcome::Refused(s, b) = out {
            self.record
                .lock()
                .unwrap()
                .unexpected
                .push(format!("{op} refused: {s} {b}"));
        }
        alive
    }

    async fn approve(&self, rng: &mut StdRng, face: Face) -> bool {
        // Now and then approve one that was approved already: a 409, refunded.
        let again = rng.random_bool(0.1);
        let id = if again {
            self.record.lock().unwrap().approvals.last().copied()
        } else {
            self.held.lock().unwrap().pop()
        };
        let Some(id) = id else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return true;
        };
        let out = match face {
            Face::Rest => {
                self.rest(
                    reqwest::Method::POST,
                    &format!("/admin/referrals/{id}/approve"),
                    Some(json!({"note": "crash test"})),
                )
                .await
            }
            Face::Mcp => {
                self.mcp("approve_referral", json!({"id": id, "note": "crash test"}))
                    .await
            }
        };
        let alive = self.book("approve_referral", "approve", &out);
        match out {
            Outcome::Ok(v) => {
                let mut r = self.record.lock().unwrap();
                if v["status"] == "review_required" || v["id"] != id {
                    r.unexpected.push(format!("approval of {id} answered {v}"));
                }
                r.approvals.push(id);
            }
            Outcome::Refused(s, b) if !(again && b.contains("conflict")) => self
                .record
                .lock()
                .unwrap()
                .unexpected
                .push(format!("approval of {id} refused: {s} {b}")),
            _ => {}
        }
        alive
    }

    async fn refund(&self, rng: &mut StdRng) -> bool {
        // Now and then the same refund again: answered, and changes nothing.
        let again = rng.random_bool(0.15);
        let who = if again {
            self.record.lock().unwrap().refunds.last().cloned()
        } else {
            self.refundable.lock().unwrap().pop()
        };
        let Some(who) = who else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return true;
        };
        let out = self
            .rest(
                reqwest::Method::POST,
                "/ingest/refunds",
                Some(json!({"account": who, "event": "chargeback"})),
            )
            .await;
        let alive = self.book("ingest_refund", "refund", &out);
        match out {
            Outcome::Ok(v) => {
                let mut r = self.record.lock().unwrap();
                if v["referral"]["status"] != "reversed" {
                    r.unexpected.push(format!("refund of {who} answered {v}"));
                }
                r.refunds.push(who);
            }
            Outcome::Refused(s, b) => self
                .record
                .lock()
                .unwrap()
                .unexpected
                .push(format!("refund of {who} refused: {s} {b}")),
            _ => {}
        }
        alive
    }

    async fn recover(&self, rng: &mut StdRng) -> bool {
        let limit = rng.random_range(1..=6);
        let out = self
            .rest(
                reqwest::Method::POST,
                "/admin/referrals/recover",
                Some(json!({"limit": limit})),
            )
            .await;
        let alive = self.book("recover_referral_grants", "recover", &out);
        match out {
            Outcome::Ok(v) if !v["failed"].as_array().is_some_and(Vec::is_empty) => self
                .record
                .lock()
                .unwrap()
                .unexpected
                .push(format!("recover reported failures: {v}")),
            Outcome::Refused(s, b) => self
                .record
                .lock()
                .unwrap()
                .unexpected
                .push(format!("recover refused: {s} {b}")),
            _ => {}
        }
        alive
    }
}

#[derive(Clone, Copy, Debug)]
enum Worker {
    Clicks,
    RestReads,
    McpReads,
    Approvals,
    Refunds,
    Recover,
}

async fn run_worker(load: Arc<Load>, kind: Worker, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !load.stop.load(Ordering::SeqCst) {
        let alive = match kind {
            Worker::Clicks => load.click(&mut rng).await,
            Worker::RestReads => load.read(&mut rng, Face::Rest).await,
            Worker::McpReads => load.read(&mut rng, Face::Mcp).await,
            Worker::Approvals => {
                let face = if n.is_multiple_of(2) {
                    Face::Rest
                } else {
                    Face::Mcp
                };
                load.approve(&mut rng, face).await
            }
            Worker::Refunds => load.refund(&mut rng).await,
            Worker::Recover => load.recover(&mut rng).await,
        };
        n += 1;
        if !alive {
            break;
        }
    }
}

// ---- checks ---------------------------------------------------------------------------

async fn strings(db: &TestDb, query: &'static str) -> Vec<String> {
    let mut c = sql(db).await;
    sqlx::query_scalar::<_, String>(query)
        .fetch_all(&mut c)
        .await
        .expect(query)
}

async fn ids(db: &TestDb, query: &'static str) -> Vec<i64> {
    let mut c = sql(db).await;
    sqlx::query_scalar::<_, i64>(query)
        .fetch_all(&mut c)
        .await
        .expect(query)
}

/// The acknowledged clicks and approvals are there, right after the restart.
async fn check_acknowledged(db: &TestDb, all: &Record) {
    let stored: HashSet<String> = strings(db, "SELECT public_id FROM clicks")
        .await
        .into_iter()
        .collect();
    let lost: Vec<&String> = all.clicks.iter().filter(|c| !stored.contains(*c)).collect();
    assert!(
        lost.is_empty(),
        "{}: {} of {} acknowledged clicks lost: {lost:?}",
        db.label,
        lost.len(),
        all.clicks.len()
    );
    let mut c = sql(db).await;
    let rows = sqlx::query("SELECT id, status, COALESCE(review_decision, '') FROM attributions")
        .fetch_all(&mut c)
        .await
        .unwrap();
    let decided: HashMap<i64, (String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                (r.get::<String, _>(1), r.get::<String, _>(2)),
            )
        })
        .collect();
    let reversed: HashSet<String> = strings(
        db,
        "SELECT referred_account FROM attributions WHERE status = 'reversed'",
    )
    .await
    .into_iter()
    .collect();
    for who in &all.refunds {
        assert!(
            reversed.contains(who),
            "{}: acknowledged refund of {who} lost",
            db.label
        );
    }
    for id in &all.approvals {
        let (status, decision) = &decided[id];
        assert!(
            status != "review_required" && decision == "approved",
            "{}: acknowledged approval of {id} lost: status {status}, decision {decision:?}",
            db.label
        );
    }
}

/// Runs recover (as the checker) until nothing is pending. Rewards the killed process had
/// claimed come back when its lease lapses.
async fn recover_all(db: &TestDb, server: &Server, key: &str) -> u64 {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut runs = 0;
    loop {
        let resp = http
            .post(format!("{}/admin/referrals/recover", server.base))
            .header("x-api-key", key)
            .json(&json!({"limit": 1000}))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: recover after restart at {}: {e}\n{}",
                    db.label,
                    server.base,
                    server.log_tail()
                )
            });
        let status = resp.status();
        let report: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{}: {report}", db.label);
        assert_eq!(
            report["failed"],
            json!([]),
            "{}: grants fail after the restart",
            db.label
        );
        runs += 1;
        if report["remaining"] == 0 {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{}: rewards still pending 45 s after the restart: {report}\n{}",
            db.label,
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The ledger after full recovery: keys once, grants once, balances add up, and the
/// load's charges within what the clients saw.
async fn check_ledger(db: &TestDb, all: &Record) {
    let mut c = sql(db).await;
    let dup: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM ledger GROUP BY idempotency_key HAVING COUNT(*) > 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(
        dup.is_empty(),
        "{}: keys in the ledger twice: {dup:?}",
        db.label
    );

    struct Entry {
        account: String,
        delta: i64,
        kind: String,
    }
    let ledger: HashMap<String, Entry> =
        sqlx::query("SELECT idempotency_key, account, delta, kind FROM ledger")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    Entry {
                        account: r.get(1),
                        delta: r.get(2),
                        kind: r.get(3),
                    },
                )
            })
            .collect();

    // Rewards: granted once each, with their own amount; capped never; voided either
    // never paid, or paid and taken back once; nothing open.
    let rewards = sqlx::query(
        "SELECT grant_key, account, credits, status, reversal_key, reversed_credits FROM rewards",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut reward_keys = HashSet::new();
    let mut reversal_keys = HashSet::new();
    let mut granted = 0;
    for r in &rewards {
        let (key, acct, credits, status): (String, String, i64, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let (reversal, taken): (Option<String>, Option<i64>) = (r.get(4), r.get(5));
        if status == "voided"
            && let Some(rk) = reversal
        {
            let paid = ledger
                .get(&key)
                .unwrap_or_else(|| panic!("{}: reversed reward {key} has no grant row", db.label));
            assert_eq!(
                (paid.account.as_str(), paid.delta),
                (acct.as_str(), credits)
            );
            let back = ledger.get(&rk).unwrap_or_else(|| {
                panic!("{}: reversed reward {key} has no reversal row", db.label)
            });
            let taken = taken.expect("a reversed reward records what came back");
            assert!(
                back.account == acct
                    && back.kind == "referral_reversal"
                    && back.delta == -taken
                    && (0..=credits).contains(&taken),
                "{}: reversal {rk}: {} {} {} for {credits}",
                db.label,
                back.account,
                back.delta,
                back.kind
            );
            reward_keys.insert(key);
            reversal_keys.insert(rk);
            continue;
        }
        match status.as_str() {
            "granted" => {
                granted += 1;
                let e = ledger.get(&key).unwrap_or_else(|| {
                    panic!("{}: granted reward {key} has no ledger row", db.label)
                });
                assert_eq!(
                    (e.account.as_str(), e.delta, e.kind.as_str()),
                    (acct.as_str(), credits, "referral_reward"),
                    "{}: ledger row of {key}",
                    db.label
                );
            }
            "capped" | "voided" => assert!(
                !ledger.contains_key(&key),
                "{}: {status} reward {key} was paid",
                db.label
            ),
            other => panic!("{}: reward {key} still {other} after recovery", db.label),
        }
        reward_keys.insert(key);
    }
    assert!(granted > 0, "{}: nothing was granted at all", db.label);
    for (key, e) in &ledger {
        if e.kind == "referral_reward" {
            assert!(
                reward_keys.contains(key),
                "{}: a grant {key} with no reward",
                db.label
            );
        }
        if e.kind == "referral_reversal" {
            assert!(
                reversal_keys.contains(key),
                "{}: a reversal {key} of no voided reward",
                db.label
            );
        }
    }
    let unsettled: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM attributions WHERE status = 'qualified'")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert!(
        unsettled.is_empty(),
        "{}: referrals left `qualified` although none of their rewards is pending: {unsettled:?}",
        db.label
    );

    // Balances are the sums of their ledger rows.
    let mut sums: HashMap<String, i64> = HashMap::new();
    for e in ledger.values() {
        *sums.entry(e.account.clone()).or_default() += e.delta;
    }
    let balances: HashMap<String, i64> = sqlx::query("SELECT account, balance FROM balances")
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for acct in sums.keys().chain(balances.keys()) {
        assert_eq!(
            balances.get(acct).copied().unwrap_or(0),
            sums.get(acct).copied().unwrap_or(0),
            "{}: balance of {acct} is not the sum of its ledger rows",
            db.label
        );
    }

    // The load's charges: each standing charge is a debit `usage:X` without a `refund:X`.
    let mut standing: BTreeMap<&str, u64> = BTreeMap::new();
    for (key, e) in &ledger {
        if let Some(id) = key.strip_prefix("refund:") {
            let charge = ledger.get(&format!("usage:{id}"));
            assert!(
                charge.is_some_and(|d| d.account == e.account && d.delta == -e.delta),
                "{}: refund {key} without its charge",
                db.label
            );
        }
        if e.account != LOAD_ACCOUNT || !key.starts_with("usage:") {
            continue;
        }
        assert_eq!(e.delta, -1, "{}: charge {key}", db.label);
        let refunded = ledger.contains_key(&format!("refund:{}", &key["usage:".len()..]));
        let op = METERED
            .iter()
            .find(|op| **op == e.kind)
            .unwrap_or_else(|| panic!("{}: the load was charged for {}", db.label, e.kind));
        if !refunded {
            *standing.entry(op).or_default() += 1;
        }
    }
    for op in METERED {
        let t = all.tallies.get(op).copied().unwrap_or_default();
        let charged = standing.get(op).copied().unwrap_or(0);
        assert!(
            t.ok <= charged && charged <= t.ok + t.unanswered,
            "{}: {op}: {charged} charges stand for {} successful and {} unanswered calls ({t:?})",
            db.label,
            t.ok,
            t.unanswered
        );
    }
}

// ---- the rounds -----------------------------------------------------------------------

async fn kill_rounds(db: TestDb, seed: u64) {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut all = Record::default();
    let mut keys = None;
    let hooks = hook_receiver(&db).await;
    for round in 1..=ROUNDS {
        if let Some(k) = seed_round(&db, round).await {
            keys = Some(k);
        }
        let keys = keys.as_ref().unwrap();
        let codes = strings(&db, "SELECT referral_code FROM accounts").await;
        let referral_ids = ids(&db, "SELECT id FROM attributions").await;
        let mut held = ids(
            &db,
            "SELECT id FROM attributions WHERE status = 'review_required'",
        )
        .await;
        held.shuffle(&mut rng);
        let mut refundable: Vec<String> = (0..FAILED_PER_ROUND)
            .map(|i| format!("f{round}x{i}"))
            .collect();
        refundable.shuffle(&mut rng);

        let mut server = start_server(&db).await;
        let load = Arc::new(Load {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            key: keys.load.clone(),
            codes,
            referral_ids,
            held: Mutex::new(held),
            refundable: Mutex::new(refundable),
            killed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            record: Mutex::new(Record::default()),
        });
        let workers = [
            Worker::Clicks,
            Worker::Clicks,
            Worker::RestReads,
            Worker::McpReads,
            Worker::Approvals,
            Worker::Approvals,
            Worker::Refunds,
            Worker::Recover,
        ];
        let tasks: Vec<_> = workers
            .iter()
            .map(|w| tokio::spawn(run_worker(load.clone(), *w, rng.random())))
            .collect();

        let after = Duration::from_millis(rng.random_range(150..900));
        tokio::time::sleep(after).await;
        load.killed.store(true, Ordering::SeqCst);
        server.child.start_kill().expect("SIGKILL");
        let exit = server.child.wait().await.unwrap();
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(exit.signal(), Some(9), "{}: {exit:?}", db.label);
        }
        load.stop.store(true, Ordering::SeqCst);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("workers stop once the server is gone")
                .unwrap();
        }
        let round_record = std::mem::take(&mut *load.record.lock().unwrap());
        assert!(
            round_record.unexpected.is_empty(),
            "{}: round {round}: {:#?}\n{}",
            db.label,
            round_record.unexpected,
            server.log_tail()
        );
        all.clicks.extend(round_record.clicks);
        all.approvals.extend(round_record.approvals);
        all.refunds.extend(round_record.refunds);
        for (op, t) in &round_record.tallies {
            let a = all.tallies.entry(op).or_default();
            a.sent += t.sent;
            a.ok += t.ok;
            a.refused += t.refused;
            a.unanswered += t.unanswered;
        }

        let server = start_server(&db).await;
        check_acknowledged(&db, &all).await;
        let runs = recover_all(&db, &server, &keys.check).await;
        check_ledger(&db, &all).await;
        eprintln!(
            "{} round {round}: killed after {after:?}; {:?}; recovered in {runs} runs ({:.1?} so far)",
            db.label,
            round_record.tallies,
            started.elapsed()
        );
        // Stop it before the next round seeds the database on its own.
        let mut server = server;
        server.child.start_kill().unwrap();
        server.child.wait().await.unwrap();
    }
    check_webhooks(&db, &all, &hooks).await;
    let ok = |op: &str| all.tallies.get(op).map_or(0, |t| t.ok);
    assert!(
        !all.clicks.is_empty() && ok("list_referrals") + ok("get_referral") > 0,
        "{}: the load did nothing: {:?}",
        db.label,
        all.tallies
    );
}

/// A receiver on port 0 for every event, registered on the database before the first
/// round; collects the `webhook-id`s it is sent.
async fn hook_receiver(db: &TestDb) -> Arc<Mutex<HashSet<String>>> {
    let got: Arc<Mutex<HashSet<String>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |h: axum::http::HeaderMap| {
            let sink = sink.clone();
            async move {
                if let Some(id) = h.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    sink.lock().unwrap().insert(id.to_owned());
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let store = referral_mcp::store::Store::connect(&db.url).await.unwrap();
    referral_mcp::webhooks::Webhooks::new(store)
        .create(&url, "*")
        .await
        .unwrap();
    got
}

async fn check_webhooks(db: &TestDb, all: &Record, got: &Arc<Mutex<HashSet<String>>>) {
    let query = if db.label == "postgres" {
        "SELECT CAST((payload::jsonb -> 'data' ->> 'referral_id') AS BIGINT) FROM webhook_events WHERE type = 'referral.approved'"
    } else {
        "SELECT CAST(json_extract(payload, '$.data.referral_id') AS BIGINT) FROM webhook_events WHERE type = 'referral.approved'"
    };
    let approved: HashSet<i64> = ids(db, query).await.into_iter().collect();
    for id in &all.approvals {
        assert!(
            approved.contains(id),
            "{}: approval of {id} has no event",
            db.label
        );
    }
    // The killed servers' claims lapse (attempt timeout 1 s: within seconds); then a
    // dispatcher like the server's sends everything left.
    let store = referral_mcp::store::Store::connect(&db.url).await.unwrap();
    let d = referral_mcp::webhooks::Dispatcher::new(store, Default::default());
    let events = strings(db, "SELECT id FROM webhook_events").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        d.send_due().await.unwrap();
        let missing = events
            .iter()
            .filter(|e| !got.lock().unwrap().contains(*e))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {missing} of {} events never reached the receiver",
            db.label,
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "{}: {} webhook events, all delivered ({} approvals with their event)",
        db.label,
        events.len(),
        all.approvals.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_mixed_load_loses_no_acknowledged_write_and_grants_each_key_once() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("crash test seed {seed} (replay with CRASH_SEED={seed})");
    // The databases run side by side: most of each round is waiting for a lease.
    let runs = databases()
        .await
        .into_iter()
        .enumerate()
        .map(|(i, db)| kill_rounds(db, seed.wrapping_add(i as u64)));
    futures::future::join_all(runs).await;
}
