//! Connections: cuts, replicas, revoked tokens and deleted gateways, several connections per gateway.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::common::*;
use gatehouse_testkit::Gateway;
use serde_json::json;

/// A change made while the connection is cut (both processes running) converges without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_during_a_connection_cut_converge_without_restart() {
    let env = setup(Backend::Sqlite, &[], &[], true).await.unwrap();
    let relay = env.relay.as_ref().unwrap();
    env.create("rest-apis", "cut").await;
    let d = env.deploy("rest-apis", "cut").await;
    env.wait_probe("rest-apis", "cut", 200).await;
    relay.sever();
    eventually(WAIT, "the gateway to notice the cut", || async {
        (env.status().await["controlPlane"]["connected"] == false).then_some(())
    })
    .await
    .unwrap();
    env.action("rest-apis", "cut", &d, "undeploy").await;
    env.create("rest-apis", "while-cut").await;
    let d2 = env.deploy("rest-apis", "while-cut").await;
    // Still serving its last-known state while cut off.
    assert_eq!(env.probe("rest-apis", "cut").await, 200);
    relay.heal();
    env.wait_probe("rest-apis", "cut", 404).await;
    env.wait_probe("rest-apis", "while-cut", 200).await;
    env.wait_dep_status("rest-apis", "while-cut", &d2, "DEPLOYED")
        .await;
}

/// Two platform replicas on one PostgreSQL database: a gateway connected to one gets, within a
/// second, the events of changes made through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_another_replica_reaches_the_gateway() {
    if std::env::var(gatehouse_testkit::PG_ENV).is_err() {
        eprintln!("skipped: {} is not set", gatehouse_testkit::PG_ENV);
        return;
    }
    let env = setup(Backend::Postgres, &[], &[], false).await.unwrap();
    let replica = env.p.replica().await.unwrap();
    let b = Client::anonymous(&replica.base);
    let (s, login) = b
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": env.p.admin_password}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    let b = b.with_bearer(login["token"].as_str().unwrap());
    let mut worst = Duration::ZERO;
    for i in 0..3 {
        let id = format!("via-b-{i}");
        let (s, _) = b
            .post("/api/v1/rest-apis", &env.body("rest-apis", &id))
            .await
            .unwrap();
        assert_eq!(s, 201);
        let started = std::time::Instant::now();
        let (s, d) = b
            .post(
                &format!("/api/v1/rest-apis/{id}/deployments"),
                &json!({"gatewayId": "edge"}),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{d}");
        env.wait_probe("rest-apis", &id, 200).await;
        worst = worst.max(started.elapsed());
        // The ack went to replica A; both replicas read the same status.
        let dep = d["deploymentId"].as_str().unwrap();
        env.wait_dep_status("rest-apis", &id, dep, "DEPLOYED").await;
    }
    assert!(
        worst < Duration::from_secs(1),
        "a change through the other replica took {worst:?}"
    );
    // The token of the gateway, revoked through replica B, closes its socket on replica A.
    let (_, tokens) = b.get("/api/v1/gateways/edge/tokens").await.unwrap();
    let tid = tokens[0]["id"].as_str().unwrap();
    assert_eq!(
        b.delete(&format!("/api/v1/gateways/edge/tokens/{tid}"))
            .await
            .unwrap()
            .0,
        204
    );
    eventually(WAIT, "the gateway to be disconnected", || async {
        (env.status().await["controlPlane"]["connected"] == false).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_token_or_deleting_the_gateway_closes_its_connection() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let (_, tokens) = env.admin.get("/api/v1/gateways/edge/tokens").await.unwrap();
    let tid = tokens[0]["id"].as_str().unwrap();
    assert_eq!(
        env.admin
            .delete(&format!("/api/v1/gateways/edge/tokens/{tid}"))
            .await
            .unwrap()
            .0,
        204
    );
    eventually(
        Duration::from_secs(5),
        "the connection to close",
        || async { (env.status().await["controlPlane"]["connected"] == false).then_some(()) },
    )
    .await
    .unwrap();
    // It cannot come back with the revoked token.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = env.status().await;
    assert_eq!(s["controlPlane"]["connected"], false, "{s}");
    assert!(
        s["controlPlane"]["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("401"),
        "{s}"
    );

    // A second gateway, deleted: its connection closes too.
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
    let connected = |want: bool| {
        let admin = gw2.admin();
        async move {
            eventually(
                Duration::from_secs(10),
                "gateway 2's connection state",
                || async {
                    let (_, s) = admin.get("/api/management/v1/status").await.ok()?;
                    (s["controlPlane"]["connected"] == want).then_some(())
                },
            )
            .await
            .unwrap()
        }
    };
    connected(true).await;
    assert_eq!(
        env.admin.delete("/api/v1/gateways/edge-2").await.unwrap().0,
        204
    );
    connected(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_of_a_gateway_gets_every_event() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let twin = Gateway::start(
        Path::new(BIN),
        &["--control-plane", &env.p.base, "--token", &env.token],
    )
    .await
    .unwrap();
    env.create("rest-apis", "both").await;
    env.deploy("rest-apis", "both").await;
    env.wait_probe("rest-apis", "both", 200).await;
    eventually(WAIT, "the twin to serve it too", || async {
        let r = twin
            .traffic()
            .raw(reqwest::Method::GET, "/both/models", &[])
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .unwrap();
}
