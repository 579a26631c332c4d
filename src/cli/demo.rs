//! `demo`: seeds a realistic data set — two differently configured campaigns, 50
//! accounts, clicks over 30 days, referrals in every status, rewards held for a holding
//! period, some left waiting as if billing had failed, a refund that took rewards back —
//! then prints credentials to try it with.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::billing::LedgerSink;
use crate::config::{App, Config};
use crate::core::access::ScopeSet;
use crate::core::click::RawClick;
use crate::core::clock::Clock;
use crate::core::sink::{CreditSink, Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError};
use crate::core::text::{Email, SafeText};
use crate::core::types::{
    AccountId, AttributionId, AttributionModel, CampaignId, CapPeriod, ReferralCode,
};
use crate::core::{
    CampaignSettings, ClickRequest, QualifyEvent, RefundEvent, RejectRequest, SignupEvent,
};

/// Billing that can be "down" while the demo qualifies some referrals.
struct DemoSink {
    inner: LedgerSink,
    down: AtomicBool,
}

#[async_trait]
impl CreditSink for DemoSink {
    async fn grant(&self, g: &Grant) -> Result<GrantOutcome, SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable(
                "billing timed out (demo outage)".into(),
            ));
        }
        self.inner.grant(g).await
    }
    async fn reverse(&self, r: &Reversal) -> Result<ReversalOutcome, SinkError> {
        self.inner.reverse(r).await
    }
}

const REFERRERS: [(&str, &str); 8] = [
    ("acct_ada", "ada.lovelace@gmail.com"),
    ("acct_grace", "grace@navy.example"),
    ("acct_linus", "linus@kernel.example"),
    ("acct_margaret", "margaret@apollo.example"),
    ("acct_dennis", "dennis@bell.example"),
    ("acct_barbara", "barbara.liskov@outlook.com"),
    ("acct_ken", "ken@unix.example"),
    ("acct_frances", "frances@ibm.example"),
];

fn ip(rng: &mut StdRng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        203,
        0,
        rng.random_range(100..=113),
        rng.random_range(1..=254),
    ))
}

pub(super) async fn seed(app: &App, cfg: &Config) -> Result<()> {
    // 42 referrals about 20 hours apart end a few days before now, so the default
    // 30-day stats window shows most of them.
    let start = app.core.clock().now() - 40 * 86_400;
    let clock = Clock::manual(start);
    let sink = Arc::new(DemoSink {
        inner: LedgerSink::new(app.store.clone(), clock.clone()),
        down: AtomicBool::new(false),
    });
    // A seeded id source (the catalog's) must not hand the seeder's codes out again to
    // the app that serves the data afterwards: the seeder draws from its own sequence.
    let mut seeder_cfg = cfg.clone();
    seeder_cfg.id_seed = cfg.id_seed.map(|s| s.wrapping_add(1));
    let seeder = App::start_with(&seeder_cfg, Some(sink.clone()), clock.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let core = &seeder.core;
    // Unlike `default` (100/50, granted at once, reversed on refund): double credits,
    // first click wins, at most 3 referrer rewards a week, and rewards held 14 days
    // after the first payment (the refund window), kept if a refund comes later.
    let spring = CampaignSettings {
        attribution_model: AttributionModel::FirstClick,
        cap_count: Some(3),
        cap_period: CapPeriod::Week,
        velocity_threshold: 5,
        holding_days: 14,
        reverse_on_refund: false,
        ..CampaignSettings::new(
            SafeText::parse("name", "Spring double credits", 100)?,
            200,
            100,
        )
    };
    core.create_campaign_as(
        "acct_ops (demo)",
        &CampaignId::parse("id", "spring")?,
        spring,
    )
    .await?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut codes = Vec::new();
    for (i, (id, email)) in REFERRERS.iter().enumerate() {
        let out = core
            .record_signup(SignupEvent {
                account: AccountId::parse("account", id)?,
                email: Some(Email::parse("email", email)?),
                ip: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8 + 1))),
                code: None,
                click_id: None,
            })
            .await?;
        codes.push(ReferralCode::parse("code", &out.referral_code)?);
    }
    // 42 referred accounts, one every ~8 hours plus the time to qualify, each after a
    // few clicks.
    for n in 0..42usize {
        clock.advance(rng.random_range(5..12) * 3600);
        let r = if n % 5 == 4 {
            n % 3
        } else {
            n % REFERRERS.len()
        };
        let visitor = ip(&mut rng);
        let campaign = (n % 4 == 0)
            .then(|| CampaignId::parse("campaign", "spring"))
            .transpose()?;
        let mut last_click = None;
        for k in 0..rng.random_range(1..4) {
            let bot = k == 2;
            let receipt = core
                .record_click(ClickRequest {
                    code: codes[r].clone(),
                    campaign: campaign.clone(),
                    raw: RawClick {
                        landing_url: Some(format!(
                            "https://app.example/r/{}?utm_source={}&utm_medium=social",
                            codes[r].as_str(),
                            ["newsletter", "x", "linkedin", "blog"][n % 4]
                        )),
                        referrer_url: Some(["https://news.example/a", "https://social.example/p/1"][k % 2].into()),
                        user_agent: Some(if bot {
                            "Mozilla/5.0 (compatible; Googlebot/2.1)".into()
                        } else {
                            "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15".into()
                        }),
                        ip: Some(visitor),
                    },
                })
                .await?;
            if !bot {
                last_click = Some(receipt.click_id);
            }
            clock.advance(rng.random_range(60..1800));
        }
        let account = format!("acct_user{n:02}");
        // A few signals for the review queue.
        let (email, signup_ip) = match n {
            3 | 11 | 19 | 27 => (format!("user{n}@mailinator.com"), visitor),
            7 | 31 => (
                format!("user{n}@example.net"),
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, r as u8 + 1)),
            ),
            _ => (format!("user{n}@example.net"), visitor),
        };
        core.record_signup(SignupEvent {
            account: AccountId::parse("account", &account)?,
            email: Some(Email::parse("email", &email)?),
            ip: Some(signup_ip),
            code: None,
            click_id: last_click,
        })
        .await?;
        clock.advance(rng.random_range(1..20) * 3600);
        // Most qualify; those qualified during the "outage" keep pending grants.
        if n % 6 != 5 {
            sink.down.store((34..40).contains(&n), Ordering::SeqCst);
            core.record_qualification(QualifyEvent {
                account: AccountId::parse("account", &account)?,
                event: SafeText::parse("event", "first_payment", 64)?,
                amount: Some(rng.random_range(900..9900)),
            })
            .await?;
        }
    }
    sink.down.store(false, Ordering::SeqCst);
    // One referred customer asked for their money back: its rewards are taken back.
    core.record_refund(RefundEvent {
        account: AccountId::parse("account", "acct_user01")?,
        event: SafeText::parse("event", "refund", 64)?,
        amount: Some(4900),
    })
    .await?;
    // Decide part of the review queue; leave the rest pending.
    let queue = core
        .query_referrals(crate::core::ListQuery {
            status: Some(crate::core::types::AttributionStatus::ReviewRequired),
            ..Default::default()
        })
        .await?;
    for (i, r) in queue.referrals.iter().enumerate() {
        let id = AttributionId::parse("id", r.id)?;
        match i {
            0 => {
                core.approve_as(
                    "acct_ops (demo)",
                    id,
                    Some(SafeText::parse(
                        "note",
                        "checked: different households",
                        500,
                    )?),
                )
                .await?;
            }
            1 | 2 => {
                core.reject_as(
                    "acct_ops (demo)",
                    id,
                    RejectRequest {
                        reason: SafeText::parse(
                            "reason",
                            "disposable address, no payment history",
                            200,
                        )?,
                        note: None,
                    },
                )
                .await?;
            }
            _ => {}
        }
    }
    seeder.store.close().await;
    Ok(())
}

pub(super) async fn run(app: &App, cfg: &Config, json: bool) -> Result<()> {
    let marker = format!("seeded-{}", app.core.clock().now());
    let seeded_now = app.store.setting_or_insert("demo_seeded", &marker).await? == marker;
    if seeded_now {
        // The simulated outage makes grants fail on purpose; main.rs keeps warnings
        // inside this span out of the log.
        tracing::Instrument::instrument(seed(app, cfg), tracing::info_span!("demo_seed")).await?;
    }
    let now = app.core.clock().now();
    let ops = AccountId::parse("account", "acct_ops")?;
    let user = AccountId::parse("account", REFERRERS[0].0)?;
    app.core
        .top_up(&ops, 1000, &format!("topup:demo:ops:{now}"))
        .await?;
    app.core
        .top_up(&user, 100, &format!("topup:demo:user:{now}"))
        .await?;
    let key = app
        .auth
        .keys()
        .create("demo admin key", &ops, ScopeSet::all(), now)
        .await?;
    let admin_token = app.auth.jwt().mint(&ops, true, 7 * 86_400)?;
    let user_token = app.auth.jwt().mint(&user, false, 7 * 86_400)?;
    let page = app.core.query_referrals(Default::default()).await?;
    let pending = app
        .core
        .query_referrals(crate::core::ListQuery {
            pending_grant: Some(true),
            ..Default::default()
        })
        .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "database_url": cfg.database_url,
                "seeded": seeded_now,
                "api_key": key.key,
                "api_key_account": ops,
                "admin_token": admin_token,
                "user_token": user_token,
                "user_account": user,
                "ops_balance": app.core.balance(&ops).await?,
                "referrals_on_first_page": page.referrals.len(),
                "referrals_with_pending_grants": pending.referrals.len(),
            }))?
        );
        return Ok(());
    }
    println!("referral-mcp demo data in {}", cfg.database_url);
    if !seeded_now {
        println!("(already seeded earlier; fresh credentials below)");
    }
    println!("\nNewest referrals:");
    for r in page.referrals.iter().take(8) {
        println!(
            "  #{:<3} {:<16} {} -> {}  campaign={} rewards={}",
            r.id,
            r.status.as_str(),
            r.referrer_account,
            r.referred_account,
            r.campaign,
            r.rewards
                .iter()
                .map(|w| format!("{}:{}:{}", w.side.as_str(), w.credits, w.status.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    println!(
        "\n{} referrals have rewards waiting for billing (run `referral-mcp recover`).",
        pending.referrals.len()
    );
    println!(
        "\nAdmin API key (all scopes, account acct_ops, 1000 credits; shown once):\n  {}",
        key.key
    );
    println!("Admin JWT (7 days):\n  {admin_token}");
    println!("User JWT for {user} (7 days):\n  {user_token}");
    Ok(())
}
