//! A client's request body as the data plane reads it: from hyper's server (HTTP/2, TLS, and
//! the connections the gateway's own HTTP/1.1 loop hands to hyper), or read by that loop
//! (`h1serve.rs`) from the client's socket as the upstream takes it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::conn_io::ReadIo;
use super::h1wire::{Decoded, Framing};

/// Bytes read from a client at a time (at least).
const READ_CHUNK: usize = 16 << 10;

/// A request body.
pub struct ClientBody(Inner);

enum Inner {
    Empty,
    Hyper(Incoming),
    Wire(Arc<Mutex<ReadSide>>),
}

impl ClientBody {
    /// No body.
    pub fn empty() -> Self {
        Self(Inner::Empty)
    }

    /// A body read from the client's connection by the gateway's HTTP/1.1 loop.
    pub(crate) fn wire(side: Arc<Mutex<ReadSide>>) -> Self {
        Self(Inner::Wire(side))
    }
}

impl From<Incoming> for ClientBody {
    fn from(inner: Incoming) -> Self {
        Self(Inner::Hyper(inner))
    }
}

/// How much of a request body is left to read.
#[derive(Debug)]
pub(crate) enum Left {
    /// This much, framed so.
    Reading(Framing),
    /// The body ended: the connection can read the next request.
    Done,
    /// The body could not be read whole: the connection cannot carry another request.
    Broken,
}

/// The reading half of a client connection, with what was read and not used yet.
pub(crate) struct ReadSide {
    pub io: ReadIo,
    pub buf: BytesMut,
    pub left: Left,
}

impl ReadSide {
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        loop {
            let Left::Reading(framing) = &mut self.left else {
                return Poll::Ready(None);
            };
            match framing.take(&mut self.buf) {
                Ok(Decoded::Data(data)) => {
                    if framing.ended() {
                        self.left = Left::Done;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::End(trailers)) => {
                    self.left = Left::Done;
                    return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => {
                    self.left = Left::Broken;
                    return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, e))));
                }
            }
            self.buf.reserve(READ_CHUNK);
            match std::task::ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                &mut self.buf
            )) {
                Ok(0) => {
                    self.left = Left::Broken;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection before the body ended",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.left = Left::Broken;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

/// A hyper body's next frame, its error as an I/O error.
pub(crate) fn poll_incoming(
    inner: &mut Incoming,
    cx: &mut Context<'_>,
) -> Poll<Option<io::Result<Frame<Bytes>>>> {
    Pin::new(inner)
        .poll_frame(cx)
        .map(|f| f.map(|f| f.map_err(io::Error::other)))
}

fn lock(side: &Mutex<ReadSide>) -> std::sync::MutexGuard<'_, ReadSide> {
    side.lock().unwrap_or_else(|e| e.into_inner())
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match &mut self.0 {
            Inner::Empty => Poll::Ready(None),
            Inner::Hyper(inner) => poll_incoming(inner, cx),
            Inner::Wire(side) => lock(side).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Empty => true,
            Inner::Hyper(inner) => inner.is_end_stream(),
            Inner::Wire(side) => match &lock(side).left {
                Left::Reading(framing) => framing.ended(),
                Left::Done | Left::Broken => true,
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Hyper(inner) => inner.size_hint(),
            Inner::Wire(side) => match lock(side).left {
                Left::Reading(Framing::Length(n)) => SizeHint::with_exact(n),
                Left::Reading(_) => SizeHint::default(),
                Left::Done | Left::Broken => SizeHint::with_exact(0),
            },
        }
    }
}
