//! The gateway's own HTTP/1.1 loop for plain-text client connections: the forwarding path of
//! most traffic. It reads a request head (`h1head.rs`), runs the request through the proxy in
//! the connection's own task, and writes the answer, with less work per request than hyper's
//! general server. Anything that is not plain HTTP/1.1 — HTTP/2 with prior knowledge, HTTP/1.0,
//! upgrades, `Expect`, an unusual framing, a head the parser refuses — goes to hyper with the
//! bytes read so far, for the rest of the connection.
//!
//! The limits are the same as hyper's: a head larger than the limit or with too many headers is
//! answered 431; a client that has not sent a whole head within the header timeout (also the
//! idle keep-alive time) is disconnected.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::BytesMut;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::client_body::{ClientBody, Left, ReadSide};
use super::conn_io::{self, Prefixed, Stream, WriteIo};
use super::deadline::Deadline;
use super::h1head::{self, BodyFraming, Parsed, ResponseFraming, TooLarge};
use super::h1wire::{encode_chunk, encode_last_chunk, Chunked, Framing};
use super::response_head::PassedHeaders;
use super::server::{serve_with_hyper, ConnContext};
use super::Writer;

/// The start of an HTTP/2 connection with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Response bytes gathered before a write.
const WRITE_GATHER: usize = 64 << 10;
/// A request body the handler left unread is read and dropped up to this size, so that the
/// connection can carry the next request; a larger one closes the connection.
const DRAIN_MAX: u64 = 64 << 10;

/// What ends a request's turn on the connection.
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
}

/// Serves one plain-text client connection until it closes, times out or the gateway stops.
pub async fn serve(ctx: ConnContext, stream: Stream, watcher: Watcher) {
    let mut buf = BytesMut::with_capacity(8 << 10);
    let limits = ctx.limits;
    let mut shutdown = ctx.shutdown.clone();
    // The first bytes tell HTTP/2 with prior knowledge from HTTP/1.
    let mut stream = stream;
    let sniff = async {
        while buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&buf) {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok::<_, io::Error>(false);
            }
        }
        Ok(true)
    };
    match tokio::time::timeout(limits.header_timeout, sniff).await {
        Ok(Ok(true)) => {}
        _ => return,
    }
    if buf.starts_with(H2_PREFACE) {
        return serve_with_hyper(&ctx, Prefixed { buf, io: stream }, watcher).await;
    }
    let (read, mut write) = conn_io::split(stream);
    let mut side = ReadSide {
        io: read,
        buf,
        left: Left::Done,
    };
    let mut out = Vec::with_capacity(1024);
    // Made once: a wait made per request would cost a registration each.
    let stop = shutdown.wait_for(|stop| *stop);
    tokio::pin!(stop);
    // Likewise one timer for the header timeout of every request.
    let mut head_deadline = Deadline::new(Instant::now() + limits.header_timeout);
    loop {
        // A whole head, within the header timeout.
        let within = Instant::now() + limits.header_timeout;
        let parsed = tokio::select! {
            p = head_deadline.run(within, read_head(&mut side, &ctx)) => p,
            _ = &mut stop => return,
        };
        let head = match parsed {
            Err(_) | Ok(HeadRead::Closed) | Ok(HeadRead::Parsed(Parsed::Partial)) => return,
            Ok(HeadRead::Parsed(Parsed::Request(head))) => head,
            Ok(HeadRead::Parsed(Parsed::Hyper)) => {
                let Some(stream) = conn_io::reunite(side.io, write) else {
                    return;
                };
                let io = Prefixed {
                    buf: side.buf,
                    io: stream,
                };
                return serve_with_hyper(&ctx, io, watcher).await;
            }
            Ok(HeadRead::Parsed(Parsed::Bad(why))) => {
                let res = super::error::ProxyError::BadRequest(why).into_response();
                let _ = respond(&mut write, &mut out, res, &Method::GET, false, true).await;
                return;
            }
            Ok(HeadRead::TooLarge(why)) => {
                let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                let res = super::respond::json_error(status, "request_headers_too_large", why);
                let _ = respond(&mut write, &mut out, res, &Method::GET, false, true).await;
                return;
            }
        };
        let h1head::RequestHead {
            request,
            raw,
            body,
            keep_alive,
            trailers,
        } = *head;
        let method = request.method().clone();
        // The body, when there is one, is read from the connection as the upstream takes it;
        // the connection can carry another request once it was read whole (or is small enough
        // to read and drop).
        let (parts, ()) = request.into_parts();
        let mut keep = keep_alive;
        let res = match body {
            BodyFraming::None => {
                let req = Request::from_parts(parts, ClientBody::empty());
                ctx.proxy
                    .handle(&ctx.clients, req, Some(raw), &ctx.peer, Writer::Wire)
                    .await
            }
            framing => {
                side.left = match framing {
                    BodyFraming::Length(n) => Left::Reading(Framing::Length(n)),
                    _ => Left::Reading(Framing::Chunked(Chunked::default())),
                };
                let shared = Arc::new(Mutex::new(side));
                let req = Request::from_parts(parts, ClientBody::wire(shared.clone()));
                let res = ctx
                    .proxy
                    .handle(&ctx.clients, req, Some(raw), &ctx.peer, Writer::Wire)
                    .await;
                match Arc::try_unwrap(shared) {
                    Ok(m) => {
                        side = m.into_inner().unwrap_or_else(|e| e.into_inner());
                        keep &= unread_left(&side.left) <= DRAIN_MAX;
                    }
                    // Still held (by a task the request started): the connection ends here.
                    Err(_) => {
                        let _ = respond(&mut write, &mut out, res, &method, trailers, true).await;
                        return;
                    }
                }
                res
            }
        };
        match respond(&mut write, &mut out, res, &method, trailers, !keep).await {
            Ok(Next::KeepAlive) if keep => {}
            _ => return,
        }
        if !matches!(side.left, Left::Done) && !drain(&mut side, limits.header_timeout).await {
            return;
        }
    }
}

/// Bytes of a request body still unread (chunked: unknown, counted as small; the drain stops
/// at its limit).
fn unread_left(left: &Left) -> u64 {
    match left {
        Left::Reading(Framing::Length(n)) => *n,
        Left::Reading(_) | Left::Done => 0,
        Left::Broken => u64::MAX,
    }
}

/// Reads and drops what is left of a request body; false when the connection cannot go on.
async fn drain(side: &mut ReadSide, within: std::time::Duration) -> bool {
    let read = async {
        let mut total = 0u64;
        loop {
            match poll_fn(|cx| side.poll_frame(cx)).await {
                None => return !matches!(side.left, Left::Broken),
                Some(Ok(frame)) => {
                    total += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if total > DRAIN_MAX {
                        return false;
                    }
                }
                Some(Err(_)) => return false,
            }
        }
    };
    tokio::time::timeout(within, read).await.unwrap_or(false)
}

/// What waiting for a request head ended with.
enum HeadRead {
    /// The client closed the connection (or failed) between requests.
    Closed,
    Parsed(Parsed),
    /// A head over the limits: 431, and the connection closes.
    TooLarge(&'static str),
}

async fn read_head(side: &mut ReadSide, ctx: &ConnContext) -> HeadRead {
    loop {
        if !side.buf.is_empty() {
            match h1head::parse_request(
                &mut side.buf,
                ctx.limits.max_header_bytes,
                ctx.limits.max_headers,
            ) {
                Ok(Parsed::Partial) => {}
                Ok(p) => return HeadRead::Parsed(p),
                Err(TooLarge::Bytes) => {
                    return HeadRead::TooLarge("the request headers are larger than the limit")
                }
                Err(TooLarge::Headers) => {
                    return HeadRead::TooLarge("the request has more headers than the limit")
                }
            }
        }
        side.buf.reserve(8 << 10);
        match side.io.read_buf(&mut side.buf).await {
            Ok(0) | Err(_) => return HeadRead::Closed,
            Ok(_) => {}
        }
    }
}

/// Writes `res` (its body too, unless `method` is HEAD); `close` adds `Connection: close`.
async fn respond(
    write: &mut WriteIo,
    out: &mut Vec<u8>,
    res: super::respond::GatewayResponse,
    method: &Method,
    trailers: bool,
    close: bool,
) -> io::Result<Next> {
    let (mut parts, mut body) = res.into_parts();
    let status = parts.status;
    let passed = parts.extensions.remove::<PassedHeaders>();
    let no_body = method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    out.clear();
    let framing = h1head::encode_response(
        out,
        status,
        passed.as_ref(),
        &parts.headers,
        no_body,
        body.size_hint().exact(),
        close,
    );
    drop(parts);
    if framing == ResponseFraming::None || body.is_end_stream() {
        if framing == ResponseFraming::Chunked {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        write.write_all(out).await?;
        return finish(write, close).await;
    }
    let chunked = framing == ResponseFraming::Chunked;
    let mut ended = false;
    while !ended {
        // A frame ready now joins the bytes waiting; otherwise those go first.
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(f) => f,
            Poll::Pending => {
                if !out.is_empty() {
                    write.write_all(out).await?;
                    out.clear();
                }
                body.frame().await
            }
        };
        match frame {
            None => {
                if chunked {
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                ended = true;
            }
            Some(Err(e)) => {
                // Cut short: the client must not take what it got for the whole body.
                if !out.is_empty() {
                    let _ = write.write_all(out).await;
                }
                tracing::debug!(error = %e, "response body failed; closing the connection");
                return Ok(Next::Close);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) if chunked => encode_chunk(out, &data),
                Ok(data) if out.len() + data.len() <= WRITE_GATHER => out.extend_from_slice(&data),
                Ok(data) => {
                    if !out.is_empty() {
                        write.write_all(out).await?;
                        out.clear();
                    }
                    write.write_all(&data).await?;
                }
                Err(frame) => {
                    if let (Ok(t), true) = (frame.into_trailers(), chunked) {
                        encode_last_chunk(out, trailers.then_some(&t));
                        ended = true;
                    }
                }
            },
        }
        if out.len() >= WRITE_GATHER {
            write.write_all(out).await?;
            out.clear();
        }
    }
    if !out.is_empty() {
        write.write_all(out).await?;
    }
    finish(write, close).await
}

/// After an answer: a connection that closes is shut down in order (TLS: `close_notify`).
async fn finish(write: &mut WriteIo, close: bool) -> io::Result<Next> {
    if close {
        write.shutdown().await?;
        return Ok(Next::Close);
    }
    Ok(Next::KeepAlive)
}
