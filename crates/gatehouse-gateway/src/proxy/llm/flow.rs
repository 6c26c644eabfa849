//! One LLM request: read and check it, try its providers in order, answer with the first
//! response that does not call for failover.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_core::llm::ApiFamily;
use gatehouse_core::spec::FailoverOn;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;

use crate::proxy::client_body::ClientBody;
use serde_json::Value;

use super::body::{LlmBody, Recorder};
use super::metrics;
use super::route::{LlmRoute, Target};
use super::token_limit::Caller;
use crate::llm::errors::{error_body, LlmErrorKind};
use crate::llm::guardrails::{estimated_tokens, prompt_text_len, response_text};
use crate::llm::include_usage::ask_for_usage;
use crate::llm::translate::{
    chat_request_to_messages, messages_error_to_chat, messages_response_to_chat,
    MessagesStreamToChat,
};
use crate::llm::usage;
use crate::proxy::policies::rate_limit::Decision;
use crate::proxy::policies::RateLimit;
use crate::proxy::respond::GatewayResponse;
use crate::proxy::upstream::BufferedClient;
use crate::proxy::Timeouts;

/// Request bodies larger than this are refused (413).
pub const MAX_REQUEST_BODY: usize = 16 << 20;

/// Responses read whole (translated or guarded) larger than this are refused (502).
const MAX_READ_RESPONSE: usize = 16 << 20;

/// Headers by which clients send credentials: never forwarded to a provider.
const CLIENT_CREDENTIALS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-goog-api-key"),
];

/// An answer the gateway makes itself, in the API shape of the route's clients.
#[derive(Debug)]
pub struct LlmError {
    pub status: StatusCode,
    pub kind: LlmErrorKind,
    pub message: String,
    /// For 429: the limit's state, for `Retry-After` and `RateLimit-*`.
    pub limit: Option<Decision>,
}

impl LlmError {
    fn new(status: StatusCode, kind: LlmErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            limit: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            LlmErrorKind::InvalidRequest,
            message,
        )
    }

    /// The response, shaped as `api`'s errors are.
    pub fn into_response(self, api: ApiFamily) -> GatewayResponse {
        let body = error_body(api, self.status.as_u16(), self.kind, &self.message);
        let mut r = Response::new(Either::Right(Full::new(body)));
        *r.status_mut() = self.status;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(d) = &self.limit {
            RateLimit::headers(d, h);
            h.insert(header::RETRY_AFTER, HeaderValue::from(d.reset_secs));
        }
        r
    }
}

/// What the request flow needs from the generic part of the data plane.
pub struct LlmRequest {
    pub method: Method,
    /// Headers already prepared for upstream (hop-by-hop removed, `X-Forwarded-*` set).
    pub headers: HeaderMap,
    /// The path after the context.
    pub rest: String,
    pub query: Option<String>,
    pub caller: Caller,
}

/// The request as read and checked, shared by every attempt.
struct Checked {
    json: Option<Value>,
    /// The body as received, when nothing changed it.
    raw: Bytes,
    changed: bool,
    model: Option<String>,
    client_asked_usage: bool,
}

/// Answers one LLM request.
pub async fn forward(
    route: &Arc<LlmRoute>,
    client: &BufferedClient,
    timeouts: Timeouts,
    req: LlmRequest,
    body: ClientBody,
) -> Result<GatewayResponse, LlmError> {
    let started = Instant::now();
    let mut tightest: Option<Decision> = None;
    for limit in &route.policies.token_limits {
        let d = limit.decide(&req.caller, started).await.map_err(|e| {
            LlmError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                LlmErrorKind::Upstream,
                e.to_string(),
            )
        })?;
        if !d.allowed {
            return Err(LlmError {
                limit: Some(d),
                ..LlmError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    LlmErrorKind::RateLimited,
                    format!(
                        "token limit of {} reached; retry in {} s",
                        d.limit, d.reset_secs
                    ),
                )
            });
        }
        if tightest.is_none_or(|t| d.remaining < t.remaining) {
            tightest = Some(d);
        }
    }
    let checked = read_and_check(route, &req, body).await?;
    let order = route.attempt_order(started, |n| rand::random::<u32>() % n);
    let mut last_failure: Option<FailoverOn> = None;
    for (n, &i) in order.iter().enumerate() {
        let target = &route.targets[i];
        let (upstream_req, injected) = build(target, &req, &checked)?;
        let sent = tokio::time::timeout(timeouts.response, client.request(upstream_req)).await;
        let outcome = match sent {
            Ok(Ok(res)) => Ok(res),
            Ok(Err(e)) => {
                tracing::debug!(artifact = %route.artifact, provider = %target.provider, error = %e, "LLM upstream exchange failed");
                Err(if e.is_connect() {
                    FailoverOn::ConnectError
                } else {
                    FailoverOn::Status(502)
                })
            }
            Err(_) => Err(FailoverOn::Timeout),
        };
        let cond = match &outcome {
            Ok(res) => FailoverOn::Status(res.status().as_u16()),
            Err(c) => *c,
        };
        let more = n + 1 < order.len();
        let fails_over = route.failover.as_ref().is_some_and(|f| f.moves_on(cond));
        let is_failure = outcome
            .as_ref()
            .map_or(true, |r| fails_over && !r.status().is_success());
        if fails_over && is_failure {
            let f = route.failover.as_ref();
            let retry_after = outcome
                .as_ref()
                .ok()
                .and_then(|r| r.headers().get(header::RETRY_AFTER))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let cooldown = f.map(|f| f.cooldown()).unwrap_or_default();
            route.cooldowns.cool(
                &target.provider,
                Instant::now(),
                retry_after.map_or(cooldown, |r| r.max(cooldown)),
            );
            if more {
                metrics::failover(&route.artifact, &target.provider, &reason(cond));
                continue;
            }
        }
        let res = match outcome {
            Ok(res) => res,
            Err(c) => {
                last_failure = Some(c);
                break;
            }
        };
        let recorder = Recorder {
            route: route.clone(),
            target: i,
            caller: req.caller.clone(),
            status: res.status().as_u16(),
            started,
            requested_model: checked.model.clone(),
        };
        let mut out = respond(route, target, res, recorder, injected, &checked).await?;
        if let Some(d) = &tightest {
            RateLimit::headers(d, out.headers_mut());
        }
        return Ok(out);
    }
    Err(match last_failure {
        Some(FailoverOn::Timeout) => LlmError::new(
            StatusCode::GATEWAY_TIMEOUT,
            LlmErrorKind::Upstream,
            "the LLM provider did not answer in time",
        ),
        Some(FailoverOn::ConnectError) | None => LlmError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            LlmErrorKind::Upstream,
            "the LLM provider cannot be reached",
        ),
        Some(_) => LlmError::new(
            StatusCode::BAD_GATEWAY,
            LlmErrorKind::Upstream,
            "the LLM provider's answer was cut off",
        ),
    })
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn reason(c: FailoverOn) -> String {
    match c {
        FailoverOn::ConnectError => "connect-error".into(),
        FailoverOn::Timeout => "timeout".into(),
        FailoverOn::Status(s) => s.to_string(),
    }
}

/// Reads the body and applies the request-side LLM policies: model allow-list, prompt size,
/// guardrail rules, PII masking.
async fn read_and_check(
    route: &LlmRoute,
    req: &LlmRequest,
    body: ClientBody,
) -> Result<Checked, LlmError> {
    let raw = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(LlmError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                LlmErrorKind::InvalidRequest,
                format!(
                    "the request body is larger than {} MiB",
                    MAX_REQUEST_BODY >> 20
                ),
            ))
        }
        Err(_) => return Err(LlmError::bad_request("the request body could not be read")),
    };
    // The body is parsed into a tree only when something reads it; otherwise it is only
    // checked to be JSON, which allocates nothing.
    let reads = route.policies.reads_requests()
        || route.targets.iter().any(|t| t.translate)
        || (route
            .targets
            .iter()
            .any(|t| t.template.extract.stream.ask_for_usage)
            && contains(&raw, b"\"stream\""));
    let not_json = |e: serde_json::Error| {
        LlmError::bad_request(format!("the request body is not valid JSON: {e}"))
    };
    let mut json: Option<Value> = None;
    if !raw.is_empty() {
        if reads {
            json = Some(serde_json::from_slice(&raw).map_err(not_json)?);
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(&raw).map_err(not_json)?;
        }
    }
    let model = usage::request_model(&route.client_template.extract, &req.rest, json.as_ref());
    let p = &route.policies;
    if let (Some(allow), Some(m)) = (&p.allow, &model) {
        if !allow.allows(m) {
            return Err(LlmError::new(
                StatusCode::BAD_REQUEST,
                LlmErrorKind::ModelNotAllowed,
                format!(
                    "model '{m}' is not allowed; allowed: {}",
                    allow.models.join(", ")
                ),
            ));
        }
    }
    let mut changed = false;
    if let Some(body) = &mut json {
        if let Some(size) = &p.size {
            let chars = prompt_text_len(route.api, body);
            let tokens = estimated_tokens(chars);
            if size.max_chars.is_some_and(|m| chars as u64 > m) {
                return Err(LlmError::new(
                    StatusCode::BAD_REQUEST,
                    LlmErrorKind::PromptTooLarge,
                    format!(
                        "the prompt has {chars} characters; prompt-size-limit allows {}",
                        size.max_chars.unwrap_or_default()
                    ),
                ));
            }
            if size.max_tokens.is_some_and(|m| tokens > m) {
                return Err(LlmError::new(
                    StatusCode::BAD_REQUEST,
                    LlmErrorKind::PromptTooLarge,
                    format!(
                        "the prompt has about {tokens} tokens; prompt-size-limit allows {}",
                        size.max_tokens.unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(guard) = &p.guard {
            if let Err(rule) = guard.check_request(route.api, body) {
                return Err(LlmError::new(
                    StatusCode::BAD_REQUEST,
                    LlmErrorKind::GuardrailRequest,
                    format!("the request was refused by guardrail rule '{rule}'"),
                ));
            }
        }
        if let Some(masker) = &p.masker {
            changed |= masker.mask(route.api, body) > 0;
        }
    }
    let client_asked_usage = json
        .as_ref()
        .and_then(|j| j.pointer("/stream_options/include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Checked {
        json,
        raw,
        changed,
        model,
        client_asked_usage,
    })
}

/// The request to `target`, and whether the gateway asked the provider for stream usage.
fn build(
    target: &Target,
    req: &LlmRequest,
    checked: &Checked,
) -> Result<(Request<Full<Bytes>>, bool), LlmError> {
    let mut injected = false;
    let (path, body) = if target.translate {
        if !req
            .rest
            .trim_end_matches('/')
            .ends_with("/chat/completions")
        {
            return Err(LlmError::new(
                StatusCode::NOT_FOUND,
                LlmErrorKind::InvalidRequest,
                format!(
                    "'{}' is not translated to the anthropic API; only /chat/completions is",
                    req.rest
                ),
            ));
        }
        let json = checked
            .json
            .as_ref()
            .ok_or_else(|| LlmError::bad_request("a chat completion needs a JSON body"))?;
        let translated = chat_request_to_messages(json).map_err(LlmError::bad_request)?;
        let path = if target.upstream.base_path.ends_with("/v1") {
            "/messages"
        } else {
            "/v1/messages"
        };
        (path.to_owned(), Bytes::from(translated.to_string()))
    } else {
        let mut body = None;
        if target.template.extract.stream.ask_for_usage {
            let streams = |j: &&Value| j.get("stream").and_then(Value::as_bool) == Some(true);
            if let Some(json) = checked.json.as_ref().filter(streams) {
                let mut j = json.clone();
                if ask_for_usage(&mut j) {
                    injected = true;
                    body = Some(Bytes::from(j.to_string()));
                }
            }
        }
        let body = match (body, checked.changed, &checked.json) {
            (Some(b), _, _) => b,
            (None, true, Some(j)) => Bytes::from(j.to_string()),
            _ => checked.raw.clone(),
        };
        (req.rest.clone(), body)
    };
    let up = &target.upstream;
    let mut pq = String::with_capacity(up.base_path.len() + path.len() + 64);
    pq.push_str(&up.base_path);
    pq.push_str(&path);
    if pq.is_empty() {
        pq.push('/');
    }
    if let Some(q) = &req.query {
        pq.push('?');
        pq.push_str(q);
    }
    let uri = Uri::builder()
        .scheme(up.scheme.clone())
        .authority(up.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|_| LlmError::bad_request("the request path cannot be forwarded"))?;
    let mut headers = req.headers.clone();
    for h in &CLIENT_CREDENTIALS {
        headers.remove(h);
    }
    // Usage is read from the response, so it must arrive uncompressed.
    headers.remove(header::ACCEPT_ENCODING);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    if target.translate {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert(header::HOST, up.host.clone());
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    for (k, v) in &target.headers {
        if !headers.contains_key(k) {
            headers.insert(k.clone(), v.clone());
        }
    }
    if let Some((k, v)) = &target.credential {
        headers.insert(k.clone(), v.clone());
    }
    let mut r = Request::new(Full::new(body));
    *r.method_mut() = req.method.clone();
    *r.uri_mut() = uri;
    *r.headers_mut() = headers;
    Ok((r, injected))
}

/// Turns the provider's response into the client's.
async fn respond(
    route: &LlmRoute,
    target: &Target,
    res: Response<Incoming>,
    recorder: Recorder,
    injected: bool,
    checked: &Checked,
) -> Result<GatewayResponse, LlmError> {
    let (mut parts, body) = res.into_parts();
    crate::proxy::strip_hop_by_hop(&mut parts.headers);
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let guards_responses = route
        .policies
        .guard
        .as_ref()
        .is_some_and(|g| g.reads_responses());
    if is_sse && parts.status.is_success() {
        let translate = target
            .translate
            .then(|| MessagesStreamToChat::new(checked.client_asked_usage));
        if target.translate || guards_responses || injected {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let body = LlmBody::sse(body, recorder, injected, translate);
        return Ok(Response::from_parts(
            parts,
            Either::Left(Either::Right(Either::Left(Box::new(body)))),
        ));
    }
    let read_whole = target.translate || (guards_responses && parts.status.is_success());
    if !read_whole {
        let body = LlmBody::json(body, recorder);
        return Ok(Response::from_parts(
            parts,
            Either::Left(Either::Right(Either::Left(Box::new(body)))),
        ));
    }
    // Read whole: translated, or checked by a guardrail before anything is sent.
    let bytes = Limited::new(body, MAX_READ_RESPONSE)
        .collect()
        .await
        .map_err(|_| {
            LlmError::new(
                StatusCode::BAD_GATEWAY,
                LlmErrorKind::Upstream,
                "the LLM provider's answer could not be read",
            )
        })?
        .to_bytes();
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let usage = json
        .as_ref()
        .map(|j| usage::from_json(&target.template.extract, j))
        .unwrap_or_default();
    recorder.finish(&usage);
    if let (Some(guard), Some(j)) = (&route.policies.guard, &json) {
        if guard.reads_responses() && parts.status.is_success() {
            if let Err(rule) = guard.check_text(&response_text(target.template.api, j)) {
                return Err(LlmError::new(
                    StatusCode::BAD_GATEWAY,
                    LlmErrorKind::GuardrailResponse,
                    format!("the response was refused by guardrail rule '{rule}'"),
                ));
            }
        }
    }
    let out = match (&json, target.translate) {
        (Some(j), true) if parts.status.is_success() => {
            Bytes::from(messages_response_to_chat(j).to_string())
        }
        (Some(j), true) => {
            Bytes::from(messages_error_to_chat(parts.status.as_u16(), j).to_string())
        }
        _ => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    if target.translate {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    Ok(Response::from_parts(parts, Either::Right(Full::new(out))))
}
