//! The gateway's own exchanges with the servers of an MCP proxy over several servers: requests
//! addressed to one server with its session, and calls whose answer (JSON, or the matching
//! message of an SSE stream) the gateway reads itself.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::session::ServerSession;
use crate::llm::sse::SseParser;
use crate::proxy::routes::Upstream;
use crate::proxy::upstream::BufferedClient;
use crate::proxy::Timeouts;

/// `Mcp-Session-Id`.
pub static SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
pub static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// Largest answer the gateway reads for itself.
const MAX_ANSWER: usize = 16 << 20;

/// One server of the proxy.
pub struct Server {
    pub name: Arc<str>,
    pub upstream: Upstream,
}

/// Why an exchange with a server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("cannot be reached")]
    Unreachable,
    #[error("did not answer in time")]
    Timeout,
    /// 404 to a request with a session: the server ended it.
    #[error("no longer knows this session")]
    SessionGone,
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    #[error("answered with no JSON-RPC answer to the request")]
    NoAnswer,
}

/// The client's headers as they go to every server, and how to reach the servers.
pub struct Exchange<'a> {
    pub client: &'a BufferedClient,
    pub timeouts: Timeouts,
    headers: HeaderMap,
}

impl<'a> Exchange<'a> {
    /// Exchanges carrying `headers` (already prepared for upstream by the policies) less those
    /// the gateway sets per server.
    pub fn new(client: &'a BufferedClient, timeouts: Timeouts, mut headers: HeaderMap) -> Self {
        for h in [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::HOST,
            header::ACCEPT,
            header::CONTENT_TYPE,
            SESSION_ID.clone(),
            PROTOCOL_VERSION.clone(),
            HeaderName::from_static("last-event-id"),
        ] {
            headers.remove(h);
        }
        Self {
            client,
            timeouts,
            headers,
        }
    }

    /// A request to `server` in its part of the session.
    pub fn request(
        &self,
        server: &Server,
        session: Option<&ServerSession>,
        method: Method,
        body: Option<Bytes>,
    ) -> Option<Request<Full<Bytes>>> {
        let u = &server.upstream;
        let path = if u.base_path.is_empty() {
            "/"
        } else {
            &u.base_path
        };
        let uri = Uri::builder()
            .scheme(u.scheme.clone())
            .authority(u.authority.clone())
            .path_and_query(path)
            .build()
            .ok()?;
        let mut req = Request::new(Full::new(body.clone().unwrap_or_default()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.clone_from(&self.headers);
        h.insert(header::HOST, u.host.clone());
        let accept = if method == Method::GET {
            "text/event-stream"
        } else {
            "application/json, text/event-stream"
        };
        h.insert(header::ACCEPT, HeaderValue::from_static(accept));
        if let Some(b) = &body {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
        }
        if let Some(s) = session {
            if let Some(id) = s.id.as_deref().and_then(|i| HeaderValue::from_str(i).ok()) {
                h.insert(SESSION_ID.clone(), id);
            }
            if let Ok(v) = HeaderValue::from_str(&s.version) {
                h.insert(PROTOCOL_VERSION.clone(), v);
            }
        }
        Some(req)
    }

    /// Sends a request; a 404 to a request in a session means the server ended it.
    pub async fn send(
        &self,
        server: &Server,
        session: Option<&ServerSession>,
        method: Method,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>, CallError> {
        let req = self
            .request(server, session, method, body)
            .ok_or(CallError::Unreachable)?;
        let res = match tokio::time::timeout(self.timeouts.response, self.client.request(req)).await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(server = %server.name, error = %e, "MCP server exchange failed");
                return Err(CallError::Unreachable);
            }
            Err(_) => return Err(CallError::Timeout),
        };
        if res.status() == StatusCode::NOT_FOUND && session.is_some_and(|s| s.id.is_some()) {
            return Err(CallError::SessionGone);
        }
        Ok(res)
    }

    /// Posts one message that needs no answer (a notification or a client's response).
    pub async fn notify(
        &self,
        server: &Server,
        session: Option<&ServerSession>,
        msg: &Value,
    ) -> Result<(), CallError> {
        let body = Bytes::from(msg.to_string());
        let res = self.send(server, session, Method::POST, Some(body)).await?;
        if !res.status().is_success() {
            return Err(CallError::Status(res.status()));
        }
        Ok(())
    }

    /// Posts one request and reads its answer, JSON or the matching message of an SSE
    /// stream (other messages on the stream are dropped); the answer and the headers.
    pub async fn call(
        &self,
        server: &Server,
        session: Option<&ServerSession>,
        msg: &Value,
    ) -> Result<(Value, HeaderMap), CallError> {
        let exchange = async {
            let body = Bytes::from(msg.to_string());
            let res = self.send(server, session, Method::POST, Some(body)).await?;
            if !res.status().is_success() {
                return Err(CallError::Status(res.status()));
            }
            let (parts, body) = res.into_parts();
            let sse = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            let answer = if sse {
                answer_in_stream(body, &msg["id"]).await
            } else {
                let bytes = Limited::new(body, MAX_ANSWER)
                    .collect()
                    .await
                    .map_err(|_| CallError::NoAnswer)?
                    .to_bytes();
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .filter(|v| answers(v, &msg["id"]))
            };
            Ok((answer.ok_or(CallError::NoAnswer)?, parts.headers))
        };
        tokio::time::timeout(self.timeouts.response, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }
}

/// Whether `v` is the answer to request `id`.
fn answers(v: &Value, id: &Value) -> bool {
    v.get("method").is_none()
        && v.get("id") == Some(id)
        && (v.get("result").is_some() || v.get("error").is_some())
}

/// Reads an SSE stream until the answer to `id` arrives.
async fn answer_in_stream(mut body: Incoming, id: &Value) -> Option<Value> {
    let mut parser = SseParser::new();
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        read += data.len();
        if read > MAX_ANSWER {
            return None;
        }
        for ev in parser.push(data) {
            if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                if answers(&v, id) {
                    return Some(v);
                }
            }
        }
    }
    None
}
