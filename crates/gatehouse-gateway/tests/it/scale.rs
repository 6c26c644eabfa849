//! A change to one artifact does not compile the others: a gateway loaded with thousands of
//! APIs applies each further change to that artifact's entry alone (the full-rebuild counter
//! stays put) and serves it at once. Figures at 10,000 are in docs/benchmarks.md (bench/scale.sh).

use std::time::Instant;

use futures::StreamExt;
use gatehouse_testkit::echo::EchoServer;
use serde_json::json;

use super::{create, gateway, rest_doc};

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_among_thousands_updates_one_entry() {
    const N: usize = 2000;
    let echo = EchoServer::start("scale").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let (_, m) = admin.get_text("/metrics").await.unwrap();
    let rebuilds = metric(&m, "gatehouse_gateway_route_table_rebuilds_total");
    assert_eq!(rebuilds, 1.0, "the table is compiled whole once, at start");

    let started = Instant::now();
    futures::stream::iter(0..N)
        .map(|i| {
            let (admin, url) = (admin.clone(), echo.url(""));
            async move {
                let doc = rest_doc(
                    &format!("api-{i}"),
                    &format!("/api-{i}"),
                    &url,
                    json!([]),
                    json!([]),
                );
                create(&admin, "rest-apis", &doc).await;
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    let loaded = started.elapsed();
    let (_, m) = admin.get_text("/metrics").await.unwrap();
    assert_eq!(
        metric(&m, "gatehouse_gateway_route_table_artifacts"),
        N as f64
    );
    assert_eq!(
        metric(&m, "gatehouse_gateway_route_table_rebuilds_total"),
        rebuilds,
        "no full rebuild"
    );
    assert!(metric(&m, "gatehouse_gateway_route_table_updates_total") >= N as f64);

    // One more, served as soon as the management call returns; a change and a delete too.
    let changed = Instant::now();
    create(
        &admin,
        "rest-apis",
        &rest_doc("late", "/late", &echo.url(""), json!([]), json!([])),
    )
    .await;
    let (s, _) = gw.traffic().get("/late/x").await.unwrap();
    assert_eq!(s, 200);
    let one = changed.elapsed();
    let (s, _) = admin
        .delete("/api/management/v1/rest-apis/api-7")
        .await
        .unwrap();
    assert_eq!(s, 204);
    assert_eq!(
        gw.traffic().get("/api-7/x").await.unwrap().0,
        404,
        "deleted is not served"
    );
    assert_eq!(
        gw.traffic().get("/api-8/x").await.unwrap().0,
        200,
        "the others are"
    );
    let (_, m) = admin.get_text("/metrics").await.unwrap();
    assert_eq!(
        metric(&m, "gatehouse_gateway_route_table_rebuilds_total"),
        rebuilds
    );
    eprintln!("loaded {N} APIs in {loaded:?}; one more created and served in {one:?}");
}
