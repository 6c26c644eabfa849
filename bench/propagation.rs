//! Change propagation, measured with the real binaries (run `cargo bench -p gatehouse --bench
//! propagation`; the numbers go to docs/benchmarks.md):
//!
//! 1. deploy call → first 200 at the gateway, over `DEPLOYS` deploys (median, p90, p99);
//! 2. a gateway with an empty store → serving `APIS` deployed APIs after it starts.

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::{Backend, Gateway, Platform, TestDatabase};
use serde_json::json;

#[path = "common.rs"]
mod common;
use common::{env_number, percentile};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let deploys = env_number("DEPLOYS", 200);
    let apis = env_number("APIS", 1000);
    let db = TestDatabase::new(Backend::Sqlite).await?.expect("sqlite");
    let p = Platform::start(Path::new(BIN), db, &[]).await?;
    let admin = p.login("default").await?;
    admin
        .post(
            "/api/v1/gateways",
            &json!({"id": "edge", "displayName": "Edge"}),
        )
        .await?;
    let (_, t) = admin
        .post("/api/v1/gateways/edge/tokens", &json!({}))
        .await?;
    let token = t["token"].as_str().unwrap().to_owned();
    let up = EchoServer::start("upstream").await;
    let body = |id: &str| {
        json!({"id": id, "displayName": id, "projectId": "default", "context": format!("/{id}"),
               "upstream": {"main": {"url": up.url("")}}, "operations": [{"method": "GET", "path": "/*"}]})
    };

    // 1. Propagation to a connected gateway.
    let gw = Gateway::start(
        Path::new(BIN),
        &["--control-plane", &p.base, "--token", &token],
    )
    .await?;
    let probe = reqwest::Client::new();
    let mut samples = Vec::with_capacity(deploys);
    for i in 0..deploys {
        let id = format!("prop-{i}");
        admin.post("/api/v1/rest-apis", &body(&id)).await?;
        let url = format!("{}/{id}/x", gw.base);
        let started = Instant::now();
        let (s, _) = admin
            .post(
                &format!("/api/v1/rest-apis/{id}/deployments"),
                &json!({"gatewayId": "edge"}),
            )
            .await?;
        anyhow::ensure!(s == 201, "deploy failed");
        loop {
            if probe.get(&url).send().await?.status() == 200 {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "{id} not served"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "deploy → first 200, {deploys} deploys: median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.9).as_secs_f64() * 1000.0,
        percentile(&samples, 0.99).as_secs_f64() * 1000.0,
        samples.last().unwrap().as_secs_f64() * 1000.0,
    );
    drop(gw);

    // 2. Cold start of a gateway with an empty store.
    let created = Instant::now();
    for i in 0..apis {
        let id = format!("cold-{i}");
        admin.post("/api/v1/rest-apis", &body(&id)).await?;
        admin
            .post(
                &format!("/api/v1/rest-apis/{id}/deployments"),
                &json!({"gatewayId": "edge"}),
            )
            .await?;
    }
    eprintln!(
        "created and deployed {apis} APIs in {:.1} s",
        created.elapsed().as_secs_f64()
    );
    let (_, t2) = admin
        .post("/api/v1/gateways/edge/tokens", &json!({}))
        .await?;
    let started = Instant::now();
    let cold = Gateway::start(
        Path::new(BIN),
        &[
            "--control-plane",
            &p.base,
            "--token",
            t2["token"].as_str().unwrap(),
        ],
    )
    .await?;
    let last = format!("{}/cold-{}/x", cold.base, apis - 1);
    let total = apis + deploys;
    loop {
        let (_, s) = cold.admin().get("/api/management/v1/status").await?;
        if s["routeTable"]["artifacts"].as_u64() == Some(total as u64)
            && probe.get(&last).send().await?.status() == 200
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "cold sync did not finish: {s}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    let (_, s) = cold.admin().get("/api/management/v1/status").await?;
    println!(
        "empty gateway → serving {total} deployed APIs: {:.2} s after start (full sync fetched {}, route table rebuilt in {:.1} ms)",
        took.as_secs_f64(),
        s["lastSync"]["fetched"],
        s["routeTable"]["lastRebuildMs"].as_f64().unwrap_or_default()
    );
    Ok(())
}
