//! Rules of the API's validation that the types' annotations do not carry, stated in the
//! OpenAPI document (`if`/`then`, `contains`, patterns, enums, bounds), so that a client
//! generated from the document, or a fuzzer, knows them before the API answers 400. Across
//! fields:
//!
//! - an artifact of a project (every kind but LLM providers) names its project when created;
//!   an LLM provider names none;
//! - an upstream's `tls` goes with `https://` URLs only; its certificates and key are PEM, and a
//!   client key comes with its certificate;
//! - `mcp-authz` comes with `jwt-auth` among the same policies;
//! - `prompt-size-limit` names at least one bound; an MCP proxy's tool, resource and prompt
//!   names are not blank.
//!
//! Besides, rules of single fields the annotations do not carry (paths, methods, tokens, list
//! minimums). What remains beyond JSON Schema (names distinct within a list, a regular
//! expression the gateway's engine compiles) is written in docs/openapi.md.

use serde_json::{json, Map, Value};

use gatehouse_core::spec::METHODS;
use gatehouse_core::ArtifactKind;

/// One PEM section of base64 lines (the last one may be padded) between `BEGIN label` and
/// `END label`, as the PEM readers take it.
fn pem_section(label: &str) -> String {
    let line = "[A-Za-z0-9+/]{4}";
    format!(
        "-----BEGIN {label}-----\\r?\\n(({line}){{1,16}}\\r?\\n)*(({line}){{0,15}}([A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=)\\r?\\n)?-----END {label}-----\\r?\\n?"
    )
}

/// A private key in one of the PEM forms the gateway reads.
fn pem_key() -> String {
    let forms: Vec<String> = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]
        .into_iter()
        .map(pem_section)
        .collect();
    format!("^({})$", forms.join("|"))
}

/// The rules on component schemas, before they are merged into artifact bodies.
pub fn component_rules(doc: &mut Value) {
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    credential_marks(schemas);
    if let Some(Value::Object(tls)) = schemas.get_mut("EndpointTls") {
        pem_rules(tls);
    }
    if let Some(Value::Object(endpoint)) = schemas.get_mut("RestEndpoint") {
        tls_needs_https(endpoint);
    }
    if let Some(Value::Object(mcp)) = schemas.get_mut("McpSpec") {
        mcp_authz_needs_jwt_auth(mcp);
    }
    let not_blank = json!({"type": "string", "pattern": "\\S"});
    for (schema, field, rule) in [
        ("McpSpec", "tools", json!({"items": not_blank})),
        ("McpSpec", "resources", json!({"items": not_blank})),
        ("McpSpec", "prompts", json!({"items": not_blank})),
        ("GuardrailRule", "name", json!({"pattern": "\\S"})),
        ("UpstreamAuth", "value", json!({"minLength": 1})),
        ("UpstreamAuth", "header", json!({"pattern": TOKEN})),
        ("Operation", "method", json!({"enum": METHODS})),
        ("Operation", "path", json!({"pattern": OPERATION_PATH})),
        (
            "AccessException",
            "path",
            json!({"pattern": OPERATION_PATH}),
        ),
        (
            "AccessException",
            "methods",
            json!({"items": {"type": "string", "enum": METHODS}}),
        ),
        ("McpSpec", "upstreams", json!({"maxItems": 16})),
        ("GuardrailRule", "pattern", json!({"format": "regex"})),
        ("PiiPattern", "pattern", json!({"format": "regex"})),
        (
            "ToolRule",
            "tools",
            json!({"minItems": 1, "items": not_blank}),
        ),
        (
            "Failover",
            "on",
            json!({"items": {"oneOf": [
                {"type": "integer", "minimum": 400, "maximum": 599},
                {"type": "string", "enum": ["connect-error", "timeout"]},
                {"type": "string", "pattern": "^[45][0-9]{2}$"}
            ]}}),
        ),
    ] {
        if let Some(Value::Object(p)) = schemas
            .get_mut(schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
        {
            if let Value::Object(rule) = rule {
                p.extend(rule);
            }
        }
    }
    for (name, schema) in schemas.iter_mut() {
        if name.starts_with("Policy") {
            if let Some(Value::Array(variants)) = schema.get_mut("oneOf") {
                variants.iter_mut().for_each(policy_params_rules);
            }
        }
    }
}

/// Rules of particular policies' params: `regex-guardrail` and `model-allow-list` take one
/// rule or model at least, `cors` methods are HTTP method tokens, `prompt-size-limit` takes
/// `maxChars`, `maxTokens` or both.
fn policy_params_rules(variant: &mut Value) {
    let Some(name) = variant
        .pointer("/properties/name/enum/0")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let mut param = |field: &str, rule: Value| {
        if let Some(Value::Object(p)) =
            variant.pointer_mut(&format!("/properties/params/properties/{field}"))
        {
            if let Value::Object(rule) = rule {
                p.extend(rule);
            }
        }
    };
    match name.as_str() {
        "regex-guardrail" | "mcp-authz" => param("rules", json!({"minItems": 1})),
        "jwt-auth" => param(
            "jwksUrl",
            json!({"pattern": super::openapi_shapes::HTTP_URL_PATTERN}),
        ),
        "model-allow-list" => param(
            "models",
            json!({"minItems": 1, "items": {"type": "string", "pattern": "\\S"}}),
        ),
        "cors" => param(
            "allowMethods",
            json!({"items": {"type": "string", "pattern": TOKEN}}),
        ),
        "prompt-size-limit" => one_bound_at_least(variant),
        _ => {}
    }
}

/// An operation's path: segments of text, `{param}` or a final `*`; `/` alone.
const OPERATION_PATH: &str = "^(/|(/([^/{}*?#]+|\\{[A-Za-z0-9_]+\\}))+(/\\*)?/?|/\\*/?)$";

/// An HTTP token (a method, a header name).
const TOKEN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// `prompt-size-limit` takes `maxChars`, `maxTokens` or both.
fn one_bound_at_least(variant: &mut Value) {
    if let Some(Value::Object(params)) = variant.pointer_mut("/properties/params") {
        params.insert(
            "anyOf".into(),
            json!([
                {"required": ["maxChars"], "properties": {"maxChars": {"type": "integer"}}},
                {"required": ["maxTokens"], "properties": {"maxTokens": {"type": "integer"}}}
            ]),
        );
        params.insert("additionalProperties".into(), json!(false));
    }
}

/// Certificates and keys are PEM; a client key comes with its certificate.
fn pem_rules(tls: &mut Map<String, Value>) {
    let certificates = format!("^({})+$", pem_section("CERTIFICATE"));
    let key = pem_key();
    for (field, pattern) in [
        ("ca", &certificates),
        ("clientCert", &certificates),
        ("clientKey", &key),
    ] {
        if let Some(Value::Object(p)) = tls.get_mut("properties").and_then(|p| p.get_mut(field)) {
            p.insert("pattern".into(), json!(pattern));
        }
    }
    let given =
        |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
    let key_given_or_kept = json!({"anyOf": [
        given("clientKey"),
        {"required": ["clientKeySet"], "properties": {"clientKeySet": {"const": true}}}
    ]});
    tls.insert(
        "allOf".into(),
        json!([
            {"if": given("clientKey"), "then": given("clientCert")},
            {"if": given("clientCert"), "then": key_given_or_kept}
        ]),
    );
}

/// What a read shows in place of a credential (`<field>Set: true`); a body read may be written
/// back with it, and a replace without the credential keeps the stored one.
fn credential_marks(schemas: &mut Map<String, Value>) {
    for (schema, field) in [("EndpointTls", "clientKey"), ("UpstreamAuth", "value")] {
        if let Some(Value::Object(props)) = schemas
            .get_mut(schema)
            .and_then(|s| s.get_mut("properties"))
        {
            props.insert(
                format!("{field}Set"),
                json!({"type": "boolean", "description": format!("In reads: `{field}` is stored (it is never returned). Ignored in writes.")}),
            );
        }
    }
}

/// With `tls`, every URL of the upstream is `https://`.
fn tls_needs_https(endpoint: &mut Map<String, Value>) {
    let https = json!({"type": "string", "pattern": "^https://"});
    endpoint.insert(
        "if".into(),
        json!({"required": ["tls"], "properties": {"tls": {"type": "object"}}}),
    );
    endpoint.insert(
        "then".into(),
        json!({"properties": {
            "url": {"anyOf": [{"type": "null"}, https]},
            "urls": {"items": {"anyOf": [
                https,
                {"type": "object", "properties": {"url": https}}
            ]}}
        }}),
    );
}

/// `mcp-authz` among the policies means `jwt-auth` among them too.
fn mcp_authz_needs_jwt_auth(spec: &mut Map<String, Value>) {
    let named = |name: &str| {
        json!({"contains": {"type": "object", "required": ["name"],
                            "properties": {"name": {"const": name}}}})
    };
    spec.insert(
        "if".into(),
        json!({"required": ["policies"], "properties": {"policies": named("mcp-authz")}}),
    );
    spec.insert(
        "then".into(),
        json!({"properties": {"policies": named("jwt-auth")}}),
    );
}

/// The rules on artifact bodies, once merged: `projectId` required on create for kinds of a
/// project, and absent (or null) for LLM providers.
pub fn body_rules(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for kind in ArtifactKind::ALL {
        let collection = format!("/api/v1/{}", kind.collection());
        let one = format!("{collection}/{{id}}");
        for (path, method) in [(&collection, "post"), (&one, "put")] {
            let Some(Value::Object(body)) = paths.get_mut(path.as_str()).and_then(|item| {
                item.pointer_mut(&format!(
                    "/{method}/requestBody/content/application~1json/schema"
                ))
            }) else {
                continue;
            };
            let Some(Value::Object(properties)) = body.get_mut("properties") else {
                continue;
            };
            if kind == ArtifactKind::LlmProvider {
                properties.insert(
                    "templateDefinition".into(),
                    json!({"type": "null", "description": "Set by the control plane when it deploys the provider (from `template`); refused here."}),
                );
            }
            if kind == ArtifactKind::Mcp {
                properties.insert(
                    "sessionKey".into(),
                    json!({"type": "null", "description": "Set by the control plane when it delivers the proxy; refused here."}),
                );
            }
            if !kind.has_project() {
                properties.insert(
                    "projectId".into(),
                    json!({"type": "null", "description": "LLM providers belong to the organization, not to a project."}),
                );
            } else if method == "post" {
                if let Some(Value::Object(p)) = properties.get_mut("projectId") {
                    p.insert("type".into(), json!("string"));
                }
                let required = body.entry("required").or_insert_with(|| json!([]));
                if let Value::Array(r) = required {
                    if !r.contains(&json!("projectId")) {
                        r.push(json!("projectId"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn the_operation_path_pattern_follows_validation() {
        for good in ["/", "/a", "/a/", "/a/{id}/b", "/*", "/a/*", "/a/{x_1}/*/"] {
            assert!(matches(OPERATION_PATH, good), "{good}");
        }
        for bad in [
            "", "a", "//", "/a//b", "/*/a", "/{}", "/a{b}", "/{a-b}", "/a?",
        ] {
            assert!(!matches(OPERATION_PATH, bad), "{bad}");
        }
    }

    #[test]
    fn the_pem_pattern_takes_pem_and_nothing_else() {
        let certs = format!("^({})+$", pem_section("CERTIFICATE"));
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\nAB==\n-----END CERTIFICATE-----\n";
        assert!(matches(&certs, one));
        assert!(matches(&certs, &format!("{one}{one}")));
        assert!(!matches(&certs, "AAAA"));
        assert!(!matches(
            &certs,
            "-----BEGIN CERTIFICATE-----\nA=AA\n-----END CERTIFICATE-----\n"
        ));
        let key = pem_key();
        assert!(matches(
            &key,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"
        ));
        assert!(!matches(
            &key,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        ));
    }
}
