//! `catalog --out DIR`: the tool reference, generated from the code so it cannot drift.
//!
//! Writes `DIR/schemas/<tool>.{input,output}.json` (exactly what `tools/list` serves),
//! `DIR/tools/<tool>.md` and `DIR/tools/README.md`. The examples are real: two identical
//! demo databases (fixed clock, fixed secrets, seeded ids) each get a real server on port
//! 0; every example runs once as an MCP call (rmcp's client over streamable HTTP) on the
//! first and once as a REST request on the second, and the command refuses to write a
//! catalog where the two answers differ.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{HttpOptions, router};
use crate::api::endpoints::{Endpoint, Input, endpoint};
use crate::config::{App, Config};
use crate::core::access::{Access, Operation};
use crate::core::clock::Clock;
use crate::core::types::{AccountId, AttributionStatus};
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
        let r = router(app.clone(), HttpOptions::default(), stop.clone());
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

fn curl(e: &Endpoint, op: Operation, args: &Value) -> String {
    let empty = serde_json::Map::new();
    let (path, body) = e.request(args.as_object().unwrap_or(&empty));
    let mut s = format!("curl -s -X {} '{BASE}{path}'", e.method);
    match op.access() {
        Access::Public => {}
        Access::User => s.push_str(" \\\n  -H \"Authorization: Bearer $REFERRAL_USER_TOKEN\""),
        Access::Scoped(_) => s.push_str(" \\\n  -H \"Authorization: Bearer $REFERRAL_TOKEN\""),
    }
    if let Some(b) = body {
        s.push_str(" \\\n  -H 'content-type: application/json'");
        let body = serde_json::to_string(&b)
            .unwrap_or_default()
            .replace('\'', "'\\''");
        let _ = write!(s, " \\\n  -d '{body}'");
    }
    s
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn auth_text(op: Operation) -> String {
    match op.access() {
        Access::Scoped(s) => format!("admin JWT, or API key with `{}`", s.as_str()),
        Access::User => "user JWT (the caller's own data)".into(),
        Access::Public => "public: no credentials; rate-limited per IP".into(),
    }
}

fn credits_text(core: &Referrals, op: Operation) -> String {
    match op.access() {
        Access::Public => "0 (public)".into(),
        _ => format!("{} per successful call", core.settings().price(op)),
    }
}

/// `{"$ref": "#/$defs/X"}` (or an `anyOf` with `null`) resolved against `defs`.
fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    if let Some(r) = schema["$ref"].as_str() {
        return &defs[r.trim_start_matches("#/$defs/")];
    }
    if let Some(any) = schema["anyOf"].as_array()
        && let Some(inner) = any.iter().find(|s| s["type"] != "null")
    {
        return resolve(inner, defs);
    }
    schema
}

fn type_text(schema: &Value) -> String {
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

fn bounds_text(schema: &Value) -> String {
    let mut b = Vec::new();
    for (key, label) in [
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
    ] {
        if let Some(n) = schema[key].as_i64() {
            b.push(format!("{label} {n}"));
        }
    }
    b.join(", ")
}

fn parameters(tool: &Tool, e: &Endpoint) -> String {
    let schema = Value::Object((*tool.input_schema).clone());
    let defs = &schema["$defs"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return "None.\n".into();
    };
    if props.is_empty() {
        return "None.\n".into();
    }
    let mut s = String::from(
        "| name | in (REST) | type | required | bounds | description |\n|---|---|---|---|---|---|\n",
    );
    for (name, p) in props {
        let resolved = resolve(p, defs);
        let place = if name == "id" && e.path.contains("{id}") {
            "path"
        } else if e.input == Input::Query {
            "query"
        } else {
            "body"
        };
        let _ = writeln!(
            s,
            "| `{name}` | {place} | {} | {} | {} | {} |",
            type_text(resolved),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                "no"
            },
            bounds_text(resolved),
            p["description"].as_str().unwrap_or("").replace('|', "\\|")
        );
    }
    s
}

fn annotations(tool: &Tool) -> String {
    let a = tool.annotations.clone().unwrap_or_default();
    let yn = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unset",
    };
    format!(
        "read-only: {}, destructive: {}, idempotent: {}, open-world: {}",
        yn(a.read_only_hint),
        yn(a.destructive_hint),
        yn(a.idempotent_hint),
        yn(a.open_world_hint)
    )
}

struct Example {
    args: Value,
    result: Value,
    status: u16,
}

fn page(tool: &Tool, op: Operation, e: &Endpoint, core: &Referrals, ex: &Example) -> String {
    let title = tool.title.clone().unwrap_or_else(|| op.name().to_owned());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!-- Generated by `referral-mcp catalog --out .`; do not edit. -->\n"
    );
    let _ = writeln!(s, "# {title}: `{}`\n", op.name());
    let _ = writeln!(s, "{}\n", tool.description.as_deref().unwrap_or_default());
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| REST | `{} {}` |", e.method, e.path);
    let _ = writeln!(s, "| MCP tool | `{}` |", op.name());
    let _ = writeln!(s, "| auth | {} |", auth_text(op));
    let _ = writeln!(s, "| credits | {} |", credits_text(core, op));
    let _ = writeln!(s, "| annotations | {} |", annotations(tool));
    let _ = writeln!(
        s,
        "| schemas | [input](../schemas/{0}.input.json), [output](../schemas/{0}.output.json) |\n",
        op.name()
    );
    let _ = writeln!(s, "## Parameters\n\n{}", parameters(tool, e));
    let _ = writeln!(
        s,
        "Unknown parameters are refused. Over MCP, errors are tool results with `isError: true` and a JSON body `{{\"error\": {{\"code\", \"message\", \"next_step\"}}}}`; over REST they are `application/problem+json` with the same `code`, and this route may answer {}.\n",
        e.errors
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "## Example over MCP\n\nRun by `referral-mcp catalog` on the demo data set with a fixed clock and fixed ids (your own `serve --demo` has other codes and ids).\n\n```json\n{}\n```\n",
        pretty(
            &json!({"method": "tools/call", "params": {"name": op.name(), "arguments": ex.args}})
        )
    );
    let _ = writeln!(
        s,
        "`structuredContent` of the result (the same JSON is also sent as text content):\n\n```json\n{}\n```\n",
        pretty(&ex.result)
    );
    let _ = writeln!(
        s,
        "## The same call over REST\n\n```sh\n{}\n```\n",
        curl(e, op, &ex.args)
    );
    let _ = writeln!(
        s,
        "Response `{}` (`application/json`), the same JSON as the tool result:\n\n```json\n{}\n```",
        ex.status,
        pretty(&ex.result)
    );
    s
}

fn index(tools: &[(Operation, &Tool, &'static Endpoint)], core: &Referrals) -> String {
    let mut s = String::from(
        "<!-- Generated by `referral-mcp catalog --out .`; do not edit. -->\n\n# Tool reference\n\n\
The nine operations, in the order of the product docs. Each is an MCP tool (at `/mcp` or over `stdio`) and a REST route. \
JSON Schemas (2020-12, exactly as `tools/list` serves them) are in [`../schemas/`](../schemas/).\n\n\
The examples ran with an admin JWT (`$REFERRAL_TOKEN`, from `referral-mcp token mint --admin --account acct_ops`) \
and, for the two `me` tools, a user JWT (`$REFERRAL_USER_TOKEN`, from `referral-mcp token mint --account acct_ada`); \
an API key with the listed scope works too, sent as `x-api-key: $REFERRAL_API_KEY`.\n\n\
| # | tool | REST | auth | credits | what it does |\n|---|---|---|---|---|---|\n",
    );
    for (n, (op, tool, e)) in tools.iter().enumerate() {
        let what = tool
            .description
            .as_deref()
            .unwrap_or_default()
            .split(". ")
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        let _ = writeln!(
            s,
            "| {} | [`{}`]({}.md) | `{} {}` | {} | {} | {what}. |",
            n + 1,
            op.name(),
            op.name(),
            e.method,
            e.path,
            auth_text(*op),
            credits_text(core, *op)
        );
    }
    s
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
