//! Campaigns as data operators manage: settings, the audit trail of changes, caps per
//! campaign and calendar period, active dates, the velocity threshold and the holding
//! period — through the core, REST, MCP and the CLI, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use referral_mcp::cli::HttpOptions;
use referral_mcp::core::access::Scope;
use referral_mcp::core::text::SafeText;
use referral_mcp::core::types::{
    AttributionStatus, CampaignId, CapPeriod, Limit, ReviewReason, RewardStatus,
};
use referral_mcp::core::{
    CampaignEdit, CampaignSettings, ClickRequest, ListQuery, RecoverRequest, SignupEvent,
    StatsQuery,
};
use referral_mcp::mcp::ToolFilter;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn spring(referrer: i64, referred: i64) -> CampaignSettings {
    CampaignSettings::new(
        SafeText::parse("name", "Spring", 100).unwrap(),
        referrer,
        referred,
    )
}

fn id(s: &str) -> CampaignId {
    CampaignId::parse("id", s).unwrap()
}

/// Signs `who` up after a click on `code` in `campaign`; returns the referral id.
async fn signup_through_click(
    t: &TestApp,
    who: &str,
    code: &referral_mcp::core::types::ReferralCode,
    campaign: &str,
    ip: &str,
) -> i64 {
    let receipt = t
        .core
        .record_click(ClickRequest {
            campaign: Some(id(campaign)),
            ..click(code, ip)
        })
        .await
        .unwrap();
    t.core
        .record_signup(SignupEvent {
            account: account(who),
            email: None,
            ip: Some(ip.parse().unwrap()),
            code: None,
            click_id: Some(receipt.click_id),
        })
        .await
        .unwrap()
        .referral
        .unwrap()
        .id
}

async fn recover(t: &TestApp) -> referral_mcp::core::views::RecoverReport {
    t.core
        .run_recover(
            RecoverRequest {
                limit: Limit::parse("limit", 100, 10_000).unwrap(),
            },
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn changing_a_campaign_is_audited_and_never_changes_rewards_already_created() {
    for db in databases().await {
        let t = app(&db).await;
        let l = db.label;
        t.core.top_up(&account("ops"), 100, "ops").await.unwrap();
        let ops = admin("ops");
        let created = t
            .core
            .create_campaign(Some(&ops), id("spring"), spring(200, 100))
            .await
            .unwrap();
        assert_eq!(created.changes.len(), 1);
        assert_eq!(created.changes[0].action, "created");
        assert_eq!(created.changes[0].actor, "ops (admin)");
        let listed = t.core.list_campaigns(Some(&ops)).await.unwrap();
        let ids: Vec<&str> = listed.campaigns.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["default", "spring"], "[{l}]");

        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let first = signup_through_click(&t, "bob", &code, "spring", "203.0.113.2").await;
        qualify(&t.core, "bob").await;
        assert_eq!(rewards_credited(&db, "alice").await, 200, "[{l}]");

        t.clock.advance(60);
        let after = t
            .core
            .update_campaign(
                Some(&ops),
                id("spring"),
                CampaignEdit {
                    referrer_credits: Some(300),
                    holding_days: Some(0),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(after.campaign.referrer_credits, 300);
        let change = after.changes.last().unwrap();
        assert_eq!(
            (change.action.as_str(), change.actor.as_str()),
            ("updated", "ops (admin)")
        );
        // Only what changed is recorded, before -> after (holding_days was already 0).
        assert_eq!(change.fields.len(), 1, "[{l}] {:?}", change.fields);
        assert_eq!(change.fields[0].field, "referrer_credits");
        assert_eq!(
            (
                change.fields[0].before.clone(),
                change.fields[0].after.clone()
            ),
            (json!(200), json!(300))
        );

        // The first referral's rewards keep their credits; a new one gets the new terms.
        let old = detail_of(&t, first).await;
        assert!(old.rewards.iter().any(|r| r.credits == 200));
        signup_through_click(&t, "carol", &code, "spring", "203.0.113.3").await;
        qualify(&t.core, "carol").await;
        assert_eq!(rewards_credited(&db, "alice").await, 500, "[{l}]");

        // Refusals name the field or the state, and change nothing.
        let e = t
            .core
            .create_campaign(Some(&ops), id("spring"), spring(1, 1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "conflict");
        let e = t
            .core
            .update_campaign(
                Some(&ops),
                id("nope"),
                CampaignEdit {
                    holding_days: Some(3),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_found");
        let e = t
            .core
            .update_campaign(Some(&ops), id("spring"), CampaignEdit::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        let e = t
            .core
            .update_campaign(
                Some(&ops),
                id("spring"),
                CampaignEdit {
                    starts_at: Some(START + 10),
                    ends_at: Some(START),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("ends_at"), "{e}");
        let d = t.core.campaign_detail(&id("spring")).await.unwrap();
        assert_eq!(d.changes.len(), 2, "[{l}] refused changes are not audited");
        assert_eq!(d.campaign.referrer_credits, 300);
    }
}

async fn detail_of(t: &TestApp, id: i64) -> referral_mcp::core::views::ReferralView {
    t.core
        .referral_detail(referral_mcp::core::types::AttributionId::parse("id", id).unwrap())
        .await
        .unwrap()
        .referral
}

/// START (2026-05-28) is a Thursday; the next ISO week starts on Monday 2026-06-01.
#[tokio::test]
async fn caps_count_per_campaign_and_reset_with_the_calendar_period() {
    for db in databases().await {
        let t = app(&db).await;
        let l = db.label;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                cap_count: Some(1),
                cap_period: Some(CapPeriod::Week),
                ..Default::default()
            },
        )
        .await;
        t.core
            .create_campaign_as("ops", &id("spring"), spring(100, 50))
            .await
            .unwrap();
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let status_of = |q: referral_mcp::core::views::QualifyOutcome| {
            q.referral
                .unwrap()
                .rewards
                .iter()
                .find(|r| r.account == "alice")
                .unwrap()
                .status
        };
        // A reward in another campaign does not count against this one's cap.
        signup_through_click(&t, "u0", &code, "spring", "203.0.113.10").await;
        assert_eq!(
            status_of(qualify(&t.core, "u0").await),
            RewardStatus::Granted,
            "[{l}]"
        );
        signup_via(&t.core, "u1", "u1@u1.example", "203.0.113.11", &code).await;
        assert_eq!(
            status_of(qualify(&t.core, "u1").await),
            RewardStatus::Granted,
            "[{l}]"
        );
        signup_via(&t.core, "u2", "u2@u2.example", "203.0.113.12", &code).await;
        assert_eq!(
            status_of(qualify(&t.core, "u2").await),
            RewardStatus::Capped,
            "[{l}]"
        );
        // A new calendar week starts the count again.
        t.clock.advance(4 * 86_400);
        signup_via(&t.core, "u3", "u3@u3.example", "203.0.113.13", &code).await;
        assert_eq!(
            status_of(qualify(&t.core, "u3").await),
            RewardStatus::Granted,
            "[{l}]"
        );
    }
}

#[tokio::test]
async fn active_dates_and_the_velocity_threshold_come_from_the_campaign() {
    for db in databases().await {
        let t = app(&db).await;
        let l = db.label;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                velocity_threshold: Some(2),
                ..Default::default()
            },
        )
        .await;
        let mut statuses = Vec::new();
        for i in 0..3 {
            let s = signup_via(
                &t.core,
                &format!("v{i}"),
                &format!("v{i}@v{i}.example"),
                &format!("203.0.113.{}", 20 + i),
                &code,
            )
            .await;
            statuses.push(s.referral.unwrap().status);
        }
        assert_eq!(
            statuses,
            [
                AttributionStatus::Attributed,
                AttributionStatus::Attributed,
                AttributionStatus::ReviewRequired
            ],
            "[{l}] the third in 24 hours reaches the campaign's threshold of 2"
        );
        let held = t
            .core
            .query_referrals(ListQuery {
                status: Some(AttributionStatus::ReviewRequired),
                ..Default::default()
            })
            .await
            .unwrap();
        let reasons = t
            .core
            .referral_detail(
                referral_mcp::core::types::AttributionId::parse("id", held.referrals[0].id)
                    .unwrap(),
            )
            .await
            .unwrap()
            .review_reasons;
        assert_eq!(reasons[0].reason, ReviewReason::ReferrerVelocity);
        assert!(
            reasons[0].detail.contains("threshold 2"),
            "{:?}",
            reasons[0]
        );

        // The program ended yesterday: clicks are refused, a code signup is not referred.
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                ends_at: Some(START - 86_400),
                ..Default::default()
            },
        )
        .await;
        let e = t
            .core
            .record_click(click(&code, "203.0.113.50"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains("not active"), "{e}");
        let late = signup_via(&t.core, "late", "late@late.example", "203.0.113.51", &code).await;
        assert!(
            late.referral.is_none(),
            "[{l}] a signup after the end is not referred"
        );
        let listed = t.core.campaign_list().await.unwrap();
        assert!(!listed.campaigns[0].active);
    }
}

#[tokio::test]
async fn held_rewards_wait_for_the_holding_period_then_recover_grants_them() {
    for db in databases().await {
        let t = app(&db).await;
        let l = db.label;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                holding_days: Some(14),
                ..Default::default()
            },
        )
        .await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        let q = qualify(&t.core, "bob").await.referral.unwrap();
        assert_eq!(q.status, AttributionStatus::Qualified);
        assert!(
            q.rewards.iter().all(|r| r.status == RewardStatus::Held),
            "[{l}] {:?}",
            q.rewards
        );
        let due = referral_mcp::core::clock::rfc3339(START + 14 * 86_400);
        assert!(
            q.rewards
                .iter()
                .all(|r| r.grant_after.as_deref() == Some(due.as_str()))
        );
        assert_eq!(rewards_credited(&db, "alice").await, 0);

        // Waiting is told apart from failing: in recover's report, the list and stats.
        let r = recover(&t).await;
        assert_eq!((r.attempted, r.held, r.remaining), (0, 2, 0), "[{l}]");
        let held = t
            .core
            .query_referrals(ListQuery {
                reward_status: Some(RewardStatus::Held),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(held.referrals.len(), 1);
        let failed = t
            .core
            .query_referrals(ListQuery {
                reward_status: Some(RewardStatus::Failed),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(failed.referrals.is_empty());
        let pending = t
            .core
            .query_referrals(ListQuery {
                pending_grant: Some(true),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            pending.referrals.len(),
            1,
            "held rewards are not yet granted"
        );
        let s = t
            .core
            .stats(StatsQuery::parse(None, None, None, t.clock.now()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            (s.rewards.held.count, s.rewards.held.credits),
            (2, 150),
            "[{l}]"
        );
        assert_eq!(s.rewards.failed.count, 0);

        // Changing the campaign now does not shorten rewards already held.
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                holding_days: Some(0),
                ..Default::default()
            },
        )
        .await;
        t.clock.advance(14 * 86_400 - 1);
        assert_eq!(recover(&t).await.attempted, 0, "[{l}] one second early");
        t.clock.advance(1);
        let r = recover(&t).await;
        assert_eq!((r.attempted, r.granted, r.held), (2, 2, 0), "[{l}]");
        assert_eq!(rewards_credited(&db, "alice").await, 100);
        assert_eq!(rewards_credited(&db, "bob").await, 50);
        let bob = t
            .core
            .query_referrals(ListQuery {
                user: Some(account("bob")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(bob.referrals[0].status, AttributionStatus::Rewarded);
    }
}

/// What `serve` runs on a timer: nobody has to call recover for held rewards to be paid.
#[tokio::test]
async fn the_background_recover_grants_rewards_once_their_holding_period_ends() {
    for db in databases().await {
        let t = app(&db).await;
        edit_default_campaign(
            &t.core,
            CampaignEdit {
                holding_days: Some(1),
                ..Default::default()
            },
        )
        .await;
        let code = register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        signup_via(&t.core, "bob", "bob@b.example", "203.0.113.2", &code).await;
        qualify(&t.core, "bob").await;
        let stop = CancellationToken::new();
        let core = t.core.clone();
        let s = stop.clone();
        let timer = tokio::spawn(async move {
            core.recover_periodically(Duration::from_millis(50), &s)
                .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            rewards_credited(&db, "alice").await,
            0,
            "[{}] not due yet",
            db.label
        );
        t.clock.advance(86_400);
        let mut credited = 0;
        for _ in 0..100 {
            credited = rewards_credited(&db, "alice").await;
            if credited > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(credited, 100, "[{}]", db.label);
        stop.cancel();
        timer.await.unwrap();
    }
}

// ---- the faces -------------------------------------------------------------------------

async fn key(s: &Served, scopes: &[Scope]) -> String {
    s.app
        .auth
        .keys()
        .create(
            "ops-key",
            &account("ops"),
            scopes.iter().copied().collect(),
            0,
        )
        .await
        .unwrap()
        .key
}

#[tokio::test]
async fn rest_manages_campaigns_with_the_campaigns_scope() {
    for db in databases().await {
        let s = serve(&db, HttpOptions::default()).await;
        s.app
            .core
            .top_up(&account("ops"), 100, "ops")
            .await
            .unwrap();
        let manager = key(&s, &[Scope::Read, Scope::Campaigns]).await;
        let reader = key(&s, &[Scope::Read]).await;
        let http = reqwest::Client::new();
        let send = |m: reqwest::Method, path: &str, k: &str, body: Option<Value>| {
            let mut r = http
                .request(m, format!("{}{path}", s.base))
                .header("x-api-key", k);
            if let Some(b) = body {
                r = r.json(&b);
            }
            async move {
                let resp = r.send().await.unwrap();
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let body = json!({"id": "summer", "name": "Summer", "referrer_credits": 300, "referred_credits": 100,
            "cap_count": 5, "cap_period": "week", "holding_days": 30, "starts_at": "2026-06-01"});
        let (st, v) = send(
            reqwest::Method::POST,
            "/admin/campaigns",
            &reader,
            Some(body.clone()),
        )
        .await;
        assert_eq!((st, v["code"].as_str()), (403, Some("forbidden")), "{v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("campaigns:manage"),
            "{v}"
        );
        let (st, v) = send(
            reqwest::Method::POST,
            "/admin/campaigns",
            &manager,
            Some(body),
        )
        .await;
        assert_eq!(st, 200, "[{}] {v}", db.label);
        assert_eq!(v["campaign"]["cap_period"], "week");
        assert_eq!(v["campaign"]["starts_at"], "2026-06-01T00:00:00Z");
        let (st, v) = send(
            reqwest::Method::PATCH,
            "/admin/campaigns/summer",
            &manager,
            Some(json!({"holding_days": 7, "clear": ["cap_count"]})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["campaign"]["holding_days"], 7);
        assert!(v["campaign"].get("cap_count").is_none(), "{v}");
        let actor = v["changes"][1]["actor"].as_str().unwrap_or_default();
        assert!(actor.starts_with("ops (api key "), "{actor}");
        assert_eq!(
            v["changes"][1]["fields"].as_array().map(Vec::len),
            Some(2),
            "{v}"
        );
        let (st, v) = send(
            reqwest::Method::PATCH,
            "/admin/campaigns/summer",
            &manager,
            Some(json!({"holding_days": 400})),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (422, Some("invalid_argument")),
            "{v}"
        );
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("holding_days"),
            "{v}"
        );
        let (st, _) = send(
            reqwest::Method::GET,
            "/admin/campaigns/winter",
            &reader,
            None,
        )
        .await;
        assert_eq!(st, 404);
        let (st, v) = send(
            reqwest::Method::GET,
            "/admin/campaigns/summer",
            &reader,
            None,
        )
        .await;
        assert_eq!(
            (st, v["campaign"]["holding_days"].as_i64()),
            (200, Some(7)),
            "refused changes change nothing: {v}"
        );
        let (st, v) = send(reqwest::Method::GET, "/admin/campaigns", &reader, None).await;
        assert_eq!(st, 200);
        assert_eq!(v["campaigns"].as_array().map(Vec::len), Some(2));
    }
}

async fn mcp(url: &str, bearer: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let cfg = StreamableHttpClientTransportConfig::with_uri(url).auth_header(bearer);
    ().serve(StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        cfg,
    ))
    .await
    .unwrap()
}

async fn call(
    c: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    name: &str,
    args: Value,
) -> Result<rmcp::model::CallToolResult, rmcp::ServiceError> {
    let mut p = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(m) = args {
        p = p.with_arguments(m);
    }
    c.call_tool(p).await
}

#[tokio::test]
async fn the_campaigns_toolset_is_off_by_default_and_works_when_switched_on() {
    for db in databases().await {
        let off = serve(&db, HttpOptions::default()).await;
        let token = off.app.auth.jwt().mint(&account("ops"), true, 600).unwrap();
        off.app
            .core
            .top_up(&account("ops"), 100, "ops")
            .await
            .unwrap();
        let c = mcp(&off.url, &token).await;
        let names: Vec<String> = c
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(!names.iter().any(|n| n.contains("campaign")), "{names:?}");
        assert!(
            call(&c, "list_campaigns", json!({})).await.is_err(),
            "not offered, not callable"
        );
        c.cancel().await.unwrap();

        let filter =
            ToolFilter::new(false, &["referrals".into(), "campaigns".into()], &[], &[]).unwrap();
        let on = serve(
            &db,
            HttpOptions {
                filter,
                ..HttpOptions::default()
            },
        )
        .await;
        let c = mcp(&on.url, &token).await;
        let names: Vec<String> = c
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(names.len(), 13, "{names:?}");
        let r = call(
            &c,
            "create_campaign",
            json!({"id": "vip", "name": "VIP", "referrer_credits": 500,
            "referred_credits": 250, "attribution_model": "first_click"}),
        )
        .await
        .unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let v = r.structured_content.unwrap();
        assert_eq!(v["campaign"]["attribution_model"], "first_click");
        let r = call(
            &c,
            "update_campaign",
            json!({"id": "vip", "referred_credits": -1}),
        )
        .await
        .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert!(
            r.content[0]
                .as_text()
                .unwrap()
                .text
                .contains("referred_credits"),
            "{r:?}"
        );
        let r = call(&c, "get_campaign", json!({"id": "vip"}))
            .await
            .unwrap();
        let v = r.structured_content.unwrap();
        assert_eq!(
            v["changes"].as_array().map(Vec::len),
            Some(1),
            "[{}] {v}",
            db.label
        );
        assert_eq!(v["changes"][0]["actor"], "ops (admin)");
        c.cancel().await.unwrap();
    }
}

async fn cli(db: &TestDb, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("USER", "dana")
        .env_remove("REFERRAL_LOG")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "[{}] {args:?}: {}",
        db.label,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn operators_manage_campaigns_from_the_command_line() {
    for db in databases().await {
        let v = cli(
            &db,
            &[
                "campaigns",
                "create",
                "--id",
                "spring",
                "--name",
                "Spring",
                "--referrer-credits",
                "200",
                "--referred-credits",
                "100",
                "--cap-count",
                "3",
                "--cap-period",
                "week",
                "--holding-days",
                "14",
                "--reverse-on-refund",
                "false",
            ],
        )
        .await;
        assert_eq!(v["campaign"]["reverse_on_refund"], false);
        let v = cli(
            &db,
            &[
                "campaigns",
                "update",
                "spring",
                "--referrer-credits",
                "250",
                "--clear",
                "cap_count",
            ],
        )
        .await;
        assert_eq!(v["campaign"]["referrer_credits"], 250);
        let v = cli(&db, &["campaigns", "show", "spring"]).await;
        let changes = v["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1]["actor"], "cli (dana)");
        let fields: Vec<&str> = changes[1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["cap_count", "referrer_credits"]);
        let v = cli(&db, &["campaigns", "list"]).await;
        assert_eq!(v["campaigns"].as_array().map(Vec::len), Some(2));
        let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
            .args(["campaigns", "update", "spring", "--cap-period", "fortnight"])
            .env("DATABASE_URL", &db.url)
            .output()
            .await
            .unwrap();
        assert!(!bad.status.success());
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("cap_period"),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
    }
}
