//! A client connection's byte stream, plain or TLS, whole or split in its reading and writing
//! halves (the gateway's HTTP/1.1 loop reads a request body through one while it writes the
//! answer through the other), and put back together to hand it to hyper.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// A client connection: plain (`Left`) or TLS (`Right`).
pub type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// The reading half of a client connection.
pub type ReadIo = Either<OwnedReadHalf, ReadHalf<Box<TlsStream<TcpStream>>>>;

/// The writing half of a client connection.
pub type WriteIo = Either<OwnedWriteHalf, WriteHalf<Box<TlsStream<TcpStream>>>>;

/// The two halves of `stream`.
pub fn split(stream: Stream) -> (ReadIo, WriteIo) {
    match stream {
        Either::Left(s) => {
            let (r, w) = s.into_split();
            (Either::Left(r), Either::Left(w))
        }
        Either::Right(s) => {
            let (r, w) = tokio::io::split(s);
            (Either::Right(r), Either::Right(w))
        }
    }
}

/// The connection whole again (`None` if the halves are not of one connection).
pub fn reunite(read: ReadIo, write: WriteIo) -> Option<Stream> {
    match (read, write) {
        (Either::Left(r), Either::Left(w)) => r.reunite(w).ok().map(Either::Left),
        (Either::Right(r), Either::Right(w)) => Some(Either::Right(r.unsplit(w))),
        _ => None,
    }
}

/// A connection with bytes already read from it, handed to hyper: those come first.
pub struct Prefixed {
    pub buf: BytesMut,
    pub io: Stream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.buf.is_empty() {
            let n = self.buf.len().min(out.remaining());
            out.put_slice(&self.buf[..n]);
            self.buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, out)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
