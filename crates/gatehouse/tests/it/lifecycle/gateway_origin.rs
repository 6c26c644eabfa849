//! Gateway-origin artifacts: what is created on a connected gateway's management API shows in
//! the control plane with its origin, read-only; edits and deletes follow; what was created
//! while the control plane was unreachable appears after the reconnect; a handle conflict is
//! reported on both sides and overwrites nothing; a full sync leaves local artifacts alone.

use super::*;
use crate::common::*;
use serde_json::{json, Value};

fn local_doc(env: &Env, name: &str, display: &str) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": name},
        "spec": {"displayName": display, "version": "v1.0", "context": format!("/{name}"),
                 "upstream": {"main": {"url": env.up.url("/up")}}}
    })
}

async fn create_local(env: &Env, name: &str) {
    let (s, b) = env
        .gw
        .admin()
        .post("/api/management/v1/rest-apis", &local_doc(env, name, name))
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
}

/// Waits until the control plane shows `name` (or, with `None`, no longer shows it).
async fn wait_listed(env: &Env, name: &str, display: Option<&str>) -> Value {
    eventually(
        WAIT,
        &format!("rest-apis/{name} listed as {display:?}"),
        || async {
            let (s, b) = env
                .admin
                .get(&format!("/api/v1/rest-apis/{name}"))
                .await
                .ok()?;
            match display {
                None => (s == 404).then_some(b),
                Some(d) => (s == 200 && b["displayName"] == d).then_some(b),
            }
        },
    )
    .await
    .unwrap()
}

async fn published_state(env: &Env, name: &str) -> Value {
    env.held("rest-apis", name).await.1["status"]["controlPlane"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_made_on_a_gateway_show_in_the_control_plane_read_only() {
    let env = setup(Backend::Sqlite, &[], &["--sync-interval", "1s"], false)
        .await
        .unwrap();
    create_local(&env, "local-api").await;
    let shown = wait_listed(&env, "local-api", Some("local-api")).await;
    assert_eq!(shown["origin"], "gateway", "{shown}");
    assert_eq!(shown["gatewayId"], "edge", "{shown}");
    assert_eq!(shown["gatewayState"], "DEPLOYED", "{shown}");
    let state = published_state(&env, "local-api").await;
    assert_eq!(state["state"], "published", "{state}");
    assert_eq!(state["artifactId"], shown["uuid"], "{state}");
    env.wait_probe("rest-apis", "local-api", 200).await;

    // Read-only in the control plane, with the reason.
    let mut body = env.body("rest-apis", "local-api");
    body["displayName"] = json!("changed here");
    let refusals = [
        env.admin
            .put("/api/v1/rest-apis/local-api", &body)
            .await
            .unwrap(),
        env.admin
            .delete("/api/v1/rest-apis/local-api")
            .await
            .unwrap(),
        env.admin
            .post(
                "/api/v1/rest-apis/local-api/deployments",
                &json!({"gatewayId": "edge"}),
            )
            .await
            .unwrap(),
        env.admin
            .post(
                "/api/v1/rest-apis/local-api/api-keys",
                &json!({"displayName": "k"}),
            )
            .await
            .unwrap(),
    ];
    for (s, b) in refusals {
        assert_eq!(s, 409, "{b}");
        assert!(
            b["message"].as_str().unwrap().contains("gateway 'edge'"),
            "{b}"
        );
    }
    // A control-plane artifact cannot take its handle.
    let (s, b) = env
        .admin
        .post("/api/v1/rest-apis", &env.body("rest-apis", "local-api"))
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("gateway 'edge'"),
        "{b}"
    );

    // Edits on the gateway follow.
    let (s, b) = env
        .gw
        .admin()
        .put(
            "/api/management/v1/rest-apis/local-api",
            &local_doc(&env, "local-api", "Edited on the gateway"),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    wait_listed(&env, "local-api", Some("Edited on the gateway")).await;

    // A periodic full sync leaves it in place on both sides.
    let synced = env.status().await["lastSync"]["at"].clone();
    eventually(WAIT, "another full sync", || async {
        (env.status().await["lastSync"]["at"] != synced).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(env.held("rest-apis", "local-api").await.0, 200);
    assert_eq!(
        env.admin
            .get("/api/v1/rest-apis/local-api")
            .await
            .unwrap()
            .0,
        200
    );

    // A handle the control plane already holds: reported on both sides, nothing overwritten.
    let cp_uuid = env.create("rest-apis", "taken").await;
    create_local(&env, "taken").await;
    let state = eventually(WAIT, "the conflict to be reported", || async {
        let s = published_state(&env, "taken").await;
        (s["state"] == "conflict").then_some(s)
    })
    .await
    .unwrap();
    assert!(
        state["message"]
            .as_str()
            .unwrap()
            .contains("already exists in the control plane"),
        "{state}"
    );
    let (_, gw_view) = env.admin.get("/api/v1/gateways/edge").await.unwrap();
    assert_eq!(gw_view["publishConflicts"][0]["id"], "taken", "{gw_view}");
    let (_, cp) = env.admin.get("/api/v1/rest-apis/taken").await.unwrap();
    assert_eq!(
        (cp["uuid"].as_str(), cp["origin"].as_str()),
        (Some(cp_uuid.as_str()), Some("control-plane"))
    );
    let status = env.status().await;
    assert_eq!(status["published"]["refused"][0]["id"], "taken", "{status}");
    // Once the control plane's artifact is deleted, the gateway's is published.
    assert_eq!(
        env.admin.delete("/api/v1/rest-apis/taken").await.unwrap().0,
        204
    );
    let shown = wait_listed(&env, "taken", Some("taken")).await;
    assert_eq!(shown["origin"], "gateway", "{shown}");
    let (_, gw_view) = env.admin.get("/api/v1/gateways/edge").await.unwrap();
    assert!(gw_view.get("publishConflicts").is_none(), "{gw_view}");

    // Deleted on the gateway: gone from the control plane.
    assert_eq!(
        env.gw
            .admin()
            .delete("/api/management/v1/rest-apis/local-api")
            .await
            .unwrap()
            .0,
        204
    );
    wait_listed(&env, "local-api", None).await;

    // The gateway deleted from the control plane: its artifacts go with it.
    let (s, b) = env
        .admin
        .delete("/api/v1/gateways/edge?force=true")
        .await
        .unwrap();
    assert_eq!(s, 204, "{b}");
    wait_listed(&env, "taken", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_made_while_the_control_plane_is_away_appears_after_the_reconnect() {
    let env = setup(Backend::Sqlite, &[], &[], true).await.unwrap();
    let relay = env.relay.as_ref().unwrap();
    create_local(&env, "before").await;
    wait_listed(&env, "before", Some("before")).await;

    relay.sever();
    create_local(&env, "offline").await;
    assert_eq!(
        env.gw
            .admin()
            .delete("/api/management/v1/rest-apis/before")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(published_state(&env, "offline").await["state"], "pending");
    relay.heal();
    wait_listed(&env, "offline", Some("offline")).await;
    wait_listed(&env, "before", None).await;

    // Publishing refused on the way (a 500): retried with back-off until it lands.
    relay.refuse_requests_containing(Some("gateway-artifacts"));
    create_local(&env, "retried").await;
    eventually(WAIT, "a refused publish", || async {
        env.gw
            .process
            .output()
            .contains("publishing local artifacts to the control plane failed")
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(published_state(&env, "retried").await["state"], "pending");
    assert_eq!(
        env.admin.get("/api/v1/rest-apis/retried").await.unwrap().0,
        404
    );
    relay.refuse_requests_containing(None);
    wait_listed(&env, "retried", Some("retried")).await;
}
