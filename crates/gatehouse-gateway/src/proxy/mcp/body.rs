//! An SSE answer of an MCP server on its way to the client: each event is relayed as it comes,
//! the answers to list requests filtered, or (for a proxy over several servers) the server's
//! requests and resource notifications prefixed; or the merged GET streams of several servers.
//! An event larger than the bound ends the stream with a JSON-RPC error instead of growing the
//! gateway's memory.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use serde_json::Value;

use tokio::sync::mpsc;

use super::filter::{self, AllowLists, ListKind, ToolGate};
use super::names;
use crate::llm::sse::{encode, SseEvent, SseParser};

/// The largest SSE event relayed.
pub const MAX_EVENT: usize = 8 << 20;

/// What is done to each event.
enum Mode {
    /// The answers to these list requests are filtered.
    Filter {
        lists: HashMap<String, ListKind>,
        allow: Arc<AllowLists>,
        gate: ToolGate,
    },
    /// The messages of this server are prefixed.
    Prefix(Arc<str>),
}

/// Where events come from.
enum Source {
    Upstream(Incoming, Mode),
    /// Events already relayed by the tasks reading each server's stream.
    Merged(mpsc::Receiver<Bytes>),
}

/// The body of a relayed SSE answer.
pub struct McpBody {
    source: Source,
    parser: SseParser,
    done: bool,
}

/// Appends `events` of `server` to `out`, prefixed.
pub fn relay_prefixed(server: &str, events: Vec<SseEvent>, out: &mut BytesMut) {
    for ev in events {
        match names::prefix_server_message(server, &ev.data) {
            Some(data) => out.extend_from_slice(&encode(ev.event.as_deref(), &data)),
            // Event ids are the server's own and mean nothing in a merged stream.
            None if ev.raw.starts_with(b"id:") => {
                out.extend_from_slice(&encode(ev.event.as_deref(), &ev.data))
            }
            None => out.extend_from_slice(&ev.raw),
        }
    }
}

impl McpBody {
    /// Relays `inner`, filtering the answers to `lists`.
    pub fn filtered(
        inner: Incoming,
        lists: HashMap<String, ListKind>,
        allow: Arc<AllowLists>,
        gate: ToolGate,
    ) -> Self {
        Self::of(Source::Upstream(inner, Mode::Filter { lists, allow, gate }))
    }

    /// Relays `inner` of `server`, its messages prefixed.
    pub fn prefixed(inner: Incoming, server: Arc<str>) -> Self {
        Self::of(Source::Upstream(inner, Mode::Prefix(server)))
    }

    /// Relays what the readers of several servers' streams send.
    pub fn merged(rx: mpsc::Receiver<Bytes>) -> Self {
        Self::of(Source::Merged(rx))
    }

    fn of(source: Source) -> Self {
        Self {
            source,
            parser: SseParser::new(),
            done: false,
        }
    }
}

fn relay(mode: &Mode, events: Vec<SseEvent>, out: &mut BytesMut) {
    match mode {
        Mode::Filter { lists, allow, gate } => {
            for ev in events {
                match filter::filter_event_data(&ev.data, lists, allow, gate) {
                    Some(data) => out.extend_from_slice(&encode(ev.event.as_deref(), &data)),
                    None => out.extend_from_slice(&ev.raw),
                }
            }
        }
        Mode::Prefix(server) => relay_prefixed(server, events, out),
    }
}

/// The event closing a stream whose next event is too large.
pub fn too_large() -> Bytes {
    let err = filter::error(
        &Value::Null,
        filter::INVALID_REQUEST,
        &format!(
            "the server sent an event larger than {} MiB; the stream is closed",
            MAX_EVENT >> 20
        ),
    );
    encode(Some("message"), &err.to_string())
}

impl Body for McpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let (inner, mode) = match &mut this.source {
            Source::Merged(rx) => {
                if this.done {
                    return Poll::Ready(None);
                }
                return match ready!(rx.poll_recv(cx)) {
                    Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                    None => {
                        this.done = true;
                        Poll::Ready(None)
                    }
                };
            }
            Source::Upstream(inner, mode) => (inner, &*mode),
        };
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut *inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Some(data) = frame.data_ref() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    let events = this.parser.push(data);
                    let mut out = BytesMut::new();
                    relay(mode, events, &mut out);
                    if this.parser.pending() > MAX_EVENT {
                        out.extend_from_slice(&too_large());
                        this.done = true;
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.done = true;
                    let mut out = BytesMut::new();
                    let last: Vec<SseEvent> = this.parser.finish().into_iter().collect();
                    relay(mode, last, &mut out);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
