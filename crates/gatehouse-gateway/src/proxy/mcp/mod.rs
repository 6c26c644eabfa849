//! The data plane's MCP path: each POST is read as JSON-RPC; calls of hidden tools, resources
//! and prompts are answered by the gateway with an error naming them (the server never sees
//! them), and list answers are filtered on their way back, JSON or SSE. GET streams and DELETE
//! pass through untouched. docs/mcp.md describes it for users.

pub mod body;
pub mod exchange;
pub mod filter;
pub mod initialize;
pub mod multiplex;
pub mod names;
pub mod session;

use std::sync::Arc;

use crate::proxy::client_body::ClientBody;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use serde_json::Value;

use crate::proxy::error::ProxyError;
use crate::proxy::respond::GatewayResponse;
use crate::proxy::routes::Upstream;
use crate::proxy::upstream::BufferedClient;
use crate::proxy::Timeouts;
use body::McpBody;
use filter::{AllowLists, Inspected, Seen, ToolGate};
use gatehouse_core::spec::McpSpec;

/// JSON-RPC bodies larger than this are refused (413).
pub const MAX_BODY: usize = 4 << 20;

/// JSON answers read whole for filtering larger than this are refused (502).
const MAX_ANSWER: usize = 16 << 20;

/// Methods counted under their own name; others count as `other`.
const METHODS: [&str; 16] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/roots/list_changed",
];

/// An MCP proxy compiled for the data plane.
pub struct McpRoute {
    pub artifact: Arc<str>,
    pub allow: Arc<AllowLists>,
    /// The servers of a proxy over several (`upstreams`).
    pub multiplex: Option<multiplex::Multiplex>,
}

impl McpRoute {
    /// The route of proxy `handle`, and the upstream that marks it served (with several
    /// servers, the first: requests are addressed per server); why it cannot be served.
    pub fn compile(handle: &str, s: &McpSpec) -> (Self, Result<Option<Arc<Upstream>>, String>) {
        let (multiplex, main) = match (&s.upstream, multiplex::Multiplex::of(handle, s)) {
            (Some(u), _) => (None, Ok(Upstream::parse(&u.url).map(Arc::new))),
            (None, Ok(m)) => {
                let first = m.servers.first().map(|s| Arc::new(s.upstream.clone()));
                (Some(m), Ok(first))
            }
            (None, Err(why)) => (None, Err(why)),
        };
        let route = Self {
            artifact: handle.into(),
            allow: Arc::new(AllowLists::of(s)),
            multiplex,
        };
        (route, main)
    }
}

fn count(artifact: &str, seen: &Seen, outcome: &'static str) {
    let method = METHODS
        .iter()
        .find(|m| **m == seen.method)
        .copied()
        .unwrap_or("other");
    // Only names the proxy lets through become label values: refused ones are the caller's
    // words, unbounded.
    let tool = match (&seen.target, &seen.refused, method) {
        (Some(t), None, "tools/call") => t.clone(),
        _ => String::new(),
    };
    metrics::counter!("gatehouse_mcp_requests_total",
        "artifact" => artifact.to_owned(), "method" => method, "tool" => tool, "outcome" => outcome)
    .increment(1);
}

fn jsonrpc(status: StatusCode, v: &Value) -> GatewayResponse {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(v.to_string()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Reads a POST body whole: the bytes, or the answer refusing one too large.
async fn read_body(body: ClientBody) -> Result<Result<Bytes, GatewayResponse>, ProxyError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(Ok(c.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let v = filter::error(
                &Value::Null,
                filter::INVALID_REQUEST,
                &format!("the body is larger than {} MiB", MAX_BODY >> 20),
            );
            Ok(Err(jsonrpc(StatusCode::PAYLOAD_TOO_LARGE, &v)))
        }
        Err(_) => Err(ProxyError::BadRequest("the request body could not be read")),
    }
}

/// Reads and inspects a POST body: the bytes and what they ask, or the gateway's own answer
/// (too large, not JSON-RPC, or a call the proxy refuses, counted).
async fn admit(
    route: &McpRoute,
    gate: &ToolGate,
    body: ClientBody,
) -> Result<Result<(Bytes, Inspected), GatewayResponse>, ProxyError> {
    let raw = match read_body(body).await? {
        Ok(raw) => raw,
        Err(refused) => return Ok(Err(refused)),
    };
    let inspected = match filter::inspect(&raw, &route.allow, gate) {
        Ok(i) => i,
        Err(m) => return Ok(Err(jsonrpc(StatusCode::BAD_REQUEST, &m.answer()))),
    };
    if let Some(answer) = &inspected.refusal {
        for s in &inspected.seen {
            count(&route.artifact, s, "refused");
        }
        return Ok(Err(jsonrpc(StatusCode::OK, answer)));
    }
    Ok(Ok((raw, inspected)))
}

/// Answers one POST of JSON-RPC: refused or malformed at the gateway, else forwarded (with
/// `parts` already addressed to the server) and its list answers filtered.
pub async fn forward(
    route: &McpRoute,
    gate: ToolGate,
    client: &BufferedClient,
    timeouts: Timeouts,
    mut parts: http::request::Parts,
    body: ClientBody,
) -> Result<GatewayResponse, ProxyError> {
    let (raw, inspected) = match admit(route, &gate, body).await? {
        Ok(admitted) => admitted,
        Err(answered) => return Ok(answered),
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(raw.len()));
    let req = Request::from_parts(parts, Full::new(raw));
    let res = match tokio::time::timeout(timeouts.response, client.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            for s in &inspected.seen {
                count(&route.artifact, s, "upstream_error");
            }
            return Err(if e.is_connect() {
                ProxyError::UpstreamUnavailable
            } else {
                ProxyError::BadGateway
            });
        }
        Err(_) => {
            for s in &inspected.seen {
                count(&route.artifact, s, "upstream_error");
            }
            return Err(ProxyError::GatewayTimeout);
        }
    };
    let outcome = if res.status().is_success() {
        "forwarded"
    } else {
        "upstream_error"
    };
    for s in &inspected.seen {
        count(&route.artifact, s, outcome);
    }
    let (mut parts, body) = res.into_parts();
    crate::proxy::strip_hop_by_hop(&mut parts.headers);
    parts.version = http::Version::HTTP_11;
    if inspected.lists.is_empty() || !parts.status.is_success() {
        return Ok(Response::from_parts(
            parts,
            Either::Left(Either::Left(body.into())),
        ));
    }
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = McpBody::filtered(body, inspected.lists, route.allow.clone(), gate);
        return Ok(Response::from_parts(
            parts,
            Either::Left(Either::Right(Either::Right(Box::new(body)))),
        ));
    }
    let bytes = Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(|_| ProxyError::BadGateway)?
        .to_bytes();
    let out = match filter::filter_json(&bytes, &inspected.lists, &route.allow, &gate) {
        Some(b) => Bytes::from(b),
        None => bytes,
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    Ok(Response::from_parts(parts, Either::Right(Full::new(out))))
}
