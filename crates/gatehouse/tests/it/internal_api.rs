//! The gateway internal API and the change log, end to end: the real binary and database.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

both_backends!(
    internal_routes_serve_the_gateways_desired_state,
    internal_routes_refuse_missing_and_foreign_tokens,
    artifacts_exists_caps_ids_and_hides_other_organizations,
    delete_reaches_every_gateway_even_without_deployment_row,
    deploy_timeout_fails_then_late_ack_still_lands,
    change_log_is_gap_free_under_concurrent_writers,
    compacted_log_asks_for_full_sync,
);

async fn internal_routes_serve_the_gateways_desired_state(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    let other_gw = gateway(&admin, &p.base, "edge-2").await;
    let prov = create(&admin, "llm-providers", "prov", "/prov").await;
    let api = create(&admin, "rest-apis", "orders", "/orders/$version").await;
    let d_prov = deploy(&admin, "llm-providers", "prov", "edge").await;
    let d_api = deploy(&admin, "rest-apis", "orders", "edge").await;

    let (s, desired) = gw.get("/api/internal/v1/deployments").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(desired["revision"], 2);
    let list = desired["deployments"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let orders = list.iter().find(|d| d["handle"] == "orders").unwrap();
    assert_eq!(orders["artifactId"], api["uuid"]);
    assert_eq!(orders["kind"], "RestApi");
    assert_eq!(orders["state"], "DEPLOYED");
    assert_eq!(orders["deploymentId"], d_api["deploymentId"]);
    assert_eq!(orders["deployedAt"], d_api["performedAt"]);
    assert_eq!(
        other_gw
            .get("/api/internal/v1/deployments")
            .await
            .unwrap()
            .1["deployments"],
        json!([])
    );

    // Content: the artifact document with metadata.uid, the provider's credential opened for it.
    let ids =
        json!({"deploymentIds": [d_prov["deploymentId"], d_api["deploymentId"], "unknown-id"]});
    let (s, batch) = gw
        .post("/api/internal/v1/deployments/fetch-batch", &ids)
        .await
        .unwrap();
    assert_eq!(s, 200, "{batch}");
    let docs = batch["deployments"].as_array().unwrap();
    assert_eq!(docs.len(), 2, "unknown ids are omitted");
    let orders_doc = &docs.iter().find(|d| d["kind"] == "RestApi").unwrap()["content"];
    assert_eq!(orders_doc["apiVersion"], "gatehouse.dev/v1");
    assert_eq!(orders_doc["kind"], "RestApi");
    assert_eq!(
        orders_doc["metadata"],
        json!({"name": "orders", "uid": api["uuid"]})
    );
    assert_eq!(orders_doc["spec"]["context"], "/orders/$version");
    let prov_doc = &docs.iter().find(|d| d["kind"] == "LlmProvider").unwrap()["content"];
    assert_eq!(
        prov_doc["spec"]["upstream"]["auth"]["value"],
        "Bearer sk-secret-value"
    );
    // The other gateway cannot fetch them.
    let (_, none) = other_gw
        .post("/api/internal/v1/deployments/fetch-batch", &ids)
        .await
        .unwrap();
    assert_eq!(none["deployments"], json!([]));
    let (s, b) = gw
        .post(
            "/api/internal/v1/deployments/fetch-batch",
            &json!({"ids": []}),
        )
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");

    // Per-kind content routes.
    let uuid = api["uuid"].as_str().unwrap();
    let (s, c) = gw
        .get(&format!("/api/internal/v1/apis/{uuid}"))
        .await
        .unwrap();
    assert_eq!(
        (s, c["deploymentId"].clone()),
        (200, d_api["deploymentId"].clone())
    );
    assert_eq!(
        gw.get(&format!("/api/internal/v1/mcp-proxies/{uuid}"))
            .await
            .unwrap()
            .0,
        404,
        "wrong kind"
    );
    assert_eq!(
        other_gw
            .get(&format!("/api/internal/v1/apis/{uuid}"))
            .await
            .unwrap()
            .0,
        404,
        "not deployed there"
    );
    let puuid = prov["uuid"].as_str().unwrap();
    assert_eq!(
        gw.get(&format!("/api/internal/v1/llm-providers/{puuid}"))
            .await
            .unwrap()
            .0,
        200
    );

    // Events for this gateway, in order, with deploy payloads.
    let evs = events(&gw, 0).await;
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["llmprovider.deployed", "api.deployed"]);
    assert_eq!(evs[1]["revision"], 2);
    assert_eq!(evs[1]["payload"]["artifactId"], api["uuid"]);
    assert_eq!(evs[1]["payload"]["deploymentId"], d_api["deploymentId"]);
    assert_eq!(evs[1]["payload"]["performedAt"], d_api["performedAt"]);
    assert!(evs[1]["correlationId"].is_string() && evs[1]["timestamp"].is_string());
    assert_eq!(events(&gw, 1).await.len(), 1);
    assert_eq!(events(&gw, 2).await.len(), 0);
    assert!(
        events(&other_gw, 0).await.is_empty(),
        "deploy events target one gateway"
    );
    let (s, b) = gw.get("/api/internal/v1/events?after=-1").await.unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("after")));

    // The gateway status reflects what it applied.
    let (_, g) = admin.get("/api/v1/gateways/edge").await.unwrap();
    assert_eq!(g["status"]["appliedRevision"], 2);
    assert_eq!(g["status"]["orgRevision"], 2);
    assert_eq!(g["status"]["inSync"], true);
    assert_eq!(g["status"]["connected"], true);
    deploy(&admin, "rest-apis", "orders", "edge").await;
    let (_, g) = admin.get("/api/v1/gateways/edge").await.unwrap();
    assert_eq!(g["status"]["inSync"], false);
}

async fn internal_routes_refuse_missing_and_foreign_tokens(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    gateway(&admin, &p.base, "edge").await;
    let anon = Client::anonymous(&p.base);
    let forged = anon.with_header("api-key", "ghgw_not-a-real-token");
    // A user's bearer token is not a gateway token.
    let user = admin.clone();
    let body = json!({"artifactIds": []});
    for c in [&anon, &forged, &user] {
        assert_eq!(c.get("/api/internal/v1/deployments").await.unwrap().0, 401);
        assert_eq!(
            c.post(
                "/api/internal/v1/deployments/fetch-batch",
                &json!({"deploymentIds": []})
            )
            .await
            .unwrap()
            .0,
            401
        );
        assert_eq!(
            c.post("/api/internal/v1/artifacts/exists", &body)
                .await
                .unwrap()
                .0,
            401
        );
        assert_eq!(
            c.get("/api/internal/v1/events?after=0").await.unwrap().0,
            401
        );
        assert_eq!(c.get("/api/internal/v1/apis/x").await.unwrap().0, 401);
    }
    let (s, b) = anon.get("/api/internal/v1/deployments").await.unwrap();
    assert_eq!(s, 401);
    assert!(b["message"].as_str().unwrap().contains("api-key"), "{b}");
}

async fn artifacts_exists_caps_ids_and_hides_other_organizations(backend: Backend) {
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
    let gw = gateway(&admin, &p.base, "edge").await;
    let mine = create(&admin, "mcp-proxies", "tools", "/tools").await;
    let theirs = create(&other, "mcp-proxies", "tools", "/tools").await;
    let ids = json!({"artifactIds": [mine["uuid"], theirs["uuid"], "not-a-uuid"]});
    let (s, b) = gw
        .post("/api/internal/v1/artifacts/exists", &ids)
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(
        b["artifacts"],
        json!([{"artifactId": mine["uuid"], "exists": true}, {"artifactId": theirs["uuid"], "exists": false}, {"artifactId": "not-a-uuid", "exists": false}])
    );
    let thousand: Vec<String> = (0..1000).map(|i| format!("id-{i}")).collect();
    let (s, b) = gw
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": thousand}),
        )
        .await
        .unwrap();
    assert_eq!(
        (s, b["artifacts"].as_array().map(Vec::len)),
        (200, Some(1000))
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("id-{i}")).collect();
    let (s, b) = gw
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": too_many}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("artifactIds")), "{b}");
    let (s, _) = gw
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 400);
}

/// The seed's root cause at the data level: deploy → undeploy → delete deployment → delete the
/// artifact still tells every gateway of the organization, for each kind.
async fn delete_reaches_every_gateway_even_without_deployment_row(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    let bystander = gateway(&admin, &p.base, "never-deployed").await;
    admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other", "displayName": "Other"}),
        )
        .await
        .unwrap();
    let other = p.login("other").await.unwrap();
    let foreign_gw = gateway(&other, &p.base, "edge").await;

    let mut uuids = vec![];
    create(&admin, "llm-providers", "prov", "/prov").await;
    let prov_dep = deploy(&admin, "llm-providers", "prov", "edge").await;
    for c in ["llm-proxies", "rest-apis", "mcp-proxies"] {
        let id = format!("{}-x", event_prefix(c));
        let art = create(&admin, c, &id, &format!("/{id}")).await;
        let uuid = art["uuid"].as_str().unwrap().to_owned();
        let d = deploy(&admin, c, &id, "edge").await;
        assert!(ack(&gw, &uuid, &d, "deploy", "success").await);
        let dep = d["deploymentId"].as_str().unwrap();
        let (_, u) = admin
            .post(
                &format!("/api/v1/{c}/{id}/deployments/{dep}/undeploy"),
                &json!({}),
            )
            .await
            .unwrap();
        assert!(ack(&gw, &uuid, &u, "undeploy", "success").await);
        assert_eq!(
            admin
                .delete(&format!("/api/v1/{c}/{id}/deployments/{dep}"))
                .await
                .unwrap()
                .0,
            204
        );
        // The gateway's desired state no longer lists it…
        let (_, desired) = gw.get("/api/internal/v1/deployments").await.unwrap();
        assert!(desired["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["artifactId"] != uuid.as_str()));
        // …but the artifact still exists, so a gateway holding it retains it.
        let (_, ex) = gw
            .post(
                "/api/internal/v1/artifacts/exists",
                &json!({"artifactIds": [uuid]}),
            )
            .await
            .unwrap();
        assert_eq!(ex["artifacts"][0]["exists"], true);
        assert_eq!(
            admin.delete(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            204
        );
        uuids.push((event_prefix(c), uuid));
    }
    // The provider: undeploy, delete its deployment, delete it.
    let puuid = admin.get("/api/v1/llm-providers/prov").await.unwrap().1["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let dep = prov_dep["deploymentId"].as_str().unwrap();
    let (s, _) = admin
        .post(
            &format!("/api/v1/llm-providers/prov/deployments/{dep}/undeploy"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(
        admin
            .delete(&format!("/api/v1/llm-providers/prov/deployments/{dep}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin.delete("/api/v1/llm-providers/prov").await.unwrap().0,
        204
    );
    uuids.push(("llmprovider", puuid));

    for g in [&gw, &bystander] {
        let evs = events(g, 0).await;
        for (prefix, uuid) in &uuids {
            let hit = evs.iter().find(|e| {
                e["type"] == format!("{prefix}.deleted").as_str()
                    && e["payload"]["artifactId"] == uuid.as_str()
            });
            assert!(
                hit.is_some(),
                "{prefix}.deleted for {uuid} must reach every gateway: {evs:?}"
            );
        }
    }
    assert!(
        events(&foreign_gw, 0).await.is_empty(),
        "another organization's gateways hear nothing"
    );
    // The bystander got only the deletes.
    assert!(events(&bystander, 0)
        .await
        .iter()
        .all(|e| e["type"].as_str().unwrap().ends_with(".deleted")));
}

async fn deploy_timeout_fails_then_late_ack_still_lands(backend: Backend) {
    let Some(p) = platform(backend, &["--deployment-timeout", "600ms"]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    let api = create(&admin, "rest-apis", "slow", "/slow").await;
    let uuid = api["uuid"].as_str().unwrap();
    let d = deploy(&admin, "rest-apis", "slow", "edge").await;
    let path = format!(
        "/api/v1/rest-apis/slow/deployments/{}",
        d["deploymentId"].as_str().unwrap()
    );
    let failed = eventually(
        Duration::from_secs(10),
        "the deploy to time out",
        || async {
            let (_, b) = admin.get(&path).await.unwrap();
            (b["status"] == "FAILED").then_some(b)
        },
    )
    .await
    .unwrap();
    assert_eq!(failed["statusReason"], "DEPLOYMENT_TIMEOUT");
    // The gateway applied it after all: its late success lands.
    assert!(ack(&gw, uuid, &d, "deploy", "success").await);
    assert_eq!(admin.get(&path).await.unwrap().1["status"], "DEPLOYED");
    // Undeploy, no ack: UNDEPLOYING times out too; a newer action is never swept by an old timeout.
    let (_, u) = admin
        .post(&format!("{path}/undeploy"), &json!({}))
        .await
        .unwrap();
    assert_eq!(u["status"], "UNDEPLOYING");
    let failed = eventually(
        Duration::from_secs(10),
        "the undeploy to time out",
        || async {
            let (_, b) = admin.get(&path).await.unwrap();
            (b["status"] == "FAILED").then_some(b)
        },
    )
    .await
    .unwrap();
    assert_eq!(failed["statusReason"], "DEPLOYMENT_TIMEOUT");
    // Deployed-then-acked quickly stays DEPLOYED past the timeout.
    let d2 = deploy(&admin, "rest-apis", "slow", "edge").await;
    assert!(ack(&gw, uuid, &d2, "deploy", "success").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p2 = format!(
        "/api/v1/rest-apis/slow/deployments/{}",
        d2["deploymentId"].as_str().unwrap()
    );
    assert_eq!(admin.get(&p2).await.unwrap().1["status"], "DEPLOYED");
}

/// Many concurrent writers in one organization: revisions are strictly increasing with no gaps,
/// and a reader tailing the log while they write never skips an event.
async fn change_log_is_gap_free_under_concurrent_writers(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    const WRITERS: usize = 8;
    const ROUNDS: usize = 6;
    for w in 0..WRITERS {
        create(
            &admin,
            "rest-apis",
            &format!("api-{w}"),
            &format!("/api-{w}"),
        )
        .await;
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let gw = gw.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<i64> = vec![];
            let mut after = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let (_, b) = gw
                    .get(&format!("/api/internal/v1/events?after={after}&limit=7"))
                    .await
                    .unwrap();
                for e in b["events"].as_array().unwrap() {
                    seen.push(e["revision"].as_i64().unwrap());
                }
                after = b["nextAfter"].as_i64().unwrap();
                if finished && b["events"].as_array().unwrap().is_empty() {
                    return seen;
                }
            }
        })
    };
    let mut writers = vec![];
    for w in 0..WRITERS {
        let admin = admin.clone();
        writers.push(tokio::spawn(async move {
            let base = format!("/api/v1/rest-apis/api-{w}/deployments");
            for _ in 0..ROUNDS {
                let (s, d) = admin
                    .post(&base, &json!({"gatewayId": "edge"}))
                    .await
                    .unwrap();
                assert_eq!(s, 201, "{d}");
                let dep = d["deploymentId"].as_str().unwrap();
                let (s, u) = admin
                    .post(&format!("{base}/{dep}/undeploy"), &json!({}))
                    .await
                    .unwrap();
                assert_eq!(s, 200, "{u}");
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let total = (WRITERS * ROUNDS * 2) as i64;
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "the tailing reader saw every revision once, in order"
    );
    // Per artifact, its events alternate deployed/undeployed in the order the writer made them.
    let all = events(&gw, 0).await;
    let mut per_api: std::collections::HashMap<String, Vec<String>> = Default::default();
    for e in &all {
        per_api
            .entry(e["payload"]["handle"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["type"].as_str().unwrap().to_owned());
    }
    for (api, types) in per_api {
        let expected: Vec<String> = (0..ROUNDS)
            .flat_map(|_| ["api.deployed".to_string(), "api.undeployed".to_string()])
            .collect();
        assert_eq!(types, expected, "{api}");
    }
    let distinct: HashSet<i64> = all
        .iter()
        .map(|e| e["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(distinct.len() as i64, total);
}

async fn compacted_log_asks_for_full_sync(backend: Backend) {
    let Some(p) = platform(backend, &["--event-retention", "1s"]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    create(&admin, "rest-apis", "orders", "/orders").await;
    deploy(&admin, "rest-apis", "orders", "edge").await;
    let (_, b) = gw.get("/api/internal/v1/events?after=0").await.unwrap();
    assert_eq!(b["fullSyncRequired"], false);
    let b: Value = eventually(
        Duration::from_secs(15),
        "the log to be compacted",
        || async {
            let (_, b) = gw.get("/api/internal/v1/events?after=0").await.unwrap();
            (b["fullSyncRequired"] == true).then_some(b)
        },
    )
    .await
    .unwrap();
    assert_eq!(b["events"], json!([]));
    assert_eq!(b["revision"], 1);
    // A gateway that already applied revision 1 is fine.
    let (_, b) = gw.get("/api/internal/v1/events?after=1").await.unwrap();
    assert_eq!(b["fullSyncRequired"], false);
    // New events after compaction replay normally.
    deploy(&admin, "rest-apis", "orders", "edge").await;
    let (_, b) = gw.get("/api/internal/v1/events?after=1").await.unwrap();
    assert_eq!(b["events"][0]["revision"], 2);
}
