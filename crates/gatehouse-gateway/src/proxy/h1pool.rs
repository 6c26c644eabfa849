//! A serving thread's HTTP/1.1 connections to plain `http://` upstreams, kept alive between
//! requests: the forwarding path of most REST APIs. It does what a general client pool does
//! with less per request: a connection goes back to the idle list when its response body ends
//! (seen by the body the client reads), not by a task spawned per request, and is looked up by
//! the upstream's authority in a map only this thread uses.
//!
//! A request that could not be written on a kept-alive connection (the upstream closed it
//! meanwhile) is sent again on a new one; nothing reached the upstream.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::upstream::RequestBody;

/// An idle connection older than this is closed rather than used.
const IDLE_FOR: Duration = Duration::from_secs(60);
/// Most idle connections kept per upstream.
const MAX_IDLE: usize = 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No connection could be made (refused, unreachable, timed out): nothing was sent.
    #[error("connecting to the upstream: {0}")]
    Connect(String),
    /// The exchange failed after the request was handed to a connection.
    #[error(transparent)]
    Exchange(#[from] hyper::Error),
    /// Another client's exchange failed.
    #[error("{0}")]
    Other(String),
}

struct Idle {
    tx: SendRequest<RequestBody>,
    since: Instant,
}

/// The idle connections of one serving thread, by upstream authority.
pub struct H1Pool {
    idle: Mutex<HashMap<Authority, Vec<Idle>>>,
    connect_timeout: Duration,
}

impl H1Pool {
    /// An empty pool; new connections are given up after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
        })
    }

    fn checkout(&self, authority: &Authority) -> Option<SendRequest<RequestBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(authority)?;
        // Most recently used first: its socket is the likeliest to be open and warm.
        while let Some(c) = list.pop() {
            if !c.tx.is_closed() && c.since.elapsed() < IDLE_FOR {
                return Some(c.tx);
            }
        }
        None
    }

    fn checkin(&self, authority: Authority, tx: SendRequest<RequestBody>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(authority).or_default();
        // The oldest are at the front: drop those past their time, and any over the cap.
        let stale = list
            .iter()
            .take_while(|c| c.since.elapsed() >= IDLE_FOR)
            .count()
            .max((list.len() + 1).saturating_sub(MAX_IDLE));
        list.drain(..stale);
        list.push(Idle {
            tx,
            since: Instant::now(),
        });
    }

    async fn connect(
        &self,
        authority: &Authority,
    ) -> Result<SendRequest<RequestBody>, ExchangeError> {
        let addr = (authority.host(), authority.port_u16().unwrap_or(80));
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ExchangeError::Connect("timed out".into()))?
            .map_err(|e| ExchangeError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (tx, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ExchangeError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(tx)
    }

    /// Sends `req` (an absolute `http://` URI) on a kept-alive connection to its authority, or
    /// a new one.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, ExchangeError> {
        let authority =
            req.uri().authority().cloned().ok_or_else(|| {
                ExchangeError::Connect("the upstream URI has no authority".into())
            })?;
        // On the wire the request line carries the path and query only.
        let pq = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(pq);
        let mut tx = match self.checkout(&authority) {
            Some(tx) => tx,
            None => Box::pin(self.connect(&authority)).await?,
        };
        let res = loop {
            if tx.ready().await.is_err() {
                tx = Box::pin(self.connect(&authority)).await?;
                continue;
            }
            match tx.try_send_request(req).await {
                Ok(res) => break res,
                // Not written (the kept-alive connection closed first): a new connection.
                Err(mut e) => match e.take_message() {
                    Some(back) => {
                        req = back;
                        tx = Box::pin(self.connect(&authority)).await?;
                    }
                    None => return Err(e.into_error().into()),
                },
            }
        };
        // A switched protocol owns the connection; any other answer gives it back when its
        // body ends.
        let back = (res.status() != StatusCode::SWITCHING_PROTOCOLS)
            .then(|| (tx, Arc::downgrade(self), authority));
        Ok(res.map(|inner| UpstreamBody { inner, back }))
    }
}

/// An upstream response body. From this pool, it gives its connection back once it has been
/// read to the end (dropped before the end, the connection is closed with it); from another
/// client, it is that client's body as is.
pub struct UpstreamBody {
    inner: Incoming,
    back: Option<(SendRequest<RequestBody>, Weak<H1Pool>, Authority)>,
}

impl From<Incoming> for UpstreamBody {
    fn from(inner: Incoming) -> Self {
        Self { inner, back: None }
    }
}

impl UpstreamBody {
    fn release(&mut self) {
        if let Some((tx, pool, authority)) = self.back.take() {
            if let Some(pool) = pool.upgrade() {
                pool.checkin(authority, tx);
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.release(),
            Some(Err(_)) => this.back = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // An empty body (HEAD, 204, 304) is never polled: it ended all the same.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
