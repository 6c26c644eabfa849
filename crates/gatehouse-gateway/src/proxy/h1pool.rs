//! A serving thread's HTTP/1.1 connections to plain `http://` upstreams, kept alive between
//! requests: the forwarding path of most REST APIs. The request's own task writes the request
//! and reads the answer on the connection (`h1wire.rs` frames both), with no connection task,
//! channel or lock per request. A response whose body is already in the read buffer hands its
//! connection back before the client is even answered; a longer one when its body ends (seen by
//! the body the client reads). Dropped before its end, the connection is closed with it.
//!
//! A kept-alive connection the upstream closed meanwhile is noticed before use when the close
//! has arrived; when it arrives during the exchange instead (nothing answered), a request
//! without a body goes again on a new connection: nothing reached the upstream's application.
//! WebSocket upgrades get a fresh connection of their own through hyper.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header;
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::deadline::Deadline;
use super::h1wire::{self, Decoded, Framing, RequestFraming, WireError};
use super::request_head::PassedRequest;
use super::response_head::{self, HeadForm};
use super::routes::Upstream;
use super::upstream::RequestBody;

/// An idle connection older than this is closed rather than used.
const IDLE_FOR: Duration = Duration::from_secs(60);
/// Most idle connections kept per upstream.
const MAX_IDLE: usize = 1024;
/// Bytes read from an upstream at a time (at least).
const READ_CHUNK: usize = 16 << 10;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No connection could be made (refused, unreachable, timed out): nothing was sent.
    #[error("connecting to the upstream: {0}")]
    Connect(String),
    /// hyper's exchange (upgrades) failed after the request was handed to a connection.
    #[error(transparent)]
    Exchange(#[from] hyper::Error),
    /// The upstream's answer could not be read.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The connection failed during the exchange.
    #[error("the upstream connection failed: {0}")]
    Io(#[from] io::Error),
    /// The request body failed (the client's side, or past `maxRequestBody`).
    #[error("reading the request body: {0}")]
    RequestBody(String),
    /// No answer (response head) came within the response timeout.
    #[error("the upstream did not answer in time")]
    TimedOut,
    /// Another client's exchange failed.
    #[error("{0}")]
    Other(String),
}

/// A connection to an upstream with what was read from it and not used yet.
struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// The response timeout of the exchange under way, one timer for the connection's life.
    deadline: Deadline,
}

impl Conn {
    /// Whether an idle connection can carry a request: the upstream has not closed it and has
    /// sent nothing unasked. Asks the socket only when the runtime saw it become readable.
    fn usable(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => matches!(
                self.io.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The idle connections of one serving thread, by upstream authority (as written in the
/// upstream's URL: compared byte for byte, which is cheaper than `Authority`'s comparison
/// ignoring case).
pub struct H1Pool {
    idle: Mutex<rustc_hash::FxHashMap<Box<str>, Vec<Idle>>>,
    connect_timeout: Duration,
}

/// How an exchange on one connection failed.
enum Failed {
    /// The connection ended before any answer, and the request can go again.
    BeforeAnswer(ExchangeError),
    /// Anything else.
    Fatal(ExchangeError),
}

impl H1Pool {
    /// An empty pool; new connections are given up after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(rustc_hash::FxHashMap::default()),
            connect_timeout,
        })
    }

    fn checkout(&self, authority: &Authority, now: Instant) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(authority.as_str())?;
        // Most recently used first: its socket is the likeliest to be open and warm.
        while let Some(c) = list.pop() {
            if now.saturating_duration_since(c.since) < IDLE_FOR && c.conn.usable() {
                return Some(c.conn);
            }
        }
        None
    }

    fn checkin(&self, authority: &Authority, conn: Conn, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !idle.contains_key(authority.as_str()) {
            idle.insert(authority.as_str().into(), Vec::new());
        }
        let Some(list) = idle.get_mut(authority.as_str()) else {
            return;
        };
        // The oldest are at the front: drop those past their time, and any over the cap.
        let stale = list
            .iter()
            .take_while(|c| now.saturating_duration_since(c.since) >= IDLE_FOR)
            .count()
            .max((list.len() + 1).saturating_sub(MAX_IDLE));
        list.drain(..stale);
        list.push(Idle { conn, since: now });
    }

    async fn connect(&self, authority: &Authority) -> Result<TcpStream, ExchangeError> {
        let addr = (authority.host(), authority.port_u16().unwrap_or(80));
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ExchangeError::Connect("timed out".into()))?
            .map_err(|e| ExchangeError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Sends `req` (its URI's path and query) on a kept-alive connection to `upstream`, or a
    /// new one; gives up (`TimedOut`) when the answer's head has not come by `deadline`.
    /// `now` (a moment ago) dates the connection's idle time. With `passed`, the head written
    /// is the client's as it came with the gateway's headers and `upstream`'s `Host`, and the
    /// request's header map is not used (it holds at most a `Host` for the same endpoint).
    pub async fn send(
        self: &Arc<Self>,
        upstream: &Upstream,
        req: Request<RequestBody>,
        (now, deadline): (Instant, Instant),
        form: HeadForm,
        passed: Option<&PassedRequest>,
    ) -> Result<Response<UpstreamBody>, ExchangeError> {
        let authority = &upstream.authority;
        if req.headers().contains_key(header::UPGRADE) {
            let upgrade = Box::pin(self.send_upgrade(authority, req));
            return tokio::time::timeout_at(deadline, upgrade)
                .await
                .map_err(|_| ExchangeError::TimedOut)?;
        }
        let (mut parts, mut body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = Vec::new();
        let framing = match passed {
            Some(p) => p.encode(&mut head, &parts.method, pq, &upstream.host),
            None => h1wire::encode_head(
                &mut head,
                &parts.method,
                pq,
                &mut parts.headers,
                body.is_end_stream(),
            ),
        };
        let (mut conn, mut reused) = match self.checkout(authority, now) {
            Some(c) => (c, true),
            None => (
                Conn::new(Box::pin(self.connect(authority)).await?, deadline),
                false,
            ),
        };
        let answer = loop {
            let Conn {
                io,
                buf,
                deadline: d,
            } = &mut conn;
            let answer = d.run(deadline, exchange(io, buf, &head, framing, &mut body, form));
            match answer
                .await
                .unwrap_or(Err(Failed::Fatal(ExchangeError::TimedOut)))
            {
                Ok(h) => break h,
                // The upstream closed a kept-alive connection as the request went out.
                Err(Failed::BeforeAnswer(_)) if reused && framing == RequestFraming::Empty => {
                    conn = Conn::new(Box::pin(self.connect(authority)).await?, deadline);
                    reused = false;
                }
                Err(Failed::BeforeAnswer(e) | Failed::Fatal(e)) => return Err(e),
            }
        };
        if answer.status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(ExchangeError::Other(
                "the upstream switched protocols unasked".into(),
            ));
        }
        let framing = answer.framing(&parts.method)?;
        let keep_alive = answer.keep_alive();
        let mut res = Response::new(UpstreamBody::empty());
        *res.status_mut() = answer.status;
        *res.headers_mut() = answer.headers;
        if let Some(passed) = answer.passed {
            res.extensions_mut().insert(passed);
        }
        let body = match framing {
            Framing::Empty => None,
            // The whole body is here: the connection goes back now.
            Framing::Length(n) if n <= conn.buf.len() as u64 => {
                Some(conn.buf.split_to(n as usize).freeze())
            }
            framing => {
                *res.body_mut() = UpstreamBody(Kind::Wire(Box::new(WireBody {
                    conn: Some(conn),
                    framing,
                    back: keep_alive.then(|| (Arc::downgrade(self), authority.clone())),
                })));
                return Ok(res);
            }
        };
        if keep_alive && conn.buf.is_empty() {
            self.checkin(authority, conn, now);
        }
        *res.body_mut() = UpstreamBody(Kind::Full(body.filter(|b| !b.is_empty())));
        Ok(res)
    }

    /// An upgrade (WebSocket) on a fresh connection through hyper, which hands the connection
    /// over when the upstream switches protocols.
    async fn send_upgrade(
        &self,
        authority: &Authority,
        mut req: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, ExchangeError> {
        let stream = self.connect(authority).await?;
        let (mut tx, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ExchangeError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        // On the wire the request line carries the path and query only.
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = pq
            .parse()
            .map_err(|_| ExchangeError::Other("the request path cannot be forwarded".to_owned()))?;
        let res = tx.send_request(req).await?;
        Ok(res.map(UpstreamBody::from))
    }
}

impl Conn {
    fn new(io: TcpStream, deadline: Instant) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            deadline: Deadline::new(deadline),
        }
    }
}

/// Writes the request on `conn` and reads the head of its answer (1xx interim answers skipped).
async fn exchange(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    head: &[u8],
    framing: RequestFraming,
    body: &mut RequestBody,
    form: HeadForm,
) -> Result<response_head::Head, Failed> {
    if let Err(e) = io.write_all(head).await {
        return Err(Failed::BeforeAnswer(e.into()));
    }
    if framing != RequestFraming::Empty {
        write_body(io, framing, body).await.map_err(Failed::Fatal)?;
    }
    let mut read_any = false;
    loop {
        if let Some(answer) =
            response_head::parse_head(buf, form).map_err(|e| Failed::Fatal(e.into()))?
        {
            read_any = true;
            if answer.status.is_informational() && answer.status != StatusCode::SWITCHING_PROTOCOLS
            {
                continue;
            }
            return Ok(answer);
        }
        buf.reserve(READ_CHUNK);
        match io.read_buf(buf).await {
            Ok(0) if !read_any && buf.is_empty() => {
                return Err(Failed::BeforeAnswer(ExchangeError::Other(
                    "the upstream closed the connection without answering".into(),
                )))
            }
            Ok(0) => {
                return Err(Failed::Fatal(ExchangeError::Other(
                    "the upstream closed the connection in the middle of its answer".into(),
                )))
            }
            Ok(_) => read_any = true,
            Err(e) if !read_any => return Err(Failed::BeforeAnswer(e.into())),
            Err(e) => return Err(Failed::Fatal(e.into())),
        }
    }
}

/// Streams the request body upstream, framed as the head said.
async fn write_body(
    io: &mut TcpStream,
    framing: RequestFraming,
    body: &mut RequestBody,
) -> Result<(), ExchangeError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ExchangeError::RequestBody(e.to_string()))?;
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) if framing == RequestFraming::Length => io.write_all(&data).await?,
            Ok(data) => {
                out.clear();
                h1wire::encode_chunk(&mut out, &data);
                io.write_all(&out).await?;
            }
            Err(frame) => {
                if let (Ok(trailers), RequestFraming::Chunked) = (frame.into_trailers(), framing) {
                    out.clear();
                    h1wire::encode_last_chunk(&mut out, Some(&trailers));
                    io.write_all(&out).await?;
                    return Ok(());
                }
            }
        }
    }
    if framing == RequestFraming::Chunked {
        io.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// An upstream response body. From this pool, it gives its connection back once it has been
/// read to the end (dropped before the end, the connection is closed with it); from another
/// client, it is that client's body as is.
pub struct UpstreamBody(Kind);

enum Kind {
    /// Read whole with the head (or empty).
    Full(Option<Bytes>),
    /// Read from this pool's connection as the client takes it.
    Wire(Box<WireBody>),
    /// From hyper's clients (TLS, HTTP/2, upgrades).
    Hyper(Incoming),
}

impl UpstreamBody {
    fn empty() -> Self {
        Self(Kind::Full(None))
    }
}

impl From<Incoming> for UpstreamBody {
    fn from(inner: Incoming) -> Self {
        Self(Kind::Hyper(inner))
    }
}

struct WireBody {
    /// `None` once the body ended.
    conn: Option<Conn>,
    framing: Framing,
    /// Where the connection goes back when the body ends (`None`: it closes).
    back: Option<(Weak<H1Pool>, Authority)>,
}

impl WireBody {
    /// The body ended: the connection goes back if it can carry another request.
    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((pool, authority))) = (conn, self.back.take()) {
            if let Some(pool) = pool.upgrade().filter(|_| conn.buf.is_empty()) {
                pool.checkin(&authority, conn, Instant::now());
            }
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match self.framing.take(&mut conn.buf) {
                Ok(Decoded::Data(data)) => {
                    if self.framing.ended() {
                        self.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::End(trailers)) => {
                    self.release();
                    return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(io::Error::other(e))));
                }
            }
            conn.buf.reserve(READ_CHUNK);
            match std::task::ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut conn.io),
                cx,
                &mut conn.buf
            )) {
                Ok(0) => {
                    self.conn = None;
                    if matches!(self.framing, Framing::Close) {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection before the body ended",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match &mut self.0 {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Wire(wire) => wire.poll_frame(cx),
            Kind::Hyper(inner) => super::client_body::poll_incoming(inner, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(data) => data.is_none(),
            Kind::Wire(wire) => wire.conn.is_none() || wire.framing.ended(),
            Kind::Hyper(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Wire(wire) => match wire.framing {
                Framing::Length(left) if wire.conn.is_some() => SizeHint::with_exact(left),
                _ => SizeHint::default(),
            },
            Kind::Hyper(inner) => inner.size_hint(),
        }
    }
}
