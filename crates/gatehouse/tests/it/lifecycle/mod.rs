//! The lifecycle that must always hold (docs/protocol.md §7): a real platform, a real gateway
//! connected to it, and a real upstream, for each of the four kinds. One module per concern;
//! this one holds their shared setup.

mod connections;
mod full_sync;
mod gateway_origin;
mod keys;
mod kinds;
mod no_leaks;
mod secrets;
mod statuses;
mod upstream_tls;

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::relay::Relay;
use gatehouse_testkit::Gateway;
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Env {
    pub p: Platform,
    pub admin: Client,
    pub gw: Gateway,
    pub up: EchoServer,
    pub relay: Option<Relay>,
    pub token: String,
}

pub async fn setup(
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
    pub async fn wait_connected(&self) {
        let admin = self.gw.admin();
        eventually(WAIT, "the gateway to connect", || async {
            let (_, s) = admin.get("/api/management/v1/status").await.ok()?;
            (s["controlPlane"]["connected"] == true).then_some(())
        })
        .await
        .unwrap();
    }

    pub fn body(&self, c: &str, id: &str) -> Value {
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

    pub async fn create(&self, c: &str, id: &str) -> String {
        let (s, b) = self
            .admin
            .post(&format!("/api/v1/{c}"), &self.body(c, id))
            .await
            .unwrap();
        assert_eq!(s, 201, "{b}");
        b["uuid"].as_str().unwrap().to_owned()
    }

    pub async fn deploy(&self, c: &str, id: &str) -> String {
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

    pub async fn action(&self, c: &str, id: &str, dep: &str, what: &str) {
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
    pub async fn probe(&self, c: &str, id: &str) -> u16 {
        let t = self.gw.traffic();
        let r = match c {
            // GET opens the server's stream: passed through as is, whatever the body.
            "mcp-proxies" => {
                t.raw(reqwest::Method::GET, &format!("/{id}/mcp"), &[])
                    .await
            }
            _ => {
                t.raw(reqwest::Method::GET, &format!("/{id}/models"), &[])
                    .await
            }
        };
        r.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    pub async fn wait_probe(&self, c: &str, id: &str, want: u16) {
        eventually(WAIT, &format!("{c}/{id} to answer {want}"), || async {
            (self.probe(c, id).await == want).then_some(())
        })
        .await
        .unwrap();
    }

    pub async fn held(&self, c: &str, id: &str) -> (u16, Value) {
        self.gw
            .admin()
            .get(&format!("/api/management/v1/{c}/{id}"))
            .await
            .unwrap()
    }

    pub async fn wait_held_state(&self, c: &str, id: &str, state: Option<&str>) {
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

    pub async fn wait_dep_status(&self, c: &str, id: &str, dep: &str, status: &str) -> Value {
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

    pub async fn status(&self) -> Value {
        self.gw
            .admin()
            .get("/api/management/v1/status")
            .await
            .unwrap()
            .1
    }

    pub async fn base_provider(&self) {
        self.create("llm-providers", "base-provider").await;
        let d = self.deploy("llm-providers", "base-provider").await;
        self.wait_dep_status("llm-providers", "base-provider", &d, "DEPLOYED")
            .await;
    }
}

/// The files under `dir` that hold `needle` (SQLite stores text as written, so a value kept in
/// plain text in any column, journal or WAL is found).
pub fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = vec![];
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

/// Kinds in an order where an LLM proxy's provider exists.
pub const KINDS: [&str; 4] = ["rest-apis", "mcp-proxies", "llm-providers", "llm-proxies"];
