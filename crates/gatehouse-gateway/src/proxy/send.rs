//! Sends a request to an upstream's pool: the endpoint picked, its outcome recorded, and a
//! request without a body that could not connect tried again on the other endpoints
//! (idempotent methods only: nothing reached the upstream, but the client may not know).

use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{self, HeaderMap};
use http::request::Parts;
use http::{Method, Request, Response, Uri};
use hyper::body::Body;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::ProxyError;
use super::h1pool::{ExchangeError, H1Pool, UpstreamBody};
use super::pool::{Outcome, Pool};
use super::request_head::PassedRequest;
use super::response_head::HeadForm;
use super::routes::Upstream;
use super::upstream::{RequestBody, UpstreamClient};

/// What carries a request upstream: this thread's HTTP/1.1 pool (plain `http://` upstreams), or
/// a general client (TLS, HTTP/2).
pub enum Via<'a> {
    /// The pool, the form in which the upstream's headers are wanted, and the client's head
    /// when it goes upstream as written (the request's header map is then not used).
    Pool(&'a Arc<H1Pool>, HeadForm, Option<&'a PassedRequest>),
    Client(&'a UpstreamClient),
}

impl Via<'_> {
    /// Sends `req` to `upstream`; `TimedOut` when no answer came in time.
    async fn request(
        &self,
        upstream: &Upstream,
        req: Request<RequestBody>,
        answer: AnswerBy,
    ) -> Result<Response<UpstreamBody>, ExchangeError> {
        let deadline = answer.from + answer.within;
        match self {
            Via::Pool(p, form, passed) => {
                let when = (answer.from, deadline);
                p.send(upstream, req, when, *form, *passed).await
            }
            Via::Client(c) => match tokio::time::timeout_at(deadline, c.request(req)).await {
                Ok(Ok(r)) => Ok(r.map(UpstreamBody::from)),
                Ok(Err(e)) if e.is_connect() => Err(ExchangeError::Connect(e.to_string())),
                Ok(Err(e)) => Err(ExchangeError::Other(e.to_string())),
                Err(_) => Err(ExchangeError::TimedOut),
            },
        }
    }
}

/// How long an upstream has to answer (its response head), counted from `from`: for the
/// first attempt, when the gateway had read the request.
#[derive(Debug, Clone, Copy)]
pub struct AnswerBy {
    pub from: Instant,
    pub within: Duration,
}

/// `parts.uri` addressed to endpoint `i` of `pool` (the path and query kept).
pub fn address(parts: &mut Parts, pool: &Pool, i: usize) -> Result<(), ProxyError> {
    let u = pool.upstream(i);
    let mut b = Uri::builder()
        .scheme(u.scheme.clone())
        .authority(u.authority.clone());
    if let Some(pq) = parts.uri.path_and_query() {
        b = b.path_and_query(pq.clone());
    }
    parts.uri = b
        .build()
        .map_err(|_| ProxyError::BadRequest("the request path cannot be forwarded"))?;
    parts.headers.insert(header::HOST, u.host.clone());
    Ok(())
}

fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Sends `parts` + `body` (addressed to endpoint `idx`); `cut` (whether the body was cut off,
/// and at what `maxRequestBody`, for an API with a limit) tells a body too large from a failed
/// exchange.
pub async fn send(
    client: &Via<'_>,
    mut answer: AnswerBy,
    pool: &Pool,
    mut idx: usize,
    parts: Parts,
    body: RequestBody,
    cut: Option<(&AtomicBool, u64)>,
) -> Result<Response<UpstreamBody>, ProxyError> {
    // What a retry needs, kept only when one may happen.
    let bodiless = !has_body(&parts.headers) && body.is_end_stream();
    let again = (pool.len() > 1 && idempotent(&parts.method) && bodiless).then(|| {
        (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        )
    });
    let mut tried = vec![];
    let mut req = Request::from_parts(parts, body);
    loop {
        match client.request(pool.upstream(idx), req, answer).await {
            Ok(r) => {
                pool.record(idx, Outcome::Answered);
                return Ok(r);
            }
            Err(_) if cut.is_some_and(|(flag, _)| flag.load(Ordering::Relaxed)) => {
                return Err(ProxyError::PayloadTooLarge(cut.map_or(0, |c| c.1)))
            }
            Err(ExchangeError::TimedOut) => {
                pool.record(idx, Outcome::TimedOut);
                return Err(ProxyError::GatewayTimeout);
            }
            Err(ExchangeError::Connect(_)) => {
                pool.record(idx, Outcome::ConnectFailed);
                tried.push(idx);
                let Some((method, uri, headers)) = &again else {
                    return Err(ProxyError::UpstreamUnavailable);
                };
                if tried.len() >= pool.len() {
                    return Err(ProxyError::UpstreamUnavailable);
                }
                idx = pool.pick(&tried);
                answer.from = Instant::now();
                let mut next = Request::new(RequestBody::empty());
                *next.method_mut() = method.clone();
                *next.uri_mut() = uri.clone();
                *next.headers_mut() = headers.clone();
                let (mut p, b) = next.into_parts();
                address(&mut p, pool, idx)?;
                req = Request::from_parts(p, b);
            }
            Err(e) => {
                tracing::debug!(error = %e, "upstream exchange failed");
                return Err(ProxyError::BadGateway);
            }
        }
    }
}
