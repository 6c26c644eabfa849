//! HTTP/1.1 on the wire to plain upstreams: the request head written, the response head parsed,
//! and a response body's framing (RFC 9112 §6) decoded from a read buffer. No I/O here: the
//! pool (`h1pool.rs`) reads and writes.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// Largest response head accepted from an upstream.
pub const MAX_HEAD: usize = 256 << 10;
/// Most response headers accepted from an upstream.
const MAX_HEADERS: usize = 256;
/// Headers parsed on the stack first; a head with more is parsed again with room for all.
const FEW_HEADERS: usize = 48;

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
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    framing
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
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
}

impl Head {
    /// Whether the connection may carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        let says = |token: &str| {
            self.headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        match self.version {
            Version::HTTP_11 => !says("close"),
            _ => says("keep-alive"),
        }
    }

    /// How the body of this response to a `method` request is framed.
    pub fn framing(&self, method: &Method) -> Result<Framing, WireError> {
        if method == Method::HEAD
            || self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED
        {
            return Ok(Framing::Empty);
        }
        if let Some(te) = self.headers.get(header::TRANSFER_ENCODING) {
            let last = te
                .to_str()
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim);
            return Ok(if last.is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
                Framing::Chunked(Chunked::default())
            } else {
                Framing::Close
            });
        }
        let mut lengths = self.headers.get_all(header::CONTENT_LENGTH).iter();
        match lengths.next() {
            None => Ok(Framing::Close),
            Some(v) => {
                let n = parse_length(v.as_bytes()).ok_or(WireError::Length)?;
                // Repeated values must agree.
                if lengths.any(|o| parse_length(o.as_bytes()) != Some(n)) {
                    return Err(WireError::Length);
                }
                Ok(Framing::Length(n))
            }
        }
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Takes a complete response head off the front of `buf`: `None` (and `buf` untouched) when
/// more bytes are needed. Header values share one copy of the head (as hyper's share its read
/// buffer).
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, WireError> {
    let mut few = [const { MaybeUninit::<httparse::Header>::uninit() }; FEW_HEADERS];
    let head = match parse_in(buf, &mut few) {
        Err(WireError::Head(httparse::Error::TooManyHeaders)) => {
            let mut many = Vec::with_capacity(MAX_HEADERS);
            many.resize_with(MAX_HEADERS, MaybeUninit::uninit);
            parse_in(buf, &mut many)?
        }
        other => other?,
    };
    let Some((head, len)) = head else {
        return Ok(None);
    };
    buf.advance(len);
    Ok(Some(head))
}

/// Parses the head at the front of `buf` with `slots` for its headers; the head and its length.
fn parse_in<'b>(
    buf: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<(Head, usize)>, WireError> {
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, slots)
        .map_err(WireError::Head)?
    {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() >= MAX_HEAD => return Err(WireError::HeadTooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let status = res
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(WireError::Head(httparse::Error::Status))?;
    let version = if res.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    // One copy of the head, which the header values share.
    let head = Bytes::copy_from_slice(&buf[..len]);
    let start = buf.as_ptr() as usize;
    // Room for the headers the gateway adds (RateLimit-*, CORS).
    let mut headers = HeaderMap::with_capacity(res.headers.len() + 4);
    for h in res.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| WireError::Head(httparse::Error::HeaderName))?;
        let value = shared_value(&head, start, h.value)
            .ok_or(WireError::Head(httparse::Error::HeaderValue))?;
        headers.append(name, value);
    }
    Ok(Some((
        Head {
            status,
            version,
            headers,
        },
        len,
    )))
}

/// `value` (a slice of the buffer that starts at address `start`) as a header value sharing
/// `head`, the copy of that buffer's front.
pub(crate) fn shared_value(head: &Bytes, start: usize, value: &[u8]) -> Option<HeaderValue> {
    if value.is_empty() {
        return Some(HeaderValue::from_static(""));
    }
    let at = (value.as_ptr() as usize).checked_sub(start)?;
    let slice = head.get(at..at + value.len())?;
    HeaderValue::from_maybe_shared(head.slice_ref(slice)).ok()
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

    fn parse(raw: &str) -> Result<Option<Head>, WireError> {
        parse_head(&mut BytesMut::from(raw.as_bytes()))
    }

    fn head(raw: &str) -> Head {
        parse(raw).unwrap().unwrap()
    }

    #[test]
    fn a_head_is_parsed_and_taken_off_the_buffer() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok";
        let mut buf = BytesMut::from(raw.as_bytes());
        let h = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(&buf[..], b"ok");
        assert_eq!(h.headers["x-a"], "b");
        assert_eq!(h.headers["content-length"], "2");
        assert!(matches!(
            h.framing(&Method::GET).unwrap(),
            Framing::Length(2)
        ));
        assert!(h.keep_alive());
        let mut partial = BytesMut::from(&raw.as_bytes()[..20]);
        assert!(parse_head(&mut partial).unwrap().is_none());
        assert_eq!(partial.len(), 20, "a partial head stays in the buffer");
        assert!(parse("HTTP/1.1 200 OK\r\nX-A: \x01\r\n\r\n").is_err());
    }

    #[test]
    fn a_head_with_many_headers_is_parsed_and_one_with_too_many_refused() {
        let mut raw = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..100 {
            raw.push_str(&format!("x-h{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(head(&raw).headers.len(), 100);
        let mut raw = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..300 {
            raw.push_str(&format!("x-h{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert!(parse(&raw).is_err());
    }

    #[test]
    fn framing_follows_the_rules_of_http_1_1() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(h.framing(&Method::HEAD).unwrap(), Framing::Empty));
        let h = head("HTTP/1.1 204 No Content\r\n\r\n");
        assert!(matches!(h.framing(&Method::GET).unwrap(), Framing::Empty));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(
            h.framing(&Method::GET).unwrap(),
            Framing::Chunked(_)
        ));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert!(matches!(h.framing(&Method::GET).unwrap(), Framing::Close));
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert!(matches!(h.framing(&Method::GET).unwrap(), Framing::Close));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(h.framing(&Method::GET).is_err());
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
        assert!(h.framing(&Method::GET).is_err());
    }

    #[test]
    fn keep_alive_depends_on_version_and_connection() {
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!head("HTTP/1.0 200 OK\r\n\r\n").keep_alive());
        assert!(head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

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
