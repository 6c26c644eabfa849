//! The MCP path against a hostile server: an SSE event larger than the gateway relays.

use std::convert::Infallible;

use bytes::Bytes;
use futures::stream;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use super::{create, gateway};

/// Answers every request with one SSE event of `size` bytes, sent in 64 KiB pieces.
async fn huge_event_server(size: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |_req| async move {
                    let head = br#"event: message
data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"add","description":""#;
                    let mut pieces: Vec<Result<Frame<Bytes>, Infallible>> =
                        vec![Ok(Frame::data(Bytes::from_static(head)))];
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(64 << 10);
                        pieces.push(Ok(Frame::data(Bytes::from(vec![b'x'; n]))));
                        left -= n;
                    }
                    pieces.push(Ok(Frame::data(Bytes::from_static(b"\"}]}}\n\n"))));
                    let mut r = hyper::Response::new(StreamBody::new(stream::iter(pieces)));
                    r.headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_sse_event_ends_the_stream_with_an_error_and_the_gateway_keeps_serving() {
    let url = huge_event_server(9 << 20).await;
    let gw = gateway(&[]).await;
    create(&gw.admin(), "mcp-proxies", &json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "big"},
        "spec": {"displayName": "Big", "context": "/big", "upstream": {"url": url}, "tools": ["add"]}
    }))
    .await;
    for _ in 0..2 {
        let r = reqwest::Client::new()
            .post(format!("{}/big/mcp", gw.base))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.len() < 1 << 20,
            "the event is not relayed ({} bytes)",
            text.len()
        );
        assert!(text.contains("larger than 8 MiB"), "{text}");
    }
    let (s, _) = gw.traffic().get("/_gateway-health/healthy").await.unwrap();
    assert_eq!(s, 200);
}
