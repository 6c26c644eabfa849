//! HTTP/1.1 framing on the forwarding path (`proxy/h1wire.rs`, `proxy/h1pool.rs`) against an
//! upstream written on a bare socket, so that every framing case is what the test says it is:
//! chunked and close-delimited answers, interim 100 answers, HEAD, large bodies, request bodies
//! of both framings, a kept-alive connection the upstream drops, and a malformed answer; an
//! upstream's headers passed to an HTTP/1.1 client as written, and a client's head passed to
//! the upstream as written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{create, gateway, issue_key, rest_doc};

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
                    let target = head.split_whitespace().nth(1).unwrap_or("/");
                    let path = target.split('?').next().unwrap_or("/").to_owned();
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
                        "/request-head" => {
                            // The head as it arrived (in lower case), as the body.
                            let out = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{head}",
                                head.len()
                            );
                            s.write_all(out.as_bytes()).await.unwrap();
                        }
                        "/headers" => {
                            s.write_all(
                                b"HTTP/1.1 200 OK\r\nX-Trace: a  b\r\nConnection: keep-alive\r\n\
                                  Keep-Alive: timeout=5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\
                                  RateLimit-Limit: 999\r\nContent-Length: 2\r\n\r\nok",
                            )
                            .await
                            .unwrap();
                        }
                        "/hop-named" => {
                            s.write_all(
                                b"HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nX-End: 1\r\n\
                                  Content-Length: 2\r\n\r\nok",
                            )
                            .await
                            .unwrap();
                        }
                        "/coded-and-length" => {
                            s.write_all(
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
                                  Content-Length: 99\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                            )
                            .await
                            .unwrap();
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

/// Sends `GET path` over HTTP/1.1 on a new connection (so that the gateway's own loop writes
/// the answer) and reads the whole answer.
async fn raw_get(base: &str, path: &str) -> String {
    let mut s = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

/// The header lines of an answer, as written.
fn header_lines(answer: &str) -> Vec<&str> {
    let head = answer.split("\r\n\r\n").next().unwrap();
    head.split("\r\n").skip(1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_headers_reach_the_client_as_written_less_hop_by_hop_ones() {
    let (url, _) = bare_upstream().await;
    let gw = gateway(&["--workers", "1"]).await;
    let ops = json!([{"method": "GET", "path": "/*"}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("plain", "/plain", &url, ops.clone(), json!([])),
    )
    .await;
    let limited = json!([{"name": "rate-limit", "params": {"requests": 50, "window": "1m"}}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("limited", "/limited", &url, ops.clone(), limited),
    )
    .await;
    let edited = json!([{"name": "set-headers", "params": {"response": {"remove": ["X-Trace"]}}}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("edited", "/edited", &url, ops, edited),
    )
    .await;

    // Passed through: the upstream's spelling, repeated headers and values kept; the headers
    // of its hop gone; the gateway's Date added once.
    let answer = raw_get(&gw.base, "/plain/headers").await;
    let lines = header_lines(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    for want in [
        "X-Trace: a  b",
        "Set-Cookie: a=1",
        "Set-Cookie: b=2",
        "RateLimit-Limit: 999",
        "Content-Length: 2",
    ] {
        assert_eq!(
            lines.iter().filter(|l| **l == want).count(),
            1,
            "{want} in {answer}"
        );
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("keep-alive")),
        "{answer}"
    );
    let connection: Vec<_> = lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().starts_with("connection"))
        .collect();
    assert_eq!(
        connection,
        [&"connection: close"],
        "only the gateway's own: {answer}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with("date: "))
            .count(),
        1
    );

    // With a rate limit, the gateway's RateLimit-* replace the upstream's.
    let answer = raw_get(&gw.base, "/limited/headers").await;
    let limits: Vec<_> = header_lines(&answer)
        .into_iter()
        .filter(|l| l.to_ascii_lowercase().starts_with("ratelimit-limit"))
        .collect();
    assert_eq!(limits, ["ratelimit-limit: 50"], "{answer}");
    // (Then in a map, which writes names in lower case.)
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nx-trace: a  b\r\n"),
        "{answer}"
    );

    // A header that Connection names is hop-by-hop too.
    let answer = raw_get(&gw.base, "/plain/hop-named").await;
    let lower = answer.to_ascii_lowercase();
    assert!(!lower.contains("x-hop"), "{answer}");
    assert!(lower.contains("\r\nx-end: 1\r\n"), "{answer}");

    // Chunked beside a length: the coding decides, the length is not passed on.
    let answer = raw_get(&gw.base, "/plain/coded-and-length").await;
    let lower = answer.to_ascii_lowercase();
    assert!(!lower.contains("content-length"), "{answer}");
    assert!(lower.contains("transfer-encoding: chunked"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n2\r\nok\r\n0\r\n\r\n"), "{answer}");

    // A policy that edits response headers still sees them all.
    let answer = raw_get(&gw.base, "/edited/headers").await;
    assert!(!answer.to_ascii_lowercase().contains("x-trace"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("set-cookie: b=2"),
        "{answer}"
    );

    // Over HTTP/2 (answered through hyper) the same headers arrive.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/plain/headers", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.headers()["x-trace"], "a  b");
    assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    assert!(r.headers().get("keep-alive").is_none());
    assert_eq!(r.text().await.unwrap(), "ok");
}

/// Sends `head` (a whole request head, `Connection: close`) on a new connection and reads the
/// whole answer.
async fn raw_request(base: &str, head: &str) -> String {
    let mut s = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_head_reaches_the_upstream_as_written_less_what_the_gateway_sets() {
    let (url, _) = bare_upstream().await;
    let gw = gateway(&["--workers", "1"]).await;
    let ops = json!([{"method": "GET", "path": "/*"}, {"method": "POST", "path": "/*"}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("plain", "/plain", &url, ops.clone(), json!([])),
    )
    .await;
    let keyed = json!([{"name": "api-key-auth"}, {"name": "rate-limit", "params": {"requests": 50, "window": "1m"}}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("keyed", "/keyed", &url, ops, keyed),
    )
    .await;
    let key = issue_key(&gw.admin(), "keyed", "wire").await;
    let upstream = url.trim_start_matches("http://");

    // The key (in both spellings), the hop-by-hop headers and the client's own X-Forwarded-*
    // and Host stay behind; the rest goes in order, repeated headers kept; the gateway's
    // headers come once each.
    let head = format!(
        "GET /keyed/request-head?x=1 HTTP/1.1\r\nHost: gw.example\r\nAPI-Key: {key}\r\n\
         X-Twice: 1\r\napi-key: second\r\nX-Forwarded-For: 10.0.0.1\r\n\
         X-Forwarded-Proto: ftp\r\nX-Forwarded-Host: spoofed\r\nKeep-Alive: 5\r\n\
         TE: trailers\r\nProxy-Authorization: Basic eA==\r\nX-Twice: 2\r\n\
         Connection: close\r\n\r\n"
    );
    let answer = raw_request(&gw.base, &head).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let seen = answer.split_once("\r\n\r\n").unwrap().1;
    let mut lines = seen.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("get /request-head?x=1 http/1.1"),
        "{seen}"
    );
    let mut headers: Vec<_> = lines.filter(|l| !l.is_empty()).collect();
    headers.sort();
    let host = format!("host: {upstream}");
    let mut want = vec![
        host.as_str(),
        "x-forwarded-for: 10.0.0.1, 127.0.0.1",
        "x-forwarded-host: gw.example",
        "x-forwarded-proto: http",
        "x-twice: 1",
        "x-twice: 2",
    ];
    want.sort();
    assert_eq!(headers, want, "{seen}");
    assert!(seen.find("x-twice: 1") < seen.find("x-twice: 2"), "{seen}");

    // A wrong key in the first header is refused, whatever comes after it.
    let head = format!(
        "GET /keyed/request-head HTTP/1.1\r\nHost: gw\r\nAPI-Key: wrong\r\nAPI-Key: {key}\r\n\
         Connection: close\r\n\r\n"
    );
    let answer = raw_request(&gw.base, &head).await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");

    // A body goes with its framing: a length as given, chunks as chunks.
    let answer = raw_request(
        &gw.base,
        "POST /plain/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\nhello",
    )
    .await;
    assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
    let answer = raw_request(
        &gw.base,
        "POST /plain/echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
}
