//! HTTP/1.1 framing on the forwarding path (`proxy/h1wire.rs`, `proxy/h1pool.rs`) against an
//! upstream written on a bare socket, so that every framing case is what the test says it is:
//! chunked and close-delimited answers, interim 100 answers, HEAD, large bodies, request bodies
//! of both framings, a kept-alive connection the upstream drops, and a malformed answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{create, gateway, rest_doc};

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds `n` bytes; false when the peer closed first.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> bool {
    while buf.len() < n {
        if s.read_buf(buf).await.unwrap_or(0) == 0 {
            return false;
        }
    }
    true
}

/// Reads one request (head and body, either framing); `None` when the peer closed.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if s.read_buf(buf).await.unwrap_or(0) == 0 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    buf.drain(..end);
    let mut body = Vec::new();
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        fill(s, buf, len).await.then_some(())?;
        body = buf.drain(..len).collect();
    } else if head.contains("transfer-encoding: chunked") {
        loop {
            let line = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                if s.read_buf(buf).await.unwrap_or(0) == 0 {
                    return None;
                }
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..line]).ok()?, 16).ok()?;
            buf.drain(..line + 2);
            fill(s, buf, size + 2).await.then_some(())?;
            body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                break;
            }
        }
    }
    Some((head, body))
}

/// The upstream: counts connections; what it answers depends on the path.
pub async fn bare_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut drop_next = false;
                while let Some((head, body)) = read_request(&mut s, &mut buf).await {
                    if drop_next {
                        // Closes the kept-alive connection as the request arrives.
                        return;
                    }
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
                    match path.as_str() {
                        "/chunked" => {
                            s.write_all(
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                            )
                            .await
                            .unwrap();
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            s.write_all(b"lo\r\n6\r\n world\r\n0\r\n\r\n")
                                .await
                                .unwrap();
                        }
                        "/close-delimited" => {
                            s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ")
                                .await
                                .unwrap();
                            s.write_all(b"the end").await.unwrap();
                            return;
                        }
                        "/continue" => {
                            let mut out = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
                            out.extend_from_slice(&ok);
                            s.write_all(&out).await.unwrap();
                        }
                        "/head" => {
                            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
                                .await
                                .unwrap();
                        }
                        "/big" => {
                            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                                .await
                                .unwrap();
                            for i in 0..10u8 {
                                s.write_all(&vec![b'a' + i; 100_000]).await.unwrap();
                            }
                        }
                        "/echo" => {
                            let mut out = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            out.extend_from_slice(&body);
                            s.write_all(&out).await.unwrap();
                        }
                        "/garbage" => {
                            s.write_all(b"HTTP/1.1 abc\r\n\r\n").await.unwrap();
                            return;
                        }
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            s.write_all(&ok).await.unwrap();
                        }
                        "/arm" => {
                            drop_next = true;
                            s.write_all(&ok).await.unwrap();
                        }
                        _ => s.write_all(&ok).await.unwrap(),
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_is_forwarded_and_the_connection_kept_when_it_can_be() {
    let (url, accepted) = bare_upstream().await;
    // One worker, so that every request shares one thread's connections.
    let gw = gateway(&["--workers", "1"]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "wire",
            "/wire",
            &url,
            json!([{"method": "GET", "path": "/*"}, {"method": "POST", "path": "/*"},
                   {"method": "HEAD", "path": "/*"}]),
            json!([]),
        ),
    )
    .await;
    let c = reqwest::Client::new();
    let at = |p: &str| format!("{}/wire{p}", gw.base);

    // Chunked, split across writes: decoded, then the connection carries the next request.
    let r = c.get(at("/chunked")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello world");
    let r = c.get(at("/continue")).send().await.unwrap();
    assert_eq!(r.status(), 200, "an interim 100 is skipped");
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = c.head(at("/head")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "5", "HEAD keeps the length");
    let r = c.get(at("/big")).send().await.unwrap();
    let big = r.bytes().await.unwrap();
    assert_eq!(big.len(), 1_000_000);
    assert!(big[..100_000].iter().all(|b| *b == b'a') && big[900_000..].iter().all(|b| *b == b'j'));
    // Request bodies: by length, and chunked from a stream of unknown length.
    let r = c.post(at("/echo")).body("by length").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "by length");
    let parts: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"in ")),
        Ok(Bytes::from_static(b"three ")),
        Ok(Bytes::from_static(b"chunks")),
    ];
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(parts));
    let r = c.post(at("/echo")).body(stream).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "in three chunks");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "every answer above ended where its framing said: one connection"
    );

    // Until the upstream closes: all of it, and the next request on a new connection.
    let r = c.get(at("/close-delimited")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "until the end");
    assert_eq!(c.get(at("/x")).send().await.unwrap().status(), 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // A kept-alive connection the upstream drops as the next request arrives: a request
    // without a body goes again on a new connection, unnoticed by the client.
    assert_eq!(c.get(at("/arm")).send().await.unwrap().status(), 200);
    let r = c.get(at("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200, "retried on a new connection");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    // One with a body is never sent twice: the client learns it failed.
    assert_eq!(c.get(at("/arm")).send().await.unwrap().status(), 200);
    let r = c.post(at("/echo")).body("once").send().await.unwrap();
    assert_eq!(r.status(), 502);

    // A malformed answer is a 502, and the gateway goes on serving.
    assert_eq!(c.get(at("/garbage")).send().await.unwrap().status(), 502);
    assert_eq!(c.get(at("/x")).send().await.unwrap().status(), 200);
}
