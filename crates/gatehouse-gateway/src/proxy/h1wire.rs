//! HTTP/1.1 on the wire to plain upstreams: the request head written, and a response body's
//! framing (RFC 9112 §6) decoded from a read buffer. No I/O here: the
//! pool (`h1pool.rs`) reads and writes.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;

use super::response_head::MAX_HEAD;

/// Why an upstream's answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the upstream's response head is malformed: {0}")]
    Head(httparse::Error),
    #[error("the upstream's response head is larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("the upstream's response has an unusable Content-Length")]
    Length,
    #[error("the upstream's chunked body is malformed")]
    Chunk,
}

/// How a request body goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body.
    Empty,
    /// As many bytes as `Content-Length` says, written as they come.
    Length,
    /// Chunked transfer coding.
    Chunked,
}

/// Writes the request line and headers of a request to `pq` (path and query) into `out`.
/// `framing` decides the body's framing headers: a body of unknown length goes chunked.
pub fn encode_head(
    out: &mut Vec<u8>,
    method: &Method,
    pq: &str,
    headers: &mut HeaderMap,
    body_ends_now: bool,
) -> RequestFraming {
    let framing = if headers.contains_key(header::TRANSFER_ENCODING) {
        // The client's framing is gone with hyper's decoding: chunked is what goes upstream.
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.remove(header::CONTENT_LENGTH);
        RequestFraming::Chunked
    } else if headers.contains_key(header::CONTENT_LENGTH) {
        RequestFraming::Length
    } else if body_ends_now {
        RequestFraming::Empty
    } else {
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        RequestFraming::Chunked
    };
    out.reserve(pq.len() + 32 + headers.len() * 32);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(pq.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers.iter() {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    framing
}

/// Writes one header line (`name: value`) into `out`.
pub fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes one chunk of a chunked request body (`data` not empty) into `out`.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Writes the end of a chunked body, with `trailers` if any, into `out`.
pub fn encode_last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// A response body's framing.
#[derive(Debug)]
pub enum Framing {
    /// No body.
    Empty,
    /// This many bytes.
    Length(u64),
    /// Chunked, with the decoder's state.
    Chunked(Chunked),
    /// Until the upstream closes the connection.
    Close,
}

impl Framing {
    /// Takes the body's next piece from `buf` (the read buffer of its connection): data, its
    /// end (with trailers), or a need for more bytes. A body until close ends where its reader
    /// sees the close.
    pub fn take(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        match self {
            Framing::Empty | Framing::Length(0) => Ok(Decoded::End(None)),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                Ok(Decoded::Data(buf.split_to(n as usize).freeze()))
            }
            Framing::Chunked(dec) => dec.decode(buf),
            Framing::Close if buf.is_empty() => Ok(Decoded::NeedMore),
            Framing::Close => Ok(Decoded::Data(buf.split().freeze())),
        }
    }

    /// Whether the body has nothing more to give.
    pub fn ended(&self) -> bool {
        matches!(self, Framing::Empty | Framing::Length(0))
    }
}

/// What a chunked body's decoder found in the buffer.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The body ended, with these trailers if it had any.
    End(Option<HeaderMap>),
    /// More bytes are needed.
    NeedMore,
}

/// The state of a chunked body's decoding.
#[derive(Debug, Default)]
pub struct Chunked {
    /// Bytes left in the current chunk's data, then its CRLF.
    left: u64,
    /// The current chunk's data was read and its CRLF is next.
    crlf: bool,
}

/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

impl Chunked {
    /// Decodes the next piece of the body from `buf`, taking what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            if self.left > 0 {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = (self.left.min(buf.len() as u64)) as usize;
                self.left -= n as u64;
                self.crlf = self.left == 0;
                return Ok(Decoded::Data(buf.split_to(n).freeze()));
            }
            if self.crlf {
                if buf.len() < 2 {
                    return Ok(Decoded::NeedMore);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(WireError::Chunk);
                }
                buf.advance(2);
                self.crlf = false;
            }
            // A chunk-size line.
            let Some(end) = find_crlf(buf)? else {
                return Ok(Decoded::NeedMore);
            };
            let line = &buf[..end];
            let size = line
                .split(|b| *b == b';')
                .next()
                .map(|s| s.trim_ascii())
                .filter(|s| !s.is_empty() && s.len() <= 16)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or(WireError::Chunk)?;
            if size > 0 {
                buf.advance(end + 2);
                self.left = size;
                continue;
            }
            // The last chunk: trailers up to an empty line, all in the buffer.
            let Some((trailers, used)) = parse_trailers(&buf[end + 2..])? else {
                return Ok(Decoded::NeedMore);
            };
            buf.advance(end + 2 + used);
            return Ok(Decoded::End(trailers));
        }
    }
}

fn find_crlf(buf: &[u8]) -> Result<Option<usize>, WireError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(i) if i <= MAX_LINE => Ok(Some(i)),
        Some(_) => Err(WireError::Chunk),
        None if buf.len() > MAX_LINE => Err(WireError::Chunk),
        None => Ok(None),
    }
}

/// The trailer section at the start of `buf` (up to and including its empty line).
fn parse_trailers(buf: &[u8]) -> Result<Option<(Option<HeaderMap>, usize)>, WireError> {
    let mut at = 0;
    let mut trailers: Option<HeaderMap> = None;
    loop {
        let Some(end) = find_crlf(&buf[at..])? else {
            if buf.len() > MAX_HEAD {
                return Err(WireError::Chunk);
            }
            return Ok(None);
        };
        let line = &buf[at..at + end];
        at += end + 2;
        if line.is_empty() {
            return Ok(Some((trailers, at)));
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or(WireError::Chunk)?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| WireError::Chunk)?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| WireError::Chunk)?;
        trailers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_in_any_split_with_trailers() {
        let raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 42\r\n\r\nNEXT";
        for split in 1..raw.len() {
            let mut dec = Chunked::default();
            let mut buf = BytesMut::new();
            let mut body = Vec::new();
            let mut fed = 0;
            let trailers = loop {
                match dec.decode(&mut buf).unwrap() {
                    Decoded::Data(d) => body.extend_from_slice(&d),
                    Decoded::End(t) => break t,
                    Decoded::NeedMore => {
                        let n = split.min(raw.len() - fed);
                        assert!(n > 0, "ran out of input at split {split}");
                        buf.extend_from_slice(&raw[fed..fed + n]);
                        fed += n;
                    }
                }
            };
            assert_eq!(body, b"hello world");
            assert_eq!(trailers.unwrap()["x-sum"], "42");
            buf.extend_from_slice(&raw[fed..]);
            assert_eq!(&buf[..], b"NEXT", "split {split}");
        }
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for raw in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"\r\n"] {
            let mut buf = BytesMut::from(raw);
            let mut dec = Chunked::default();
            let mut out = Ok(Decoded::NeedMore);
            for _ in 0..3 {
                out = dec.decode(&mut buf);
                if !matches!(out, Ok(Decoded::Data(_))) {
                    break;
                }
            }
            assert!(out.is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_request_head_carries_its_framing() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("up"));
        let mut out = Vec::new();
        let f = encode_head(&mut out, &Method::GET, "/a?b", &mut h, true);
        assert_eq!(f, RequestFraming::Empty);
        assert_eq!(out, b"GET /a?b HTTP/1.1\r\nhost: up\r\n\r\n");
        let mut out = Vec::new();
        let f = encode_head(&mut out, &Method::POST, "/", &mut h, false);
        assert_eq!(f, RequestFraming::Chunked);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("transfer-encoding: chunked\r\n"));
        let mut out = Vec::new();
        encode_chunk(&mut out, b"hello");
        encode_last_chunk(&mut out, None);
        assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
    }
}
