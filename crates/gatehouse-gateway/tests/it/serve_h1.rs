//! The gateway's own HTTP/1.1 loop (`proxy/h1serve.rs`) spoken to on a bare socket:
//! pipelined requests, chunked request bodies, a refused request whose small body is read and
//! dropped so the connection goes on, a large unread body that closes it, `Connection: close`,
//! HEAD, HTTP/1.0 (left to hyper) and a malformed request target; and a request in flight
//! when the gateway is told to stop, answered before it exits.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire::bare_upstream;
use super::{create, gateway, rest_doc};

/// One response off `s` (its head lowercased, its body by Content-Length); `None` at EOF.
async fn response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_only: bool,
) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    buf.drain(..end);
    let len = if head_only {
        0
    } else {
        head.lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap())
    };
    while buf.len() < len {
        assert!(s.read_buf(buf).await.unwrap() > 0, "body cut short");
    }
    Some((head, buf.drain(..len).collect()))
}

/// Whether the gateway closes `s` (reads nothing more, within 10 s).
async fn closes(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http1_loop_keeps_connections_right() {
    let (url, _) = bare_upstream().await;
    let gw = gateway(&[]).await;
    let ops = json!([{"method": "GET", "path": "/*"}, {"method": "POST", "path": "/*"},
                     {"method": "HEAD", "path": "/*"}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("open", "/s", &url, ops.clone(), json!([])),
    )
    .await;
    let keyed = json!([{"name": "api-key-auth"}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("keyed", "/k", &url, ops, keyed),
    )
    .await;
    let addr = gw.base.trim_start_matches("http://").to_owned();

    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut buf = Vec::new();
    // Two requests in one write: two answers, in order.
    s.write_all(b"GET /s/one HTTP/1.1\r\nHost: a\r\n\r\nPOST /s/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntwo")
        .await
        .unwrap();
    let (head, body) = response(&mut s, &mut buf, false).await.unwrap();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    assert_eq!(body, b"ok");
    let (_, body) = response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(body, b"two");
    // A chunked body, decoded on its way.
    s.write_all(b"POST /s/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(body, b"abcde");
    // Refused before its body was read: the small body is dropped, the connection goes on.
    s.write_all(b"POST /k/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut buf, false).await.unwrap();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    // HEAD: the length of what a GET would get, no body; then the connection goes on.
    s.write_all(b"HEAD /s/x HTTP/1.1\r\nHost: a\r\n\r\nGET /s/x HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut buf, true).await.unwrap();
    assert!(
        head.starts_with("http/1.1 200") && head.contains("content-length: 2"),
        "{head}"
    );
    let (_, body) = response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(body, b"ok");
    // Connection: close is honoured.
    s.write_all(b"GET /s/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut buf, false).await.unwrap();
    assert!(head.contains("connection: close"), "{head}");
    assert!(closes(&mut s, &mut buf).await);

    // Refused with a large body unread: answered, with Connection: close, and closed.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /k/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nstart")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut buf, false).await.unwrap();
    assert!(
        head.starts_with("http/1.1 401") && head.contains("connection: close"),
        "{head}"
    );
    assert!(closes(&mut s, &mut buf).await);

    // HTTP/1.0 goes to hyper, and is served.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /s/x HTTP/1.0\r\n\r\n").await.unwrap();
    let (head, body) = response(&mut s, &mut buf, false).await.unwrap();
    assert!(head.contains(" 200 "), "{head}");
    assert_eq!(body, b"ok");

    // A target that is no URI: 400, and closed.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET http://[::1/s/x HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut buf, false).await.unwrap();
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(closes(&mut s, &mut buf).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_is_answered_before_the_gateway_exits() {
    let (url, accepted) = bare_upstream().await;
    let mut gw = gateway(&[]).await;
    let ops = json!([{"method": "GET", "path": "/*"}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("open", "/s", &url, ops, json!([])),
    )
    .await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /s/slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    // In flight once the gateway has connected upstream (the upstream answers after 1 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stop = tokio::task::spawn_blocking(move || {
        let status = gw.process.terminate(Duration::from_secs(20));
        (status, gw)
    });
    let mut buf = Vec::new();
    let (head, body) = response(&mut s, &mut buf, false).await.expect("answered");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, b"ok");
    let (status, gw) = stop.await.unwrap();
    let status = status.expect("the gateway exits");
    assert!(
        status.success(),
        "clean exit: {status}\n{}",
        gw.process.output()
    );
}
