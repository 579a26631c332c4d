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
    let webhooks = webhook_paths(&mut generator, &problem_ref);
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
    for (path, ops) in webhooks {
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        for (method, op) in ops.as_object().into_iter().flatten() {
            entry[method] = op.clone();
        }
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

/// The webhook management routes (`http/webhooks.rs`): not operations, so not in
/// [`ENDPOINTS`]; described here with the same generator.
fn webhook_paths(g: &mut rmcp::schemars::SchemaGenerator, problem: &Value) -> Vec<(String, Value)> {
    use crate::http::webhooks::{CreateWebhookArgs, DeliveriesArgs};
    use crate::webhooks::{CreatedEndpoint, DeliveryView, EndpointView};
    let security = json!([{ "apiKey": ["webhooks:manage"] }, { "bearerJwt": ["webhooks:manage"] }]);
    let errors = |codes: &[u16]| -> Map<String, Value> {
        codes
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    json!({ "description": status_text(*c), "content": { "application/problem+json": { "schema": problem } } }),
                )
            })
            .collect()
    };
    let op = |id: &str, summary: &str, ok: (&str, Value), codes: &[u16]| {
        let mut responses = errors(codes);
        responses.insert(ok.0.into(), ok.1);
        json!({
            "operationId": id, "summary": summary, "tags": ["webhooks"],
            "description": "Webhook management: needs an admin JWT or an API key with `webhooks:manage`. Not charged; no MCP tool.",
            "responses": responses, "security": security,
        })
    };
    let json_of = |schema: Value| json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
    let endpoints = g.subschema_for::<Vec<EndpointView>>().to_value();
    let created = g.subschema_for::<CreatedEndpoint>().to_value();
    let create_args = g.subschema_for::<CreateWebhookArgs>().to_value();
    let deliveries = g.subschema_for::<Vec<DeliveryView>>().to_value();
    let mut create = op(
        "create_webhook",
        "Register an endpoint; the answer holds its signing secret, shown this once",
        (
            "201",
            json!({ "description": "Created", "content": { "application/json": { "schema": created } } }),
        ),
        &[400, 401, 403, 422, 503],
    );
    create["requestBody"] =
        json!({ "required": true, "content": { "application/json": { "schema": create_args } } });
    let mut log = op(
        "list_webhook_deliveries",
        "The delivery log, newest first",
        ("200", json_of(deliveries)),
        &[400, 401, 403, 422, 503],
    );
    log["parameters"] = json!([
        { "name": "status", "in": "query", "required": false, "schema": { "enum": ["pending", "delivered", "dead"] } },
        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 500 } },
    ]);
    let _ = g.subschema_for::<DeliveriesArgs>();
    let path_param = |name: &str, ty: &str| json!([{ "name": name, "in": "path", "required": true, "schema": { "type": ty } }]);
    let mut disable = op(
        "disable_webhook",
        "Stop sending to an endpoint; its pending deliveries are dead-lettered",
        ("204", json!({ "description": "Disabled" })),
        &[401, 403, 404, 503],
    );
    disable["parameters"] = path_param("id", "string");
    let mut replay = op(
        "replay_webhook_delivery",
        "Send a delivery again (same event id), whatever its status",
        ("202", json!({ "description": "Queued" })),
        &[401, 403, 404, 503],
    );
    replay["parameters"] = path_param("id", "integer");
    vec![
        (
            "/admin/webhooks".into(),
            json!({
                "get": op("list_webhooks", "Every endpoint, without secrets", ("200", json_of(endpoints)), &[401, 403, 503]),
                "post": create,
            }),
        ),
        (
            "/admin/webhooks/{id}/disable".into(),
            json!({ "post": disable }),
        ),
        ("/admin/webhooks/deliveries".into(), json!({ "get": log })),
        (
            "/admin/webhooks/deliveries/replay-dead".into(),
            json!({ "post": op("replay_dead_webhook_deliveries", "Send every dead-lettered delivery again",
                ("200", json_of(json!({ "type": "object", "properties": { "replayed": { "type": "integer" } } }))), &[401, 403, 503]) }),
        ),
        (
            "/admin/webhooks/deliveries/{id}/replay".into(),
            json!({ "post": replay }),
        ),
    ]
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
