//! `gatehouse dev` as a newcomer runs it: the three printed curl lines behave as printed, Ctrl-C
//! (SIGTERM) stops it cleanly, and running it again keeps what was there.

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_testkit::{free_addr, Process, TempDir};

use crate::common::BIN;

/// Runs the `curl -s URL [-H 'Name: value']` line with reqwest; returns the status.
async fn run_curl(line: &str) -> u16 {
    let rest = line.trim().strip_prefix("curl -s ").expect("a curl line");
    let (url, header) = match rest.split_once(" -H '") {
        Some((url, h)) => (url, Some(h.trim_end_matches('\''))),
        None => (rest, None),
    };
    let mut req = reqwest::Client::new().get(url.trim());
    if let Some(h) = header {
        let (name, value) = h.split_once(": ").expect("a header");
        req = req.header(name, value);
    }
    req.send()
        .await
        .expect("the printed URL answers")
        .status()
        .as_u16()
}

async fn start(dir: &TempDir, ports: &[String]) -> (Process, Vec<String>) {
    let mut args = vec!["dev".to_string()];
    for (flag, port) in [
        "--platform-listen",
        "--gateway-listen",
        "--admin-listen",
        "--upstream-listen",
    ]
    .iter()
    .zip(ports)
    {
        args.push(flag.to_string());
        args.push(port.clone());
    }
    let mut p = Process::spawn(Path::new(BIN), &args, dir.path(), &[]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = p.output();
        if out.contains("Ctrl-C stops.") {
            let curls = out
                .lines()
                .filter(|l| l.trim_start().starts_with("curl "))
                .map(str::to_owned)
                .collect();
            return (p, curls);
        }
        if let Some(s) = p.try_exit() {
            panic!("dev exited ({s}):\n{out}");
        }
        assert!(Instant::now() < deadline, "dev did not come up:\n{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_prints_three_curl_lines_that_work_and_keeps_its_state() {
    let dir = TempDir::new("dev").unwrap();
    let ports: Vec<String> = (0..4).map(|_| free_addr().to_string()).collect();
    let (mut p, curls) = start(&dir, &ports).await;
    assert_eq!(curls.len(), 3, "{curls:?}");
    assert_eq!(run_curl(&curls[0]).await, 200, "{}", curls[0]);
    assert_eq!(run_curl(&curls[1]).await, 401, "{}", curls[1]);
    assert_eq!(run_curl(&curls[2]).await, 404, "{}", curls[2]);
    let status = p
        .terminate(Duration::from_secs(20))
        .expect("dev stops on SIGTERM");
    assert!(status.success(), "clean exit: {status}\n{}", p.output());
    assert!(dir.path().join(".gatehouse/platform.db").exists());

    // Again: the same sample API and key, still served.
    let (mut p, again) = start(&dir, &ports).await;
    assert_eq!(again[0], curls[0], "the same key is kept");
    assert_eq!(run_curl(&again[0]).await, 200);
    assert!(p
        .terminate(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
}

/// The `/metrics` text at `addr`.
async fn metrics(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a text body")
}

/// Whether `text` has a non-zero sample of `series` whose labels include each of `labels`.
fn has_sample(text: &str, series: &str, labels: &[&str]) -> bool {
    text.lines().any(|l| {
        l.starts_with(&format!("{series}{{"))
            && labels.iter().all(|label| l.contains(label))
            && l.rsplit(' ').next().is_some_and(|v| v != "0")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_shows_the_platform_and_gateway_series_on_both_metrics_endpoints() {
    let dir = TempDir::new("dev-metrics").unwrap();
    let ports: Vec<String> = (0..4).map(|_| free_addr().to_string()).collect();
    let (mut p, curls) = start(&dir, &ports).await;
    assert_eq!(run_curl(&curls[0]).await, 200, "{}", curls[0]);
    let (platform_addr, admin_addr) = (&ports[0], &ports[2]);

    let gateway = metrics(admin_addr).await;
    let served = [r#"artifact="echo""#, r#"status="2xx""#];
    assert!(
        has_sample(&gateway, "gatehouse_gateway_requests_total", &served),
        "the gateway's /metrics shows the request it served:\n{gateway}"
    );
    assert!(
        has_sample(&gateway, "gatehouse_http_requests_total", &[]),
        "the gateway's /metrics shows the platform's series too:\n{gateway}"
    );
    let platform = metrics(platform_addr).await;
    assert!(
        has_sample(&platform, "gatehouse_http_requests_total", &[]),
        "the platform's /metrics shows its series:\n{platform}"
    );
    assert!(
        has_sample(&platform, "gatehouse_gateway_requests_total", &served),
        "the platform's /metrics shows the gateway's series too:\n{platform}"
    );
    assert!(p
        .terminate(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
}
