//! The full sync: retention, orphans without the existence capability, a failing existence check, replay versus full sync.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::common::*;
use gatehouse_testkit::Gateway;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_deployment_is_retained_undeployed_by_the_periodic_sync() {
    let env = setup(Backend::Sqlite, &[], &["--sync-interval", "1s"], false)
        .await
        .unwrap();
    env.create("rest-apis", "kept").await;
    let d = env.deploy("rest-apis", "kept").await;
    env.wait_probe("rest-apis", "kept", 200).await;
    env.action("rest-apis", "kept", &d, "undeploy").await;
    env.wait_held_state("rest-apis", "kept", Some("undeployed"))
        .await;
    assert_eq!(
        env.admin
            .delete(&format!("/api/v1/rest-apis/kept/deployments/{d}"))
            .await
            .unwrap()
            .0,
        204
    );
    // A full sync no longer sees it in /deployments, asks /artifacts/exists, and retains it.
    let status = eventually(WAIT, "a sync that retains the artifact", || async {
        let s = env.status().await;
        (s["lastSync"]["retained"].as_u64() >= Some(1)).then_some(s)
    })
    .await
    .unwrap();
    assert_eq!(status["lastSync"]["deleted"], 0);
    let (s, held) = env.held("rest-apis", "kept").await;
    assert_eq!(
        (s, held["status"]["state"].as_str()),
        (200, Some("undeployed"))
    );
    // Redeploy: served again.
    let d2 = env.deploy("rest-apis", "kept").await;
    env.wait_probe("rest-apis", "kept", 200).await;
    env.wait_dep_status("rest-apis", "kept", &d2, "DEPLOYED")
        .await;
    // Nothing changed: a periodic sync fetches nothing again.
    let s = eventually(WAIT, "a sync with nothing to do", || async {
        let s = env.status().await;
        (s["lastSync"]["fetched"] == 0
            && s["lastSync"]["unchanged"].as_u64() >= Some(1)
            && s["lastSync"]["retained"] == 0)
            .then_some(s)
    })
    .await
    .unwrap();
    assert_eq!(s["lastSync"]["statusUpdated"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_artifacts_exists_orphans_are_deleted() {
    let env = setup(
        Backend::Sqlite,
        &["--disable-capability", "artifacts.exists"],
        &["--sync-interval", "1s"],
        false,
    )
    .await
    .unwrap();
    let status = env.status().await;
    assert!(!status["controlPlane"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "artifacts.exists"));
    env.create("mcp-proxies", "orphan").await;
    let d = env.deploy("mcp-proxies", "orphan").await;
    env.wait_probe("mcp-proxies", "orphan", 200).await;
    env.action("mcp-proxies", "orphan", &d, "undeploy").await;
    env.wait_held_state("mcp-proxies", "orphan", Some("undeployed"))
        .await;
    assert_eq!(
        env.admin
            .delete(&format!("/api/v1/mcp-proxies/orphan/deployments/{d}"))
            .await
            .unwrap()
            .0,
        204
    );
    env.wait_held_state("mcp-proxies", "orphan", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_existence_check_deletes_nothing() {
    let env = setup(Backend::Sqlite, &[], &["--sync-interval", "1s"], true)
        .await
        .unwrap();
    env.relay
        .as_ref()
        .unwrap()
        .refuse_requests_containing(Some("/artifacts/exists"));
    env.create("rest-apis", "precious").await;
    let d = env.deploy("rest-apis", "precious").await;
    env.wait_probe("rest-apis", "precious", 200).await;
    env.action("rest-apis", "precious", &d, "undeploy").await;
    env.wait_held_state("rest-apis", "precious", Some("undeployed"))
        .await;
    assert_eq!(
        env.admin
            .delete(&format!("/api/v1/rest-apis/precious/deployments/{d}"))
            .await
            .unwrap()
            .0,
        204
    );
    // Syncs run and fail their existence check: the artifact stays.
    eventually(WAIT, "a sync that kept the candidate", || async {
        let s = env.status().await;
        (s["lastSync"]["retained"].as_u64() >= Some(1) && s["lastSync"]["deleted"] == 0)
            .then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, held) = env.held("rest-apis", "precious").await;
    assert_eq!(
        (s, held["status"]["state"].as_str()),
        (200, Some("undeployed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_full_sync_end_in_the_same_state() {
    let mut env = setup(Backend::Sqlite, &["--event-retention", "1s"], &[], false)
        .await
        .unwrap();
    for id in ["r1", "r2", "r3"] {
        env.create("rest-apis", id).await;
        env.deploy("rest-apis", id).await;
        env.wait_probe("rest-apis", id, 200).await;
    }
    let first = env.status().await;
    assert_eq!(first["lastSync"]["reason"], "first start");
    // Behind by a few events, within retention: replayed, no full sync.
    env.gw.kill();
    let (_, deps) = env
        .admin
        .get("/api/v1/rest-apis/r1/deployments")
        .await
        .unwrap();
    let d1 = deps["list"][0]["deploymentId"].as_str().unwrap().to_owned();
    env.action("rest-apis", "r1", &d1, "undeploy").await;
    env.create("rest-apis", "r4").await;
    env.deploy("rest-apis", "r4").await;
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    env.wait_probe("rest-apis", "r4", 200).await;
    env.wait_probe("rest-apis", "r1", 404).await;
    let replayed = env.status().await;
    assert_eq!(
        replayed["lastSync"],
        json!(null),
        "a replay runs no full sync: {replayed}"
    );
    assert!(replayed["controlPlane"]["eventsApplied"].as_u64() >= Some(2));

    // Behind the retained log: a full sync.
    env.gw.kill();
    assert_eq!(
        env.admin.delete("/api/v1/rest-apis/r2").await.unwrap().0,
        204
    );
    tokio::time::sleep(Duration::from_millis(2500)).await; // past the 1 s retention and its compaction
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    env.wait_probe("rest-apis", "r2", 404).await;
    let synced = eventually(WAIT, "a full sync", || async {
        let s = env.status().await;
        (s["lastSync"]["reason"] == "behind the retained log").then_some(s)
    })
    .await
    .unwrap();
    assert_eq!(synced["lastSync"]["deleted"], 1, "{synced}");

    // A gateway with an empty store: a full sync; the same artifacts in the same states.
    let (_, t) = env
        .admin
        .post("/api/v1/gateways/edge/tokens", &json!({}))
        .await
        .unwrap();
    let fresh = Gateway::start(
        Path::new(BIN),
        &[
            "--control-plane",
            &env.p.base,
            "--token",
            t["token"].as_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    let held = |g: &Gateway| {
        let admin = g.admin();
        async move {
            let (_, l) = admin.get("/api/management/v1/rest-apis").await.unwrap();
            let mut v: Vec<(String, String, String)> = l["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["metadata"]["name"].as_str().unwrap().to_owned(),
                        a["status"]["state"].as_str().unwrap().to_owned(),
                        a["status"]["deploymentId"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect();
            v.sort();
            v
        }
    };
    let want = held(&env.gw).await;
    eventually(WAIT, "the fresh gateway to hold the same", || async {
        (held(&fresh).await == want).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(want.len(), 3, "{want:?}");
}

/// A platform whose database is restored from a backup counts its revisions again from an
/// earlier point. The gateway syncs fully on reconnect and then follows the platform's events
/// from there, instead of skipping them as already applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_restored_from_a_backup_is_followed_again() {
    let mut env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    env.create("rest-apis", "before").await;
    env.deploy("rest-apis", "before").await;
    env.wait_probe("rest-apis", "before", 200).await;

    // A backup, taken with the platform stopped.
    let db = env.p.db.dir.path().to_owned();
    let backup = gatehouse_testkit::TempDir::new("platform-backup").unwrap();
    let files = ["platform.db", "platform.db-wal", "platform.db-shm"];
    env.p.process.kill();
    for f in files {
        if db.join(f).exists() {
            std::fs::copy(db.join(f), backup.path().join(f)).unwrap();
        }
    }
    env.p.restart().await.unwrap();

    // Changes the backup does not hold.
    for id in ["lost-1", "lost-2"] {
        env.create("rest-apis", id).await;
        env.deploy("rest-apis", id).await;
    }
    env.wait_probe("rest-apis", "lost-2", 200).await;

    // The database is restored: its log is behind what the gateway applied.
    env.p.process.kill();
    for f in files {
        let _ = std::fs::remove_file(db.join(f));
        if backup.path().join(f).exists() {
            std::fs::copy(backup.path().join(f), db.join(f)).unwrap();
        }
    }
    env.p.restart().await.unwrap();
    env.wait_probe("rest-apis", "lost-2", 404).await;
    env.wait_probe("rest-apis", "before", 200).await;

    // A change made now carries a revision the gateway had passed before the restore.
    env.create("rest-apis", "after").await;
    env.deploy("rest-apis", "after").await;
    env.wait_probe("rest-apis", "after", 200).await;
}
