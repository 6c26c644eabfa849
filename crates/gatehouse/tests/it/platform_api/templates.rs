//! LLM provider templates, and LLM proxies over several providers, in the control plane.

use crate::common::*;
use serde_json::{json, Value};

both_backends!(
    templates_are_listed_and_an_organization_adds_its_own,
    proxies_over_several_providers_need_them_all_deployed,
);

fn custom_template(id: &str) -> Value {
    json!({
        "id": id, "displayName": "Acme LLM", "api": "openai",
        "auth": {"header": "X-Acme-Key"},
        "headers": {"x-acme-version": "2"},
        "extract": {
            "requestModel": [{"in": "body", "pointer": "/model"}],
            "responseModel": ["/model"],
            "promptTokens": ["/usage/in"],
            "completionTokens": ["/usage/out"],
            "stream": {"promptTokens": ["/usage/in"], "completionTokens": ["/usage/out"]}
        }
    })
}

async fn templates_are_listed_and_an_organization_adds_its_own(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let (s, list) = admin.get("/api/v1/llm-provider-templates").await.unwrap();
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "openai",
            "azure-openai",
            "anthropic",
            "gemini",
            "mistral",
            "openai-compatible"
        ]
    );
    let anthropic = &list["list"][2];
    assert_eq!(anthropic["builtIn"], true);
    assert_eq!(anthropic["auth"]["header"], "x-api-key");
    assert_eq!(
        anthropic["extract"]["promptTokens"],
        json!(["/usage/input_tokens"])
    );
    let (_, gemini) = admin
        .get("/api/v1/llm-provider-templates/gemini")
        .await
        .unwrap();
    assert_eq!(
        gemini["extract"]["requestModel"][0],
        json!({"in": "path", "after": "models"})
    );

    // Built-ins are read-only.
    let (s, b) = admin
        .put(
            "/api/v1/llm-provider-templates/openai",
            &custom_template("openai"),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        admin
            .delete("/api/v1/llm-provider-templates/openai")
            .await
            .unwrap()
            .0,
        409
    );
    let (s, b) = admin
        .post(
            "/api/v1/llm-provider-templates",
            &custom_template("anthropic"),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");

    // Bad input names the field and stores nothing.
    let mut bad = custom_template("acme");
    bad["extract"]["promptTokens"] = json!(["usage.in"]);
    let (s, b) = admin
        .post("/api/v1/llm-provider-templates", &bad)
        .await
        .unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("extract.promptTokens[0]")),
        "{b}"
    );
    assert_eq!(
        admin
            .get("/api/v1/llm-provider-templates/acme")
            .await
            .unwrap()
            .0,
        404
    );

    // An organization's own template: created, read, replaced.
    let (s, t) = admin
        .post("/api/v1/llm-provider-templates", &custom_template("acme"))
        .await
        .unwrap();
    assert_eq!(s, 201, "{t}");
    assert_eq!(
        (t["builtIn"].clone(), t["auth"]["header"].clone()),
        (json!(false), json!("X-Acme-Key"))
    );
    let mut changed = custom_template("acme");
    changed["displayName"] = json!("Acme LLM v2");
    let (s, t) = admin
        .put("/api/v1/llm-provider-templates/acme", &changed)
        .await
        .unwrap();
    assert_eq!(
        (s, t["displayName"].as_str()),
        (200, Some("Acme LLM v2")),
        "{t}"
    );
    changed["id"] = json!("other");
    assert_eq!(
        admin
            .put("/api/v1/llm-provider-templates/acme", &changed)
            .await
            .unwrap()
            .0,
        400
    );
    let (_, list) = admin.get("/api/v1/llm-provider-templates").await.unwrap();
    assert_eq!(list["list"].as_array().unwrap().len(), 7);

    // Providers name a known template; a definition of their own is refused.
    let mut prov = artifact_body("llm-providers", "acme-prov", "/acme");
    prov["template"] = json!("skynet");
    let (s, b) = admin.post("/api/v1/llm-providers", &prov).await.unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("template")), "{b}");
    assert!(b["message"].as_str().unwrap().contains("skynet"), "{b}");
    assert_eq!(
        admin
            .get("/api/v1/llm-providers/acme-prov")
            .await
            .unwrap()
            .0,
        404
    );
    prov["template"] = json!("acme");
    prov["templateDefinition"] = custom_template("acme");
    let (s, b) = admin.post("/api/v1/llm-providers", &prov).await.unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("templateDefinition")),
        "{b}"
    );
    prov.as_object_mut().unwrap().remove("templateDefinition");
    let (s, b) = admin.post("/api/v1/llm-providers", &prov).await.unwrap();
    assert_eq!(s, 201, "{b}");
    assert!(b.get("templateDefinition").is_none());

    // Used templates cannot be deleted.
    let (s, b) = admin
        .delete("/api/v1/llm-provider-templates/acme")
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(b["message"].as_str().unwrap().contains("acme-prov"), "{b}");

    // The gateway receives the definition as it was at deploy time.
    let gw = gateway(&admin, &p.base, "edge").await;
    let d = deploy(&admin, "llm-providers", "acme-prov", "edge").await;
    let (s, batch) = gw
        .post(
            "/api/internal/v1/deployments/fetch-batch",
            &json!({"deploymentIds": [d["deploymentId"]]}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{batch}");
    let spec = &batch["deployments"][0]["content"]["spec"];
    assert_eq!(
        spec["templateDefinition"]["displayName"], "Acme LLM v2",
        "{spec}"
    );
    assert_eq!(spec["templateDefinition"]["auth"]["header"], "X-Acme-Key");
    let (_, read) = admin.get("/api/v1/llm-providers/acme-prov").await.unwrap();
    assert!(read.get("templateDefinition").is_none(), "{read}");

    assert_eq!(
        admin
            .delete("/api/v1/llm-providers/acme-prov")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin
            .delete("/api/v1/llm-provider-templates/acme")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin
            .get("/api/v1/llm-provider-templates/acme")
            .await
            .unwrap()
            .0,
        404
    );
}

async fn proxies_over_several_providers_need_them_all_deployed(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    create(&admin, "llm-providers", "first", "/first").await;
    create(&admin, "llm-providers", "second", "/second").await;
    let mut proxy = artifact_body("llm-proxies", "ha", "/ha");
    proxy.as_object_mut().unwrap().remove("provider");
    proxy["providers"] = json!([{"id": "first"}, {"id": "ghost", "priority": 1}]);
    let (s, b) = admin.post("/api/v1/llm-proxies", &proxy).await.unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("providers[1].id")),
        "{b}"
    );
    proxy["providers"] = json!([{"id": "first"}, {"id": "ha", "priority": 1}]);
    let (s, b) = admin.post("/api/v1/llm-proxies", &proxy).await.unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("providers[1].id")),
        "{b}"
    );
    assert!(b["message"].as_str().unwrap().contains("itself"), "{b}");
    assert_eq!(
        admin.get("/api/v1/llm-proxies/ha").await.unwrap().0,
        404,
        "nothing stored"
    );
    proxy["providers"] = json!([{"id": "first", "weight": 3}, {"id": "second", "priority": 1}]);
    proxy["failover"] = json!({"on": [503, "timeout"], "cooldown": "10s"});
    let (s, b) = admin.post("/api/v1/llm-proxies", &proxy).await.unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["providers"][0]["weight"], 3);

    let _gw = gateway(&admin, &p.base, "edge").await;
    deploy(&admin, "llm-providers", "first", "edge").await;
    let (s, b) = admin
        .post(
            "/api/v1/llm-proxies/ha/deployments",
            &json!({"gatewayId": "edge"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(b["message"].as_str().unwrap().contains("'second'"), "{b}");
    deploy(&admin, "llm-providers", "second", "edge").await;
    deploy(&admin, "llm-proxies", "ha", "edge").await;

    // A provider a proxy names can be neither deleted nor undeployed under it.
    let (s, b) = admin.delete("/api/v1/llm-providers/second").await.unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(b["message"].as_str().unwrap().contains("'ha'"), "{b}");
    let (_, deps) = admin
        .get("/api/v1/llm-providers/second/deployments")
        .await
        .unwrap();
    let dep = deps["list"][0]["deploymentId"].as_str().unwrap().to_owned();
    let (s, b) = admin
        .post(
            &format!("/api/v1/llm-providers/second/deployments/{dep}/undeploy"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    // Pointing the proxy elsewhere frees the provider.
    proxy["providers"] = json!([{"id": "first"}]);
    proxy.as_object_mut().unwrap().remove("failover");
    let (s, b) = admin.put("/api/v1/llm-proxies/ha", &proxy).await.unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, b) = admin
        .post(
            &format!("/api/v1/llm-providers/second/deployments/{dep}/undeploy"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
}
