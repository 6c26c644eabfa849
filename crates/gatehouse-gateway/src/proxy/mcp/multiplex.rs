//! An MCP proxy over several servers (`upstreams`): one endpoint, the gateway answering
//! `initialize` itself, every server's tools, prompts and resources listed under the server's
//! name, each call routed to its server with the prefix removed, the servers' GET streams
//! merged. Sessions live in the sealed session id (`session.rs`), so any gateway holding the
//! proxy continues any session. docs/mcp.md describes it for users.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use gatehouse_core::spec::McpSpec;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;

use crate::proxy::client_body::ClientBody;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::body::{relay_prefixed, too_large, McpBody, MAX_EVENT};
use super::exchange::{CallError, Exchange, Server, SESSION_ID};
use super::filter::{self, ListKind, ToolGate};
use super::session::{Session, SessionSealer};
use super::{admit, count, initialize, jsonrpc, names, McpRoute};
use crate::llm::sse::SseParser;
use crate::proxy::error::ProxyError;
use crate::proxy::respond::{empty, GatewayResponse};
use crate::proxy::routes::Upstream;

/// JSON-RPC's "method not found".
const NO_METHOD: i64 = -32601;
/// JSON-RPC's "internal error": a server failed.
const SERVER_FAILED: i64 = -32603;
/// The error of a request in a session the gateway does not know or a server ended.
const NO_SESSION: i64 = -32001;

/// The servers of one proxy and the sealer of its sessions.
pub struct Multiplex {
    pub servers: Vec<Server>,
    pub sealer: SessionSealer,
    name: Arc<str>,
    version: Arc<str>,
}

impl Multiplex {
    /// The servers of proxy `handle`; why not, when a URL cannot be used.
    pub fn of(handle: &str, spec: &McpSpec) -> Result<Self, String> {
        let mut servers = Vec::with_capacity(spec.upstreams.len());
        for u in &spec.upstreams {
            let upstream = Upstream::parse(&u.url)
                .ok_or_else(|| format!("the URL of MCP server '{}' cannot be used", u.name))?;
            servers.push(Server {
                name: u.name.as_str().into(),
                upstream,
            });
        }
        Ok(Self {
            servers,
            sealer: SessionSealer::new(spec.session_key.as_deref(), handle),
            name: handle.into(),
            version: spec.version.as_str().into(),
        })
    }

    fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| &*s.name == name)
    }
}

/// A request in a session no longer served: the server that ended it.
struct Gone(String);

fn session_error(status: StatusCode, id: &Value, why: &str) -> GatewayResponse {
    jsonrpc(status, &filter::error(id, NO_SESSION, why))
}

fn gone(id: &Value, Gone(server): Gone) -> GatewayResponse {
    session_error(
        StatusCode::NOT_FOUND,
        id,
        &format!("the session ended on server '{server}'; begin a new session with initialize"),
    )
}

/// The session a request names; the status and why not, when it names none this proxy made.
fn open_session(
    mux: &Multiplex,
    header: Option<&str>,
) -> Result<Session, (StatusCode, &'static str)> {
    let Some(id) = header else {
        return Err((
            StatusCode::BAD_REQUEST,
            "Mcp-Session-Id is required; begin a session with initialize",
        ));
    };
    mux.sealer.open(id).ok_or((
        StatusCode::NOT_FOUND,
        "unknown session id; begin a new session with initialize",
    ))
}

/// Answers one request of the proxy's endpoint: POST, GET or DELETE.
pub async fn handle(
    route: &McpRoute,
    mux: &Multiplex,
    gate: ToolGate,
    ex: Exchange<'_>,
    method: Method,
    session: Option<String>,
    body: ClientBody,
) -> Result<GatewayResponse, ProxyError> {
    if method == Method::POST {
        return post(route, mux, gate, &ex, session.as_deref(), body).await;
    }
    let session = match open_session(mux, session.as_deref()) {
        Ok(s) => s,
        Err((status, why)) => return Ok(session_error(status, &Value::Null, why)),
    };
    let pairs: Vec<_> = session
        .servers
        .iter()
        .filter_map(|(n, ss)| mux.server(n).map(|s| (s, ss)))
        .collect();
    if method == Method::DELETE {
        join_all(
            pairs
                .iter()
                .map(|(s, ss)| ex.send(s, Some(ss), Method::DELETE, None)),
        )
        .await;
        return Ok(empty(StatusCode::OK));
    }
    let opened = join_all(
        pairs
            .iter()
            .map(|(s, ss)| ex.send(s, Some(ss), Method::GET, None)),
    )
    .await;
    let (tx, rx) = mpsc::channel(64);
    let mut any = false;
    for ((s, _), r) in pairs.iter().zip(opened) {
        match r {
            Ok(res) if res.status().is_success() && is_sse(res.headers()) => {
                any = true;
                tokio::spawn(relay_stream(s.name.clone(), res.into_body(), tx.clone()));
            }
            Err(CallError::SessionGone) => return Ok(gone(&Value::Null, Gone(s.name.to_string()))),
            _ => {}
        }
    }
    if !any {
        let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
        return Ok(r);
    }
    let mut r = Response::new(Either::Left(Either::Right(Either::Right(Box::new(
        McpBody::merged(rx),
    )))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

fn is_sse(h: &http::HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Relays one server's GET stream into the merged one until either ends.
async fn relay_stream(server: Arc<str>, mut body: Incoming, tx: mpsc::Sender<Bytes>) {
    let mut parser = SseParser::new();
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = tx.closed() => return,
        };
        let Some(Ok(frame)) = frame else { return };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let mut out = BytesMut::new();
        relay_prefixed(&server, parser.push(data), &mut out);
        if parser.pending() > MAX_EVENT {
            out.extend_from_slice(&too_large());
        }
        if !out.is_empty() && tx.send(out.freeze()).await.is_err() {
            return;
        }
        if parser.pending() > MAX_EVENT {
            return;
        }
    }
}

async fn post(
    route: &McpRoute,
    mux: &Multiplex,
    gate: ToolGate,
    ex: &Exchange<'_>,
    session: Option<&str>,
    body: ClientBody,
) -> Result<GatewayResponse, ProxyError> {
    let (raw, inspected) = match admit(route, &gate, body).await? {
        Ok(admitted) => admitted,
        Err(answered) => return Ok(answered),
    };
    // `inspect` read it as JSON-RPC: an object or a non-empty array of objects.
    let v: Value = serde_json::from_slice(&raw).unwrap_or_default();
    let (messages, batch) = match &v {
        Value::Array(items) => (items.as_slice(), true),
        _ => (std::slice::from_ref(&v), false),
    };
    if !batch && v["method"] == "initialize" {
        for s in &inspected.seen {
            count(&route.artifact, s, "forwarded");
        }
        return Ok(begin(mux, ex, &v).await);
    }
    let session = match open_session(mux, session) {
        Ok(s) => s,
        Err((status, why)) => {
            let id = v.get("id").cloned().unwrap_or(Value::Null);
            return Ok(session_error(status, &id, why));
        }
    };
    if !batch && v["method"] == "tools/call" {
        let outcome = call_streamed(mux, ex, &session, &v).await;
        let label = match &outcome {
            Ok(r) if r.status().is_success() => "forwarded",
            _ => "upstream_error",
        };
        count(&route.artifact, &inspected.seen[0], label);
        return outcome;
    }
    let ctx = Ctx {
        mux,
        ex,
        session: &session,
        route,
        gate: &gate,
        lists: &inspected.lists,
    };
    let answers = join_all(messages.iter().map(|m| ctx.one(m))).await;
    let mut out = vec![];
    for a in answers {
        match a {
            Ok(Some(answer)) => out.push(answer),
            Ok(None) => {}
            Err(g) => {
                for s in &inspected.seen {
                    count(&route.artifact, s, "upstream_error");
                }
                return Ok(gone(&Value::Null, g));
            }
        }
    }
    for s in &inspected.seen {
        count(&route.artifact, s, "forwarded");
    }
    Ok(match (out.len(), batch) {
        (0, _) => empty(StatusCode::ACCEPTED),
        (_, true) => jsonrpc(StatusCode::OK, &Value::Array(out)),
        (_, false) => jsonrpc(StatusCode::OK, &out.remove(0)),
    })
}

/// `initialize`: every server opened, one sealed session id for the client.
async fn begin(mux: &Multiplex, ex: &Exchange<'_>, msg: &Value) -> GatewayResponse {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let (opened, failed) = initialize::open_all(ex, &mux.servers, msg).await;
    let Some((session, result)) = initialize::answer(&opened, &mux.name, &mux.version) else {
        let why = format!(
            "no MCP server of this proxy could be initialized: {}",
            failed.join("; ")
        );
        return jsonrpc(
            StatusCode::BAD_GATEWAY,
            &filter::error(&id, SERVER_FAILED, &why),
        );
    };
    let mut r = jsonrpc(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    );
    if let Ok(v) = HeaderValue::from_str(&mux.sealer.seal(&session)) {
        r.headers_mut().insert(SESSION_ID.clone(), v);
    }
    r
}

/// What a routed request names: the server, and the request as that server must see it.
fn route(msg: &Value) -> Result<(String, Value), (i64, String)> {
    let method = msg["method"].as_str().unwrap_or_default();
    let (pointer, uri) = match method {
        "tools/call" | "prompts/get" => ("/params/name", false),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => ("/params/uri", true),
        "completion/complete" => match msg.pointer("/params/ref/type").and_then(Value::as_str) {
            Some("ref/prompt") => ("/params/ref/name", false),
            Some("ref/resource") => ("/params/ref/uri", true),
            _ => return Err((filter::REFUSED, "completion/complete needs a ref".into())),
        },
        _ => {
            return Err((
                NO_METHOD,
                format!("method '{method}' is not offered by an MCP proxy over several servers"),
            ))
        }
    };
    let mut out = msg.clone();
    let Some(slot) = out.pointer_mut(pointer) else {
        return Err((filter::REFUSED, format!("{method} needs {pointer}")));
    };
    let given = slot.as_str().unwrap_or_default().to_owned();
    let split = if uri {
        names::split_uri(&given).map(|(s, own)| (s, own.to_owned()))
    } else {
        names::split_name(&given).map(|(s, own)| (s.to_owned(), own.to_owned()))
    };
    let Some((server, own)) = split else {
        let form = if uri {
            "<server>+<uri>"
        } else {
            "<server>_<name>"
        };
        return Err((
            filter::REFUSED,
            format!("'{given}' names no server of this proxy (names here are {form})"),
        ));
    };
    *slot = Value::String(own);
    Ok((server, out))
}

/// A `tools/call` relayed as the server answers it, JSON or SSE.
async fn call_streamed(
    mux: &Multiplex,
    ex: &Exchange<'_>,
    session: &Session,
    msg: &Value,
) -> Result<GatewayResponse, ProxyError> {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let refuse = |code: i64, why: String| jsonrpc(StatusCode::OK, &filter::error(&id, code, &why));
    let (name, own) = match route(msg) {
        Ok(r) => r,
        Err((code, why)) => return Ok(refuse(code, why)),
    };
    let (Some(server), Some(ss)) = (mux.server(&name), session.servers.get(&name)) else {
        return Ok(refuse(filter::REFUSED, not_in_session(&name, mux)));
    };
    let body = Bytes::from(own.to_string());
    let res = match ex.send(server, Some(ss), Method::POST, Some(body)).await {
        Ok(r) => r,
        Err(CallError::SessionGone) => return Ok(gone(&id, Gone(name))),
        Err(CallError::Timeout) => return Err(ProxyError::GatewayTimeout),
        Err(_) => return Err(ProxyError::UpstreamUnavailable),
    };
    let (mut parts, body) = res.into_parts();
    crate::proxy::strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(&SESSION_ID);
    parts.version = http::Version::HTTP_11;
    if is_sse(&parts.headers) {
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = McpBody::prefixed(body, server.name.clone());
        return Ok(Response::from_parts(
            parts,
            Either::Left(Either::Right(Either::Right(Box::new(body)))),
        ));
    }
    Ok(Response::from_parts(
        parts,
        Either::Left(Either::Left(body.into())),
    ))
}

fn not_in_session(name: &str, mux: &Multiplex) -> String {
    if mux.server(name).is_none() {
        format!("'{name}' is not a server of this proxy")
    } else {
        format!(
            "server '{name}' did not answer when this session began; begin a new session to use it"
        )
    }
}

/// One message of a POST, answered from the servers.
struct Ctx<'a, 'e> {
    mux: &'a Multiplex,
    ex: &'a Exchange<'e>,
    session: &'a Session,
    route: &'a McpRoute,
    gate: &'a ToolGate,
    lists: &'a std::collections::HashMap<String, ListKind>,
}

impl Ctx<'_, '_> {
    fn servers(&self) -> impl Iterator<Item = (&Server, &super::session::ServerSession)> {
        self.session
            .servers
            .iter()
            .filter_map(|(n, ss)| self.mux.server(n).map(|s| (s, ss)))
    }

    async fn one(&self, msg: &Value) -> Result<Option<Value>, Gone> {
        let id = msg.get("id").cloned();
        let method = msg.get("method").and_then(Value::as_str);
        let Some(method) = method else {
            // The client's answer to a server's request: back to that server, its id restored.
            if let Some((name, own)) = id.as_ref().and_then(names::split_request_id) {
                if let (Some(s), Some(ss)) = (self.mux.server(name), self.session.servers.get(name))
                {
                    let mut m = msg.clone();
                    m["id"] = own;
                    if let Err(CallError::SessionGone) = self.ex.notify(s, Some(ss), &m).await {
                        return Err(Gone(name.to_owned()));
                    }
                }
            }
            return Ok(None);
        };
        let Some(id) = id else {
            // A notification: every server hears it (the gateway already said `initialized`).
            if method != "notifications/initialized" {
                join_all(
                    self.servers()
                        .map(|(s, ss)| self.ex.notify(s, Some(ss), msg)),
                )
                .await;
            }
            return Ok(None);
        };
        let ok = |result: Value| Ok(Some(json!({"jsonrpc": "2.0", "id": id, "result": result})));
        match method {
            "ping" => return ok(json!({})),
            "logging/setLevel" => {
                join_all(self.servers().map(|(s, ss)| self.ex.call(s, Some(ss), msg))).await;
                return ok(json!({}));
            }
            "initialize" => {
                return Ok(Some(filter::error(
                    &id,
                    filter::INVALID_REQUEST,
                    "initialize is sent alone and without a session id",
                )))
            }
            _ => {}
        }
        if let Some(kind) = ListKind::of_method(method) {
            return self.list(kind, msg, &id).await;
        }
        let (name, own) = match route(msg) {
            Ok(r) => r,
            Err((code, why)) => return Ok(Some(filter::error(&id, code, &why))),
        };
        let (Some(server), Some(ss)) = (self.mux.server(&name), self.session.servers.get(&name))
        else {
            return Ok(Some(filter::error(
                &id,
                filter::REFUSED,
                &not_in_session(&name, self.mux),
            )));
        };
        match self.ex.call(server, Some(ss), &own).await {
            Ok((mut answer, _)) => {
                if method == "resources/read" {
                    if let Some(r) = answer.get_mut("result") {
                        names::prefix_contents(&name, r);
                    }
                }
                Ok(Some(answer))
            }
            Err(CallError::SessionGone) => Err(Gone(name)),
            Err(e) => Ok(Some(filter::error(
                &id,
                SERVER_FAILED,
                &format!("server '{name}' {e}"),
            ))),
        }
    }

    /// A list across the servers: each server's page, prefixed and filtered; the next cursor
    /// holds each server's own.
    async fn list(&self, kind: ListKind, msg: &Value, id: &Value) -> Result<Option<Value>, Gone> {
        let bad_cursor = || {
            Ok(Some(filter::error(
                id,
                filter::REFUSED,
                "the cursor is not one this proxy gave",
            )))
        };
        let targets: Vec<(&Server, &super::session::ServerSession, Option<String>)> =
            match msg.pointer("/params/cursor").and_then(Value::as_str) {
                None => self.servers().map(|(s, ss)| (s, ss, None)).collect(),
                Some(c) => {
                    let Some(next) = names::decode_cursor(c) else {
                        return bad_cursor();
                    };
                    let mut t = vec![];
                    for (name, cursor) in next {
                        match (self.mux.server(&name), self.session.servers.get(&name)) {
                            (Some(s), Some(ss)) => t.push((s, ss, Some(cursor))),
                            _ => return bad_cursor(),
                        }
                    }
                    t
                }
            };
        let calls = targets.iter().map(|(s, ss, cursor)| {
            let mut req = msg.clone();
            match cursor {
                Some(c) => req["params"]["cursor"] = Value::String(c.clone()),
                None => {
                    if let Some(p) = req.get_mut("params").and_then(Value::as_object_mut) {
                        p.remove("cursor");
                    }
                }
            }
            async move { self.ex.call(s, Some(ss), &req).await }
        });
        let results = join_all(calls).await;
        let (field, _) = kind.fields();
        let mut items = vec![];
        let mut next = BTreeMap::new();
        for ((s, _, _), r) in targets.iter().zip(results) {
            match r {
                Ok((answer, _)) => {
                    if let Some(page) = answer["result"][field].as_array() {
                        let mut page = page.clone();
                        names::prefix_items(kind, &s.name, &mut page);
                        items.extend(page);
                    }
                    if let Some(c) = answer["result"]["nextCursor"].as_str() {
                        next.insert(s.name.to_string(), c.to_owned());
                    }
                }
                Err(CallError::SessionGone) => return Err(Gone(s.name.to_string())),
                Err(e) => {
                    tracing::warn!(server = %s.name, error = %e, "an MCP server's list is left out")
                }
            }
        }
        let mut result = json!({ field: items });
        if let Some(c) = names::encode_cursor(&next) {
            result["nextCursor"] = Value::String(c);
        }
        let mut answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
        filter::filter_message(&mut answer, self.lists, &self.route.allow, self.gate);
        Ok(Some(answer))
    }
}
