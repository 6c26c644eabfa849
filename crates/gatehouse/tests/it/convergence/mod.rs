//! Randomized convergence: seeded sequences of creates, deploys, undeploys, restores, deletes,
//! key creations and revocations, gateway kills and restarts and connection cuts; afterwards the gateway's state equals the
//! platform's desired state for it, and nothing deleted is served.
//!
//! `GATEHOUSE_CONVERGENCE_SEEDS=N` (default 2) and `GATEHOUSE_CONVERGENCE_STEPS=M` (default 40)
//! run more.

use std::collections::BTreeMap;
use std::time::Duration;

mod check;
mod fleet;

use crate::common::*;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::relay::Relay;
use gatehouse_testkit::Gateway;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const KINDS: [&str; 2] = ["rest-apis", "mcp-proxies"];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct World {
    admin: Client,
    internal: Client,
    gw: Gateway,
    relay: Relay,
    up: EchoServer,
    rng: StdRng,
    gateway_up: bool,
    severed: bool,
    /// Steps left before the gateway restarts / the connection heals.
    down_for: u32,
    cut_for: u32,
    next: u32,
    /// Every artifact ever created: (collection, handle) → still exists on the platform.
    artifacts: BTreeMap<(String, String), bool>,
    /// Artifacts that were deployed at least once: deletes prefer them.
    deployed_once: std::collections::BTreeSet<(String, String)>,
    log: Vec<String>,
}

impl World {
    /// Handles of the artifacts that still exist on the platform.
    fn existing(&self) -> std::collections::HashSet<String> {
        check::existing(&self.artifacts)
    }

    fn body(&self, c: &str, id: &str) -> Value {
        check::body(c, id, &self.up.url(""))
    }

    fn pick_existing(&mut self) -> Option<(String, String)> {
        check::pick(&self.artifacts, &mut self.rng)
    }

    fn pick_deployed_once(&mut self) -> Option<(String, String)> {
        let live: Vec<_> = self
            .deployed_once
            .iter()
            .filter(|k| self.artifacts.get(*k) == Some(&true))
            .cloned()
            .collect();
        (!live.is_empty()).then(|| live[self.rng.gen_range(0..live.len())].clone())
    }

    async fn deployments(&self, c: &str, id: &str) -> Vec<Value> {
        let (_, b) = self
            .admin
            .get(&format!("/api/v1/{c}/{id}/deployments"))
            .await
            .unwrap();
        b["list"].as_array().cloned().unwrap_or_default()
    }

    async fn step(&mut self) {
        let roll = self.rng.gen_range(0..100);
        let entry = match roll {
            0..=19 => {
                let c = KINDS[self.rng.gen_range(0..2)];
                self.next += 1;
                let id = format!("a{}", self.next);
                let (s, _) = self
                    .admin
                    .post(&format!("/api/v1/{c}"), &self.body(c, &id))
                    .await
                    .unwrap();
                self.artifacts.insert((c.to_owned(), id.clone()), s == 201);
                format!("create {c}/{id}: {s}")
            }
            20..=49 => match self.pick_existing() {
                Some((c, id)) => {
                    let (s, _) = self
                        .admin
                        .post(
                            &format!("/api/v1/{c}/{id}/deployments"),
                            &json!({"gatewayId": "edge"}),
                        )
                        .await
                        .unwrap();
                    if s == 201 {
                        self.deployed_once.insert((c.clone(), id.clone()));
                    }
                    format!("deploy {c}/{id}: {s}")
                }
                None => "deploy: nothing".into(),
            },
            50..=66 => match self.pick_existing() {
                Some((c, id)) => {
                    let deps = self.deployments(&c, &id).await;
                    if deps.is_empty() {
                        "no deployment".into()
                    } else {
                        let d = &deps[self.rng.gen_range(0..deps.len())];
                        let dep = d["deploymentId"].as_str().unwrap();
                        let what = ["undeploy", "restore", "delete"][self.rng.gen_range(0..3)];
                        let s = if what == "delete" {
                            self.admin
                                .delete(&format!("/api/v1/{c}/{id}/deployments/{dep}"))
                                .await
                                .unwrap()
                                .0
                        } else {
                            self.admin
                                .post(
                                    &format!("/api/v1/{c}/{id}/deployments/{dep}/{what}"),
                                    &json!({}),
                                )
                                .await
                                .unwrap()
                                .0
                        };
                        format!("{what} {c}/{id} {dep}: {s}")
                    }
                }
                None => "no artifact".into(),
            },
            67..=74 => match self.pick_existing() {
                Some((c, id)) => {
                    let (_, keys) = self
                        .admin
                        .get(&format!("/api/v1/{c}/{id}/api-keys"))
                        .await
                        .unwrap();
                    let active: Vec<String> = keys["list"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter(|k| k["status"] == "active")
                                .filter_map(|k| k["id"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !active.is_empty() && self.rng.gen_bool(0.4) {
                        let k = &active[self.rng.gen_range(0..active.len())];
                        let s = self
                            .admin
                            .delete(&format!("/api/v1/{c}/{id}/api-keys/{k}"))
                            .await
                            .unwrap()
                            .0;
                        format!("revoke key {c}/{id}/{k}: {s}")
                    } else {
                        self.next += 1;
                        let k = format!("k{}", self.next);
                        let (s, _) = self
                            .admin
                            .post(
                                &format!("/api/v1/{c}/{id}/api-keys"),
                                &json!({"id": k, "displayName": k}),
                            )
                            .await
                            .unwrap();
                        format!("create key {c}/{id}/{k}: {s}")
                    }
                }
                None => "no artifact".into(),
            },
            75..=82 => match self.pick_deployed_once().or_else(|| self.pick_existing()) {
                Some((c, id)) => {
                    let (s, _) = self
                        .admin
                        .delete(&format!("/api/v1/{c}/{id}"))
                        .await
                        .unwrap();
                    if s == 204 {
                        self.artifacts.insert((c.clone(), id.clone()), false);
                    }
                    format!("delete {c}/{id}: {s}")
                }
                None => "no artifact".into(),
            },
            83..=91 if self.gateway_up => {
                self.gw.kill();
                self.gateway_up = false;
                self.down_for = self.rng.gen_range(1..5);
                "kill gateway".into()
            }
            92..=99 if !self.severed => {
                self.relay.sever();
                self.severed = true;
                self.cut_for = self.rng.gen_range(1..5);
                "cut connection".into()
            }
            _ => "idle".into(),
        };
        self.log.push(entry);
        // Outages last a few steps, then end by themselves.
        if !self.gateway_up {
            self.down_for = self.down_for.saturating_sub(1);
            if self.down_for == 0 {
                self.gw.respawn().unwrap();
                self.gw.wait_ready().await.unwrap();
                self.gateway_up = true;
                self.log.push("start gateway".into());
                // Usually let it reconnect before the next change; sometimes race it.
                if self.rng.gen_bool(0.7) {
                    let admin = self.gw.admin();
                    let _ = eventually(Duration::from_secs(10), "reconnect", || async {
                        let (_, s) = admin.get("/api/management/v1/status").await.ok()?;
                        (s["controlPlane"]["connected"] == true).then_some(())
                    })
                    .await;
                }
            }
        }
        if self.severed {
            self.cut_for = self.cut_for.saturating_sub(1);
            if self.cut_for == 0 {
                self.relay.heal();
                self.severed = false;
                self.log.push("heal connection".into());
            }
        }
    }
}

async fn run_seed(seed: u64, steps: u64) {
    let p = platform(Backend::Sqlite, &["--deployment-timeout", "2s"])
        .await
        .unwrap();
    let admin = p.login("default").await.unwrap();
    let token = gateway_token(&admin, "edge").await;
    let relay = Relay::start(p.addr).await;
    let gw = check::gateway_through(&relay, &token).await;
    let mut world = World {
        internal: Client::anonymous(&p.base).with_header("api-key", &token),
        admin,
        gw,
        relay,
        up: EchoServer::start("upstream").await,
        rng: StdRng::seed_from_u64(seed),
        gateway_up: true,
        severed: false,
        down_for: 0,
        cut_for: 0,
        next: 0,
        artifacts: BTreeMap::new(),
        deployed_once: Default::default(),
        log: vec![],
    };
    for _ in 0..steps {
        world.step().await;
        // Give changes time to reach the gateway more often than not.
        if world.rng.gen_bool(0.6) {
            tokio::time::sleep(Duration::from_millis(world.rng.gen_range(20..200))).await;
        }
    }
    world.relay.heal();
    if !world.gateway_up {
        world.gw.respawn().unwrap();
        world.gw.wait_ready().await.unwrap();
    }
    let converged = eventually(Duration::from_secs(30), "convergence", || async {
        check::converged(&world.internal, &world.gw, &world.existing())
            .await
            .then_some(())
    })
    .await;
    if converged.is_err() {
        panic!(
            "seed {seed} did not converge\nsteps:\n  {}\ndesired: {:?}\nheld: {:?}",
            world.log.join("\n  "),
            check::desired(&world.internal).await,
            check::held(&world.gw).await
        );
    }
    let keyed = check::platform_keys(&world.internal)
        .await
        .values()
        .map(|k| k.len())
        .sum::<usize>();
    if std::env::var("GATEHOUSE_CONVERGENCE_DEBUG").is_ok() {
        eprintln!("seed {seed}: {keyed} keys on held artifacts");
    }
    if std::env::var("GATEHOUSE_CONVERGENCE_DEBUG").is_ok() {
        let status = world
            .gw
            .admin()
            .get("/api/management/v1/status")
            .await
            .unwrap()
            .1;
        eprintln!(
            "seed {seed}:\n  {}\nheld: {:?}\nstatus: {status}",
            world.log.join("\n  "),
            check::held(&world.gw).await
        );
    }
    check::traffic_agrees(
        &world.internal,
        &world.gw,
        &world.artifacts,
        seed,
        &world.log,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_converge_after_random_changes_kills_and_cuts() {
    let seeds = env_number("GATEHOUSE_CONVERGENCE_SEEDS", 2);
    let steps = env_number("GATEHOUSE_CONVERGENCE_STEPS", 40);
    for seed in 0..seeds {
        run_seed(seed, steps).await;
    }
}
