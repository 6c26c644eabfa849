//! An SSE answer of an MCP server on its way to the client: each event is relayed as it comes,
//! the answers to list requests filtered. An event larger than the bound ends the stream with
//! a JSON-RPC error instead of growing the gateway's memory.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use serde_json::Value;

use super::filter::{self, AllowLists, ListKind, ToolGate};
use crate::llm::sse::{encode, SseEvent, SseParser};

/// The largest SSE event relayed.
pub const MAX_EVENT: usize = 8 << 20;

/// The body of a filtered SSE answer.
pub struct McpBody {
    inner: Incoming,
    parser: SseParser,
    lists: HashMap<String, ListKind>,
    allow: Arc<AllowLists>,
    gate: ToolGate,
    done: bool,
}

impl McpBody {
    /// Relays `inner`, filtering the answers to `lists`.
    pub fn new(
        inner: Incoming,
        lists: HashMap<String, ListKind>,
        allow: Arc<AllowLists>,
        gate: ToolGate,
    ) -> Self {
        Self {
            inner,
            parser: SseParser::new(),
            lists,
            allow,
            gate,
            done: false,
        }
    }

    fn relay(&self, events: Vec<SseEvent>, out: &mut BytesMut) {
        for ev in events {
            match filter::filter_event_data(&ev.data, &self.lists, &self.allow, &self.gate) {
                Some(data) => out.extend_from_slice(&encode(ev.event.as_deref(), &data)),
                None => out.extend_from_slice(&ev.raw),
            }
        }
    }
}

impl Body for McpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Some(data) = frame.data_ref() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    let events = this.parser.push(data);
                    let mut out = BytesMut::new();
                    this.relay(events, &mut out);
                    if this.parser.pending() > MAX_EVENT {
                        let err = filter::error(
                            &Value::Null,
                            filter::INVALID_REQUEST,
                            &format!(
                                "the server sent an event larger than {} MiB; the stream is closed",
                                MAX_EVENT >> 20
                            ),
                        );
                        out.extend_from_slice(&encode(Some("message"), &err.to_string()));
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
                    this.relay(last, &mut out);
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
