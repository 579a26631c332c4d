//! The OpenAPI 3.1 document, generated from [`ENDPOINTS`] and the same schemars schemas
//! the MCP tools serve (OpenAPI 3.1 schemas are JSON Schema 2020-12), so the REST docs
//! and the tool schemas cannot disagree.

use rmcp::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::api::endpoints::{ENDPOINTS, Endpoint, Input};
use crate::api::problem::Problem;
use crate::core::access::{Access, Operation};

fn status_text(code: u16) -> &'static str {
    match code {
        400 => "Malformed request: bad JSON, unknown field, wrong type",
        401 => "No credential, or one that does not verify",
        402 => "Insufficient credits; nothing was done",
        403 => "The credential lacks the needed scope",
        404 => "No such referral or code",
        409 => "The referral is not in review_required; `current_status` says where it is",
        413 => "Body over 64 KiB",
        422 => "A value is out of range; `field` names it",
        429 => "Rate limited; see Retry-After",
        503 => "The database is unavailable; nothing was done or charged; retry after Retry-After",
        _ => "Error",
    }
}

fn security(op: Option<Operation>) -> Value {
    match op.map(Operation::access) {
        Some(Access::Public) => json!([]),
        Some(Access::User) => json!([{ "bearerJwt": [] }]),
        Some(Access::Scoped(s)) => json!([
            { "apiKey": [s.as_str()] },
            { "bearerJwt": [s.as_str()] },
        ]),
        None => json!([{ "apiKey": [] }, { "bearerJwt": [] }]),
    }
}

/// Inlines a `$ref` to a component so its properties can become parameters.
fn resolve<'a>(defs: &'a Map<String, Value>, s: &'a Value) -> &'a Value {
    s.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .and_then(|name| defs.get(name))
        .unwrap_or(s)
}

fn parameters(e: &Endpoint, params: &Value) -> Vec<Value> {
    let required: Vec<&str> = params
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = params.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .filter(|(name, _)| {
            e.input == Input::Query || name.as_str() == "id" || e.query_too.contains(&name.as_str())
        })
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            let description = schema
                .as_object_mut()
                .and_then(|o| o.remove("description"))
                .unwrap_or(Value::Null);
            let place = if name == "id" && e.path.contains("{id}") {
                "path"
            } else {
                "query"
            };
            let mut p = json!({
                "name": name, "in": place, "schema": schema,
                "required": place == "path" || required.contains(&name.as_str()),
            });
            if !description.is_null() {
                p["description"] = description;
            }
            p
        })
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let problem_ref = generator.subschema_for::<Problem>().to_value();
    let mut paths = Map::new();
    let mut pending = Vec::new();
    for e in ENDPOINTS {
        let params = (e.params)(&mut generator).to_value();
        let output = (e.output)(&mut generator).to_value();
        pending.push((e, params, output));
    }
    let defs = generator.take_definitions(true);
    for (e, params, output) in pending {
        let resolved = resolve(&defs, &params);
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({ "description": "OK", "content": { "application/json": { "schema": output } } }),
        );
        for code in e.errors {
            responses.insert(
                code.to_string(),
                json!({
                    "description": status_text(*code),
                    "content": { "application/problem+json": { "schema": problem_ref } },
                }),
            );
        }
        let op_id = e.op.map(Operation::name).unwrap_or("whoami");
        let mut operation = json!({
            "operationId": op_id,
            "summary": e.summary,
            "description": description(e.op),
            "tags": [tag(e.path)],
            "parameters": parameters(e, resolved),
            "responses": responses,
            "security": security(e.op),
        });
        if e.input == Input::Body {
            // A route with the id in its path takes the tool's other arguments as its body.
            let schema = if e.path.contains("{id}") {
                without_id(resolved)
            } else {
                params.clone()
            };
            operation["requestBody"] = json!({
                "required": has_required(resolve(&defs, &schema)),
                "content": { "application/json": { "schema": schema } },
            });
        }
        let entry = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        entry[e.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "referral-mcp",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Referral program of a credits-based API. Every operation costs 1 credit (configurable), charged only on success; public click capture is free and rate-limited per IP. The same operations are MCP tools at /mcp.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key",
                    "description": "An API key from `referral-mcp keys create`; also accepted as a Bearer token." },
                "bearerJwt": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "HS256 with the configured secret, or RS256 from the configured JWKS URL; `role: admin` holds every scope." },
            },
        },
    })
}

/// The arguments' schema without `id` (which the path carries), inlined.
fn without_id(params: &Value) -> Value {
    let mut s = params.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("title");
        if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
            props.remove("id");
        }
        if let Some(req) = o.get_mut("required").and_then(Value::as_array_mut) {
            req.retain(|r| r != "id");
            if req.is_empty() {
                o.remove("required");
            }
        }
    }
    s
}

fn has_required(s: &Value) -> bool {
    s.get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

fn tag(path: &str) -> &'static str {
    if path.starts_with("/admin") {
        "admin"
    } else if path.starts_with("/ingest") {
        "ingest"
    } else if path.starts_with("/auth") {
        "auth"
    } else {
        "referrals"
    }
}

fn description(op: Option<Operation>) -> String {
    let Some(op) = op else {
        return "Checks a credential. Free.".into();
    };
    let who = match op.access() {
        Access::Public => "Public: no credentials, no credits, rate-limited per IP.".to_owned(),
        Access::User => "Needs a user JWT. Costs 1 credit.".to_owned(),
        Access::Scoped(s) => format!(
            "Needs an admin JWT or an API key with `{}`. Costs 1 credit.",
            s.as_str()
        ),
    };
    format!("MCP tool `{}`. {who}", op.name())
}
