//! What `tools/list` sends of each schema. Agents pay for every token of `tools/list` (the
//! admin list must stay under 16,000 characters), and some model providers' function
//! dialects refuse `"type": [X, "null"]`, so the schemas rmcp generates are compacted
//! here once per process.

use rmcp::model::JsonObject;

/// Agents pay for every token of `tools/list` (the admin list must stay under 16,000
/// characters), so schemas carry only what a caller needs: `format` annotations go
/// (`int64` says nothing `integer` does not) and so does `$schema` (2020-12 is MCP's
/// default dialect); output schemas lose descriptions, `enum` lists (the status words
/// are in the input schemas and the docs; every output repeated them) and the
/// `required` lists and `"type": "object"` of nested objects (their `properties` say
/// it), and have their `$ref`s inlined
/// (they describe data the tool returns; the tool description says what it means).
/// Input schemas keep their property descriptions: they tell an agent what to send.
/// Optional properties of both are not nullable (see [`not_null`]).
pub(super) fn compact(schema: &JsonObject, output: bool) -> JsonObject {
    use serde_json::Value;
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    fn go(v: &Value, defs: &JsonObject, output: bool, depth: usize) -> Value {
        match v {
            Value::Object(o) => {
                // `{"$ref": …}`, maybe with a description that goes anyway.
                let only_ref = o.keys().all(|k| k == "$ref" || k == "description");
                if output
                    && depth < 64
                    && only_ref
                    && let Some(target) = o
                        .get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .and_then(|name| defs.get(name))
                {
                    return go(target, defs, output, depth + 1);
                }
                let mut out = serde_json::Map::new();
                for (k, v) in o {
                    let drop = k == "format"
                        || k == "$defs"
                        || k == "$schema"
                        || (output && (k == "description" || k == "enum"))
                        || (output && depth > 0 && k == "required");
                    if drop && (k == "$defs" || !v.is_object()) {
                        continue;
                    }
                    out.insert(k.clone(), go(v, defs, output, depth + 1));
                }
                not_null(&mut out);
                // Nested output objects: `properties` already says it is an object.
                if output && depth > 0 && out.contains_key("properties") {
                    out.remove("type");
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| go(x, defs, output, depth)).collect()),
            other => other.clone(),
        }
    }
    let mut out = match go(&Value::Object(schema.clone()), &defs, output, 0) {
        Value::Object(o) => o,
        _ => schema.clone(),
    };
    if !output && !defs.is_empty() {
        // Inputs keep their `$defs` (enums), without the type-level descriptions.
        let defs: JsonObject = defs
            .iter()
            .map(|(k, v)| {
                let mut v = go(v, &JsonObject::new(), false, 0);
                if let Some(o) = v.as_object_mut() {
                    o.remove("description");
                }
                (k.clone(), v)
            })
            .collect();
        out.insert("$defs".into(), Value::Object(defs));
    }
    out
}

/// An optional property is simply left out (inputs: the caller omits it; outputs: every
/// optional field of a view is skipped when empty, never sent as `null`), so its schema
/// need not allow `null`: `["integer", "null"]` becomes `"integer"` and `anyOf: [X, null]`
/// becomes `X`. Clients that build arguments from the schema (the Inspector's CLI turns
/// `limit=5` into a number only for `"type": "integer"`) then send the right type, and
/// function dialects that refuse type arrays (the Inspector's "schema portability"
/// warnings) accept the schema.
fn not_null(o: &mut JsonObject) {
    use serde_json::Value;
    if let Some(Value::Array(types)) = o.get("type") {
        let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if rest.len() == 1 {
            o.insert("type".into(), rest[0].clone());
        }
    }
    if let Some(Value::Array(any)) = o.get("anyOf") {
        let rest: Vec<Value> = any
            .iter()
            .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if rest.len() == 1
            && let Value::Object(inner) = &rest[0]
        {
            let inner = inner.clone();
            o.remove("anyOf");
            for (k, v) in inner {
                o.entry(k).or_insert(v);
            }
        }
    }
}
