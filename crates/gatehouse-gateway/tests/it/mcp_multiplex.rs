//! An MCP proxy over several servers, against scripted servers that record what reaches them:
//! pages across servers, batches, a server down at `initialize`, the merged GET stream with a
//! server's request and the client's answer routed back, and sessions sealed per proxy.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

use super::{create, gateway};

/// What reached a server: each message with the session and protocol version it came with.
type Seen = Arc<Mutex<Vec<(Value, Option<String>, Option<String>)>>>;

type Body = http_body_util::Either<
    Full<Bytes>,
    StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
>;

fn sse(events: &[Value], open: bool) -> Body {
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = events
        .iter()
        .map(|e| {
            Ok(Frame::data(Bytes::from(format!(
                "event: message\ndata: {e}\n\n"
            ))))
        })
        .collect();
    if open {
        // A comment the client ignores, then the stream ends; enough for the relay to show.
        frames.push(Ok(Frame::data(Bytes::from_static(b": keep-alive\n\n"))));
    }
    http_body_util::Either::Right(StreamBody::new(stream::iter(frames)))
}

/// A server named `name` with tools `<name>1` and `<name>2` on two pages, answering POSTs as
/// SSE when `sse_answers`, and a GET stream holding a sampling request and a notification.
async fn server(name: &'static str, sse_answers: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        let header =
                            |h: &str| req.headers().get(h).map(|v| v.to_str().unwrap().to_owned());
                        let (session, version) =
                            (header("mcp-session-id"), header("mcp-protocol-version"));
                        let method = req.method().clone();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut res = hyper::Response::new(http_body_util::Either::Left(
                            Full::new(Bytes::new()),
                        ));
                        if method == hyper::Method::GET {
                            *res.body_mut() = sse(
                                &[
                                    json!({"jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage", "params": {}}),
                                    json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "file:///a"}}),
                                    json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
                                ],
                                true,
                            );
                            res.headers_mut()
                                .insert("content-type", "text/event-stream".parse().unwrap());
                            return Ok::<_, Infallible>(res);
                        }
                        if method == hyper::Method::DELETE {
                            record.lock().unwrap().push((
                                json!({"method": "DELETE"}),
                                session,
                                version,
                            ));
                            return Ok(res);
                        }
                        let msg: Value = serde_json::from_slice(&body).unwrap();
                        record
                            .lock()
                            .unwrap()
                            .push((msg.clone(), session.clone(), version));
                        let result = match msg["method"].as_str() {
                            Some("initialize") => {
                                res.headers_mut().insert(
                                    "mcp-session-id",
                                    format!("{name}-session").parse().unwrap(),
                                );
                                json!({"protocolVersion": "2025-06-18", "serverInfo": {"name": name, "version": "1"},
                                       "capabilities": {"tools": {"listChanged": name == "alpha"}}})
                            }
                            Some("tools/list") => match msg["params"]["cursor"].as_str() {
                                None => {
                                    json!({"tools": [{"name": format!("{name}1")}], "nextCursor": "page2"})
                                }
                                Some("page2") => json!({"tools": [{"name": format!("{name}2")}]}),
                                Some(other) => panic!("cursor {other} is not this server's"),
                            },
                            Some("tools/call") => {
                                json!({"content": [{"type": "text", "text": format!("{name} ran {}", msg["params"]["name"])}]})
                            }
                            Some(_) | None => {
                                *res.status_mut() = hyper::StatusCode::ACCEPTED;
                                return Ok(res);
                            }
                        };
                        let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
                        if sse_answers {
                            *res.body_mut() = sse(
                                &[
                                    json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {}}),
                                    answer,
                                ],
                                false,
                            );
                            res.headers_mut()
                                .insert("content-type", "text/event-stream".parse().unwrap());
                        } else {
                            *res.body_mut() = http_body_util::Either::Left(Full::new(Bytes::from(
                                answer.to_string(),
                            )));
                            res.headers_mut()
                                .insert("content-type", "application/json".parse().unwrap());
                        }
                        Ok(res)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (url, seen)
}

async fn post(base: &str, session: Option<&str>, body: Value) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/multi/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .map(str::to_owned);
    let v = serde_json::from_str(data.as_deref().unwrap_or(&text)).unwrap_or(Value::Null);
    (status, sid, v)
}

fn names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_behind_one_endpoint() {
    let (alpha, alpha_seen) = server("alpha", true).await;
    let (beta, beta_seen) = server("beta", false).await;
    let gw = gateway(&[]).await;
    create(&gw.admin(), "mcp-proxies", &json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "multi"},
        "spec": {"displayName": "Multi", "context": "/multi", "tools": ["alpha_*", "beta_beta1"],
                 "sessionKey": "a shared secret of the organization's gateways",
                 "upstreams": [{"name": "alpha", "url": alpha}, {"name": "beta", "url": beta},
                               {"name": "down", "url": "http://127.0.0.1:9/mcp"}]}
    }))
    .await;
    let base = gw.base.clone();
    let (_, held) = super::get(&gw.admin(), "/api/management/v1/mcp-proxies/multi").await;
    assert!(
        held["spec"].get("sessionKey").is_none(),
        "never read back: {held}"
    );
    assert_eq!(held["spec"]["sessionKeySet"], true);

    // initialize: answered by the gateway; the server that is down is left out.
    let (status, sid, init) = post(&base, None, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    assert_eq!(status, 200, "{init}");
    let sid = sid.expect("a session id");
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(init["result"]["serverInfo"]["name"], "multi");
    for seen in [&alpha_seen, &beta_seen] {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0["method"], "initialize");
        assert_eq!(
            seen[1].0["method"], "notifications/initialized",
            "the gateway says the client is ready"
        );
    }
    assert!(
        !sid.contains("alpha-session"),
        "servers' ids are sealed, not shown"
    );

    // Pages across servers: both first pages, then only what is left; the filter applies.
    let (_, _, page1) = post(
        &base,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(names(&page1), ["alpha_alpha1", "beta_beta1"]);
    let cursor = page1["result"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, _, page2) = post(
        &base,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": cursor}}),
    )
    .await;
    assert_eq!(names(&page2), ["alpha_alpha2"], "beta2 is filtered out");
    assert!(page2["result"].get("nextCursor").is_none());
    let (_, _, bad) = post(
        &base,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"cursor": "junk"}}),
    )
    .await;
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("cursor"),
        "{bad}"
    );

    // Each server is spoken to in its own session, the prefix removed.
    let (_, _, called) = post(
        &base,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "alpha_alpha1", "arguments": {}}}),
    )
    .await;
    assert_eq!(
        called["result"]["content"][0]["text"],
        "alpha ran \"alpha1\""
    );
    let last = alpha_seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.1.as_deref(), Some("alpha-session"));
    assert_eq!(last.2.as_deref(), Some("2025-06-18"));

    // A batch is answered whole; a server down at initialize is named.
    let (status, _, batch) = post(
        &base,
        Some(&sid),
        json!([
        {"jsonrpc": "2.0", "id": 6, "method": "ping"},
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "beta_beta1"}},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(batch[0]["result"], json!({}));
    assert_eq!(
        batch[1]["result"]["content"][0]["text"],
        "beta ran \"beta1\""
    );
    assert_eq!(
        batch.as_array().unwrap().len(),
        2,
        "no answer to a notification"
    );
    let (_, _, down) = post(&base, Some(&sid), json!({"jsonrpc": "2.0", "id": 8, "method": "resources/read", "params": {"uri": "down+file:///x"}})).await;
    assert!(
        down["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'down' did not answer"),
        "{down}"
    );

    // The merged GET stream: the servers' requests and notifications, ids and URIs prefixed.
    let stream = reqwest::Client::new()
        .get(format!("{base}/multi/mcp"))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let text = stream.text().await.unwrap();
    for expected in [
        r#""id":"alpha:9""#,
        r#""id":"beta:9""#,
        "alpha+file:///a",
        "notifications/tools/list_changed",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // The client's answer goes back to the server that asked, with its own id.
    let (status, _, _) = post(
        &base,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": "beta:9", "result": {"content": {}}}),
    )
    .await;
    assert_eq!(status, 202);
    let last = beta_seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.0["id"], 9);
    assert!(alpha_seen
        .lock()
        .unwrap()
        .iter()
        .all(|m| m.0["result"].is_null()));

    // Another proxy's key does not open this session; ending it reaches every server.
    create(&gw.admin(), "mcp-proxies", &json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "other"},
        "spec": {"displayName": "Other", "context": "/other", "upstreams": [{"name": "alpha", "url": alpha}]}
    }))
    .await;
    let r = reqwest::Client::new()
        .post(format!("{base}/other/mcp"))
        .header("mcp-session-id", &sid)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new()
        .delete(format!("{base}/multi/mcp"))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for seen in [&alpha_seen, &beta_seen] {
        assert!(seen
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.0["method"] == "DELETE"));
    }
}
