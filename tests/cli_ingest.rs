//! `referral-mcp ingest …` as a backend's script runs it: the flags go through the same
//! argument checks as `POST /ingest/signups` and `/ingest/qualifications` — on SQLite
//! and PostgreSQL.

mod common;

use std::process::Output;

use common::*;
use referral_mcp::config::{App, Config};
use serde_json::Value;

async fn cli(db: &TestDb, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("REFERRAL_LOG")
        .output()
        .await
        .unwrap()
}

/// Runs a command that must succeed and print one JSON object.
async fn cli_json(db: &TestDb, args: &[&str]) -> Value {
    let out = cli(db, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "[{}] {args:?}: {stderr}", db.label);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn ingest_signup_refuses_a_bad_click_id_like_rest_and_a_valid_signup_and_qualify_reward() {
    for db in databases().await {
        let alice = cli_json(
            &db,
            &[
                "ingest",
                "signup",
                "--account",
                "alice",
                "--email",
                "alice@example.com",
                "--ip",
                "198.51.100.1",
            ],
        )
        .await;
        assert_eq!(alice["created"], true, "[{}] {alice}", db.label);
        let code = alice["referral_code"].as_str().unwrap().to_owned();

        // A visitor clicks alice's link (captured by the library on the same database,
        // with the system clock the binary also uses).
        let app = App::start(&Config::with_database(&db.url)).await.unwrap();
        let receipt = app
            .core
            .record_click(click(
                &referral_mcp::core::types::ReferralCode::parse("code", &code).unwrap(),
                "203.0.113.9",
            ))
            .await
            .unwrap();
        app.store.close().await;

        let too_long = "c".repeat(65);
        let out = cli(
            &db,
            &[
                "ingest",
                "signup",
                "--account",
                "bob",
                "--click-id",
                &too_long,
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "[{}] accepted: {stderr}", db.label);
        assert!(
            stderr.contains("click_id") && stderr.contains("at most 64"),
            "[{}] {stderr}",
            db.label
        );
        assert!(out.stdout.is_empty(), "[{}] nothing on stdout", db.label);

        let bob = cli_json(
            &db,
            &[
                "ingest",
                "signup",
                "--account",
                "bob",
                "--email",
                "bob@b.example",
                "--ip",
                "203.0.113.9",
                "--click-id",
                &receipt.click_id,
            ],
        )
        .await;
        assert_eq!(
            bob["created"], true,
            "[{}] the refused call stored nothing: {bob}",
            db.label
        );
        assert_eq!(
            bob["referral"]["referrer_account"], "alice",
            "[{}] {bob}",
            db.label
        );
        assert_eq!(
            bob["referral"]["status"], "attributed",
            "[{}] {bob}",
            db.label
        );

        let qualified = cli_json(
            &db,
            &["ingest", "qualify", "--account", "bob", "--amount", "2500"],
        )
        .await;
        assert_eq!(qualified["referred"], true, "[{}] {qualified}", db.label);
        assert_eq!(
            qualified["referral"]["status"], "rewarded",
            "[{}] {qualified}",
            db.label
        );
        assert_eq!(
            qualified["referral"]["qualification_event"], "first_payment",
            "[{}] the default event",
            db.label
        );

        // The event text is checked like REST checks it.
        let out = cli(
            &db,
            &["ingest", "qualify", "--account", "bob", "--event", ""],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("event"),
            "[{}] {stderr}",
            db.label
        );
    }
}

#[tokio::test]
async fn parallel_cli_processes_on_one_database_all_succeed_and_each_event_is_whole() {
    for db in databases().await {
        let alice = cli_json(&db, &["ingest", "signup", "--account", "alice"]).await;
        let code = alice["referral_code"].as_str().unwrap().to_owned();
        // Twelve signups through alice's code, a top-up and a recover run, all at once,
        // each its own process: every one waits its turn for the write lock.
        let mut commands: Vec<Vec<String>> = (0..12)
            .map(|i| {
                [
                    "ingest",
                    "signup",
                    "--account",
                    &format!("friend{i}"),
                    "--code",
                    &code,
                ]
                .map(str::to_owned)
                .to_vec()
            })
            .collect();
        for extra in [
            &["credits", "--account", "ops", "--amount", "10"][..],
            &["recover", "--limit", "10"],
        ] {
            commands.push(extra.iter().map(|a| (*a).to_owned()).collect());
        }
        let db = &db;
        let outs = futures::future::join_all(commands.iter().map(|c| async move {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            cli(db, &args).await
        }))
        .await;
        for out in outs {
            assert!(
                out.status.success(),
                "[{}] {}",
                db.label,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Every signup left its account and its attribution (one transaction each).
        let mut c = sql(db).await;
        let (accounts, attributions): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM accounts WHERE id LIKE 'friend%'),
                    (SELECT COUNT(*) FROM attributions WHERE referrer_account = 'alice')",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!((accounts, attributions), (12, 12), "[{}]", db.label);
    }
}
