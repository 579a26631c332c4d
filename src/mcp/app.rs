//! The review queue as an MCP App (the MCP Apps extension, SEP-1865): one `ui://`
//! resource, a self-contained HTML page that hosts with the extension render for
//! `list_referrals` and `get_referral` results, with Approve / Reject buttons.
//!
//! Why a resource and not a new tool: the page holds no data and no authority. It asks
//! the host to call the ordinary tools (`tools/call` over the host's postMessage
//! bridge), so auth, scopes, credits and the audit trail apply exactly as for an
//! agent's call. Reading it is free and shown to whoever may list referrals. Hosts
//! without the extension ignore the tools' `_meta.ui` and see today's tools.
//!
//! The page is inline script and style only, declares its own strict CSP, and builds
//! every outsider string (emails, reasons, notes) with `textContent`.

use rmcp::model::{MetaObject, ReadResourceResult, Resource, ResourceContents};
use serde_json::json;

pub const URI: &str = "ui://referral-mcp/review-queue";
pub const MIME: &str = "text/html;profile=mcp-app";
const HTML: &str = include_str!("app/review_queue.html");

/// The tools whose results the page renders.
pub const LINKED_TOOLS: [&str; 2] = ["list_referrals", "get_referral"];

/// `_meta` for a linked tool: only the link, to keep `tools/list` small.
pub fn tool_meta() -> MetaObject {
    meta(json!({"ui": {"resourceUri": URI}}))
}

/// `_meta.ui` of the resource: no external origin of any kind (the host's CSP), a border.
fn resource_meta() -> MetaObject {
    meta(json!({"ui": {
        "csp": {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []},
        "prefersBorder": true
    }}))
}

fn meta(v: serde_json::Value) -> MetaObject {
    match v {
        serde_json::Value::Object(m) => MetaObject(m),
        _ => MetaObject::default(),
    }
}

pub fn resource() -> Resource {
    Resource::new(URI, "review_queue")
        .with_title("Review queue")
        .with_description("Held referrals with their review reasons and Approve / Reject buttons (MCP Apps view of list_referrals and get_referral).")
        .with_mime_type(MIME)
        .with_meta(resource_meta())
}

/// The page, if `uri` is ours.
pub fn read(uri: &str) -> Option<ReadResourceResult> {
    (uri == URI).then(|| {
        ReadResourceResult::new(vec![
            ResourceContents::text(HTML, URI)
                .with_mime_type(MIME)
                .with_meta(resource_meta()),
        ])
    })
}
