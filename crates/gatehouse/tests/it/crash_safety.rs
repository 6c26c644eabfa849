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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_under_a_running_platform_is_reconnected_and_gateways_keep_serving() {
    use gatehouse_testkit::private_pg::PrivatePostgres;
    use gatehouse_testkit::{Client, Gateway};
    use std::path::Path;

    let pg = match PrivatePostgres::start() {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("skipped: {e:#}");
            return;
        }
    };
    let db = TestDatabase::at(&pg.url()).unwrap();
    let p = Platform::start(Path::new(BIN), db, &[]).await.unwrap();
    let admin = p.login("default").await.unwrap();
    let (s, _) = admin
        .post(
            "/api/v1/gateways",
            &serde_json::json!({"id": "edge", "displayName": "Edge"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    let (_, t) = admin
        .post("/api/v1/gateways/edge/tokens", &serde_json::json!({}))
        .await
        .unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    let gw = Gateway::start(
        Path::new(BIN),
        &["--control-plane", &p.base, "--token", &token],
    )
    .await
    .unwrap();
    let traffic = gw.traffic();
    let up = gatehouse_testkit::echo::EchoServer::start("upstream").await;
    let deploy = |id: &'static str| {
        let (admin, url) = (admin.clone(), up.url("/up"));
        async move {
            let body = serde_json::json!({"id": id, "displayName": id, "projectId": "default",
                "context": format!("/{id}"), "upstream": {"main": {"url": url}}});
            let (s, _) = admin.post("/api/v1/rest-apis", &body).await.ok()?;
            if s != 201 && s != 409 {
                return None;
            }
            let (s, _) = admin
                .post(
                    &format!("/api/v1/rest-apis/{id}/deployments"),
                    &serde_json::json!({"gatewayId": "edge"}),
                )
                .await
                .ok()?;
            (s == 201).then_some(())
        }
    };
    deploy("before").await.unwrap();
    let served = |path: &'static str| {
        let traffic = traffic.clone();
        async move {
            let (s, _) = traffic.get(path).await.ok()?;
            (s == 200).then_some(())
        }
    };
    eventually(crate::lifecycle::WAIT, "the first API served", || {
        served("/before/x")
    })
    .await
    .unwrap();

    // The database goes away: the platform says so, the gateway keeps serving.
    pg.stop().unwrap();
    let health = Client::anonymous(&p.base);
    eventually(
        crate::lifecycle::WAIT,
        "the platform to report the database down",
        || async {
            let (s, _) = health.get("/health").await.ok()?;
            (s == 503).then_some(())
        },
    )
    .await
    .unwrap();
    for _ in 0..20 {
        assert_eq!(
            served("/before/x").await,
            Some(()),
            "served while the database is down"
        );
    }

    // Back: the platform reconnects on its own, and a new change reaches the gateway.
    pg.start_again().unwrap();
    eventually(
        crate::lifecycle::WAIT,
        "the platform healthy again",
        || async {
            let (s, _) = health.get("/health").await.ok()?;
            (s == 200).then_some(())
        },
    )
    .await
    .unwrap();
    eventually(crate::lifecycle::WAIT, "a deploy after the restart", || {
        deploy("after")
    })
    .await
    .unwrap();
    eventually(crate::lifecycle::WAIT, "the new API served", || {
        served("/after/x")
    })
    .await
    .unwrap();
}
