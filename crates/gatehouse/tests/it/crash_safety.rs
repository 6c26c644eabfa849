//! Crash safety: an acknowledged write survives a SIGKILL of the platform (SQLite and
//! PostgreSQL), and a gateway killed while applying restarts with an applied revision never
//! ahead of what its store holds, then converges.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::common::*;
use crate::lifecycle::{setup, WAIT};

both_backends!(acknowledged_writes_survive_a_sigkill_of_the_platform);

async fn acknowledged_writes_survive_a_sigkill_of_the_platform(backend: Backend) {
    let Some(mut p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let writer = {
        let (admin, acked) = (admin.clone(), acked.clone());
        tokio::spawn(async move {
            for i in 0..10_000 {
                let id = format!("crash-{i}");
                let body = artifact_body("rest-apis", &id, &format!("/{id}"));
                match admin.post("/api/v1/rest-apis", &body).await {
                    Ok((201, _)) => {
                        acked.lock().unwrap().insert(id);
                    }
                    _ => return,
                }
            }
        })
    };
    eventually(WAIT, "some writes acknowledged", || async {
        (acked.lock().unwrap().len() >= 20).then_some(())
    })
    .await
    .unwrap();
    // SIGKILL in the middle of the writes, then start again on the same database.
    p.restart().await.unwrap();
    let _ = writer.await;
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 20);
    let admin = p.login("default").await.unwrap();
    let (_, list) = admin.get("/api/v1/rest-apis?limit=1000").await.unwrap();
    let held: BTreeSet<String> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = acked.difference(&held).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_while_applying_restarts_consistent_and_converges() {
    let mut env = setup(Backend::Sqlite, &[], &[], true).await.unwrap();
    for i in 0..40 {
        env.create("rest-apis", &format!("bulk-{i}")).await;
    }
    for i in 0..40 {
        env.deploy("rest-apis", &format!("bulk-{i}")).await;
    }
    // Killed while the deploys stream in, restarted cut off from the control plane: what it
    // holds is exactly what it says it applied.
    env.gw.kill();
    env.relay.as_ref().unwrap().sever();
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    let (_, status) = env
        .gw
        .admin()
        .get("/api/management/v1/status")
        .await
        .unwrap();
    let applied = status["appliedRevision"].as_i64().unwrap();
    let gw_api =
        gatehouse_testkit::Client::anonymous(&env.p.base).with_header("api-key", &env.token);
    let events = events(&gw_api, 0).await;
    for e in &events {
        let revision = e["revision"].as_i64().unwrap();
        if e["type"] == "api.deployed" && revision <= applied {
            let handle = e["payload"]["handle"].as_str().unwrap();
            let (s, held) = env
                .gw
                .admin()
                .get(&format!("/api/management/v1/rest-apis/{handle}"))
                .await
                .unwrap();
            assert_eq!(
                s, 200,
                "revision {revision} applied but {handle} not held: {held}"
            );
        }
    }
    // Back in touch: it converges on everything.
    env.relay.as_ref().unwrap().heal();
    eventually(WAIT, "all 40 served", || async {
        let (_, s) = env.gw.admin().get("/api/management/v1/status").await.ok()?;
        (s["artifacts"]["deployed"] == 40).then_some(())
    })
    .await
    .unwrap();
}
