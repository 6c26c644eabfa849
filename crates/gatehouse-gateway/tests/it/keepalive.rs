//! Upstream keep-alive on the forwarding path (`proxy/h1pool.rs`): a connection is used again
//! once its response was read to the end, also after an empty answer; one whose response was
//! cut short is not; one the upstream closed is replaced without the client noticing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::{create, gateway, rest_doc};

/// An HTTP/1.1 upstream counting the connections it accepted. `/empty` answers 204, `/close`
/// answers with `Connection: close`, `/slow` sends one chunk and then nothing for a minute,
/// anything else "ok".
async fn counting_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let mut res = hyper::Response::new(
                            Full::new(Bytes::from_static(b"ok"))
                                .map_err(|e| match e {})
                                .boxed(),
                        );
                        match req.uri().path() {
                            "/empty" => {
                                *res.status_mut() = hyper::StatusCode::NO_CONTENT;
                                *res.body_mut() =
                                    Full::new(Bytes::new()).map_err(|e| match e {}).boxed();
                            }
                            "/close" => {
                                res.headers_mut().insert(
                                    "connection",
                                    hyper::header::HeaderValue::from_static("close"),
                                );
                            }
                            "/slow" => {
                                let chunks = futures::stream::once(async {
                                    Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(
                                        b"first",
                                    )))
                                })
                                .chain(futures::stream::once(async {
                                    tokio::time::sleep(Duration::from_secs(60)).await;
                                    Ok(Frame::data(Bytes::from_static(b"never")))
                                }));
                                *res.body_mut() = BodyExt::boxed(StreamBody::new(chunks));
                            }
                            _ => {}
                        }
                        Ok::<_, hyper::Error>(res)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (url, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_kept_alive_and_replaced_when_they_cannot_be() {
    let (url, accepted) = counting_upstream().await;
    // One worker, so that every request shares one thread's connections.
    let gw = gateway(&["--workers", "1"]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "ka",
            "/ka",
            &url,
            json!([{"method": "GET", "path": "/*"}]),
            json!([]),
        ),
    )
    .await;
    let t = gw.traffic();
    for i in 0..20 {
        let (s, b) = t.get("/ka/x").await.unwrap();
        assert_eq!(s, 200, "request {i}: {b}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "20 requests, one connection"
    );

    // An empty answer ends its response at once: the connection is used again.
    for _ in 0..3 {
        assert_eq!(t.get("/ka/empty").await.unwrap().0, 204);
    }
    assert_eq!(t.get("/ka/x").await.unwrap().0, 200);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "empty answers keep the connection"
    );

    // The upstream closes after answering: the next request gets a new connection.
    assert_eq!(t.get("/ka/close").await.unwrap().0, 200);
    assert_eq!(t.get("/ka/x").await.unwrap().0, 200);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "a closed connection is replaced"
    );

    // A response the client stops reading: its connection is not handed to anyone else (the
    // requests after it would wait behind a body that never ends).
    let client = reqwest::Client::new();
    let slow = client
        .get(format!("{}/ka/slow", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    drop(slow);
    let before = accepted.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(t.get("/ka/x").await.unwrap().0, 200);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        before + 1,
        "the requests after the cut response share one new connection"
    );
}
