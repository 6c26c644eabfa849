//! The convergence run at fleet size, on PostgreSQL: two platform replicas serving the gateways
//! (a third process serves nothing but the API), several gateways each connected to one replica
//! through a relay, and faults among the changes: replicas killed and started again, gateways
//! killed and started again, gateway connections cut, and every platform's database connections
//! cut. Changes go to any platform process that answers. Afterwards every gateway holds what the
//! platform wants on it, keys included, and serves exactly that (docs/protocol.md §7).
//!
//! Size: `GATEHOUSE_FLEET_SEEDS` (default 1), `GATEHOUSE_FLEET_STEPS` (default 30),
//! `GATEHOUSE_FLEET_GATEWAYS` (default 3). Nightly size: 20 seeds × 200 steps (docs/protocol.md).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::check::{self, Artifacts};
use super::{env_number, KINDS};
use crate::common::*;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::relay::Relay;
use gatehouse_testkit::{Gateway, Process};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// A platform process the run kills and starts again on the same address.
struct Replica {
    addr: SocketAddr,
    process: Option<Process>,
    down_for: u32,
}

struct Member {
    name: String,
    gw: Gateway,
    relay: Relay,
    internal: Client,
    up: bool,
    down_for: u32,
    cut_for: u32,
}

struct Fleet {
    p: Platform,
    replicas: Vec<Replica>,
    members: Vec<Member>,
    db_relay: Relay,
    db_cut_for: u32,
    upstream: EchoServer,
    rng: StdRng,
    next: u32,
    artifacts: Artifacts,
    log: Vec<String>,
}

/// A status, or 0 when nothing answered.
fn status(a: gatehouse_testkit::Answer) -> (u16, Value) {
    a.unwrap_or((0, Value::Null))
}

impl Fleet {
    /// An admin session on a random platform process that is up (logged in afresh: a process
    /// may have been down).
    async fn admin(&mut self) -> Option<Client> {
        let mut bases = vec![self.p.base.clone()];
        bases.extend(
            self.replicas
                .iter()
                .filter(|r| r.process.is_some())
                .map(|r| format!("http://{}", r.addr)),
        );
        let base = bases[self.rng.gen_range(0..bases.len())].clone();
        let anonymous = Client::anonymous(&base);
        let (s, b) = status(
            anonymous
                .post(
                    "/api/v1/auth/login",
                    &json!({"username": "admin", "password": "test-admin-password"}),
                )
                .await,
        );
        (s == 200).then(|| anonymous.with_bearer(b["token"].as_str().unwrap_or_default()))
    }

    fn body(&self, c: &str, id: &str) -> Value {
        check::body(c, id, &self.upstream.url(""))
    }

    fn pick(&mut self) -> Option<(String, String)> {
        check::pick(&self.artifacts, &mut self.rng)
    }

    async fn change(&mut self, roll: u32) -> String {
        let Some(admin) = self.admin().await else {
            return "no platform answered".into();
        };
        match roll {
            0..=19 => {
                let c = KINDS[self.rng.gen_range(0..2)];
                self.next += 1;
                let id = format!("a{}", self.next);
                let (s, _) = status(
                    admin
                        .post(&format!("/api/v1/{c}"), &self.body(c, &id))
                        .await,
                );
                // An unanswered create may still have happened: settled at the end.
                self.artifacts
                    .entry((c.to_owned(), id.clone()))
                    .or_insert(s == 201);
                format!("create {c}/{id}: {s}")
            }
            20..=49 => match self.pick() {
                Some((c, id)) => {
                    let gw = self.members[self.rng.gen_range(0..self.members.len())]
                        .name
                        .clone();
                    let path = format!("/api/v1/{c}/{id}/deployments");
                    let (s, _) = status(admin.post(&path, &json!({"gatewayId": gw})).await);
                    format!("deploy {c}/{id} to {gw}: {s}")
                }
                None => "deploy: nothing".into(),
            },
            50..=64 => match self.pick() {
                Some((c, id)) => {
                    let (_, list) =
                        status(admin.get(&format!("/api/v1/{c}/{id}/deployments")).await);
                    let deps = list["list"].as_array().cloned().unwrap_or_default();
                    if deps.is_empty() {
                        return "no deployment".into();
                    }
                    let d = &deps[self.rng.gen_range(0..deps.len())];
                    let dep = d["deploymentId"].as_str().unwrap_or_default().to_owned();
                    let what = ["undeploy", "restore", "delete"][self.rng.gen_range(0..3)];
                    let path = format!("/api/v1/{c}/{id}/deployments/{dep}");
                    let (s, _) = if what == "delete" {
                        status(admin.delete(&path).await)
                    } else {
                        status(admin.post(&format!("{path}/{what}"), &json!({})).await)
                    };
                    format!("{what} {c}/{id} {dep}: {s}")
                }
                None => "no artifact".into(),
            },
            65..=74 => match self.pick() {
                Some((c, id)) => {
                    self.next += 1;
                    let k = format!("k{}", self.next);
                    let (s, _) = if self.rng.gen_bool(0.3) {
                        let (_, keys) =
                            status(admin.get(&format!("/api/v1/{c}/{id}/api-keys")).await);
                        let first = keys["list"][0]["id"].as_str().unwrap_or("none").to_owned();
                        status(
                            admin
                                .delete(&format!("/api/v1/{c}/{id}/api-keys/{first}"))
                                .await,
                        )
                    } else {
                        let body = json!({"id": k, "displayName": k});
                        status(
                            admin
                                .post(&format!("/api/v1/{c}/{id}/api-keys"), &body)
                                .await,
                        )
                    };
                    format!("key change {c}/{id}: {s}")
                }
                None => "no artifact".into(),
            },
            _ => match self.pick() {
                Some((c, id)) => {
                    let (s, _) = status(admin.delete(&format!("/api/v1/{c}/{id}")).await);
                    if s == 204 {
                        self.artifacts.insert((c.clone(), id.clone()), false);
                    }
                    format!("delete {c}/{id}: {s}")
                }
                None => "no artifact".into(),
            },
        }
    }

    async fn fault(&mut self, roll: u32) -> String {
        let outage = self.rng.gen_range(1..5);
        let m = self.rng.gen_range(0..self.members.len());
        let r = self.rng.gen_range(0..self.replicas.len());
        match roll {
            0..=29 if self.members[m].up => {
                let member = &mut self.members[m];
                member.gw.kill();
                (member.up, member.down_for) = (false, outage);
                format!("kill gateway {}", member.name)
            }
            30..=54 if self.members[m].cut_for == 0 => {
                let member = &mut self.members[m];
                member.relay.sever();
                member.cut_for = outage;
                format!("cut gateway {}", member.name)
            }
            55..=79 if self.replicas[r].process.is_some() => {
                let replica = &mut self.replicas[r];
                if let Some(mut p) = replica.process.take() {
                    p.kill();
                }
                replica.down_for = outage;
                format!("kill replica {r}")
            }
            80..=99 if self.db_cut_for == 0 => {
                self.db_relay.sever();
                self.db_cut_for = outage;
                "cut the database".into()
            }
            _ => "no fault".into(),
        }
    }

    /// Outages last a few steps, then end by themselves.
    async fn recover(&mut self, all: bool) {
        if self.db_cut_for > 0 {
            self.db_cut_for = self.db_cut_for.saturating_sub(1);
            if all || self.db_cut_for == 0 {
                self.db_cut_for = 0;
                self.db_relay.heal();
                self.log.push("heal the database".into());
            }
        }
        for i in 0..self.replicas.len() {
            let r = &mut self.replicas[i];
            r.down_for = r.down_for.saturating_sub(1);
            // A platform started while its database is unreachable exits (it does not serve
            // without one); a supervisor starts it again, and so does the run.
            if r.process.as_mut().is_some_and(|p| p.try_exit().is_some()) {
                r.process = None;
                self.log.push(format!("replica {i} exited"));
            }
            if r.process.is_none() && (all || r.down_for == 0) {
                r.process = Some(self.p.spawn_on(r.addr).unwrap());
                self.log.push(format!("start replica {i}"));
            }
        }
        for m in &mut self.members {
            m.down_for = m.down_for.saturating_sub(1);
            if !m.up && (all || m.down_for == 0) {
                m.gw.respawn().unwrap();
                m.gw.wait_ready().await.unwrap();
                m.up = true;
                self.log.push(format!("start gateway {}", m.name));
            }
            if m.cut_for > 0 {
                m.cut_for = m.cut_for.saturating_sub(1);
                if all || m.cut_for == 0 {
                    m.cut_for = 0;
                    m.relay.heal();
                    self.log.push(format!("heal gateway {}", m.name));
                }
            }
        }
    }

    /// What exists on the platform, for artifacts whose create or delete went unanswered.
    async fn settle(&mut self) {
        let admin = eventually(WAIT, "a login after recovery", || async {
            let anonymous = Client::anonymous(&self.p.base);
            let body = json!({"username": "admin", "password": "test-admin-password"});
            let (s, b) = status(anonymous.post("/api/v1/auth/login", &body).await);
            (s == 200).then(|| anonymous.with_bearer(b["token"].as_str().unwrap_or_default()))
        })
        .await
        .unwrap();
        for ((c, id), alive) in self.artifacts.iter_mut() {
            let (s, _) = status(admin.get(&format!("/api/v1/{c}/{id}")).await);
            assert!(s == 200 || s == 404, "{c}/{id}: {s}");
            *alive = s == 200;
        }
    }
}

async fn run_seed(seed: u64, steps: u64, gateways: u64) -> Option<()> {
    let mut db = TestDatabase::new(Backend::Postgres).await.unwrap()?;
    // Every platform process reaches PostgreSQL through one relay the run can cut.
    let real: reqwest::Url = db.url.parse().unwrap();
    let pg = SocketAddr::new(
        real.host_str().unwrap().parse().unwrap(),
        real.port().unwrap_or(5432),
    );
    let db_relay = Relay::start(pg).await;
    db.url = db.url.replacen(
        &format!(
            "{}:{}",
            real.host_str().unwrap(),
            real.port().unwrap_or(5432)
        ),
        &db_relay.addr.to_string(),
        1,
    );
    let p = Platform::start(Path::new(BIN), db, &["--deployment-timeout", "2s"])
        .await
        .unwrap();
    let admin = p.login("default").await.unwrap();
    let mut replicas = vec![];
    for _ in 0..2 {
        let addr = gatehouse_testkit::free_addr();
        let process = p.spawn_on(addr).unwrap();
        let client = Client::anonymous(&format!("http://{addr}"));
        eventually(WAIT, "a replica", || async {
            (client.get("/health").await.ok()?.0 == 200).then_some(())
        })
        .await
        .unwrap();
        replicas.push(Replica {
            addr,
            process: Some(process),
            down_for: 0,
        });
    }
    let mut members = vec![];
    for i in 0..gateways {
        let name = format!("edge-{i}");
        let token = gateway_token(&admin, &name).await;
        let relay = Relay::start(replicas[i as usize % replicas.len()].addr).await;
        let gw = check::gateway_through(&relay, &token).await;
        members.push(Member {
            internal: Client::anonymous(&p.base).with_header("api-key", &token),
            name,
            gw,
            relay,
            up: true,
            down_for: 0,
            cut_for: 0,
        });
    }
    let mut fleet = Fleet {
        p,
        replicas,
        members,
        db_relay,
        db_cut_for: 0,
        upstream: EchoServer::start("upstream").await,
        rng: StdRng::seed_from_u64(seed),
        next: 0,
        artifacts: Artifacts::new(),
        log: vec![],
    };
    for _ in 0..steps {
        let roll = fleet.rng.gen_range(0..100);
        let entry = if roll < 80 {
            fleet.change(roll).await
        } else {
            let roll = fleet.rng.gen_range(0..100);
            fleet.fault(roll).await
        };
        fleet.log.push(entry);
        fleet.recover(false).await;
        if fleet.rng.gen_bool(0.6) {
            tokio::time::sleep(Duration::from_millis(fleet.rng.gen_range(20..200))).await;
        }
    }
    // Everything healed; a replica that exited meanwhile is started again until all are healthy.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        fleet.recover(true).await;
        let mut bases = vec![fleet.p.base.clone()];
        bases.extend(fleet.replicas.iter().map(|r| format!("http://{}", r.addr)));
        let mut healthy = true;
        for base in &bases {
            let answer = Client::anonymous(base).get("/health").await;
            healthy &= answer.is_ok_and(|(s, _)| s == 200);
        }
        if healthy {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "seed {seed}: platform processes not healthy after recovery\nsteps:\n  {}",
            fleet.log.join("\n  ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fleet.settle().await;
    let existing = check::existing(&fleet.artifacts);
    for m in &fleet.members {
        let converged = eventually(WAIT * 2, "convergence", || async {
            check::converged(&m.internal, &m.gw, &existing)
                .await
                .then_some(())
        })
        .await;
        assert!(
            converged.is_ok(),
            "seed {seed}: gateway {} did not converge\nsteps:\n  {}\ndesired: {:?}\nheld: {:?}",
            m.name,
            fleet.log.join("\n  "),
            check::desired(&m.internal).await,
            check::held(&m.gw).await
        );
        check::traffic_agrees(&m.internal, &m.gw, &fleet.artifacts, seed, &fleet.log).await;
    }
    let count = |what: &str| fleet.log.iter().filter(|l| l.contains(what)).count();
    eprintln!(
        "seed {seed}: {} changes answered 2xx, {} unanswered or refused; faults: {} gateway kills, \
         {} gateway cuts, {} replica kills, {} database cuts; {} artifacts exist",
        fleet.log.iter().filter(|l| l.contains(": 20")).count(),
        fleet.log.iter().filter(|l| l.ends_with(": 0") || l.ends_with(": 500") || l.ends_with(": 503") || l.contains("no platform")).count(),
        count("kill gateway"),
        count("cut gateway"),
        count("kill replica"),
        count("cut the database"),
        existing.len(),
    );
    if std::env::var("GATEHOUSE_CONVERGENCE_DEBUG").is_ok() {
        eprintln!("steps:\n  {}", fleet.log.join("\n  "));
    }
    Some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_postgres_converges_through_replica_gateway_and_database_faults() {
    if std::env::var(gatehouse_testkit::PG_ENV).is_err() {
        eprintln!("skipped: {} is not set", gatehouse_testkit::PG_ENV);
        return;
    }
    let seeds = env_number("GATEHOUSE_FLEET_SEEDS", 1);
    let steps = env_number("GATEHOUSE_FLEET_STEPS", 30);
    let gateways = env_number("GATEHOUSE_FLEET_GATEWAYS", 3).max(1);
    let started = std::time::Instant::now();
    for seed in 0..seeds {
        run_seed(seed, steps, gateways).await.unwrap();
    }
    eprintln!(
        "fleet convergence: {seeds} seeds x {steps} steps, {gateways} gateways, 0 divergences in {:.0?}",
        started.elapsed()
    );
}
