//! Routing and forwarding: specificity, sandbox hosts, upstream failures, streaming, HTTP/2.

use std::time::{Duration, Instant};

use gatehouse_testkit::echo::EchoServer;
use serde_json::{json, Value};

use super::{create, gateway, get, rest_doc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_by_specificity_and_forward_to_the_upstream() {
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let ops = json!([
        {"method": "GET", "path": "/items/*"},
        {"method": "GET", "path": "/items/{id}"},
        {"method": "GET", "path": "/items/special"},
        {"method": "POST", "path": "/items"},
        {"method": "GET", "path": "/"}
    ]);
    create(
        &admin,
        "rest-apis",
        &rest_doc("shop", "/shop/$version", &up.url("/base"), ops, json!([])),
    )
    .await;
    let t = gw.traffic();

    let (s, b) = get(&t, "/shop/v1.0/items/42?x=1&y=2").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["path"], "/base/items/42",
        "context stripped, base path prepended"
    );
    assert_eq!(b["query"], "x=1&y=2");
    assert_eq!(b["method"], "GET");
    // Forwarding headers, host rewritten to the upstream.
    assert_eq!(b["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(b["headers"]["x-forwarded-proto"], "http");
    assert_eq!(b["headers"]["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(b["headers"]["host"], up.addr.to_string());
    assert_eq!(
        get(&t, "/shop/v1.0/items/special").await.1["path"],
        "/base/items/special"
    );
    assert_eq!(
        get(&t, "/shop/v1.0/items/42/").await.1["path"],
        "/base/items/42/",
        "trailing slash kept"
    );
    assert_eq!(
        get(&t, "/shop/v1.0/items/42/parts/7").await.1["path"],
        "/base/items/42/parts/7"
    );
    assert_eq!(get(&t, "/shop/v1.0").await.1["path"], "/base");
    let (s, b) = t.post("/shop/v1.0/items", &json!({"n": 1})).await.unwrap();
    assert_eq!((s, b["method"].as_str()), (200, Some("POST")));
    assert_eq!(b["body"], r#"{"n":1}"#);

    // Wrong method, unknown path, unknown context, a sibling prefix: 404 with the JSON body.
    for (method, path) in [
        ("DELETE", "/shop/v1.0/items"),
        ("GET", "/shop/v1.0/other"),
        ("GET", "/nowhere"),
        ("GET", "/shopping/v1.0/items/1"),
        ("GET", "/shop/v2.0/items/1"),
    ] {
        let r = t.raw(method.parse().unwrap(), path, &[]).await.unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.text().await.unwrap(), r#"{"error":"Not Found"}"#);
    }

    // Hop-by-hop headers are not forwarded; end-to-end ones are.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/shop/v1.0/items/1",
            &[
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "1"),
                ("x-end", "2"),
            ],
        )
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert!(b["headers"].get("x-hop").is_none(), "{b}");
    assert_eq!(b["headers"]["x-end"], "2");
    // An X-Forwarded-For from a previous hop is extended.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/shop/v1.0/items/1",
            &[("x-forwarded-for", "10.0.0.1")],
        )
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-forwarded-for"], "10.0.0.1, 127.0.0.1");

    assert_eq!(
        get(&t, "/_gateway-health/ready").await,
        (200, json!({"status": "ready"}))
    );
    assert_eq!(
        get(&t, "/_gateway-health/healthy").await,
        (200, json!({"status": "healthy"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_hosts_reach_the_sandbox_upstream() {
    let main = EchoServer::start("main").await;
    let sandbox = EchoServer::start("sandbox").await;
    let gw = gateway(&[]).await;
    let mut doc = rest_doc("pets", "/pets", &main.url(""), json!([]), json!([]));
    doc["spec"]["upstream"]["sandbox"] = json!({"url": sandbox.url("/sb")});
    create(&gw.admin(), "rest-apis", &doc).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("plain", "/plain", &main.url(""), json!([]), json!([])),
    )
    .await;
    let t = gw.traffic();
    let (_, b) = get(&t, "/pets/dogs").await;
    assert_eq!(
        (b["upstream"].as_str(), b["path"].as_str()),
        (Some("main"), Some("/dogs"))
    );
    let r = t
        .raw(
            reqwest::Method::GET,
            "/pets/dogs",
            &[("host", "sandbox-api.example")],
        )
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["upstream"].as_str(), b["path"].as_str()),
        (Some("sandbox"), Some("/sb/dogs"))
    );
    // An API without a sandbox upstream is not served on sandbox hosts.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/plain/x",
            &[("host", "sandbox-api.example")],
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_answer_503_and_504() {
    let up = EchoServer::start("slow").await;
    let gw = gateway(&[
        "--upstream-timeout",
        "300ms",
        "--upstream-connect-timeout",
        "500ms",
    ])
    .await;
    let closed = gatehouse_testkit::free_addr();
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "down",
            "/down",
            &format!("http://{closed}"),
            json!([]),
            json!([]),
        ),
    )
    .await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("slow", "/slow", &up.url(""), json!([]), json!([])),
    )
    .await;
    let t = gw.traffic();
    let (s, b) = get(&t, "/down/x").await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"], "Service Unavailable");
    let started = Instant::now();
    let (s, b) = get(&t, "/slow/x?delay_ms=3000").await;
    assert_eq!(s, 504, "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout applies"
    );
    let (s, _) = get(&t, "/slow/x?delay_ms=10").await;
    assert_eq!(s, 200);
    // Again on the upstream connection kept from that answer: its timer, set for the earlier
    // request, still ends this one in time.
    let started = Instant::now();
    let (s, b) = get(&t, "/slow/x?delay_ms=3000").await;
    assert_eq!(s, 504, "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout applies to a kept-alive upstream connection too"
    );
    // Upstream statuses pass through.
    assert_eq!(get(&t, "/slow/status/418").await.0, 418);
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert!(
        metrics.contains("gatehouse_gateway_upstream_errors_total{artifact=\"down\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_bodies_arrive_as_the_upstream_sends_them() {
    use futures::StreamExt;
    let up = EchoServer::start("stream").await;
    let gw = gateway(&[]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("events", "/events", &up.url(""), json!([]), json!([])),
    )
    .await;
    let client = reqwest::Client::new();
    for (path, first_marker) in [
        ("/events/sse?events=4&interval_ms=300", "event-0"),
        ("/events/chunked?chunks=4&interval_ms=300", "chunk-0"),
    ] {
        let started = Instant::now();
        let r = client
            .get(format!("{}{path}", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut stream = r.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        let first_at = started.elapsed();
        assert!(String::from_utf8_lossy(&first).contains(first_marker));
        let mut all = first.to_vec();
        while let Some(chunk) = stream.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        let total = started.elapsed();
        assert!(
            first_at < Duration::from_millis(600),
            "first part came after {first_at:?}: buffered?"
        );
        assert!(
            total >= Duration::from_millis(850),
            "the whole body takes the upstream's time ({total:?})"
        );
        assert!(
            String::from_utf8_lossy(&all).contains("-3"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_served() {
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("h2", "/h2", &up.url(""), json!([]), json!([])),
    )
    .await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/h2/x", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["path"], "/x");
    assert_eq!(b["version"], "HTTP/1.1", "upstream leg is HTTP/1.1");
}
