//! Limits every client connection is held to before any route sees it: request head size and
//! header count (431, never forwarded), time to send headers (slow clients are disconnected),
//! connections per worker (past the cap, new ones wait until one closes).

use std::time::{Duration, Instant};

use gatehouse_testkit::echo::EchoServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{create, gateway, rest_doc};

/// Sends `head` (a whole request head) and returns the status line of the answer.
async fn status_of(addr: std::net::SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_too_many_headers_get_431_from_the_gateway_on_any_path() {
    let echo = EchoServer::start("limits").await;
    let gw = gateway(&[]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "items",
            "/items",
            &echo.url(""),
            json!([{"method": "GET", "path": "/*"}]),
            json!([]),
        ),
    )
    .await;
    // The echo upstream takes heads up to hyper's ~400 KiB: a 431 here is the gateway's own.
    let big = format!("x-big: {}\r\n", "a".repeat(100 << 10));
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    for path in ["/items/1", "/nowhere"] {
        for extra in [&big, &many] {
            let head = format!("GET {path} HTTP/1.1\r\nhost: gw\r\n{extra}\r\n");
            let line = status_of(gw.addr, &head).await;
            assert!(line.starts_with("HTTP/1.1 431"), "{path}: {line}");
        }
    }
    // Within the limits the request is served.
    let fine = format!(
        "GET /items/1 HTTP/1.1\r\nhost: gw\r\nx-ok: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(32 << 10)
    );
    assert!(status_of(gw.addr, &fine).await.starts_with("HTTP/1.1 200"));
}

/// Reads (and drops) what comes until the other side closes the connection.
async fn read_until_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    let gw = gateway(&["--client-header-timeout", "1s"]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /_gateway-health/healthy HTTP/1.1\r\nhost: gw\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), read_until_closed(&mut s)).await;
    assert!(closed.is_ok(), "the connection is closed by the gateway");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "not before the timeout"
    );
    // The same after a request served on the connection: the next head has its own second.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /_gateway-health/healthy HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.write_all(b"GET /_gateway-health/healthy HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(10), read_until_closed(&mut s)).await;
    assert!(
        closed.is_ok(),
        "a kept-alive connection is held to the timeout"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "counted from when the connection was ready for the head, not before"
    );
    // The gateway goes on serving.
    let (status, _) = gw.traffic().get("/_gateway-health/healthy").await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_until_one_closes() {
    let gw = gateway(&["--workers", "1", "--max-connections", "1"]).await;
    let ask = b"GET /_gateway-health/healthy HTTP/1.1\r\nhost: gw\r\n\r\n";
    let mut first = TcpStream::connect(gw.addr).await.unwrap();
    first.write_all(ask).await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(
        first.read(&mut buf).await.unwrap() > 0,
        "the first connection is served"
    );
    let mut second = TcpStream::connect(gw.addr).await.unwrap();
    second.write_all(ask).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the second connection waits while the first is open"
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("served once the first closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert!(
        metrics.contains("gatehouse_connection_limit_reached_total"),
        "counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_apis_limit_gets_413_declared_or_chunked() {
    let echo = EchoServer::start("bodies").await;
    let gw = gateway(&[]).await;
    let mut doc = rest_doc(
        "uploads",
        "/uploads",
        &echo.url(""),
        json!([{"method": "POST", "path": "/*"}]),
        json!([]),
    );
    doc["spec"]["maxRequestBody"] = json!("1KiB");
    create(&gw.admin(), "rest-apis", &doc).await;
    let (_, held) = super::get(&gw.admin(), "/api/management/v1/rest-apis/uploads").await;
    assert_eq!(held["spec"]["maxRequestBody"], 1024);

    let addr = gw.addr;
    let post = move |body: String, chunked: bool| async move {
        let head = if chunked {
            format!("POST /uploads/x HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
        } else {
            format!("POST /uploads/x HTTP/1.1\r\nhost: gw\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
        };
        status_of(addr, &head).await
    };
    assert!(post("a".repeat(512), false)
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(post("a".repeat(512), true)
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(post("a".repeat(2048), false)
        .await
        .starts_with("HTTP/1.1 413"));
    assert!(post("a".repeat(2048), true)
        .await
        .starts_with("HTTP/1.1 413"));
    let (s, b) = gw
        .traffic()
        .post_raw("/uploads/x", vec![b'a'; 4096])
        .await
        .unwrap();
    assert_eq!(s, 413);
    assert!(
        b["message"].as_str().unwrap().contains("maxRequestBody"),
        "{b}"
    );
}
