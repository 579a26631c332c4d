//! `catalog --out DIR`: the tool reference, generated from the code so it cannot drift.
//!
//! Writes `DIR/schemas/<tool>.{input,output}.json` (exactly what `tools/list` serves),
//! `DIR/tools/<tool>.md` and `DIR/tools/README.md`. The examples are real: two identical
//! demo databases (fixed clock, fixed secrets, seeded ids) each get a real server on port
//! 0; every example runs once as an MCP call (rmcp's client over streamable HTTP) on the
//! first and once as a REST request on the second, and the command refuses to write a
//! catalog where the two answers differ.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod pages;

use pages::{Example, index, page, pretty};

use super::{HttpOptions, router};
use crate::api::endpoints::endpoint;
use crate::config::{App, Config};
use crate::core::access::{Access, Operation};
use crate::core::clock::Clock;
use crate::core::types::{AccountId, AttributionStatus, RewardStatus};
use crate::core::{ListQuery, Referrals};
use crate::mcp::{ReferralServer, TOOL_NAMES};

/// 2026-11-01T12:00:00Z: the examples' "now".
const NOW: i64 = 1_793_534_400;
const SEED: u64 = 20_261_101;
const BASE: &str = "http://127.0.0.1:8080";
const USER: &str = "acct_ada";

/// One running copy of the demo deployment.
struct Site {
    app: App,
    base: String,
    stop: CancellationToken,
}

impl Site {
    async fn start(db: &Path) -> Result<Self> {
        let mut cfg = Config::with_database(&format!("sqlite://{}", db.display()));
        cfg.jwt_secret = Some("catalog-example-jwt-secret".into());
        cfg.ip_hash_secret = Some("catalog-example-ip-secret".into());
        cfg.id_seed = Some(SEED);
        let app = App::start_with(&cfg, None, Clock::manual(NOW))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        super::demo::seed(&app, &cfg).await?;
        app.core
            .top_up(
                &AccountId::parse("account", "acct_ops")?,
                1000,
                "catalog:ops",
            )
            .await?;
        app.core
            .top_up(&AccountId::parse("account", USER)?, 100, "catalog:user")
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        // Every toolset, so each tool's example runs.
        let all = crate::mcp::ToolFilter::new(false, &["all".into()], &[], &[])
            .map_err(anyhow::Error::msg)?;
        let opts = HttpOptions {
            filter: all,
            ..HttpOptions::default()
        };
        let r = router(app.clone(), opts, stop.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                r.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await;
        });
        Ok(Self { app, base, stop })
    }

    fn token(&self, op: Operation) -> Result<String> {
        let (account, admin) = match op.access() {
            Access::User => (USER, false),
            _ => ("acct_ops", true),
        };
        Ok(self
            .app
            .auth
            .jwt()
            .mint(&AccountId::parse("account", account)?, admin, 3600)?)
    }
}

/// The example arguments, picked from the demo data (identical on both sites).
async fn examples(core: &Referrals) -> Result<Vec<(Operation, Value)>> {
    let held = core
        .query_referrals(ListQuery {
            status: Some(AttributionStatus::ReviewRequired),
            ..Default::default()
        })
        .await?
        .referrals;
    let (Some(first), Some(second)) = (held.first(), held.get(1)) else {
        bail!("the demo data has fewer than two referrals in review");
    };
    let code = core
        .summary_for(&AccountId::parse("account", USER)?)
        .await?
        .referral_code;
    // A reward waiting for its holding period (recover's example leaves it alone).
    let waiting = core
        .query_referrals(ListQuery {
            reward_status: Some(RewardStatus::Held),
            ..Default::default()
        })
        .await?
        .referrals;
    let Some((void_id, void_side)) = waiting.first().and_then(|r| {
        r.rewards
            .iter()
            .find(|w| w.status == RewardStatus::Held)
            .map(|w| (r.id, w.side))
    }) else {
        bail!("the demo data has no reward held for its holding period");
    };
    Ok(vec![
        (
            Operation::ListReferrals,
            json!({"status": "review_required", "limit": 2}),
        ),
        (Operation::GetReferral, json!({"id": first.id})),
        (
            Operation::ApproveReferral,
            json!({"id": first.id, "note": "checked: different households"}),
        ),
        (
            Operation::RejectReferral,
            json!({"id": second.id, "reason": "disposable address, no payment history"}),
        ),
        (Operation::RecoverGrants, json!({"limit": 3})),
        (Operation::GetStats, json!({"campaign": "default"})),
        (
            Operation::CaptureClick,
            json!({
                "code": code,
                "landing_url": format!("https://app.example/r/{code}?utm_source=newsletter&utm_medium=email&email=jo@example.com"),
                "referrer_url": "https://user:pw@news.example/item?id=42#top",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
            }),
        ),
        (Operation::MySummary, json!({})),
        (Operation::MyEvents, json!({"limit": 2})),
        (
            Operation::VoidReward,
            json!({"id": void_id, "side": void_side, "reason": "duplicate of an earlier customer account"}),
        ),
        (Operation::ListCampaigns, json!({})),
        (Operation::GetCampaign, json!({"id": "spring"})),
        (
            Operation::CreateCampaign,
            json!({
                "id": "autumn", "name": "Autumn partners", "referrer_credits": 300,
                "referred_credits": 150, "cap_credits": 1500, "cap_period": "month",
                "starts_at": "2026-11-01", "ends_at": "2026-12-01", "holding_days": 30,
            }),
        ),
        (
            Operation::UpdateCampaign,
            json!({"id": "autumn", "referred_credits": 200, "clear": ["ends_at"]}),
        ),
        (
            Operation::IngestSignup,
            json!({"account": "acct_newbie", "email": "newbie@example.org", "ip": "203.0.113.77", "code": code}),
        ),
        (
            Operation::IngestQualification,
            json!({"account": "acct_newbie", "event": "first_payment", "amount": 1900}),
        ),
        (
            Operation::IngestRefund,
            json!({"account": "acct_newbie", "event": "refund", "amount": 1900}),
        ),
    ])
}

async fn call_mcp(site: &Site, op: Operation, args: &Value) -> Result<Value> {
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", site.base))
            .auth_header(site.token(op)?),
    );
    let client = ().serve(transport).await?;
    let mut p = CallToolRequestParams::new(op.name().to_owned());
    if let Value::Object(m) = args {
        p = p.with_arguments(m.clone());
    }
    let r = client.call_tool(p).await?;
    client.cancel().await?;
    if r.is_error == Some(true) {
        bail!("example {} failed over MCP: {:?}", op.name(), r.content);
    }
    r.structured_content
        .with_context(|| format!("{} returned no structured content", op.name()))
}

async fn call_rest(site: &Site, op: Operation, args: &Value) -> Result<(u16, Value)> {
    let e = endpoint(op).context("no REST route")?;
    let (path, body) = e.request(args.as_object().context("example arguments")?);
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(e.method.as_bytes())?;
    let mut req = http.request(method, format!("{}{path}", site.base));
    if op.access() != Access::Public {
        req = req.bearer_auth(site.token(op)?);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

fn write(path: PathBuf, text: &str) -> Result<()> {
    let mut text = text.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

pub(super) async fn run(out: &Path) -> Result<()> {
    let work = std::env::temp_dir().join(crate::core::types::random_id("referral-mcp-catalog-"));
    std::fs::create_dir_all(&work)?;
    let result = generate(out, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn generate(out: &Path, work: &Path) -> Result<()> {
    let mcp_site = Site::start(&work.join("mcp.db")).await?;
    let rest_site = Site::start(&work.join("rest.db")).await?;
    let plan = examples(&mcp_site.app.core).await?;
    if plan != examples(&rest_site.app.core).await? {
        bail!("the two demo databases differ; the examples would not be reproducible");
    }
    let mut results = Vec::new();
    for (op, args) in &plan {
        results.push(call_mcp(&mcp_site, *op, args).await?);
    }
    let mut examples = Vec::new();
    for ((op, args), result) in plan.iter().zip(results) {
        let (status, rest) = call_rest(&rest_site, *op, args).await?;
        if rest != result {
            bail!(
                "{} answers differently over MCP and REST:\nMCP:  {result}\nREST: {rest}",
                op.name()
            );
        }
        examples.push(Example {
            args: args.clone(),
            result,
            status,
        });
    }
    mcp_site.stop.cancel();
    rest_site.stop.cancel();

    let all = ReferralServer::all_tools();
    let schemas = out.join("schemas");
    let tools_dir = out.join("tools");
    std::fs::create_dir_all(&schemas)?;
    std::fs::create_dir_all(&tools_dir)?;
    let mut listed = Vec::new();
    for name in TOOL_NAMES {
        let ex = plan
            .iter()
            .position(|(op, _)| op.name() == name)
            .and_then(|i| examples.get(i))
            .with_context(|| format!("no example for {name}"))?;
        let tool = all
            .iter()
            .find(|t| t.name == name)
            .with_context(|| format!("tool {name} is not registered"))?;
        let op = Operation::from_name(name).with_context(|| format!("{name} is no operation"))?;
        let e = endpoint(op).with_context(|| format!("{name} has no REST route"))?;
        write(
            schemas.join(format!("{name}.input.json")),
            &pretty(&Value::Object((*tool.input_schema).clone())),
        )?;
        let output = tool
            .output_schema
            .as_ref()
            .with_context(|| format!("{name} has no output schema"))?;
        write(
            schemas.join(format!("{name}.output.json")),
            &pretty(&Value::Object((**output).clone())),
        )?;
        write(
            tools_dir.join(format!("{name}.md")),
            &page(tool, op, e, &mcp_site.app.core, ex),
        )?;
        listed.push((op, tool, e));
    }
    write(
        tools_dir.join("README.md"),
        &index(&listed, &mcp_site.app.core),
    )?;
    mcp_site.app.store.close().await;
    rest_site.app.store.close().await;
    eprintln!(
        "wrote {} schemas and {} tool pages under {}",
        listed.len() * 2,
        listed.len() + 1,
        out.display()
    );
    Ok(())
}
