//! The OpenAPI document, the docs page, health and metrics.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn docs_openapi_health_and_metrics_are_served() {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let anon = Client::anonymous(&p.base);
    let (s, spec) = anon.get("/api/v1/openapi.json").await.unwrap();
    assert_eq!(s, 200);
    let paths = spec["paths"].as_object().unwrap();
    for kind in ["rest-apis", "llm-providers", "llm-proxies", "mcp-proxies"] {
        for suffix in [
            "",
            "/{id}",
            "/{id}/deployments",
            "/{id}/deployments/{deployment_id}/undeploy",
        ] {
            assert!(
                paths.contains_key(&format!("/api/v1/{kind}{suffix}")),
                "{kind}{suffix} missing from the spec"
            );
        }
    }
    assert!(paths.contains_key("/api/v1/gateways/{id}/tokens"));
    // Each kind's routes carry that kind's own body schema.
    let body = &spec["paths"]["/api/v1/llm-providers"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    // One closed object: the spec's fields and the identity fields.
    assert_eq!(body["additionalProperties"], false, "{body}");
    assert!(body["properties"]["template"].is_object(), "{body}");
    assert!(body["properties"]["projectId"].is_object(), "{body}");
    let body = &spec["paths"]["/api/v1/mcp-proxies/{id}"]["put"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert!(body["properties"]["tools"].is_object(), "{body}");
    assert!(body["properties"]["template"].is_null(), "{body}");
    assert!(spec["components"]["schemas"]["RestApiSpec"]["properties"]["context"].is_object());
    assert!(spec["components"]["schemas"]["Deployment"].is_object());
    let (s, ispec) = anon.get("/api/internal/v1/openapi.json").await.unwrap();
    assert_eq!(s, 200);
    for path in [
        "/api/internal/v1/deployments",
        "/api/internal/v1/artifacts/exists",
        "/api/internal/v1/events",
        "/api/internal/v1/mcp-proxies/{artifact_id}",
    ] {
        assert!(
            ispec["paths"].get(path).is_some(),
            "{path} missing from the internal spec"
        );
    }
    // The docs page and its assets come from the binary, not a CDN.
    let (s, html) = anon.get_text("/docs/").await.unwrap();
    assert_eq!(s, 200);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("cdn") && !html.contains("unpkg"),
        "the docs page must work offline"
    );
    let (s, js) = anon.get_text("/docs/swagger-ui-bundle.js").await.unwrap();
    assert_eq!(s, 200);
    assert!(js.len() > 100_000);
    let (s, init) = anon.get_text("/docs/swagger-initializer.js").await.unwrap();
    assert_eq!(s, 200);
    assert!(init.contains("/api/v1/openapi.json"), "{init}");

    assert_eq!(
        anon.get("/health").await.unwrap(),
        (200, json!({"status": "ok"}))
    );
    let _ = anon.get("/api/v1/nowhere").await.unwrap();
    let (s, metrics) = anon.get_text("/metrics").await.unwrap();
    assert_eq!(s, 200);
    assert!(
        metrics.contains("gatehouse_http_requests_total"),
        "{metrics}"
    );
    let (s, b) = anon.get("/api/v1/nowhere").await.unwrap();
    assert_eq!((s, b["code"].clone()), (404, Value::from("NOT_FOUND")));
}

/// The served OpenAPI document describes every policy from the typed model, and says loudly
/// which ones the gateway does not enforce yet.
#[tokio::test]
async fn openapi_describes_every_policy_and_flags_the_unenforced() {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let anon = Client::anonymous(&p.base);
    let (s, spec) = anon.get("/api/v1/openapi.json").await.unwrap();
    assert_eq!(s, 200);
    let schemas = &spec["components"]["schemas"];
    // Each kind's spec takes the policies that apply to it.
    assert_eq!(
        schemas["RestApiSpec"]["properties"]["policies"]["items"]["$ref"],
        "#/components/schemas/PolicyOfRestApi"
    );
    let names = |schema: &str| -> Vec<String> {
        schemas[schema]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v["properties"]["name"]["enum"][0]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert!(!names("PolicyOfRestApi").contains(&"token-rate-limit".to_owned()));
    assert!(names("PolicyOfLlmProxy").contains(&"token-rate-limit".to_owned()));
    assert!(names("PolicyOfMcp").contains(&"mcp-authz".to_owned()));
    let variants = schemas["Policy"]["oneOf"]
        .as_array()
        .expect("Policy is a oneOf");
    let mut seen = vec![];
    for v in variants {
        let name = v["properties"]["name"]["enum"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let unenforced = v["description"]
            .as_str()
            .unwrap()
            .contains("NOT ENFORCED YET");
        assert!(!unenforced, "{name} is enforced now");
        assert_eq!(v["additionalProperties"], json!(false), "{name}");
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "api-key-auth",
            "cors",
            "jwt-auth",
            "mcp-authz",
            "model-allow-list",
            "pii-masking",
            "prompt-size-limit",
            "rate-limit",
            "regex-guardrail",
            "set-headers",
            "token-rate-limit"
        ]
    );
    // A rate-limit's params are typed: `requests` is an integer of at least 1.
    let rate = variants
        .iter()
        .find(|v| v["properties"]["name"]["enum"][0] == "rate-limit")
        .unwrap();
    let requests = &rate["properties"]["params"]["properties"]["requests"];
    assert_eq!(requests["minimum"], json!(1), "{rate}");
}
