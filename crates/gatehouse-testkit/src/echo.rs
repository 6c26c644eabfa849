//! A small upstream for tests: echoes each request as JSON, and on request answers slowly,
//! streams server-sent events or chunks, or answers with a given status.
//!
//! - any path: `200 {"upstream", "method", "path", "query", "headers", "body"}`
//! - `.../status/{code}`: that status, same body
//! - `?delay_ms=N`: waits N ms before the response headers
//! - `.../sse`: `text/event-stream`, `?events=N&interval_ms=M` (defaults 3 and 200)
//! - `.../chunked`: a chunked body of `?chunks=N` parts `interval_ms` apart
//! - `Mcp-Session-Id` is echoed back as a response header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// A running echo upstream; stops when dropped.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub name: String,
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    /// Starts an echo upstream named `name` (reported in every answer) on a free port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo upstream");
        let addr = listener.local_addr().expect("echo addr");
        let label = name.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let label = label.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(label.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            name: name.to_owned(),
            task,
        }
    }

    /// `http://addr` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn query_param(query: &str, key: &str) -> Option<u64> {
    query.split('&').find_map(|kv| {
        kv.strip_prefix(&format!("{key}="))
            .and_then(|v| v.parse().ok())
    })
}

async fn handle(label: String, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    if let Some(ms) = query_param(&query, "delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let session = parts.headers.get("mcp-session-id").cloned();
    let interval = Duration::from_millis(query_param(&query, "interval_ms").unwrap_or(200));
    if path.ends_with("/sse") || path.ends_with("/chunked") {
        let sse = path.ends_with("/sse");
        let n = query_param(&query, if sse { "events" } else { "chunks" }).unwrap_or(3);
        let stream = futures::stream::iter(0..n).then(move |i| async move {
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            let text = if sse {
                format!("data: event-{i}\n\n")
            } else {
                format!("chunk-{i};")
            };
            Ok::<_, Infallible>(Frame::data(Bytes::from(text)))
        });
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        if sse {
            r.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
        }
        return Ok(r);
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
        headers.insert(
            k.as_str().to_owned(),
            json!(v.to_str().unwrap_or("<binary>")),
        );
    }
    let status = path
        .rsplit_once("/status/")
        .and_then(|(_, code)| code.parse::<u16>().ok())
        .unwrap_or(200);
    let answer = json!({
        "upstream": label,
        "method": parts.method.as_str(),
        "path": path,
        "query": query,
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut r = Response::new(BodyExt::boxed(Full::new(Bytes::from(answer.to_string()))));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r.headers_mut().insert("x-upstream", label.parse().unwrap());
    if let Some(s) = session {
        r.headers_mut().insert("mcp-session-id", s);
    }
    Ok(r)
}
