//! LLM provider templates, and LLM proxies over several providers, in the control plane.

use std::time::Duration;

use crate::common::*;
use gatehouse_testkit::fake_llm::FakeLlm;
use gatehouse_testkit::Gateway;
use serde_json::{json, Value};

both_backends!(
    templates_are_listed_and_an_organization_adds_its_own,
    proxies_over_several_providers_need_them_all_deployed,
    a_gateway_holds_and_serves_a_custom_template_as_it_was_at_deploy_time,
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
    // Each built-in is listed as core defines it: auth, headers and what it extracts.
    for (item, id) in list["list"].as_array().unwrap().iter().zip(ids.iter()) {
        let mut want = serde_json::to_value(gatehouse_core::llm::builtin(id).unwrap()).unwrap();
        want["builtIn"] = json!(true);
        assert_eq!(item, &want, "built-in template {id}");
    }
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
        409
    );
    let (_, list) = admin.get("/api/v1/llm-provider-templates").await.unwrap();
    assert_eq!(list["list"].as_array().unwrap().len(), 7);
    assert_eq!(list["list"][6]["id"], "acme");
    assert!(list["list"][6]["createdAt"].is_string(), "{list}");
    // Pages like the other collections: built-ins first, then the organization's own.
    let (s, page) = admin
        .get("/api/v1/llm-provider-templates?limit=2&offset=5")
        .await
        .unwrap();
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        (
            page["count"].clone(),
            page["list"][0]["id"].clone(),
            page["list"][1]["id"].clone()
        ),
        (json!(2), json!("openai-compatible"), json!("acme")),
        "{page}"
    );
    assert_eq!(
        page["pagination"],
        json!({"total": 7, "offset": 5, "limit": 2})
    );
    let (s, b) = admin
        .get("/api/v1/llm-provider-templates?limit=0")
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("limit")), "{b}");

    // Providers name a known template; a definition of their own is refused.
    let mut prov = artifact_body("llm-providers", "acme-prov", "/acme");
    prov["template"] = json!("skynet");
    let (s, b) = admin.post("/api/v1/llm-providers", &prov).await.unwrap();
    assert_eq!((s, b["field"].as_str()), (404, Some("template")), "{b}");
    let message = b["message"].as_str().unwrap();
    // Names the template and the choices: the built-ins and the organization's own.
    assert!(
        message.contains("'skynet'")
            && message.contains("openai-compatible")
            && message.contains("acme"),
        "{b}"
    );
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

    // The routes and the template's schema are in the OpenAPI document.
    let (s, spec) = admin.get("/api/v1/openapi.json").await.unwrap();
    assert_eq!(s, 200);
    let paths = &spec["paths"];
    for (path, methods) in [
        ("/api/v1/llm-provider-templates", &["get", "post"][..]),
        (
            "/api/v1/llm-provider-templates/{id}",
            &["get", "put", "delete"][..],
        ),
    ] {
        for m in methods {
            assert!(
                paths[path][m].is_object(),
                "{m} {path} missing from the spec"
            );
        }
    }
    assert_eq!(
        paths["/api/v1/llm-provider-templates"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/LlmTemplate"
    );
    let schema = &spec["components"]["schemas"]["LlmTemplate"];
    assert!(schema["properties"]["extract"].is_object(), "{schema}");
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
        (404, Some("providers[1].id")),
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
    let both = deploy(&admin, "llm-proxies", "ha", "edge").await;

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
    // Deploying the earlier snapshot again needs the providers it names, not today's.
    let (s, b) = admin
        .post(
            "/api/v1/llm-proxies/ha/deployments",
            &json!({"gatewayId": "edge", "base": both["deploymentId"]}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(b["message"].as_str().unwrap().contains("'second'"), "{b}");
    deploy(&admin, "llm-proxies", "ha", "edge").await;
}

/// Sends a chat request to the provider's context until it is answered; the headers the
/// upstream received.
async fn served(gw: &Gateway, up: &FakeLlm) -> reqwest::header::HeaderMap {
    let traffic = gw.traffic();
    let body = json!({"model": "acme-1", "messages": [{"role": "user", "content": "hi"}]});
    let before = up.received().len();
    eventually(Duration::from_secs(20), "the provider is served", || {
        let (traffic, body) = (traffic.clone(), body.clone());
        async move {
            let (s, _) = traffic.post("/acme/chat/completions", &body).await.ok()?;
            (s == 200).then_some(())
        }
    })
    .await
    .unwrap();
    let seen = up.received();
    assert!(seen.len() > before);
    seen.last().unwrap().headers.clone()
}

async fn a_gateway_holds_and_serves_a_custom_template_as_it_was_at_deploy_time(backend: Backend) {
    // A real platform and a real gateway "edge" connected to it.
    let Some(env) = crate::lifecycle::setup(backend, &[], &[], false).await else {
        return;
    };
    let (admin, gw) = (&env.admin, &env.gw);
    let up = FakeLlm::start("acme").await;

    let mut template = custom_template("acme");
    template["auth"] = json!({"header": "X-Acme-Key", "prefix": "Key "});
    let (s, b) = admin
        .post("/api/v1/llm-provider-templates", &template)
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let (s, b) = admin
        .post(
            "/api/v1/llm-providers",
            &json!({"id": "acme", "displayName": "Acme", "template": "acme", "context": "/acme",
                    "upstream": {"url": up.url("/v1"), "auth": {"type": "api-key", "value": "sk-acme"}}}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    deploy(admin, "llm-providers", "acme", "edge").await;

    // The gateway holds the definition and sends the credential the template's way.
    let headers = served(gw, &up).await;
    assert_eq!(headers["x-acme-key"], "Key sk-acme");
    let (_, held) = env.held("llm-providers", "acme").await;
    assert_eq!(
        held["spec"]["templateDefinition"],
        serde_json::to_value(gatehouse_core::llm::LlmTemplate::parse(template.clone()).unwrap())
            .unwrap(),
        "{held}"
    );

    // A changed template reaches the gateway only with the provider's next deployment.
    template["auth"] = json!({"header": "X-Acme-Token", "prefix": "Token "});
    let (s, b) = admin
        .put("/api/v1/llm-provider-templates/acme", &template)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let headers = served(gw, &up).await;
    assert_eq!(headers["x-acme-key"], "Key sk-acme");
    assert!(headers.get("x-acme-token").is_none());
    deploy(admin, "llm-providers", "acme", "edge").await;
    eventually(
        Duration::from_secs(20),
        "the new definition is held",
        || async {
            let (_, held) = env.held("llm-providers", "acme").await;
            (held["spec"]["templateDefinition"]["auth"]["header"] == "X-Acme-Token").then_some(())
        },
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "the new header is sent",
        || async {
            let headers = served(gw, &up).await;
            (headers
                .get("x-acme-token")
                .is_some_and(|v| v == "Token sk-acme")
                && headers.get("x-acme-key").is_none())
            .then_some(())
        },
    )
    .await
    .unwrap();
    // Public reads never show the definition.
    let (_, read) = admin.get("/api/v1/llm-providers/acme").await.unwrap();
    assert!(read.get("templateDefinition").is_none(), "{read}");
}
