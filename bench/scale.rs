//! A gateway holding many artifacts, measured with the real binary (run `cargo bench -p
//! gatehouse --bench scale`; `APIS`, `KEYS_PER_API`, `CHANGES` change the counts; the numbers go
//! to docs/benchmarks.md):
//!
//! 1. loading `APIS` REST APIs through the management API (8 at a time);
//! 2. `CHANGES` more, one at a time: management call → first 200 (median, p90, p99);
//! 3. `KEYS_PER_API` keys on each API;
//! 4. the gateway killed and started again on its store: time to ready and to serving the last
//!    API, and its resident memory then.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::Gateway;
use serde_json::json;

#[path = "common.rs"]
mod common;
use common::{env_number, percentile};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn doc(i: usize, url: &str) -> serde_json::Value {
    json!({"apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": format!("api-{i}")},
           "spec": {"displayName": format!("api-{i}"), "context": format!("/api-{i}"),
                    "upstream": {"main": {"url": url}},
                    "policies": [{"name": "api-key-auth"}]}})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let apis = env_number("APIS", 10_000);
    let keys_per_api = env_number("KEYS_PER_API", 10);
    let changes = env_number("CHANGES", 200);
    let up = EchoServer::start("upstream").await;
    let url = up.url("");
    let mut gw = Gateway::start(Path::new(BIN), &[]).await?;
    let admin = gw.admin();

    // 1. Loading.
    let started = Instant::now();
    let created: Vec<u16> = futures::stream::iter(0..apis)
        .map(|i| {
            let (admin, d) = (admin.clone(), doc(i, &url));
            async move {
                admin
                    .post("/api/management/v1/rest-apis", &d)
                    .await
                    .map_or(0, |(s, _)| s)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    anyhow::ensure!(created.iter().all(|s| *s == 201), "a create failed");
    let loading = started.elapsed();
    println!(
        "loaded {apis} APIs through the management API in {:.2} s ({:.2} ms each)",
        loading.as_secs_f64(),
        ms(loading) / apis as f64
    );

    // 2. One change at a time, each timed to the first request it serves.
    let probe = reqwest::Client::new();
    let mut samples = Vec::with_capacity(changes);
    for c in 0..changes {
        let i = apis + c;
        let started = Instant::now();
        let (s, _) = admin
            .post("/api/management/v1/rest-apis", &doc(i, &url))
            .await?;
        anyhow::ensure!(s == 201, "create {i} failed");
        let target = format!("{}/api-{i}/x", gw.base);
        // 401: routed (the API wants a key); 404 would mean not yet served.
        while probe.get(&target).send().await?.status() != 401 {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "api-{i} not served"
            );
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "one change at {apis} artifacts → served: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap()),
    );

    // 3. Keys.
    let started = Instant::now();
    let total_keys = apis * keys_per_api;
    let made: Vec<u16> = futures::stream::iter(0..total_keys)
        .map(|k| {
            let admin = admin.clone();
            async move {
                let path = format!("/api/management/v1/rest-apis/api-{}/api-keys", k % apis);
                admin
                    .post(&path, &json!({"displayName": format!("k{k}")}))
                    .await
                    .map_or(0, |(s, _)| s)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    anyhow::ensure!(made.iter().all(|s| *s == 201), "a key failed");
    println!(
        "added {total_keys} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 4. Restart on the full store.
    gw.kill();
    let started = Instant::now();
    gw.respawn()?;
    gw.wait_ready().await?;
    let ready = started.elapsed();
    let last = format!("{}/api-{}/x", gw.base, apis - 1);
    while probe.get(&last).send().await?.status() != 401 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "not served after restart"
        );
    }
    let serving = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "restart with {} APIs and {total_keys} keys: ready in {:.0} ms, last API served in {:.0} ms, resident {:.0} MiB",
        apis + changes,
        ms(ready),
        ms(serving),
        rss_mib(gw.process.pid())
    );
    Ok(())
}
