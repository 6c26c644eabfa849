//! The policy model: parsing is validation, and what parses writes back as it was written.

use serde_json::{json, Value};

use super::*;
use crate::validate::from_value;

fn parse(v: Value) -> Result<Policy, crate::FieldError> {
    from_value(v)
}

#[test]
fn every_policy_round_trips_as_written() {
    for v in [
        json!({"name": "api-key-auth", "version": "v1"}),
        json!({"name": "api-key-auth", "version": "v1", "params": {"header": "X-Token"}}),
        json!({"name": "rate-limit", "version": "v1", "params": {"requests": 5, "window": "90s", "per": "key"}}),
        json!({"name": "cors", "version": "v1", "params": {"allowOrigins": ["https://a.example"], "allowMethods": ["GET"], "allowHeaders": ["X-A"], "maxAge": 60, "allowCredentials": true}}),
        json!({"name": "set-headers", "version": "v1", "params": {"request": {"set": {"X-A": "1"}, "remove": ["X-B"]}, "response": {"remove": ["Server"]}}}),
        json!({"name": "model-allow-list", "version": "v1", "params": {"models": ["gpt-4o"]}}),
        json!({"name": "token-rate-limit", "version": "v1", "params": {"tokens": 1000, "window": "1h", "count": "total", "per": "artifact"}}),
        json!({"name": "token-rate-limit", "version": "v1", "params": {"tokens": 10, "window": "1m", "per": "subscription"}}),
        json!({"name": "regex-guardrail", "version": "v1", "params": {"rules": [{"name": "secrets", "pattern": "(?i)password", "appliesTo": "both"}]}}),
        json!({"name": "pii-masking", "version": "v1", "params": {"builtin": ["email"], "custom": [{"name": "ssn", "pattern": "\\d{3}-\\d{2}-\\d{4}", "replacement": "[SSN]"}]}}),
        json!({"name": "prompt-size-limit", "version": "v1", "params": {"maxChars": 1000}}),
        json!({"name": "jwt-auth", "version": "v1", "params": {"issuer": "https://id.example", "audiences": ["api"], "jwksUrl": "https://id.example/jwks.json", "requiredScopes": ["read"], "clockSkew": "30s", "forwardClaims": {"sub": "X-User"}}}),
    ] {
        let p = parse(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }
    // version defaults to v1 and is written back.
    let p = parse(json!({"name": "cors"})).unwrap();
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"name": "cors", "version": "v1"})
    );
}

#[test]
fn typed_params_carry_their_meaning() {
    let Policy::RateLimit(p) =
        parse(json!({"name": "rate-limit", "params": {"requests": 3, "window": "2m"}})).unwrap()
    else {
        panic!("a rate-limit")
    };
    assert_eq!(p.requests, 3);
    assert_eq!(p.window.duration(), std::time::Duration::from_secs(120));
    assert_eq!(p.per, None);
}

#[test]
fn errors_name_the_field_inside_params() {
    let field = |v: Value| parse(v).unwrap_err().field;
    assert_eq!(field(json!({"name": "nope"})), "name");
    assert_eq!(field(json!({"name": "cors", "version": "v2"})), "version");
    assert_eq!(field(json!({"name": "cors", "colour": 1})), "colour");
    // A list is no object of params, even where every param is optional.
    assert!(parse(json!({"name": "set-headers", "params": [null, null]})).is_err());
    assert!(parse(json!({"params": [null], "name": "cors"})).is_err());
    assert_eq!(
        field(json!({"name": "rate-limit", "params": {"requests": 0, "window": "1m"}})),
        "params.requests"
    );
    assert_eq!(
        field(json!({"name": "rate-limit", "params": {"requests": 1, "window": "1y"}})),
        "params.window"
    );
    assert_eq!(
        field(
            json!({"name": "rate-limit", "params": {"requests": 1, "window": "1m", "per": "user"}})
        ),
        "params.per"
    );
    assert_eq!(
        field(
            json!({"name": "set-headers", "params": {"response": {"set": {"X-A": "bad\nvalue"}}}})
        ),
        "params.response.set"
    );
    assert_eq!(
        field(json!({"name": "cors", "params": {"allowMethods": ["GET POST"]}})),
        "params.allowMethods"
    );
    assert_eq!(
        field(json!({"name": "model-allow-list", "params": {"models": []}})),
        "params.models"
    );
    assert_eq!(
        field(
            json!({"name": "regex-guardrail", "params": {"rules": [{"name": "x", "pattern": "(unclosed"}]}})
        ),
        "params.rules[0].pattern"
    );
    assert!(parse(json!({"name": "prompt-size-limit", "params": {}})).is_err());
    assert_eq!(
        field(
            json!({"name": "jwt-auth", "params": {"issuer": "i", "audiences": ["a"], "jwksUrl": "ftp://x"}})
        ),
        "params.jwksUrl"
    );
    // Required params missing altogether: named in the message.
    let e = parse(json!({"name": "rate-limit"})).unwrap_err();
    assert!(e.message.contains("requests"), "{e}");
}

#[test]
fn params_before_the_name_still_validate() {
    // A map whose keys arrive with params first (YAML written that way) is parsed once the
    // name is known; the message names the field.
    let yaml = "params: {requests: 0, window: 1m}\nname: rate-limit\n";
    let e = serde_norway::from_str::<Policy>(yaml)
        .unwrap_err()
        .to_string();
    assert!(e.contains("params.requests"), "{e}");
    let ok = "params: {requests: 2, window: 1m}\nname: rate-limit\n";
    assert_eq!(
        serde_norway::from_str::<Policy>(ok).unwrap().name(),
        PolicyName::RateLimit
    );
}

#[test]
fn names_parse_and_say_where_they_apply() {
    for n in PolicyName::ALL {
        assert_eq!(n.as_str().parse::<PolicyName>().unwrap(), n);
    }
    assert!("nope"
        .parse::<PolicyName>()
        .unwrap_err()
        .to_string()
        .contains("nope"));
    assert!(!PolicyName::ModelAllowList.applies_to(ArtifactKind::RestApi));
    assert!(PolicyName::TokenRateLimit.applies_to(ArtifactKind::LlmProxy));
    assert!(PolicyName::TokenRateLimit.is_enforced());
    assert!(!PolicyName::PiiMasking.applies_to(ArtifactKind::Mcp));
    assert!(PolicyName::RateLimit.is_enforced());
}

#[test]
fn an_operation_policy_replaces_the_artifact_one_of_its_name() {
    let api = [
        parse(json!({"name": "api-key-auth"})).unwrap(),
        parse(json!({"name": "cors"})).unwrap(),
    ];
    let op = [parse(json!({"name": "api-key-auth", "params": {"header": "X-K"}})).unwrap()];
    let m = merged(&api, &op);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].name(), PolicyName::Cors);
    assert_eq!(m[1], &op[0]);
}

#[test]
fn the_schema_lists_every_policy_and_flags_the_unenforced() {
    let schema = serde_json::to_value(<Policy as utoipa::PartialSchema>::schema()).unwrap();
    let variants = schema["oneOf"].as_array().unwrap();
    assert_eq!(variants.len(), PolicyName::ALL.len());
    for (v, name) in variants.iter().zip(PolicyName::ALL) {
        assert_eq!(v["properties"]["name"]["enum"], json!([name.as_str()]));
        let about = v["description"].as_str().unwrap();
        assert_eq!(
            about.contains("NOT ENFORCED"),
            !name.is_enforced(),
            "{name}"
        );
    }
}
