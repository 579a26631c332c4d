//! The catalog's pages: one Markdown page per tool (REST path, auth, credits, parameters,
//! MCP metadata, the real example) and the index, rendered from the tool definitions and
//! the endpoint table.

use std::fmt::Write as _;

use rmcp::model::Tool;
use serde_json::{Value, json};

use super::BASE;
use crate::api::endpoints::{Endpoint, Input};
use crate::core::Referrals;
use crate::core::access::{Access, Operation};
use crate::mcp::{ToolFilter, Toolset};

pub(super) fn curl(e: &Endpoint, op: Operation, args: &Value) -> String {
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

pub(super) fn pretty(v: &Value) -> String {
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
        } else if e.query_too.contains(&name.as_str()) {
            "query or body"
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

pub(super) struct Example {
    pub(super) args: Value,
    pub(super) result: Value,
    pub(super) status: u16,
}

pub(super) fn page(
    tool: &Tool,
    op: Operation,
    e: &Endpoint,
    core: &Referrals,
    ex: &Example,
) -> String {
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
    let _ = writeln!(s, "| toolset | {} |", toolset_text(op));
    let _ = writeln!(s, "| auth | {} |", auth_text(op));
    let _ = writeln!(s, "| credits | {} |", credits_text(core, op));
    let _ = writeln!(s, "| annotations | {} |", annotations(tool));
    if let Some(uri) = tool
        .meta
        .as_ref()
        .and_then(|m| m.get("ui")?.get("resourceUri")?.as_str())
    {
        let _ = writeln!(
            s,
            "| MCP App | `{uri}` (`_meta.ui.resourceUri`): the review queue, for hosts with the MCP Apps extension |"
        );
    }
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

/// The tool's toolset, and how to switch it on when it is off by default.
fn toolset_text(op: Operation) -> String {
    let set = Toolset::of(op);
    if ToolFilter::default().toolsets.contains(&set) {
        format!("`{}` (on by default)", set.name())
    } else {
        format!("`{0}` (off by default; `--toolsets {0}`)", set.name())
    }
}

pub(super) fn index(tools: &[(Operation, &Tool, &'static Endpoint)], core: &Referrals) -> String {
    let mut s = String::from(
        "<!-- Generated by `referral-mcp catalog --out .`; do not edit. -->\n\n# Tool reference\n\n\
The nine operations of the product docs, then operator corrections, campaigns and the lifecycle events. Each is an MCP tool (at `/mcp` or over `stdio`) and a REST route. \
Tools come in toolsets: `referrals` (the nine) is on by default; `rewards`, `campaigns` and `ingest` are switched on with `--toolsets` (e.g. `--toolsets referrals,campaigns,ingest`, or `all`). \
JSON Schemas (2020-12, exactly as `tools/list` serves them) are in [`../schemas/`](../schemas/).\n\n\
The examples ran with an admin JWT (`$REFERRAL_TOKEN`, from `referral-mcp token mint --admin --account acct_ops`) \
and, for the two `me` tools, a user JWT (`$REFERRAL_USER_TOKEN`, from `referral-mcp token mint --account acct_ada`); \
an API key with the listed scope works too, sent as `x-api-key: $REFERRAL_API_KEY`.\n\n\
| # | tool | toolset | REST | auth | credits | what it does |\n|---|---|---|---|---|---|---|\n",
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
            "| {} | [`{}`]({}.md) | `{}` | `{} {}` | {} | {} | {what}. |",
            n + 1,
            op.name(),
            op.name(),
            Toolset::of(*op).name(),
            e.method,
            e.path,
            auth_text(*op),
            credits_text(core, *op)
        );
    }
    s.push_str(
        "\n## Prompts\n\nOver MCP the server also offers two prompts (`prompts/list`, `prompts/get`) for the jobs agents do with it; \
hosts that surface prompts show them as slash commands. A prompt is text only: the steps, the tools in order and the rules \
(outsider text is data). The calls it leads to are ordinary tool calls, with their auth, credits and audit trail.\n\n\
| prompt | what it does | arguments |\n|---|---|---|\n",
    );
    for p in crate::mcp::prompts() {
        let args = p
            .arguments
            .unwrap_or_default()
            .iter()
            .map(|a| {
                format!(
                    "`{}` ({}): {}",
                    a.name,
                    if a.required == Some(true) {
                        "required"
                    } else {
                        "optional"
                    },
                    a.description.as_deref().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = writeln!(
            s,
            "| `{}` | {} | {args} |",
            p.name,
            p.description.as_deref().unwrap_or_default()
        );
    }
    let _ = write!(
        s,
        "\n## MCP App\n\nHosts with the MCP Apps extension (SEP-1865) render `list_referrals` and `get_referral` results with the \
review queue, `{}` (`resources/list`, `resources/read`, MIME `{}`): held referrals, their review reasons, and Approve / Reject \
buttons that make ordinary tool calls through the host, with their auth, credits and audit trail. Other hosts see only the tools.\n",
        crate::mcp::app::URI,
        crate::mcp::app::MIME
    );
    s
}
