//! The data plane: a hyper server that routes each request through the current route table to
//! its upstream, streaming bodies both ways.

pub mod client_body;
pub mod conn_io;
pub mod deadline;
pub mod error;
pub mod h1head;
pub mod h1pool;
pub mod h1serve;
pub mod h1wire;
pub mod headers;
pub mod hop;
pub mod llm;
pub mod mcp;
pub mod metrics;
pub mod policies;
pub mod pool;
pub mod request_head;
pub mod respond;
pub mod response_head;
pub mod routes;
pub mod send;
pub mod server;
pub mod table_update;
pub mod tls;
pub mod upgrade;
pub mod upstream;

pub(crate) use hop::strip_hop_by_hop;
pub use server::{serve_workers, Listen, Peer, ServeLimits, Workers};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use client_body::ClientBody;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode, Uri, Version};
use http_body_util::Either;

use error::ProxyError;
use headers::{finish_headers, prepare_headers};
use policies::RateLimit;
use request_head::RawHead;
use respond::{json, GatewayResponse};
use response_head::{HeadForm, PassedHeaders};
use routes::{Entry, Rewrite, RouteTable};
use upstream::Clients;

const READY_PATH: &str = "/_gateway-health/ready";
/// Where MCP proxies publish their protected-resource metadata (RFC 9728).
pub(crate) const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";
const HEALTHY_PATH: &str = "/_gateway-health/healthy";

/// Timeouts of upstream exchanges.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until the upstream connection is made (then 503).
    pub connect: Duration,
    /// Until the upstream's response headers arrive (then 504). Bodies stream without limit.
    pub response: Duration,
}

/// Who writes an answer to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// hyper: HTTP/2, and the HTTP/1.1 requests the gateway's own loop leaves to it.
    Hyper,
    /// The gateway's own HTTP/1.1 loop (`h1serve.rs`), which can write an upstream's headers
    /// as they came.
    Wire,
}

/// How a request came: from whom, when, who writes its answer, and its head as written when
/// the gateway's own HTTP/1.1 loop read it (its headers are then there, not in the request).
struct Arrival<'a> {
    peer: &'a Peer,
    started: Instant,
    writer: Writer,
    raw: Option<RawHead>,
}

/// The data plane's shared state.
pub struct Proxy {
    table: ArcSwap<RouteTable>,
    timeouts: Timeouts,
    ready: AtomicBool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Proxy {
    /// A data plane serving `table`.
    pub fn new(table: RouteTable, timeouts: Timeouts) -> Self {
        Self {
            table: ArcSwap::from_pointee(table),
            timeouts,
            ready: AtomicBool::new(false),
        }
    }

    /// Swaps in a new table; requests in flight finish on the one they started with.
    pub fn swap(&self, table: RouteTable) {
        self.table.store(Arc::new(table));
    }

    /// The current table.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// Marks the gateway as serving its last-known state.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Answers one request, forwarding through `clients` (each serving thread has its own
    /// pools). Every answer, forwarded or refused, is counted in the artifact's metrics. A
    /// request read by the gateway's own HTTP/1.1 loop comes with its head as written (`raw`),
    /// and its headers are there.
    pub async fn handle(
        &self,
        clients: &Clients,
        req: Request<ClientBody>,
        raw: Option<RawHead>,
        peer: &Peer,
        writer: Writer,
    ) -> GatewayResponse {
        let path = req.uri().path();
        if path.starts_with("/_gateway-health/") {
            return self.health(path);
        }
        if let Some(resource) = path.strip_prefix(METADATA_PREFIX) {
            let map;
            let headers = match &raw {
                Some(raw) => {
                    map = raw.to_map().unwrap_or_default();
                    &map
                }
                None => req.headers(),
            };
            return self.resource_metadata(resource, headers, peer.https);
        }
        let started = Instant::now();
        // Hold the entry, not the table: a swap during the upstream call frees the old table
        // once no request uses it.
        let (entry, context_len) = {
            let table = self.table.load();
            let Some((entry, rest)) = table.find(path) else {
                metrics::unrouted();
                return ProxyError::NotFound.into_response();
            };
            (entry.clone(), path.len() - rest.len())
        };
        let res = match self
            .forward(
                &entry,
                clients,
                req,
                context_len,
                Arrival {
                    peer,
                    started,
                    writer,
                    raw,
                },
            )
            .await
        {
            Ok(res) => res,
            Err(e) => {
                if matches!(
                    e,
                    ProxyError::BadGateway
                        | ProxyError::UpstreamUnavailable
                        | ProxyError::GatewayTimeout
                ) {
                    entry.metrics.upstream_error();
                }
                e.into_response()
            }
        };
        entry
            .metrics
            .record(res.status().as_u16(), started.elapsed());
        res
    }

    /// OAuth protected-resource metadata (RFC 9728) of an MCP proxy with `jwt-auth`, at
    /// `/.well-known/oauth-protected-resource<context>/mcp`, so MCP clients find where to log in.
    fn resource_metadata(
        &self,
        resource: &str,
        headers: &HeaderMap,
        https: bool,
    ) -> GatewayResponse {
        let table = self.table.load();
        let found = table.find(resource).and_then(|(entry, rest)| {
            let op = entry.find_op(&http::Method::POST, rest)?;
            let jwt = op.chain.jwt.as_ref()?;
            (entry.kind == gatehouse_core::ArtifactKind::Mcp && rest == "/mcp").then_some(jwt)
        });
        let Some(jwt) = found else {
            return ProxyError::NotFound.into_response();
        };
        let doc = serde_json::json!({
            "resource": format!("{}{resource}", headers::public_base(headers, https)),
            "authorization_servers": [jwt.issuer()],
            "scopes_supported": jwt.required_scopes(),
            "bearer_methods_supported": ["header"],
        });
        json(StatusCode::OK, doc.to_string().into())
    }

    fn health(&self, path: &str) -> GatewayResponse {
        match path {
            READY_PATH if self.ready.load(Ordering::Relaxed) => {
                json(StatusCode::OK, r#"{"status":"ready"}"#.into())
            }
            READY_PATH => json(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"starting"}"#.into(),
            ),
            HEALTHY_PATH => json(StatusCode::OK, r#"{"status":"healthy"}"#.into()),
            _ => ProxyError::NotFound.into_response(),
        }
    }

    /// Runs `entry`'s policies on the request and forwards it; the path after the artifact's
    /// context starts at `context_len`. The JWT, LLM and MCP steps are boxed: inline, their
    /// large states would size (and be copied with) every request's future, forwarding included.
    async fn forward(
        &self,
        entry: &Entry,
        clients: &Clients,
        req: Request<ClientBody>,
        context_len: usize,
        arrival: Arrival<'_>,
    ) -> Result<GatewayResponse, ProxyError> {
        let Arrival {
            peer,
            started,
            writer,
            raw,
        } = arrival;
        let (mut parts, body) = req.into_parts();
        let uri = std::mem::take(&mut parts.uri);
        let rest = &uri.path()[context_len..];
        let host = match &raw {
            Some(raw) => raw.value(b"host"),
            None => parts.headers.get(header::HOST).cloned(),
        };
        let original_host = host.or_else(|| {
            uri.authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let sandbox = original_host
            .as_ref()
            .is_some_and(|h| h.as_bytes().starts_with(b"sandbox-"));
        if let Some(why) = &entry.unavailable {
            return Err(ProxyError::Unavailable(why.clone()));
        }
        let pool = if sandbox {
            entry.sandbox.clone()
        } else {
            entry.main.clone()
        };
        let pool = pool.ok_or(ProxyError::NotFound)?;
        let op = entry.find_op(&parts.method, rest);
        // The head goes upstream as the client wrote it when nothing on the way needs its
        // headers in a map; otherwise they are put in one now.
        let raw = match raw {
            Some(raw) if headers::passable(entry, op, &pool, &raw) => Some(raw),
            Some(raw) => {
                parts.headers = raw.to_map().map_err(ProxyError::BadRequest)?;
                None
            }
            None => None,
        };
        if let Some(cors) = &entry.cors {
            if let Some(r) = cors.preflight(&parts.method, &parts.headers) {
                return Ok(r);
            }
        }
        if let Some(access) = &entry.access {
            if !access.allows(&parts.method, rest) {
                return Err(ProxyError::AccessDenied);
            }
        }
        let op = op.ok_or(ProxyError::NotFound)?;
        let chain = &op.chain;
        let origin = parts.headers.get(header::ORIGIN).cloned();
        let key_id = match (&chain.auth, &raw) {
            (Some(auth), Some(raw)) => Some(auth.check_value(
                raw.get(auth.header().as_str().as_bytes()),
                &entry.keys,
                now_ms(),
            )?),
            (Some(auth), None) => Some(auth.check(&mut parts.headers, &entry.keys, now_ms())?),
            (None, _) => None,
        };
        let claims = match &chain.jwt {
            Some(jwt) => match Box::pin(jwt.check(&mut parts.headers)).await {
                Ok(claims) => Some(claims),
                Err(e) => {
                    let metadata = (entry.kind == gatehouse_core::ArtifactKind::Mcp).then(|| {
                        headers::metadata_url(
                            &parts.headers,
                            peer.https,
                            &uri.path()[..context_len],
                        )
                    });
                    return Err(ProxyError::Jwt(e, metadata.map(Into::into)));
                }
            },
            None => None,
        };
        // The most restrictive limit's state goes back in the RateLimit-* headers.
        let (subscription, mut decision) = match &entry.subscriptions {
            Some(subs) => {
                let sub = policies::subscription::check(&mut parts.headers, subs)?;
                let d = policies::subscription::spend(sub, started).await?;
                (Some(sub.id.clone()), d)
            }
            None => (None, None),
        };
        for rl in &chain.rate_limits {
            let d = rl
                .decide(key_id.as_ref(), started)
                .await
                .map_err(|e| ProxyError::Unavailable(e.to_string().into()))?;
            if !d.allowed {
                return Err(ProxyError::RateLimited(d));
            }
            if decision.is_none_or(|prev| d.remaining < prev.remaining) {
                decision = Some(d);
            }
        }

        if let Some(route) = &entry.llm {
            prepare_headers(&mut parts.headers, peer, original_host, chain);
            let req = llm::flow::LlmRequest {
                method: parts.method,
                headers: parts.headers,
                rest: rest.to_owned(),
                query: uri.query().map(str::to_owned),
                caller: llm::Caller {
                    key: key_id,
                    subscription,
                },
            };
            let mut res = match Box::pin(llm::forward(
                route,
                &clients.buffered,
                self.timeouts,
                req,
                body,
            ))
            .await
            {
                Ok(r) => r,
                Err(e) => e.into_response(route.api),
            };
            finish_headers(res.headers_mut(), chain, origin.as_ref(), decision.as_ref());
            return Ok(res);
        }

        // The upstream request.
        let idx = pool.pick(&[]);
        let upstream = pool.upstream(idx);
        let mut pq = String::with_capacity(upstream.base_path.len() + rest.len() + 64);
        pq.push_str(&upstream.base_path);
        if op.rewrite == Rewrite::StripContext {
            pq.push_str(rest);
        }
        if pq.is_empty() {
            pq.push('/');
        }
        if let Some(q) = uri.query() {
            pq.push('?');
            pq.push_str(q);
        }
        // Origin-form: this thread's HTTP/1.1 pool writes it as is; other clients get the
        // endpoint's scheme and authority added (`send::address`).
        parts.uri = Uri::from_maybe_shared(bytes::Bytes::from(pq))
            .map_err(|_| ProxyError::BadRequest("the request path cannot be forwarded"))?;
        parts.version = Version::HTTP_11;
        let upgrade = upgrade::Upgrade::take(&mut parts);
        let passed = match raw {
            Some(raw) => {
                let taken = chain.auth.as_ref().map(|a| a.header().clone());
                Some(headers::passed(raw, peer, original_host, taken))
            }
            None => {
                prepare_headers(&mut parts.headers, peer, original_host, chain);
                let headers = &mut parts.headers;
                headers.insert(header::HOST, upstream.host.clone());
                if let Some(u) = &upgrade {
                    u.restore(headers);
                }
                None
            }
        };

        // MCP: POSTs read as JSON-RPC; with several servers, every request answered by the
        // gateway. A single server's GET stream and DELETE pass through below.
        if let Some(route) = entry
            .mcp
            .as_ref()
            .filter(|r| r.multiplex.is_some() || parts.method == http::Method::POST)
        {
            let gate = mcp::filter::ToolGate::new(chain.mcp_authz.clone(), claims);
            let mut res = match &route.multiplex {
                Some(mux) => {
                    let session = parts
                        .headers
                        .get(&mcp::exchange::SESSION_ID)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let headers = std::mem::take(&mut parts.headers);
                    let ex =
                        mcp::exchange::Exchange::new(&clients.buffered, self.timeouts, headers);
                    Box::pin(mcp::multiplex::handle(
                        route,
                        mux,
                        gate,
                        ex,
                        parts.method,
                        session,
                        body,
                    ))
                    .await?
                }
                None => {
                    send::address(&mut parts, &pool, idx)?;
                    Box::pin(mcp::forward(
                        route,
                        gate,
                        &clients.buffered,
                        self.timeouts,
                        parts,
                        body,
                    ))
                    .await?
                }
            };
            finish_headers(res.headers_mut(), chain, origin.as_ref(), decision.as_ref());
            return Ok(res);
        }
        // Set when the body passes `maxRequestBody` on its way (only APIs with one allocate it).
        let mut exceeded = None;
        let body = match entry.max_request_body {
            Some(max) => {
                let declared = match &passed {
                    Some(p) => p.raw.get(b"content-length"),
                    None => parts
                        .headers
                        .get(header::CONTENT_LENGTH)
                        .map(|v| v.as_bytes()),
                };
                let declared = declared
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > max) {
                    return Err(ProxyError::PayloadTooLarge(max));
                }
                let flag = Arc::new(AtomicBool::new(false));
                exceeded = Some((flag.clone(), max));
                upstream::RequestBody::capped(body, max, flag)
            }
            None => upstream::RequestBody::plain(body),
        };
        // gRPC goes upstream over HTTP/2, trailers and all.
        let grpc = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if grpc {
            parts.version = Version::HTTP_2;
            parts
                .headers
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
        let client = (grpc || !pool.plain_http()).then(|| clients.for_tls(pool.tls(), grpc));
        if client.is_some() {
            send::address(&mut parts, &pool, idx)?;
        }
        // The upstream's headers go to an HTTP/1.1 client as they came when no policy changes
        // them on the way back (the gateway's RateLimit-* are added beside them).
        let form = if writer == Writer::Wire
            && upgrade.is_none()
            && chain.cors.is_none()
            && chain
                .set_headers
                .as_ref()
                .is_none_or(|sh| sh.response.is_empty())
        {
            HeadForm::Passed
        } else {
            HeadForm::Map
        };
        let via = match &client {
            Some(c) => send::Via::Client(c),
            None => send::Via::Pool(&clients.h1, form, passed.as_ref()),
        };
        let cut = exceeded.as_ref().map(|(flag, max)| (&**flag, *max));
        let answer = send::AnswerBy {
            from: started.into(),
            within: self.timeouts.response,
        };
        // Boxed: the exchange's state is large, and kept inline it would be copied with every
        // future that holds it (measured: the request's future shrank from 15 KB to 3.5 KB).
        let sent = Box::pin(send::send(&via, answer, &pool, idx, parts, body, cut));
        let mut r = sent.await.inspect_err(|e| {
            tracing::debug!(artifact = %entry.handle, error = %e, "upstream exchange failed");
        })?;
        if let Some(u) = upgrade {
            u.finish(&mut r, &entry.handle);
        }
        let mut res = r.map(|b| Either::Left(Either::Left(b)));
        *res.version_mut() = Version::HTTP_11;
        // The gateway's own rate limit state replaces an upstream's.
        if decision.is_some() {
            let theirs = res.extensions().get::<PassedHeaders>();
            if theirs.is_some_and(|p| p.rate_limit) {
                let passed = res.extensions_mut().remove::<PassedHeaders>();
                *res.headers_mut() = passed.map(PassedHeaders::into_map).unwrap_or_default();
            }
            RateLimit::remove(res.headers_mut());
        }
        if let Some(p) = res.extensions_mut().get_mut::<PassedHeaders>() {
            // Only the gateway's rate limit state joins passed headers (no policy here edits
            // them: their form was chosen so).
            if let Some(d) = &decision {
                RateLimit::each(d, |name, value| p.push(name, value));
            }
            return Ok(res);
        }
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            strip_hop_by_hop(res.headers_mut());
        }
        finish_headers(res.headers_mut(), chain, origin.as_ref(), decision.as_ref());
        Ok(res)
    }
}
