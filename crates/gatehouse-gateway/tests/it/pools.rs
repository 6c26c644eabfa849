//! Upstreams of several URLs: requests balanced by weight, a dead endpoint left out and its
//! GETs served by the others, a POST or a PUT with a body to it not replayed, the dead one used again once it is
//! back, and active health checks taking an endpoint out and back in.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_testkit::{eventually, free_addr, Gateway};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

use super::{create, gateway};

/// A server on `addr` answering `{"upstream": name}`, and `health` as the status of `/healthz`.
async fn server(
    name: &'static str,
    addr: SocketAddr,
    health: Arc<AtomicU16>,
) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let health = health.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let health = health.clone();
                    async move {
                        let mut r = hyper::Response::new(Full::new(Bytes::from(
                            json!({"upstream": name}).to_string(),
                        )));
                        if req.uri().path() == "/healthz" {
                            *r.status_mut() =
                                hyper::StatusCode::from_u16(health.load(Ordering::Relaxed))
                                    .unwrap();
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    })
}

fn ok() -> Arc<AtomicU16> {
    Arc::new(AtomicU16::new(200))
}

async fn api(gw: &Gateway, name: &str, main: Value) {
    create(
        &gw.admin(),
        "rest-apis",
        &json!({
            "apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": name},
            "spec": {"displayName": name, "context": format!("/{name}"), "upstream": {"main": main}}
        }),
    )
    .await;
}

/// Who served each of `n` GETs (all must succeed).
async fn spread(gw: &Gateway, path: &str, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (s, b) = gw.traffic().get(path).await.unwrap();
        assert_eq!(s, 200, "{b}");
        *seen
            .entry(b["upstream"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_balanced_and_a_dead_endpoint_is_left_out_until_it_is_back() {
    let (a, b, dead) = (free_addr(), free_addr(), free_addr());
    let _a = server("a", a, ok()).await;
    let _b = server("b", b, ok()).await;
    let gw = gateway(&[]).await;
    api(
        &gw,
        "weighted",
        json!({"urls": [{"url": format!("http://{a}"), "weight": 3}, format!("http://{b}")]}),
    )
    .await;
    let seen = spread(&gw, "/weighted/x", 40).await;
    assert_eq!((seen["a"], seen["b"]), (30, 10), "by weight: {seen:?}");

    // A POST to the dead endpoint is not replayed; GETs are served by the live one.
    api(
        &gw,
        "pool",
        json!({"urls": [format!("http://{dead}"), format!("http://{a}")]}),
    )
    .await;
    let (s, _) = gw
        .traffic()
        .post("/pool/x", &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(
        s, 503,
        "the first pick is the dead one and a POST is not retried"
    );
    // Nor is a PUT whose HTTP/2 body has no declared length: its body went with the first try.
    api(
        &gw,
        "put",
        json!({"urls": [format!("http://{dead}"), format!("http://{a}")]}),
    )
    .await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let chunks: Vec<Result<&'static str, Infallible>> = vec![Ok("{\"n\":"), Ok(" 1}")];
    let r = h2
        .put(format!("{}/put/x", gw.base))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        r.status(),
        503,
        "a PUT with a streamed body is not retried without it"
    );
    let seen = spread(&gw, "/pool/x", 10).await;
    assert_eq!(seen.get("a"), Some(&10));
    let (_, m) = gw.admin().get_text("/metrics").await.unwrap();
    assert!(
        m.lines().any(
            |l| l.starts_with("gatehouse_upstream_endpoint_requests_total")
                && l.contains(&dead.to_string())
                && l.contains("connect_failed")
        ),
        "{m}"
    );

    // Back up: used again once its ejection is over.
    let _revived = server("revived", dead, ok()).await;
    eventually(
        Duration::from_secs(20),
        "the revived endpoint to serve",
        || async {
            let (s, b) = gw.traffic().get("/pool/x").await.ok()?;
            assert_eq!(s, 200);
            (b["upstream"] == "revived").then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_its_health_check_is_out_until_it_passes() {
    let (a, b) = (free_addr(), free_addr());
    let b_health = Arc::new(AtomicU16::new(503));
    let _a = server("a", a, ok()).await;
    let _b = server("b", b, b_health.clone()).await;
    let gw = gateway(&[]).await;
    api(
        &gw,
        "checked",
        json!({"urls": [format!("http://{a}"), format!("http://{b}")],
                               "healthCheck": {"path": "/healthz", "interval": "100ms"}}),
    )
    .await;
    let admin = gw.admin();
    let b_gauge = format!(
        "gatehouse_upstream_endpoint_available{{artifact=\"checked\",endpoint=\"http://{b}\"}}"
    );
    eventually(Duration::from_secs(10), "b to be marked down", || async {
        let (_, m) = admin.get_text("/metrics").await.ok()?;
        m.lines().any(|l| l == format!("{b_gauge} 0")).then_some(())
    })
    .await
    .unwrap();
    let seen = spread(&gw, "/checked/x", 10).await;
    assert_eq!(seen.get("a"), Some(&10), "{seen:?}");
    b_health.store(200, Ordering::Relaxed);
    eventually(Duration::from_secs(10), "b to serve again", || async {
        let (_, b) = gw.traffic().get("/checked/x").await.ok()?;
        (b["upstream"] == "b").then_some(())
    })
    .await
    .unwrap();
}
