//! Deletes reach every gateway, and deployment statuses tell the truth.

use std::path::Path;

use super::*;
use crate::common::*;
use gatehouse_testkit::Gateway;
use serde_json::json;

/// A delete reaches a second gateway that never had a deployment of the artifact; a refused
/// deploy shows FAILED with the gateway's reason; a deploy applied after its timeout ends DEPLOYED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_reach_every_gateway_and_statuses_tell_the_truth() {
    let mut env = setup(Backend::Sqlite, &["--deployment-timeout", "1s"], &[], false)
        .await
        .unwrap();
    // A second gateway of the organization.
    env.admin
        .post(
            "/api/v1/gateways",
            &json!({"id": "edge-2", "displayName": "Edge 2"}),
        )
        .await
        .unwrap();
    let (_, t2) = env
        .admin
        .post("/api/v1/gateways/edge-2/tokens", &json!({}))
        .await
        .unwrap();
    let gw2 = Gateway::start(
        Path::new(BIN),
        &[
            "--control-plane",
            &env.p.base,
            "--token",
            t2["token"].as_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    env.create("rest-apis", "shared").await;
    env.deploy("rest-apis", "shared").await;
    env.wait_probe("rest-apis", "shared", 200).await;
    assert_eq!(
        env.admin
            .delete("/api/v1/rest-apis/shared")
            .await
            .unwrap()
            .0,
        204
    );
    let (_, org) = env.admin.get("/api/v1/gateways/edge-2").await.unwrap();
    let want = org["status"]["orgRevision"].as_i64().unwrap();
    eventually(WAIT, "the second gateway to apply the delete", || async {
        let (_, s) = gw2.admin().get("/api/management/v1/status").await.ok()?;
        (s["appliedRevision"].as_i64() >= Some(want)).then_some(())
    })
    .await
    .unwrap();

    // A handle held by a gateway-created artifact: the deploy is refused and says why. (The
    // control plane's artifact comes first: once a gateway publishes a handle, the control
    // plane refuses to create another artifact under it.)
    env.create("rest-apis", "taken").await;
    let local = json!({"apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": "taken"},
        "spec": {"displayName": "taken", "context": "/local-taken", "upstream": {"main": {"url": env.up.url("")}}}});
    assert_eq!(
        env.gw
            .admin()
            .post("/api/management/v1/rest-apis", &local)
            .await
            .unwrap()
            .0,
        201
    );
    let d = env.deploy("rest-apis", "taken").await;
    let failed = env
        .wait_dep_status("rest-apis", "taken", &d, "FAILED")
        .await;
    assert_eq!(failed["statusReason"], "HANDLE_CONFLICT", "{failed}");

    // Deployed while the gateway is down: times out, then lands when the gateway applies it.
    env.gw.kill();
    env.create("rest-apis", "late").await;
    let d = env.deploy("rest-apis", "late").await;
    let f = env.wait_dep_status("rest-apis", "late", &d, "FAILED").await;
    assert_eq!(f["statusReason"], "DEPLOYMENT_TIMEOUT");
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    env.wait_probe("rest-apis", "late", 200).await;
    env.wait_dep_status("rest-apis", "late", &d, "DEPLOYED")
        .await;
    let _ = env.token.len();
}

/// An ack lost on the way (here: the platform's record set back to FAILED / DEPLOYMENT_TIMEOUT
/// as if the ack never came while the gateway serves the deployment) is made good by the next
/// full sync: the gateway sees the action unsettled and acknowledges it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_made_good_by_the_next_full_sync() {
    let env = setup(Backend::Sqlite, &[], &["--sync-interval", "1s"], false)
        .await
        .unwrap();
    env.create("rest-apis", "acked").await;
    let dep = env.deploy("rest-apis", "acked").await;
    env.wait_probe("rest-apis", "acked", 200).await;
    let status = || async {
        let (_, d) = env
            .admin
            .get(&format!("/api/v1/rest-apis/acked/deployments/{dep}"))
            .await
            .unwrap();
        d["status"].as_str().unwrap_or_default().to_owned()
    };
    eventually(WAIT, "the deploy to be acknowledged", || async {
        (status().await == "DEPLOYED").then_some(())
    })
    .await
    .unwrap();

    let db = database(&env.p).await;
    sqlx::query(
        "UPDATE deployment_status SET status = 'FAILED', status_reason = 'DEPLOYMENT_TIMEOUT' WHERE deployment_id = $1",
    )
    .bind(&dep)
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(status().await, "FAILED");
    eventually(WAIT, "the next full sync to acknowledge again", || async {
        (status().await == "DEPLOYED").then_some(())
    })
    .await
    .unwrap();
    assert_eq!(env.probe("rest-apis", "acked").await, 200);
}
