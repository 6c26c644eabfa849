//! Responses the gateway makes itself, as JSON.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use crate::proxy::h1pool::UpstreamBody;
use crate::proxy::llm::body::LlmBody;
use crate::proxy::mcp::body::McpBody;

/// The body of every data-plane response: streamed from the upstream (read on the way for an
/// LLM exchange, filtered for an MCP list answer), or made here. The LLM and MCP bodies are
/// boxed: inline, their size would be every response's, copied at each move.
pub type ProxyBody = Either<Either<UpstreamBody, Either<Box<LlmBody>, Box<McpBody>>>, Full<Bytes>>;

/// A response the gateway answers itself.
pub type GatewayResponse = Response<ProxyBody>;

/// `{"error": error, "message": message}` with `status`.
pub fn json_error(status: StatusCode, error: &str, message: &str) -> GatewayResponse {
    let body = serde_json::json!({"error": error, "message": message}).to_string();
    json(status, Bytes::from(body))
}

/// A JSON body with `status`.
pub fn json(status: StatusCode, body: Bytes) -> GatewayResponse {
    let mut r = Response::new(Either::Right(Full::new(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An empty response.
pub fn empty(status: StatusCode) -> GatewayResponse {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r
}
