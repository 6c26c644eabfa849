//! The control plane's public API end to end: the real binary, a real database, real sockets.

mod common;

use common::*;
use serde_json::{json, Value};

both_backends!(
    login_and_organizations,
    projects_crud_and_conflicts,
    gateway_tokens_are_shown_once_capped_and_revocable,
    artifacts_of_every_kind_validate_and_round_trip,
    deployment_state_machine,
    deploy_checks_provider_and_context,
    isolation_between_organizations,
    platform_restart_keeps_data_and_tokens,
    every_route_refuses_missing_and_foreign_tokens,
);

async fn login_and_organizations(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let anon = Client::anonymous(&p.base);

    let (s, b) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "nope"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "ghost", "password": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 401);
    let (s, b) = anon
        .post("/api/v1/auth/login", &json!({"username": "admin"}))
        .await
        .unwrap();
    assert_eq!(s, 400);
    assert!(b["message"].as_str().unwrap().contains("password"), "{b}");
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": p.admin_password, "organization": "nowhere"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 403);

    // No token, a malformed header, a forged token.
    assert_eq!(anon.get("/api/v1/projects").await.unwrap().0, 401);
    assert_eq!(
        anon.with_header("authorization", "Basic abc")
            .get("/api/v1/projects")
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        anon.with_bearer("eyJhbGciOiJIUzI1NiJ9.e30.x")
            .get("/api/v1/projects")
            .await
            .unwrap()
            .0,
        401
    );

    let admin = p.login("default").await.unwrap();
    let (s, b) = admin
        .post(
            "/api/v1/organizations",
            &json!({"displayName": "Acme Corp"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["id"], "acme-corp");
    let (s, _) = admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "acme-corp", "displayName": "Again"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409);
    let (s, b) = admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "Bad Id", "displayName": "x"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("id")));
    let (s, b) = admin
        .post("/api/v1/organizations", &json!({"displayName": 5}))
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("displayName")), "{b}");
    let (s, b) = admin.get("/api/v1/organizations").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(b["pagination"]["total"], 2);
    let handles: Vec<&str> = b["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(handles, ["acme-corp", "default"]);
    let (s, b) = admin.get("/api/v1/organizations?limit=0").await.unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("limit")));

    // The admin may enter the new organization; it starts with a default project.
    let acme = p.login("acme-corp").await.unwrap();
    let (s, b) = acme.get("/api/v1/projects").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(b["list"][0]["id"], "default");
}

async fn projects_crud_and_conflicts(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let (s, b) = admin
        .post(
            "/api/v1/projects",
            &json!({"displayName": "Payments Team", "description": "money"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["id"], "payments-team");
    assert!(b["uuid"].as_str().unwrap().len() >= 32);
    assert_eq!(
        admin
            .post(
                "/api/v1/projects",
                &json!({"id": "payments-team", "displayName": "x"})
            )
            .await
            .unwrap()
            .0,
        409
    );
    let (s, b) = admin
        .post(
            "/api/v1/projects",
            &json!({"displayName": "x", "colour": "red"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 400);
    assert!(b["message"].as_str().unwrap().contains("colour"), "{b}");
    let (s, b) = admin
        .post_raw("/api/v1/projects", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!((s, b["code"].as_str()), (400, Some("INVALID_REQUEST")));

    let (s, b) = admin
        .put(
            "/api/v1/projects/payments-team",
            &json!({"displayName": "Payments"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["displayName"].as_str()), (200, Some("Payments")));
    let (s, b) = admin
        .put(
            "/api/v1/projects/payments-team",
            &json!({"id": "other", "displayName": "P"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("id")));
    assert_eq!(admin.get("/api/v1/projects/nope").await.unwrap().0, 404);
    assert_eq!(
        admin
            .put("/api/v1/projects/nope", &json!({"displayName": "x"}))
            .await
            .unwrap()
            .0,
        404
    );

    // A project holding an API cannot be deleted; the 409 names what it holds.
    let mut api = artifact_body("rest-apis", "billing", "/billing");
    api["projectId"] = json!("payments-team");
    assert_eq!(admin.post("/api/v1/rest-apis", &api).await.unwrap().0, 201);
    let (s, b) = admin
        .delete("/api/v1/projects/payments-team")
        .await
        .unwrap();
    assert_eq!(s, 409);
    assert!(b["message"].as_str().unwrap().contains("billing"), "{b}");
    assert_eq!(
        admin.delete("/api/v1/rest-apis/billing").await.unwrap().0,
        204
    );
    assert_eq!(
        admin
            .delete("/api/v1/projects/payments-team")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin.get("/api/v1/projects/payments-team").await.unwrap().0,
        404
    );
    assert_eq!(
        admin
            .delete("/api/v1/projects/payments-team")
            .await
            .unwrap()
            .0,
        404
    );
}

async fn gateway_tokens_are_shown_once_capped_and_revocable(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let (s, g) = admin
        .post("/api/v1/gateways", &json!({"displayName": "Edge EU 1"}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["id"], "edge-eu-1");
    assert_eq!(g["status"]["connected"], false);
    assert_eq!(
        admin
            .post(
                "/api/v1/gateways",
                &json!({"id": "edge-eu-1", "displayName": "dup"})
            )
            .await
            .unwrap()
            .0,
        409
    );
    let (s, b) = admin
        .post("/api/v1/gateways", &json!({"id": "edge-2"}))
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("displayName"));

    let (s, t1) = admin
        .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{t1}");
    let token1 = t1["token"].as_str().unwrap().to_owned();
    // 256 bits of randomness, base64url: at least 43 characters after the prefix.
    assert!(token1.len() >= 43 + 5, "{token1}");
    let (s, t2) = admin
        .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 201);
    assert_ne!(t2["token"], t1["token"]);
    let (s, b) = admin
        .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 409, "a third active token is refused: {b}");

    let (s, list) = admin
        .get("/api/v1/gateways/edge-eu-1/tokens")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&token1),
        "listing never shows a token"
    );

    let gw1 = Client::anonymous(&p.base).with_header("api-key", &token1);
    let gw2 = Client::anonymous(&p.base).with_header("api-key", t2["token"].as_str().unwrap());
    assert_eq!(
        gw1.get("/api/internal/v1/deployments").await.unwrap().0,
        200
    );
    let id1 = t1["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/gateways/edge-eu-1/tokens/{id1}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        gw1.get("/api/internal/v1/deployments").await.unwrap().0,
        401,
        "revoked token is refused"
    );
    assert_eq!(
        gw2.get("/api/internal/v1/deployments").await.unwrap().0,
        200,
        "the other token still works"
    );
    assert_eq!(
        admin
            .delete("/api/v1/gateways/edge-eu-1/tokens/no-such-token")
            .await
            .unwrap()
            .0,
        404
    );
    // A slot is free again.
    assert_eq!(
        admin
            .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
            .await
            .unwrap()
            .0,
        201
    );

    let (s, b) = admin
        .put(
            "/api/v1/gateways/edge-eu-1",
            &json!({"displayName": "Edge EU One", "description": "Frankfurt"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["description"].as_str()), (200, Some("Frankfurt")));
    let (s, b) = admin.get("/api/v1/gateways").await.unwrap();
    assert_eq!((s, b["count"].as_u64()), (200, Some(1)));

    // A gateway serving an artifact is not deleted by accident.
    create(&admin, "rest-apis", "orders", "/orders").await;
    deploy(&admin, "rest-apis", "orders", "edge-eu-1").await;
    let (s, b) = admin.delete("/api/v1/gateways/edge-eu-1").await.unwrap();
    assert_eq!(s, 409);
    assert!(b["message"].as_str().unwrap().contains("orders"), "{b}");
    assert_eq!(
        admin
            .delete("/api/v1/gateways/edge-eu-1?force=true")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin.get("/api/v1/gateways/edge-eu-1").await.unwrap().0,
        404
    );
    assert_eq!(
        gw2.get("/api/internal/v1/deployments").await.unwrap().0,
        401,
        "tokens of a deleted gateway are gone"
    );
}

async fn artifacts_of_every_kind_validate_and_round_trip(backend: Backend) {
    let Some(p) = platform(backend, &["--body-limit", "65536"]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    create(&admin, "llm-providers", "prov", "/prov").await;
    for c in COLLECTIONS {
        let id = format!("{}-one", event_prefix(c));
        let body = create(&admin, c, &id, &format!("/{id}")).await;
        assert_eq!(body["id"], id.as_str());
        assert!(body["uuid"].is_string());
        let (s, got) = admin.get(&format!("/api/v1/{c}/{id}")).await.unwrap();
        assert_eq!(s, 200);
        assert_eq!(got, body);
        assert_eq!(
            admin
                .post(&format!("/api/v1/{c}"), &artifact_body(c, &id, "/other"))
                .await
                .unwrap()
                .0,
            409
        );

        // A bad context is a 400 naming the field; nothing is stored.
        let mut bad = artifact_body(c, &format!("{id}-bad"), "no-slash");
        let (s, b) = admin.post(&format!("/api/v1/{c}"), &bad).await.unwrap();
        assert_eq!((s, b["field"].as_str()), (400, Some("context")), "{c}: {b}");
        bad["context"] = json!("/fine");
        bad["unknownField"] = json!(1);
        let (s, b) = admin.post(&format!("/api/v1/{c}"), &bad).await.unwrap();
        assert_eq!(s, 400);
        assert!(
            b["message"].as_str().unwrap().contains("unknownField"),
            "{b}"
        );
        assert_eq!(
            admin.get(&format!("/api/v1/{c}/{id}-bad")).await.unwrap().0,
            404
        );

        // Replace keeps the handle; a changed id is refused.
        let mut upd = artifact_body(c, &id, &format!("/{id}-v2"));
        let (s, b) = admin.put(&format!("/api/v1/{c}/{id}"), &upd).await.unwrap();
        assert_eq!(
            (s, b["context"].as_str()),
            (200, Some(format!("/{id}-v2").as_str())),
            "{b}"
        );
        assert_eq!(b["uuid"], body["uuid"]);
        upd["id"] = json!("renamed");
        assert_eq!(
            admin
                .put(&format!("/api/v1/{c}/{id}"), &upd)
                .await
                .unwrap()
                .1["field"],
            "id"
        );
        assert_eq!(
            admin
                .put(
                    &format!("/api/v1/{c}/missing"),
                    &artifact_body(c, "missing", "/m")
                )
                .await
                .unwrap()
                .0,
            404
        );

        let (s, list) = admin.get(&format!("/api/v1/{c}")).await.unwrap();
        assert_eq!(s, 200);
        assert!(list["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str()));
    }

    // Field-level errors of the kinds' own fields.
    let mut b = artifact_body("rest-apis", "x", "/x");
    b["upstream"]["main"]["url"] = json!("ftp://nowhere");
    assert_eq!(
        admin.post("/api/v1/rest-apis", &b).await.unwrap().1["field"],
        "upstream.main.url"
    );
    let mut b = artifact_body("rest-apis", "x", "/x");
    b["operations"][0]["method"] = json!("FETCH");
    assert_eq!(
        admin.post("/api/v1/rest-apis", &b).await.unwrap().1["field"],
        "operations[0].method"
    );
    let mut b = artifact_body("rest-apis", "x", "/x");
    b["projectId"] = json!("ghost");
    assert_eq!(
        admin.post("/api/v1/rest-apis", &b).await.unwrap().1["field"],
        "projectId"
    );
    let mut b = artifact_body("llm-providers", "x", "/x");
    b["template"] = json!("skynet");
    assert_eq!(
        admin.post("/api/v1/llm-providers", &b).await.unwrap().1["field"],
        "template"
    );
    let mut b = artifact_body("llm-proxies", "x", "/x");
    b["provider"]["id"] = json!("ghost");
    assert_eq!(
        admin.post("/api/v1/llm-proxies", &b).await.unwrap().1["field"],
        "provider.id"
    );
    let mut b = artifact_body("mcp-proxies", "x", "/x");
    b["policies"] = json!([{"name": "rate-limit", "params": {"requests": -1, "window": "1m"}}]);
    assert_eq!(
        admin.post("/api/v1/mcp-proxies", &b).await.unwrap().1["field"],
        "policies[0].params.requests"
    );

    // The provider credential is never returned, and survives a replace that omits it.
    let (_, prov) = admin.get("/api/v1/llm-providers/prov").await.unwrap();
    assert!(!prov.to_string().contains("sk-secret-value"), "{prov}");
    assert_eq!(prov["upstream"]["auth"]["valueSet"], true);
    let (s, prov2) = admin
        .put("/api/v1/llm-providers/prov", &prov)
        .await
        .unwrap();
    assert_eq!(s, 200, "{prov2}");
    assert_eq!(prov2["upstream"]["auth"]["valueSet"], true);

    // A provider used by a proxy cannot be deleted; the 409 names the proxy.
    let (s, b) = admin.delete("/api/v1/llm-providers/prov").await.unwrap();
    assert_eq!(s, 409);
    assert!(
        b["message"].as_str().unwrap().contains("llmproxy-one"),
        "{b}"
    );

    // Bodies over the limit are 413; the store is unchanged.
    let mut huge = artifact_body("rest-apis", "huge", "/huge");
    huge["description"] = json!("x".repeat(70_000));
    let (s, b) = admin.post("/api/v1/rest-apis", &huge).await.unwrap();
    assert_eq!(
        (s, b["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{b}"
    );
    assert_eq!(admin.get("/api/v1/rest-apis/huge").await.unwrap().0, 404);

    for c in ["mcp-proxies", "rest-apis", "llm-proxies", "llm-providers"] {
        let id = format!("{}-one", event_prefix(c));
        assert_eq!(
            admin.delete(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            204
        );
        assert_eq!(
            admin.get(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            404
        );
        assert_eq!(
            admin.delete(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            404
        );
    }
    assert_eq!(
        admin.delete("/api/v1/llm-providers/prov").await.unwrap().0,
        204,
        "no proxy uses it any more"
    );
}

async fn deployment_state_machine(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    create(&admin, "llm-providers", "prov", "/prov").await;
    for c in COLLECTIONS {
        let id = format!("{}-sm", event_prefix(c));
        let art = create(&admin, c, &id, &format!("/{id}")).await;
        let uuid = art["uuid"].as_str().unwrap();
        if c == "llm-proxies" {
            let prov = deploy(&admin, "llm-providers", "prov", "edge").await;
            let (_, prov_art) = admin.get("/api/v1/llm-providers/prov").await.unwrap();
            assert!(
                ack(
                    &gw,
                    prov_art["uuid"].as_str().unwrap(),
                    &prov,
                    "deploy",
                    "success"
                )
                .await
            );
        }
        let base = format!("/api/v1/{c}/{id}/deployments");
        let d1 = deploy(&admin, c, &id, "edge").await;
        let d1_id = d1["deploymentId"].as_str().unwrap();
        assert_eq!(d1["gatewayId"], "edge");
        // A stale ack (another performedAt) changes nothing.
        let mut stale = d1.clone();
        stale["performedAt"] = json!("2020-01-01T00:00:00.000Z");
        assert!(!ack(&gw, uuid, &stale, "deploy", "success").await);
        assert!(ack(&gw, uuid, &d1, "deploy", "success").await);
        let (_, got) = admin.get(&format!("{base}/{d1_id}")).await.unwrap();
        assert_eq!(got["status"], "DEPLOYED");
        // Restoring what is deployed, or deleting it, is a conflict.
        assert_eq!(
            admin
                .post(&format!("{base}/{d1_id}/restore"), &json!({}))
                .await
                .unwrap()
                .0,
            409
        );
        assert_eq!(
            admin.delete(&format!("{base}/{d1_id}")).await.unwrap().0,
            409
        );

        // A second deploy supersedes the first: one current deployment per (artifact, gateway).
        let d2 = deploy(&admin, c, &id, "edge").await;
        let d2_id = d2["deploymentId"].as_str().unwrap();
        let (_, got) = admin.get(&format!("{base}/{d1_id}")).await.unwrap();
        assert_eq!(got["status"], "ARCHIVED");
        assert!(
            !ack(&gw, uuid, &d1, "deploy", "success").await,
            "an ack for a superseded deployment is stale"
        );
        assert_eq!(
            admin
                .post(&format!("{base}/{d1_id}/undeploy"), &json!({}))
                .await
                .unwrap()
                .0,
            409
        );
        assert!(ack(&gw, uuid, &d2, "deploy", "success").await);

        let (s, list) = admin.get(&format!("{base}?status=ARCHIVED")).await.unwrap();
        assert_eq!(s, 200);
        assert_eq!(list["count"], 1);
        assert_eq!(list["list"][0]["deploymentId"], d1_id);
        assert_eq!(
            admin
                .get(&format!("{base}?status=SIDEWAYS"))
                .await
                .unwrap()
                .1["field"],
            "status"
        );
        assert_eq!(
            admin
                .get(&format!("{base}?gatewayId=nope"))
                .await
                .unwrap()
                .0,
            404
        );

        // Undeploy → UNDEPLOYING → (ack) UNDEPLOYED; a second undeploy is a conflict.
        let (s, u) = admin
            .post(&format!("{base}/{d2_id}/undeploy"), &json!({}))
            .await
            .unwrap();
        assert_eq!((s, u["status"].as_str()), (200, Some("UNDEPLOYING")), "{u}");
        assert!(ack(&gw, uuid, &u, "undeploy", "success").await);
        assert_eq!(
            admin.get(&format!("{base}/{d2_id}")).await.unwrap().1["status"],
            "UNDEPLOYED"
        );
        assert_eq!(
            admin
                .post(&format!("{base}/{d2_id}/undeploy"), &json!({}))
                .await
                .unwrap()
                .0,
            409
        );

        // Restore an archived deployment: it becomes current again and DEPLOYING.
        let (s, r) = admin
            .post(&format!("{base}/{d1_id}/restore"), &json!({}))
            .await
            .unwrap();
        assert_eq!((s, r["status"].as_str()), (200, Some("DEPLOYING")), "{r}");
        assert_eq!(
            admin.get(&format!("{base}/{d2_id}")).await.unwrap().1["status"],
            "ARCHIVED"
        );
        // A failed ack shows the gateway's reason.
        assert!(ack(&gw, uuid, &r, "deploy", "failed").await);
        let (_, got) = admin.get(&format!("{base}/{d1_id}")).await.unwrap();
        assert_eq!(
            (got["status"].as_str(), got["statusReason"].as_str()),
            (Some("FAILED"), Some("BAD_CONFIG"))
        );
        // A failed deploy may still be undeployed (the gateway may hold it), then deleted.
        let (s, u) = admin
            .post(&format!("{base}/{d1_id}/undeploy"), &json!({}))
            .await
            .unwrap();
        assert_eq!(s, 200, "{u}");
        assert!(ack(&gw, uuid, &u, "undeploy", "success").await);
        assert_eq!(
            admin.delete(&format!("{base}/{d1_id}")).await.unwrap().0,
            204
        );
        assert_eq!(admin.get(&format!("{base}/{d1_id}")).await.unwrap().0, 404);
        assert_eq!(
            admin.delete(&format!("{base}/{d2_id}")).await.unwrap().0,
            204,
            "archived deployments can be deleted"
        );
        assert_eq!(admin.get(&base).await.unwrap().1["count"], 0);

        // Deploy from a base deployment id, and a bad base.
        let d3 = deploy(&admin, c, &id, "edge").await;
        let (s, d4) = admin
            .post(
                &base,
                &json!({"gatewayId": "edge", "base": d3["deploymentId"], "name": "again"}),
            )
            .await
            .unwrap();
        assert_eq!(
            (s, d4["baseDeploymentId"].clone()),
            (201, d3["deploymentId"].clone()),
            "{d4}"
        );
        assert_eq!(d4["name"], "again");
        let (s, b) = admin
            .post(&base, &json!({"gatewayId": "edge", "base": "nope"}))
            .await
            .unwrap();
        assert_eq!((s, b["field"].as_str()), (400, Some("base")));
        let (s, _) = admin
            .post(&base, &json!({"gatewayId": "ghost"}))
            .await
            .unwrap();
        assert_eq!(s, 404);
        let (s, b) = admin
            .post(&base, &json!({"gateway": "edge"}))
            .await
            .unwrap();
        assert_eq!(s, 400, "{b}");
        let (s, _) = admin
            .post(
                &format!("/api/v1/{c}/ghost/deployments"),
                &json!({"gatewayId": "edge"}),
            )
            .await
            .unwrap();
        assert_eq!(s, 404);
        let (s, _) = admin
            .get(&format!("{base}/not-a-deployment"))
            .await
            .unwrap();
        assert_eq!(s, 404);
    }
    // The provider cannot be undeployed while a proxy on that gateway forwards through it.
    let (_, deps) = admin
        .get("/api/v1/llm-providers/prov/deployments?status=DEPLOYED")
        .await
        .unwrap();
    let dep = deps["list"][0]["deploymentId"].as_str().unwrap().to_owned();
    let (s, b) = admin
        .post(
            &format!("/api/v1/llm-providers/prov/deployments/{dep}/undeploy"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409);
    assert!(
        b["message"].as_str().unwrap().contains("llmproxy-sm"),
        "{b}"
    );
}

async fn deploy_checks_provider_and_context(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    gateway(&admin, &p.base, "edge").await;
    create(&admin, "llm-providers", "prov", "/prov").await;
    create(&admin, "llm-proxies", "chat", "/chat").await;
    let (s, b) = admin
        .post(
            "/api/v1/llm-proxies/chat/deployments",
            &json!({"gatewayId": "edge"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409);
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("'prov' is not deployed"),
        "{b}"
    );
    deploy(&admin, "llm-providers", "prov", "edge").await;
    deploy(&admin, "llm-proxies", "chat", "edge").await;

    // Two artifacts cannot serve one context on one gateway.
    create(&admin, "rest-apis", "a", "/shop/$version").await;
    let mut b2 = artifact_body("rest-apis", "b", "/shop/v1");
    b2["version"] = json!("v1");
    assert_eq!(admin.post("/api/v1/rest-apis", &b2).await.unwrap().0, 201);
    deploy(&admin, "rest-apis", "a", "edge").await;
    let (s, b) = admin
        .post(
            "/api/v1/rest-apis/b/deployments",
            &json!({"gatewayId": "edge"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409);
    assert!(b["message"].as_str().unwrap().contains("/shop/v1"), "{b}");
    // Editing an artifact changes nothing deployed until it is deployed again.
    let mut a2 = artifact_body("rest-apis", "a", "/shop-new");
    a2["version"] = json!("v1");
    assert_eq!(admin.put("/api/v1/rest-apis/a", &a2).await.unwrap().0, 200);
    let (s, b) = admin
        .post(
            "/api/v1/rest-apis/b/deployments",
            &json!({"gatewayId": "edge"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "the deployed snapshot still holds /shop/v1: {b}");
    deploy(&admin, "rest-apis", "a", "edge").await;
    deploy(&admin, "rest-apis", "b", "edge").await;
}

async fn isolation_between_organizations(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    assert_eq!(
        admin
            .post(
                "/api/v1/organizations",
                &json!({"id": "other", "displayName": "Other"})
            )
            .await
            .unwrap()
            .0,
        201
    );
    let other = p.login("other").await.unwrap();
    let gw_a = gateway(&admin, &p.base, "edge").await;
    let gw_b = gateway(&other, &p.base, "edge").await;
    let api = create(&admin, "rest-apis", "secret-api", "/secret").await;
    let uuid = api["uuid"].as_str().unwrap();
    let dep = deploy(&admin, "rest-apis", "secret-api", "edge").await;
    let dep_id = dep["deploymentId"].as_str().unwrap();
    create(&admin, "llm-providers", "prov", "/prov").await;
    assert_eq!(
        admin
            .post(
                "/api/v1/projects",
                &json!({"id": "team-a", "displayName": "A"})
            )
            .await
            .unwrap()
            .0,
        201
    );

    // Nothing of `default` is visible or addressable from `other`.
    for path in [
        "/api/v1/rest-apis/secret-api",
        "/api/v1/llm-providers/prov",
        "/api/v1/projects/team-a",
        "/api/v1/rest-apis/secret-api/deployments",
        &format!("/api/v1/rest-apis/secret-api/deployments/{dep_id}"),
    ] {
        assert_eq!(other.get(path).await.unwrap().0, 404, "{path}");
    }
    assert_eq!(other.get("/api/v1/rest-apis").await.unwrap().1["count"], 0);
    assert_eq!(
        other.get("/api/v1/llm-providers").await.unwrap().1["count"],
        0
    );
    assert_eq!(
        other
            .delete("/api/v1/rest-apis/secret-api")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        other
            .put(
                "/api/v1/rest-apis/secret-api",
                &artifact_body("rest-apis", "secret-api", "/x")
            )
            .await
            .unwrap()
            .0,
        404
    );
    let (_, projects) = other.get("/api/v1/projects").await.unwrap();
    assert_eq!(
        projects["count"], 1,
        "only its own default project: {projects}"
    );
    // Same handle, separate namespace.
    create(&other, "rest-apis", "secret-api", "/secret").await;
    let (_, mine) = other.get("/api/v1/rest-apis/secret-api").await.unwrap();
    assert_ne!(mine["uuid"], api["uuid"]);
    // Gateways: `other` addresses its own `edge`, never default's.
    let (_, gws) = other.get("/api/v1/gateways").await.unwrap();
    assert_eq!(gws["count"], 1);
    assert_ne!(
        gws["list"][0]["uuid"],
        admin.get("/api/v1/gateways/edge").await.unwrap().1["uuid"]
    );
    // Non-admin business: organizations are for the platform admin; the admin's token is per org.
    assert_eq!(
        other
            .get("/api/v1/rest-apis/secret-api/deployments")
            .await
            .unwrap()
            .1["count"],
        0
    );

    // Internal API: gateway B sees nothing of A.
    let (_, desired) = gw_b.get("/api/internal/v1/deployments").await.unwrap();
    assert_eq!(desired["deployments"].as_array().unwrap().len(), 0);
    let (s, batch) = gw_b
        .post(
            "/api/internal/v1/deployments/fetch-batch",
            &json!({"deploymentIds": [dep_id]}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(batch["deployments"].as_array().unwrap().len(), 0);
    assert_eq!(
        gw_b.get(&format!("/api/internal/v1/apis/{uuid}"))
            .await
            .unwrap()
            .0,
        404
    );
    let (_, ex) = gw_b
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": [uuid]}),
        )
        .await
        .unwrap();
    assert_eq!(
        ex["artifacts"][0],
        json!({"artifactId": uuid, "exists": false})
    );
    assert!(events(&gw_b, 0)
        .await
        .iter()
        .all(|e| e["payload"]["artifactId"] != uuid));
    // A forged ack from B cannot move A's deployment.
    assert!(!ack(&gw_b, uuid, &dep, "deploy", "success").await);
    assert_eq!(
        admin
            .get(&format!(
                "/api/v1/rest-apis/secret-api/deployments/{dep_id}"
            ))
            .await
            .unwrap()
            .1["status"],
        "DEPLOYING"
    );
    // And A's own gateway does see it.
    let (_, ex) = gw_a
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": [uuid]}),
        )
        .await
        .unwrap();
    assert_eq!(ex["artifacts"][0]["exists"], true);
}

async fn platform_restart_keeps_data_and_tokens(backend: Backend) {
    let Some(mut p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    create(&admin, "rest-apis", "orders", "/orders").await;
    deploy(&admin, "rest-apis", "orders", "edge").await;
    p.restart().await.unwrap();
    // The signing key was kept: the old login token still works; so does the gateway token.
    let (s, b) = admin.get("/api/v1/rest-apis/orders").await.unwrap();
    assert_eq!(s, 200, "{b}");
    let (_, desired) = gw.get("/api/internal/v1/deployments").await.unwrap();
    assert_eq!(desired["deployments"][0]["handle"], "orders");
    assert_eq!(desired["revision"], 1);
}

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
    assert_eq!(
        body["allOf"][0]["$ref"], "#/components/schemas/LlmProviderSpec",
        "{body}"
    );
    let body = &spec["paths"]["/api/v1/mcp-proxies/{id}"]["put"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        body["allOf"][0]["$ref"], "#/components/schemas/McpSpec",
        "{body}"
    );
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

/// Walks every route of the public OpenAPI document: without a token each is a 401; with a
/// valid token of another organization, each route that addresses a resource is a 404.
async fn every_route_refuses_missing_and_foreign_tokens(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other", "displayName": "Other"}),
        )
        .await
        .unwrap();
    let other = p.login("other").await.unwrap();
    gateway(&admin, &p.base, "edge").await;
    gateway(&other, &p.base, "other-edge").await;
    let (_, tokens) = admin.get("/api/v1/gateways/edge/tokens").await.unwrap();
    let token_id = tokens[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin
            .post(
                "/api/v1/projects",
                &json!({"id": "proj", "displayName": "P"})
            )
            .await
            .unwrap()
            .0,
        201
    );
    create(&admin, "llm-providers", "prov", "/prov").await;
    let mut deployment_of = std::collections::HashMap::new();
    for c in COLLECTIONS {
        let id = if c == "llm-providers" {
            "prov".to_owned()
        } else {
            format!("{}-r", event_prefix(c))
        };
        if c != "llm-providers" {
            create(&admin, c, &id, &format!("/{id}")).await;
        }
        let d = deploy(&admin, c, &id, "edge").await;
        deployment_of.insert(c, (id, d["deploymentId"].as_str().unwrap().to_owned()));
    }

    let (_, spec) = Client::anonymous(&p.base)
        .get("/api/v1/openapi.json")
        .await
        .unwrap();
    let anon = Client::anonymous(&p.base);
    let mut checked = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        if template == "/api/v1/auth/login" {
            continue;
        }
        let collection = template
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .unwrap();
        let (id, dep) = match deployment_of.get(collection) {
            Some((id, dep)) => (id.clone(), dep.clone()),
            None if collection == "projects" => ("proj".to_owned(), String::new()),
            None => ("edge".to_owned(), String::new()),
        };
        let path = template
            .replace("{id}", &id)
            .replace("{deployment_id}", &dep)
            .replace("{token_id}", &token_id)
            .replace("{key_id}", "some-key");
        let body = if template.ends_with("/deployments") {
            json!({"gatewayId": "edge"})
        } else if template.ends_with("/api-keys") {
            json!({"displayName": "k"})
        } else if collection == "subscriptions" {
            json!({})
        } else if deployment_of.contains_key(collection) {
            artifact_body(collection, &id, &format!("/{id}"))
        } else {
            json!({"displayName": "x"})
        };
        for method in item.as_object().unwrap().keys() {
            let call = |c: Client| {
                let (path, body, method) = (path.clone(), body.clone(), method.clone());
                async move {
                    match method.as_str() {
                        "get" => c.get(&path).await,
                        "post" => c.post(&path, &body).await,
                        "put" => c.put(&path, &body).await,
                        "delete" => c.delete(&path).await,
                        m => panic!("unexpected method {m}"),
                    }
                    .unwrap()
                }
            };
            let (s, b) = call(anon.clone()).await;
            assert_eq!(s, 401, "{method} {path} without a token: {b}");
            if template.contains("{id}") {
                let (s, b) = call(other.clone()).await;
                assert_eq!(
                    s, 404,
                    "{method} {path} with another organization's token: {b}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} routes checked");
    // Nothing of `default` was changed by those calls.
    for c in COLLECTIONS {
        let (id, dep) = &deployment_of[c];
        let (s, d) = admin
            .get(&format!("/api/v1/{c}/{id}/deployments/{dep}"))
            .await
            .unwrap();
        assert_eq!((s, d["status"].as_str()), (200, Some("DEPLOYING")), "{c}");
    }
    assert_eq!(
        admin
            .get("/api/v1/gateways/edge/tokens")
            .await
            .unwrap()
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
