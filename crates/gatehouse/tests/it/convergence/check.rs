//! What convergence means, checked from outside: the gateway holds what the platform wants on
//! it (state and deployment of each artifact, and their keys), anything else it holds is
//! retained undeployed, and traffic agrees.

use std::collections::{BTreeMap, HashSet};

use super::KINDS;
use crate::common::*;
use gatehouse_testkit::Gateway;

/// Every artifact ever created: (collection, handle) → still exists on the platform.
pub type Artifacts = BTreeMap<(String, String), bool>;

/// The body of artifact `id` of collection `c` (a REST API or an MCP proxy) in front of
/// `upstream`.
pub fn body(c: &str, id: &str, upstream: &str) -> serde_json::Value {
    let upstream = match c {
        "rest-apis" => serde_json::json!({"main": {"url": upstream}}),
        _ => serde_json::json!({"url": upstream}),
    };
    serde_json::json!({"id": id, "displayName": id, "projectId": "default",
                       "context": format!("/{id}"), "upstream": upstream})
}

/// One of the artifacts that still exist, at random.
pub fn pick(artifacts: &Artifacts, rng: &mut impl rand::Rng) -> Option<(String, String)> {
    let live: Vec<_> = artifacts
        .iter()
        .filter(|(_, alive)| **alive)
        .map(|(k, _)| k.clone())
        .collect();
    (!live.is_empty()).then(|| live[rng.gen_range(0..live.len())].clone())
}

/// A gateway connected through `relay` with `token`, on no periodic full sync (the runs check
/// that events alone converge).
pub async fn gateway_through(relay: &gatehouse_testkit::relay::Relay, token: &str) -> Gateway {
    let args = [
        "--control-plane",
        &relay.url(),
        "--token",
        token,
        "--sync-interval",
        "1h",
    ];
    Gateway::start(std::path::Path::new(BIN), &args)
        .await
        .unwrap()
}

/// Handles of the artifacts that still exist.
pub fn existing(artifacts: &Artifacts) -> HashSet<String> {
    artifacts
        .iter()
        .filter(|(_, alive)| **alive)
        .map(|((_, id), _)| id.clone())
        .collect()
}

/// (uuid → (state, deployment id)) the platform wants on the gateway.
pub async fn desired(internal: &Client) -> BTreeMap<String, (String, String)> {
    let (_, d) = internal.get("/api/internal/v1/deployments").await.unwrap();
    d["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let state = if e["state"] == "DEPLOYED" {
                "deployed"
            } else {
                "undeployed"
            };
            (
                e["artifactId"].as_str().unwrap().to_owned(),
                (
                    state.to_owned(),
                    e["deploymentId"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// What the gateway holds from the control plane.
pub async fn held(gw: &Gateway) -> Option<BTreeMap<String, (String, String, String)>> {
    let mut out = BTreeMap::new();
    for c in KINDS {
        let (s, l) = gw
            .admin()
            .get(&format!("/api/management/v1/{c}"))
            .await
            .ok()?;
        if s != 200 {
            return None;
        }
        for a in l["list"].as_array()? {
            out.insert(
                a["status"]["artifactId"].as_str()?.to_owned(),
                (
                    a["status"]["state"].as_str()?.to_owned(),
                    a["status"]["deploymentId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["metadata"]["name"].as_str()?.to_owned(),
                ),
            );
        }
    }
    Some(out)
}

/// (artifact uuid → key uuid → status) as the platform has them for the gateway's artifacts.
pub async fn platform_keys(internal: &Client) -> BTreeMap<String, BTreeMap<String, String>> {
    let (_, k) = internal.get("/api/internal/v1/api-keys").await.unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for key in k["apiKeys"].as_array().unwrap() {
        out.entry(key["artifactId"].as_str().unwrap().to_owned())
            .or_default()
            .insert(
                key["keyId"].as_str().unwrap().to_owned(),
                key["status"].as_str().unwrap().to_owned(),
            );
    }
    out
}

/// The same, as the gateway holds them.
pub async fn gateway_keys(
    gw: &Gateway,
    held: &BTreeMap<String, (String, String, String)>,
) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    for (uuid, (_, _, name)) in held {
        for c in KINDS {
            let (s, l) = gw
                .admin()
                .get(&format!("/api/management/v1/{c}/{name}/api-keys"))
                .await
                .ok()?;
            if s != 200 {
                continue;
            }
            let keys: BTreeMap<String, String> = l["list"]
                .as_array()?
                .iter()
                .map(|k| {
                    (
                        k["id"].as_str().unwrap_or_default().to_owned(),
                        k["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            if !keys.is_empty() {
                out.insert(uuid.clone(), keys);
            }
        }
    }
    Some(out)
}

pub async fn converged(internal: &Client, gw: &Gateway, existing: &HashSet<String>) -> bool {
    let desired = desired(internal).await;
    let Some(held) = held(gw).await else {
        return false;
    };
    // Keys: the gateway holds exactly the platform's keys of the artifacts it holds.
    let platform_keys: BTreeMap<String, BTreeMap<String, String>> = platform_keys(internal)
        .await
        .into_iter()
        .filter(|(uuid, _)| held.contains_key(uuid))
        .collect();
    if gateway_keys(gw, &held).await.as_ref() != Some(&platform_keys) {
        return false;
    }
    for (uuid, (state, dep)) in &desired {
        match held.get(uuid) {
            Some((s, d, _)) if s == state && d == dep => {}
            _ => return false,
        }
    }
    // Anything else held must still exist on the platform, and be undeployed (retained).
    held.iter()
        .filter(|(uuid, _)| !desired.contains_key(*uuid))
        .all(|(_, (state, _, name))| state == "undeployed" && existing.contains(name))
}

/// Deployed artifacts are served by `gw`, everything else is not.
pub async fn traffic_agrees(
    internal: &Client,
    gw: &Gateway,
    artifacts: &Artifacts,
    seed: u64,
    log: &[String],
) {
    let desired = desired(internal).await;
    let held = held(gw).await.unwrap();
    for ((c, id), alive) in artifacts {
        let probe = if c == "mcp-proxies" {
            format!("/{id}/mcp")
        } else {
            format!("/{id}/x")
        };
        let status = gw
            .traffic()
            .raw(reqwest::Method::GET, &probe, &[])
            .await
            .unwrap()
            .status()
            .as_u16();
        let deployed = *alive
            && held.iter().any(|(uuid, (s, _, name))| {
                name == id
                    && s == "deployed"
                    && desired.get(uuid).is_some_and(|d| d.0 == "deployed")
            });
        assert_eq!(
            status == 200,
            deployed,
            "seed {seed}: {c}/{id} answered {status}\nsteps:\n  {}",
            log.join("\n  ")
        );
    }
}
