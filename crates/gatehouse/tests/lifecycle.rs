//! The lifecycle that must always hold (CONTRACT §7): a real platform, a real gateway connected
//! to it, and a real upstream, for each of the four kinds.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::relay::Relay;
use gatehouse_testkit::Gateway;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const WAIT: Duration = Duration::from_secs(20);

struct Env {
    p: Platform,
    admin: Client,
    gw: Gateway,
    up: EchoServer,
    relay: Option<Relay>,
    token: String,
}

async fn setup(
    backend: Backend,
    platform_extra: &[&str],
    gateway_extra: &[&str],
    via_relay: bool,
) -> Option<Env> {
    let p = platform(backend, platform_extra).await?;
    let admin = p.login("default").await.unwrap();
    let (s, _) = admin
        .post(
            "/api/v1/gateways",
            &json!({"id": "edge", "displayName": "Edge"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    let (_, t) = admin
        .post("/api/v1/gateways/edge/tokens", &json!({}))
        .await
        .unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    let up = EchoServer::start("upstream").await;
    let relay = if via_relay {
        Some(Relay::start(p.addr).await)
    } else {
        None
    };
    let cp = relay
        .as_ref()
        .map(|r| r.url())
        .unwrap_or_else(|| p.base.clone());
    let mut args = vec!["--control-plane", cp.as_str(), "--token", token.as_str()];
    args.extend_from_slice(gateway_extra);
    let gw = Gateway::start(Path::new(BIN), &args).await.unwrap();
    let env = Env {
        p,
        admin,
        gw,
        up,
        relay,
        token,
    };
    env.wait_connected().await;
    Some(env)
}

impl Env {
    async fn wait_connected(&self) {
        let admin = self.gw.admin();
        eventually(WAIT, "the gateway to connect", || async {
            let (_, s) = admin.get("/api/management/v1/status").await.ok()?;
            (s["controlPlane"]["connected"] == true).then_some(())
        })
        .await
        .unwrap();
    }

    fn body(&self, c: &str, id: &str) -> Value {
        let url = self.up.url("/up");
        match c {
            "rest-apis" => {
                json!({"id": id, "displayName": id, "projectId": "default", "context": format!("/{id}"), "upstream": {"main": {"url": url}}})
            }
            "llm-providers" => {
                json!({"id": id, "displayName": id, "template": "openai", "context": format!("/{id}"),
                                      "upstream": {"url": url, "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-x"}}})
            }
            "llm-proxies" => {
                json!({"id": id, "displayName": id, "projectId": "default", "context": format!("/{id}"), "provider": {"id": "base-provider"}})
            }
            "mcp-proxies" => {
                json!({"id": id, "displayName": id, "projectId": "default", "context": format!("/{id}"), "upstream": {"url": url}})
            }
            _ => unreachable!(),
        }
    }

    async fn create(&self, c: &str, id: &str) -> String {
        let (s, b) = self
            .admin
            .post(&format!("/api/v1/{c}"), &self.body(c, id))
            .await
            .unwrap();
        assert_eq!(s, 201, "{b}");
        b["uuid"].as_str().unwrap().to_owned()
    }

    async fn deploy(&self, c: &str, id: &str) -> String {
        let (s, b) = self
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/deployments"),
                &json!({"gatewayId": "edge"}),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{b}");
        b["deploymentId"].as_str().unwrap().to_owned()
    }

    async fn action(&self, c: &str, id: &str, dep: &str, what: &str) {
        let (s, b) = self
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/deployments/{dep}/{what}"),
                &json!({}),
            )
            .await
            .unwrap();
        assert_eq!(s, 200, "{what}: {b}");
    }

    /// The traffic status of the artifact's probe request.
    async fn probe(&self, c: &str, id: &str) -> u16 {
        let t = self.gw.traffic();
        let r = match c {
            "mcp-proxies" => {
                t.raw(reqwest::Method::POST, &format!("/{id}/mcp"), &[])
                    .await
            }
            _ => {
                t.raw(reqwest::Method::GET, &format!("/{id}/models"), &[])
                    .await
            }
        };
        r.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    async fn wait_probe(&self, c: &str, id: &str, want: u16) {
        eventually(WAIT, &format!("{c}/{id} to answer {want}"), || async {
            (self.probe(c, id).await == want).then_some(())
        })
        .await
        .unwrap();
    }

    async fn held(&self, c: &str, id: &str) -> (u16, Value) {
        self.gw
            .admin()
            .get(&format!("/api/management/v1/{c}/{id}"))
            .await
            .unwrap()
    }

    async fn wait_held_state(&self, c: &str, id: &str, state: Option<&str>) {
        eventually(WAIT, &format!("{c}/{id} held as {state:?}"), || async {
            let (s, b) = self.held(c, id).await;
            match state {
                None => (s == 404).then_some(()),
                Some(st) => (s == 200 && b["status"]["state"] == st).then_some(()),
            }
        })
        .await
        .unwrap();
    }

    async fn wait_dep_status(&self, c: &str, id: &str, dep: &str, status: &str) -> Value {
        eventually(
            WAIT,
            &format!("deployment of {c}/{id} to be {status}"),
            || async {
                let (_, b) = self
                    .admin
                    .get(&format!("/api/v1/{c}/{id}/deployments/{dep}"))
                    .await
                    .ok()?;
                (b["status"] == status).then_some(b)
            },
        )
        .await
        .unwrap()
    }

    async fn status(&self) -> Value {
        self.gw
            .admin()
            .get("/api/management/v1/status")
            .await
            .unwrap()
            .1
    }

    async fn base_provider(&self) {
        self.create("llm-providers", "base-provider").await;
        let d = self.deploy("llm-providers", "base-provider").await;
        self.wait_dep_status("llm-providers", "base-provider", &d, "DEPLOYED")
            .await;
    }
}

/// Kinds in an order where an LLM proxy's provider exists.
const KINDS: [&str; 4] = ["rest-apis", "mcp-proxies", "llm-providers", "llm-proxies"];

both_backends!(
    live_lifecycle_for_every_kind,
    changes_made_while_the_gateway_is_stopped_converge_on_start,
    seed_delete_after_deployment_delete_reaches_the_gateway,
);

async fn live_lifecycle_for_every_kind(backend: Backend) {
    let Some(env) = setup(backend, &[], &[], false).await else {
        return;
    };
    env.base_provider().await;
    for c in KINDS {
        let id = format!("live-{}", event_prefix(c));
        env.create(c, &id).await;
        assert_eq!(
            env.probe(c, &id).await,
            404,
            "{c}: not served before deploy"
        );
        // deploy → served, and DEPLOYED only on the gateway's ack
        let d = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &d, "DEPLOYED").await;
        let (_, held) = env.held(c, &id).await;
        assert_eq!(held["status"]["origin"], "control_plane");
        assert_eq!(held["status"]["deploymentId"], d.as_str());
        // undeploy → 404, held undeployed
        env.action(c, &id, &d, "undeploy").await;
        env.wait_probe(c, &id, 404).await;
        env.wait_dep_status(c, &id, &d, "UNDEPLOYED").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        // restore → served
        env.action(c, &id, &d, "restore").await;
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &d, "DEPLOYED").await;
        // delete while deployed → management 404 and traffic 404
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
        env.wait_probe(c, &id, 404).await;
        // delete while undeployed → management 404
        env.create(c, &id).await;
        let d = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.action(c, &id, &d, "undeploy").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
    }
    // The platform sees the gateway connected and in sync.
    let g = eventually(WAIT, "the gateway to be in sync", || async {
        let (_, g) = env.admin.get("/api/v1/gateways/edge").await.ok()?;
        (g["status"]["inSync"] == true && g["status"]["connected"] == true).then_some(g)
    })
    .await
    .unwrap();
    assert_eq!(g["status"]["appliedRevision"], g["status"]["orgRevision"]);
}

async fn changes_made_while_the_gateway_is_stopped_converge_on_start(backend: Backend) {
    let Some(mut env) = setup(backend, &[], &[], false).await else {
        return;
    };
    env.base_provider().await;
    let mut deps = std::collections::HashMap::new();
    // deploy while stopped
    env.gw.kill();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.create(c, &id).await;
        deps.insert(c, env.deploy(c, &id).await);
    }
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &deps[c], "DEPLOYED").await;
    }
    // undeploy while stopped (proxy before its provider is irrelevant: the base provider stays)
    env.gw.kill();
    for c in KINDS {
        env.action(
            c,
            &format!("sync-{}", event_prefix(c)),
            &deps[c],
            "undeploy",
        )
        .await;
    }
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.wait_probe(c, &id, 404).await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        env.wait_dep_status(c, &id, &deps[c], "UNDEPLOYED").await;
    }
    // restore while stopped
    env.gw.kill();
    for c in KINDS {
        env.action(c, &format!("sync-{}", event_prefix(c)), &deps[c], "restore")
            .await;
    }
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        env.wait_probe(c, &format!("sync-{}", event_prefix(c)), 200)
            .await;
    }
    // delete (deployed ones, and an undeployed one) while stopped
    env.gw.kill();
    for c in ["rest-apis", "mcp-proxies", "llm-proxies"] {
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/sync-{}", event_prefix(c)))
                .await
                .unwrap()
                .0,
            204
        );
    }
    env.action(
        "llm-providers",
        "sync-llmprovider",
        &deps["llm-providers"],
        "undeploy",
    )
    .await;
    assert_eq!(
        env.admin
            .delete("/api/v1/llm-providers/sync-llmprovider")
            .await
            .unwrap()
            .0,
        204
    );
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    for c in KINDS {
        let id = format!("sync-{}", event_prefix(c));
        env.wait_held_state(c, &id, None).await;
        env.wait_probe(c, &id, 404).await;
    }
    env.wait_connected().await;
}

/// The seed's first bug: deploy → undeploy → delete deployment → delete resource must still
/// reach the gateway; the same handle can then be created and deployed again.
async fn seed_delete_after_deployment_delete_reaches_the_gateway(backend: Backend) {
    let Some(env) = setup(backend, &[], &[], false).await else {
        return;
    };
    env.base_provider().await;
    for c in KINDS {
        let id = format!("seed-{}", event_prefix(c));
        env.create(c, &id).await;
        let d = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.action(c, &id, &d, "undeploy").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}/deployments/{d}"))
                .await
                .unwrap()
                .0,
            204
        );
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
        env.wait_probe(c, &id, 404).await;
        // Recreate the same handle, deploy: served (no "configuration already exists").
        env.create(c, &id).await;
        let d2 = env.deploy(c, &id).await;
        env.wait_probe(c, &id, 200).await;
        env.wait_dep_status(c, &id, &d2, "DEPLOYED").await;
    }
}

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

    // A handle held by a gateway-created artifact: the deploy is refused and says why.
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
    env.create("rest-apis", "taken").await;
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

/// The seed's second bug: keys must live exactly as long as their artifact, for REST APIs and
/// LLM proxies. Keys reach the gateway with the deploy and later as events (also when made
/// while the gateway is stopped); a revoke stops a key within a second; a key of one artifact
/// does not open another; deleting the deployment (artifact kept) and restarting keeps the
/// artifact and its keys; redeploying serves the old key; deleting the artifact removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_as_long_as_their_artifact() {
    let mut env = setup(Backend::Sqlite, &[], &["--sync-interval", "1s"], false)
        .await
        .unwrap();
    env.base_provider().await;
    // Another artifact with key auth: keys of the first must not open it.
    let mut other = env.body("rest-apis", "neighbour");
    other["policies"] = json!([{"name": "api-key-auth"}]);
    assert_eq!(
        env.admin.post("/api/v1/rest-apis", &other).await.unwrap().0,
        201
    );
    env.deploy("rest-apis", "neighbour").await;
    let traffic = env.gw.traffic();
    let call = |path: String, key: Option<String>| {
        let t = traffic.clone();
        async move {
            let headers: Vec<(&str, &str)> = match &key {
                Some(k) => vec![("api-key", k.as_str())],
                None => vec![],
            };
            t.raw(reqwest::Method::GET, &path, &headers)
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let wait_call = |path: String, key: Option<String>, want: u16| {
        let call = &call;
        async move {
            eventually(
                WAIT,
                &format!("{path} with {key:?} to answer {want}"),
                || {
                    let (path, key) = (path.clone(), key.clone());
                    async move { (call(path, key).await == want).then_some(()) }
                },
            )
            .await
            .unwrap()
        }
    };
    for c in ["rest-apis", "llm-proxies"] {
        let id = format!("keyed-{}", event_prefix(c));
        let path = format!("/{id}/models");
        let mut body = env.body(c, &id);
        body["policies"] = json!([{"name": "api-key-auth"}]);
        assert_eq!(
            env.admin
                .post(&format!("/api/v1/{c}"), &body)
                .await
                .unwrap()
                .0,
            201
        );
        let (s, k1) = env
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/api-keys"),
                &json!({"displayName": "first"}),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{k1}");
        let k1 = k1["apiKey"].as_str().unwrap().to_owned();
        assert!(k1.starts_with("ghk_") && k1.len() >= 40);
        let (_, listed) = env
            .admin
            .get(&format!("/api/v1/{c}/{id}/api-keys"))
            .await
            .unwrap();
        assert!(!listed.to_string().contains(&k1), "listing is masked");
        let d = env.deploy(c, &id).await;
        wait_call(path.clone(), Some(k1.clone()), 200).await;
        assert_eq!(call(path.clone(), None).await, 401);
        assert_eq!(
            call("/neighbour/models".into(), Some(k1.clone())).await,
            401,
            "a key opens only its artifact"
        );
        // A key made after the deploy arrives as an event; a revoke stops it within a second.
        let supplied = format!("supplied-key-{id}-0123456789");
        let (_, k2) = env
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/api-keys"),
                &json!({"id": "second", "displayName": "Second", "apiKey": supplied}),
            )
            .await
            .unwrap();
        assert_eq!(k2["apiKey"], supplied.as_str());
        wait_call(path.clone(), Some(supplied.clone()), 200).await;
        let revoked_at = std::time::Instant::now();
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}/api-keys/second"))
                .await
                .unwrap()
                .0,
            204
        );
        wait_call(path.clone(), Some(supplied.clone()), 401).await;
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "revocation took {:?}",
            revoked_at.elapsed()
        );
        // A key made while the gateway is stopped works once it is back.
        env.gw.kill();
        let (_, k3) = env
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/api-keys"),
                &json!({"displayName": "while stopped"}),
            )
            .await
            .unwrap();
        let k3 = k3["apiKey"].as_str().unwrap().to_owned();
        env.gw.respawn().unwrap();
        env.gw.wait_ready().await.unwrap();
        wait_call(path.clone(), Some(k3.clone()), 200).await;

        // Undeploy keeps the keys; deleting the deployment keeps artifact and keys (retained
        // by the periodic sync); so does a restart.
        env.action(c, &id, &d, "undeploy").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        assert_eq!(call(path.clone(), Some(k1.clone())).await, 404);
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}/deployments/{d}"))
                .await
                .unwrap()
                .0,
            204
        );
        eventually(WAIT, "a sync that retains it", || async {
            (env.status().await["lastSync"]["retained"].as_u64() >= Some(1)).then_some(())
        })
        .await
        .unwrap();
        env.gw.kill();
        env.gw.respawn().unwrap();
        env.gw.wait_ready().await.unwrap();
        env.wait_held_state(c, &id, Some("undeployed")).await;
        let (_, keys) = env
            .gw
            .admin()
            .get(&format!("/api/management/v1/{c}/{id}/api-keys"))
            .await
            .unwrap();
        assert_eq!(keys["count"], 3, "{keys}");
        // Redeploy: the old keys are served, the revoked one is not.
        env.deploy(c, &id).await;
        wait_call(path.clone(), Some(k1.clone()), 200).await;
        assert_eq!(call(path.clone(), Some(k3.clone())).await, 200);
        assert_eq!(call(path.clone(), Some(supplied.clone())).await, 401);
        // Deleting the artifact removes it and its keys everywhere.
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
        assert_eq!(
            env.gw
                .admin()
                .get(&format!("/api/management/v1/{c}/{id}/api-keys"))
                .await
                .unwrap()
                .0,
            404
        );
        wait_call(path, Some(k1), 404).await;
    }
}

/// Subscription plans and subscriptions, from the control plane to traffic: an artifact that
/// offers plans needs an active subscription (403), the plan's quota applies (429 with
/// RateLimit-* and Retry-After), the subscription header is not forwarded, and changes to
/// subscriptions reach the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_plan_quotas_are_enforced() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let (s, plan) = env
        .admin
        .post("/api/v1/subscription-plans", &json!({"id": "bronze", "displayName": "Bronze", "limits": [{"limitCount": 3, "timeUnit": "MINUTE", "stopOnQuotaReach": true}]}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{plan}");
    let (s, b) = env
        .admin
        .post(
            "/api/v1/subscription-plans",
            &json!({"displayName": "Bad", "limits": [{"limitCount": 3, "timeUnit": "WEEK"}]}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("limits[0].timeUnit")));
    let mut body = env.body("rest-apis", "metered");
    body["subscriptionPlans"] = json!(["bronze"]);
    assert_eq!(
        env.admin.post("/api/v1/rest-apis", &body).await.unwrap().0,
        201
    );
    let mut bad = env.body("rest-apis", "unmetered");
    bad["subscriptionPlans"] = json!(["gold"]);
    assert_eq!(
        env.admin.post("/api/v1/rest-apis", &bad).await.unwrap().1["field"],
        "subscriptionPlans[0]"
    );
    env.deploy("rest-apis", "metered").await;
    env.wait_probe("rest-apis", "metered", 403).await;

    let (s, sub) = env
        .admin
        .post("/api/v1/subscriptions", &json!({"artifactId": "metered", "kind": "RestApi", "subscriberId": "team-a", "planId": "bronze"}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{sub}");
    let token = sub["subscriptionToken"].as_str().unwrap().to_owned();
    let (_, listed) = env
        .admin
        .get("/api/v1/subscriptions?artifactId=metered")
        .await
        .unwrap();
    assert_eq!(listed["count"], 1);
    assert!(
        !listed.to_string().contains(&token),
        "the token is shown once"
    );
    let t = env.gw.traffic();
    let call = |tok: &str| {
        let (t, tok) = (t.clone(), tok.to_owned());
        async move {
            t.raw(
                reqwest::Method::GET,
                "/metered/x",
                &[("subscription-key", tok.as_str())],
            )
            .await
            .unwrap()
        }
    };
    eventually(WAIT, "the subscription to reach the gateway", || async {
        (call(&token).await.status() == 200).then_some(())
    })
    .await
    .unwrap();
    // That was request 1 of 3 in this minute.
    let r = call(&token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-limit"], "3");
    assert_eq!(r.headers()["ratelimit-remaining"], "1");
    let echoed: Value = r.json().await.unwrap();
    assert!(
        echoed["headers"].get("subscription-key").is_none(),
        "not forwarded upstream"
    );
    assert_eq!(call(&token).await.status(), 200);
    let r = call(&token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(call("not-a-subscription").await.status(), 403);
    // The window resets when Retry-After said it would.
    tokio::time::sleep(Duration::from_millis(retry * 1000 + 300)).await;
    let r = call(&token).await;
    assert_eq!(r.status(), 200, "a new window");
    assert_eq!(r.headers()["ratelimit-remaining"], "2");

    // Inactive, then deleted: refused.
    let sid = sub["id"].as_str().unwrap();
    let (s, _) = env
        .admin
        .put(
            &format!("/api/v1/subscriptions/{sid}"),
            &json!({"status": "INACTIVE"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    eventually(WAIT, "the inactive subscription to be refused", || async {
        (call(&token).await.status() == 403).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.admin
            .delete("/api/v1/subscription-plans/bronze")
            .await
            .unwrap()
            .0,
        409,
        "a plan in use is kept"
    );
    assert_eq!(
        env.admin
            .delete(&format!("/api/v1/subscriptions/{sid}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        env.admin
            .get(&format!("/api/v1/subscriptions/{sid}"))
            .await
            .unwrap()
            .0,
        404
    );

    // Another organization sees none of it.
    env.admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other", "displayName": "Other"}),
        )
        .await
        .unwrap();
    let other = env.p.login("other").await.unwrap();
    assert_eq!(
        other
            .get("/api/v1/subscription-plans/bronze")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        other.get("/api/v1/subscriptions").await.unwrap().1["count"],
        0
    );
    let (s, _) = other
        .post(
            "/api/v1/subscriptions",
            &json!({"artifactId": "metered", "kind": "RestApi", "subscriberId": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(
        s, 400,
        "another organization's artifact cannot be subscribed to"
    );
}
