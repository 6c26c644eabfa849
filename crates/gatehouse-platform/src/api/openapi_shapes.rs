//! Final touches to the OpenAPI documents, on their JSON: what the annotations cannot say.
//!
//! - `allOf` of closed objects (`additionalProperties: false`, as every body type with
//!   `deny_unknown_fields` is) can match nothing, since each part refuses the other's fields: an
//!   artifact view (spec fields plus identity) or a template view (template plus `builtIn`) is
//!   merged into one closed object with the union of the properties and of the required names.
//! - Rules every field of one name follows wherever it appears: a `displayName` is checked by one
//!   function (`service::display_name`, and the specs' own), so its schema says so once here.

use serde_json::{json, Map, Value};

/// The rule of a `displayName`: not blank (something besides white space), at most 128
/// characters.
fn display_name_rule(schema: &mut Map<String, Value>) {
    schema.insert("pattern".into(), json!("\\S"));
    schema.insert("maxLength".into(), json!(128));
}

/// The rule of a `headers` map (header name to value), as `http` checks them: names are
/// tokens, values anything but control characters (a tab is allowed).
fn header_map_rule(schema: &mut Map<String, Value>) {
    let is_map = schema
        .get("additionalProperties")
        .is_some_and(|a| a.get("type") == Some(&json!("string")));
    if is_map {
        schema.insert(
            "propertyNames".into(),
            json!({"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}),
        );
        schema.insert(
            "additionalProperties".into(),
            json!({"type": "string", "pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$"}),
        );
    }
}

/// An http(s) URL with a host name, an optional port and path, no query or fragment. (Hosts
/// given as IP addresses are accepted by the API but not described here: a pattern cannot tell
/// a valid address from an invalid one.)
pub(super) const HTTP_URL_PATTERN: &str = "^https?://[A-Za-z]([A-Za-z0-9-]*[A-Za-z])?(\\.[A-Za-z]([A-Za-z0-9-]*[A-Za-z])?)*(:[0-9]{1,4})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$";

/// An upstream URL as `validate_url` takes it: an http(s) URL as above, or URL text holding one
/// reference (`{{ secret "x" }}`, `{{ env "NAME" }}`), resolved on the gateway.
pub(super) const URL_PATTERN: &str = "^(https?://[A-Za-z]([A-Za-z0-9-]*[A-Za-z])?(\\.[A-Za-z]([A-Za-z0-9-]*[A-Za-z])?)*(:[0-9]{1,4})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?|[A-Za-z0-9._~!$&'()*+,;=:@%/-]*\\{\\{ *(secret +\"[a-z0-9][a-z0-9-]{0,39}\"|env +\"[A-Za-z_][A-Za-z0-9_]*\") *\\}\\}[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$";

/// Rules of particular schemas: upstream URLs, the two forms of an upstream (`url` or `urls`),
/// of a proxy's providers and of an MCP proxy's servers, and tagged unions whose variants take
/// no other field.
fn component_rules(doc: &mut Value) {
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    for (name, property) in [
        ("Endpoint", "url"),
        ("RestEndpoint", "url"),
        ("McpUpstream", "url"),
        ("LlmUpstream", "url"),
    ] {
        if let Some(Value::Object(url)) = schemas
            .get_mut(name)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
        {
            url.insert("pattern".into(), json!(URL_PATTERN));
        }
    }
    if let Some(Value::Array(forms)) = schemas
        .get_mut("WeightedUrl")
        .and_then(|s| s.get_mut("oneOf"))
    {
        for form in forms {
            let url = match form.pointer_mut("/properties/url") {
                Some(u) => u,
                None => form,
            };
            if let Value::Object(url) = url {
                url.insert("pattern".into(), json!(URL_PATTERN));
            }
        }
    }
    for (name, one, many) in [
        ("RestEndpoint", "url", "urls"),
        ("LlmProxySpec", "provider", "providers"),
        ("McpSpec", "upstream", "upstreams"),
    ] {
        if let Some(Value::Object(schema)) = schemas.get_mut(name) {
            schema.insert(
                "oneOf".into(),
                json!([
                    {"required": [one], "properties": {one: {"not": {"type": "null"}}}},
                    {"required": [many], "properties": {many: {"type": "array", "minItems": 1}}}
                ]),
            );
        }
    }
    if let Some(Value::Array(variants)) = schemas
        .get_mut("ModelLocation")
        .and_then(|s| s.get_mut("oneOf"))
    {
        for v in variants.iter_mut().filter_map(Value::as_object_mut) {
            v.insert("additionalProperties".into(), json!(false));
        }
    }
}

/// Applies the touches to `doc`.
pub fn finish(doc: &mut Value) {
    optional_id_on_replace(doc);
    component_rules(doc);
    super::openapi_rules::component_rules(doc);
    let components = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_else(|| json!({}));
    walk(doc, &components);
    super::openapi_rules::body_rules(doc);
}

/// A `PUT` takes its id from the path: a body schema that requires `id` gets a replacement
/// variant (`XReplacement`) where it is optional (and must match the path when given).
fn optional_id_on_replace(doc: &mut Value) {
    let mut replacements = vec![];
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for item in paths.values_mut() {
            let Some(body) = item.pointer_mut("/put/requestBody/content/application~1json/schema")
            else {
                continue;
            };
            let Some(name) = body
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(str::to_owned)
            else {
                continue;
            };
            let replacement = format!("{name}Replacement");
            *body = json!({"$ref": format!("#/components/schemas/{replacement}")});
            replacements.push((name, replacement));
        }
    }
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    for (name, replacement) in replacements {
        let Some(mut schema) = schemas.get(&name).cloned() else {
            continue;
        };
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|r| r != "id");
        }
        schemas.insert(replacement, schema);
    }
}

fn walk(node: &mut Value, components: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(merged) = merge_all_of(map, components) {
                *map = merged;
            }
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                if let Some(Value::Object(dn)) = props.get_mut("displayName") {
                    if is_string(dn) {
                        display_name_rule(dn);
                    }
                }
                for name in ["headers", "set"] {
                    if let Some(Value::Object(headers)) = props.get_mut(name) {
                        header_map_rule(headers);
                    }
                }
            }
            for v in map.values_mut() {
                walk(v, components);
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, components);
            }
        }
        _ => {}
    }
}

fn is_string(schema: &Map<String, Value>) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        _ => false,
    }
}

/// The object `reference` names (`#/components/schemas/X`), or the inline object itself.
fn resolve<'a>(item: &'a Value, components: &'a Value) -> Option<&'a Map<String, Value>> {
    match item.get("$ref").and_then(Value::as_str) {
        Some(r) => components
            .get(r.strip_prefix("#/components/schemas/")?)?
            .as_object(),
        None => item.as_object(),
    }
}

/// One closed object for an `allOf` whose parts are objects at least one of which is closed.
fn merge_all_of(map: &Map<String, Value>, components: &Value) -> Option<Map<String, Value>> {
    let parts = map.get("allOf")?.as_array()?;
    let objects: Vec<&Map<String, Value>> = parts
        .iter()
        .map(|p| resolve(p, components))
        .collect::<Option<_>>()?;
    let closed = objects
        .iter()
        .any(|o| o.get("additionalProperties") == Some(&Value::Bool(false)));
    if objects.len() < 2 || !closed || objects.iter().any(|o| o.contains_key("allOf")) {
        return None;
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = vec![];
    for o in &objects {
        if let Some(Value::Object(p)) = o.get("properties") {
            for (k, v) in p {
                properties.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if let Some(Value::Array(r)) = o.get("required") {
            for name in r {
                if !required.contains(name) {
                    required.push(name.clone());
                }
            }
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    if let Some(d) = map
        .get("description")
        .or_else(|| objects[0].get("description"))
    {
        out.insert("description".into(), d.clone());
    }
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    out.insert("additionalProperties".into(), json!(false));
    // A part's choice between two forms (`oneOf`) holds for the whole.
    let choices: Vec<&Value> = objects.iter().filter_map(|o| o.get("oneOf")).collect();
    if let [one] = choices.as_slice() {
        out.insert("oneOf".into(), (*one).clone());
    }
    // So does a part's rule across its fields (`if`/`then`, see `openapi_rules`).
    let conditions: Vec<&&Map<String, Value>> =
        objects.iter().filter(|o| o.contains_key("if")).collect();
    if let [one] = conditions.as_slice() {
        for key in ["if", "then"] {
            if let Some(v) = one.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_parts_merge_into_one_closed_object() {
        let mut doc = json!({
            "components": {"schemas": {
                "Spec": {"type": "object", "additionalProperties": false,
                         "required": ["displayName"],
                         "properties": {"displayName": {"type": "string"}}},
                "Meta": {"type": "object", "required": ["id"],
                         "properties": {"id": {"type": "string"}}}
            }},
            "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"allOf": [{"$ref": "#/components/schemas/Spec"},
                                     {"$ref": "#/components/schemas/Meta"}]}
            }}}}}}}
        });
        finish(&mut doc);
        let s = doc.pointer("/paths/~1x/get/responses/200/content/application~1json/schema");
        let s = s.unwrap();
        assert!(s.get("allOf").is_none());
        assert_eq!(s["required"], json!(["displayName", "id"]));
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["displayName"]["pattern"], "\\S");
        assert_eq!(s["properties"]["id"]["type"], "string");
    }

    #[test]
    fn open_parts_are_left_alone() {
        let mut doc = json!({"components": {"schemas": {
            "A": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "B": {"allOf": [{"$ref": "#/components/schemas/A"}, {"type": "object"}]}
        }}});
        let before = doc.clone();
        finish(&mut doc);
        assert_eq!(doc, before);
    }
}
