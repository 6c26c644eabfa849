//! The deployment state machine through the public API, and deploy-time checks.

use crate::common::*;
use serde_json::json;

both_backends!(deployment_state_machine, deploy_checks_provider_and_context,);

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
        assert_eq!((s, b["field"].as_str()), (404, Some("base")));
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
