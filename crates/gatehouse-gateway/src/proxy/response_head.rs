//! An upstream's HTTP/1.1 response head, taken off its connection's read buffer: the status,
//! what the framing and connection headers say, and the headers themselves, in one of two
//! forms. As a `HeaderMap` for anything that reads or changes them (policies, HTTP/2 clients);
//! or, for an HTTP/1.1 client when nothing on the way changes them, passed through as they
//! came (`PassedHeaders`), written out once and never put in a map.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::h1wire::{put_header as put_line, Chunked, Framing, WireError};
use super::hop::is_hop_by_hop;

/// Largest response head accepted from an upstream.
pub const MAX_HEAD: usize = 256 << 10;
/// Most response headers accepted from an upstream.
const MAX_HEADERS: usize = 256;
/// Headers parsed on the stack first; a head with more is parsed again with room for all.
const FEW_HEADERS: usize = 48;

/// Which form the headers are wanted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadForm {
    /// A `HeaderMap`.
    Map,
    /// Passed through as written, when the head allows it (it may still come as a map).
    Passed,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    /// The headers, or only those added on the way when `passed` holds the upstream's.
    pub headers: HeaderMap,
    pub passed: Option<PassedHeaders>,
    facts: Facts,
}

/// An upstream's response headers on their way to an HTTP/1.1 client as they came: written out
/// (`name: value\r\n` each) without the hop-by-hop ones and without `Transfer-Encoding`, whose
/// value is kept apart because the body goes out re-framed.
#[derive(Debug, Clone)]
pub struct PassedHeaders {
    pub block: Vec<u8>,
    pub transfer_encoding: Option<Bytes>,
    /// Whether the block has a `Date`.
    pub date: bool,
    /// Whether the block has a `Content-Length`.
    pub length: bool,
    /// Whether the block has a `RateLimit-Limit`, `-Remaining` or `-Reset`.
    pub rate_limit: bool,
}

/// What the framing and connection headers say.
#[derive(Debug, Default)]
struct Facts {
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive`.
    keep_alive: bool,
    /// `Connection` names other headers (which are then hop-by-hop too).
    names_others: bool,
    /// `Transfer-Encoding` is present.
    encoded: bool,
    /// Its last coding is `chunked`.
    chunked: bool,
    /// `Content-Length`: absent, a number, or unusable (malformed, or repeated with another).
    length: Option<Option<u64>>,
}

impl Head {
    /// Whether the connection may carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::HTTP_11 => !self.facts.close,
            _ => self.facts.keep_alive,
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
        if self.facts.encoded {
            return Ok(if self.facts.chunked {
                Framing::Chunked(Chunked::default())
            } else {
                Framing::Close
            });
        }
        match self.facts.length {
            None => Ok(Framing::Close),
            Some(Some(n)) => Ok(Framing::Length(n)),
            Some(None) => Err(WireError::Length),
        }
    }
}

impl PassedHeaders {
    /// Adds a header after the upstream's (`value` must be a valid header value).
    pub fn push(&mut self, name: &HeaderName, value: &[u8]) {
        put_line(&mut self.block, name.as_str().as_bytes(), value);
    }

    /// The headers as a map, for when something on the way needs to read or change them.
    pub fn into_map(self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(8);
        let block = Bytes::from(self.block);
        let block = &block;
        for line in block.split(|b| *b == b'\n').filter(|l| l.len() > 1) {
            let line = &line[..line.len() - 1];
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let value = &line[colon + 2..];
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_maybe_shared(block.slice_ref(value)),
            ) {
                map.append(name, value);
            }
        }
        if let Some(te) = self.transfer_encoding {
            if let Ok(v) = HeaderValue::from_maybe_shared(te) {
                map.insert(header::TRANSFER_ENCODING, v);
            }
        }
        map
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
pub fn parse_head(buf: &mut BytesMut, form: HeadForm) -> Result<Option<Head>, WireError> {
    let mut few = [const { MaybeUninit::<httparse::Header>::uninit() }; FEW_HEADERS];
    let head = match parse_in(buf, &mut few, form) {
        Err(WireError::Head(httparse::Error::TooManyHeaders)) => {
            let mut many = Vec::with_capacity(MAX_HEADERS);
            many.resize_with(MAX_HEADERS, MaybeUninit::uninit);
            parse_in(buf, &mut many, form)?
        }
        other => other?,
    };
    let Some((head, len)) = head else {
        return Ok(None);
    };
    buf.advance(len);
    Ok(Some(head))
}

/// Reads what the `Connection` value `v` says into `facts`.
fn connection_tokens(v: &[u8], facts: &mut Facts) {
    for token in v.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
        if token.eq_ignore_ascii_case(b"close") {
            facts.close = true;
        } else if token.eq_ignore_ascii_case(b"keep-alive") {
            facts.keep_alive = true;
        } else if !token.is_empty() && !is_hop_by_hop(token) {
            facts.names_others = true;
        }
    }
}

/// Parses the head at the front of `buf` with `slots` for its headers; the head and its length.
fn parse_in<'b>(
    buf: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    form: HeadForm,
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
    let head = |headers, passed, facts| Head {
        status,
        version,
        headers,
        passed,
        facts,
    };
    if form == HeadForm::Passed {
        if let Some((passed, facts)) = pass(res.headers, len) {
            return Ok(Some((head(HeaderMap::new(), Some(passed), facts), len)));
        }
    }
    let mut facts = Facts::default();
    for h in res.headers.iter() {
        facts.read(h.name.as_bytes(), h.value);
    }
    // One copy of the head, which the header values share.
    let copy = Bytes::copy_from_slice(&buf[..len]);
    let headers = map(res.headers, &copy, buf.as_ptr() as usize, &facts)?;
    Ok(Some((head(headers, None, facts), len)))
}

impl Facts {
    /// Notes what header `name: value` says about framing and the connection; whether it is
    /// one of those headers.
    fn read(&mut self, name: &[u8], value: &[u8]) -> bool {
        match name.len() {
            10 if name.eq_ignore_ascii_case(b"connection") => connection_tokens(value, self),
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = parse_length(value);
                self.length = match self.length {
                    None => Some(n),
                    Some(prev) if prev == n => Some(n),
                    Some(_) => Some(None),
                };
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.encoded = true;
                self.chunked = value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            _ => return false,
        }
        true
    }
}

/// The headers as a map. A `Content-Length` beside a `Transfer-Encoding` is left out (RFC 9112
/// §6.3: the coding decides).
fn map(
    parsed: &[httparse::Header],
    copy: &Bytes,
    start: usize,
    facts: &Facts,
) -> Result<HeaderMap, WireError> {
    // Room for the headers the gateway adds (RateLimit-*, CORS).
    let mut headers = HeaderMap::with_capacity(parsed.len() + 4);
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| WireError::Head(httparse::Error::HeaderName))?;
        if facts.encoded && name == header::CONTENT_LENGTH {
            continue;
        }
        let value = shared_value(copy, start, h.value)
            .ok_or(WireError::Head(httparse::Error::HeaderValue))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The headers written out as they go to the client, in one pass that also reads the framing
/// and connection headers (`len`: the head's length): hop-by-hop headers left out, the
/// `Transfer-Encoding` kept apart. `None` for what only a map handles: `Connection` naming
/// other headers (to be left out too), a `Content-Length` before a `Transfer-Encoding`.
fn pass(parsed: &[httparse::Header], len: usize) -> Option<(PassedHeaders, Facts)> {
    let mut facts = Facts::default();
    // Room for the gateway's RateLimit-* too.
    let mut block = Vec::with_capacity(len + 96);
    let mut passed = PassedHeaders {
        block: Vec::new(),
        transfer_encoding: None,
        date: false,
        length: false,
        rate_limit: false,
    };
    let mut wrote_length = false;
    for h in parsed {
        let (name, value) = (h.name.as_bytes(), h.value);
        if facts.read(name, value) {
            match name.len() {
                14 if facts.encoded => continue,
                14 => wrote_length = true,
                17 => {
                    passed.transfer_encoding = Some(match passed.transfer_encoding.take() {
                        // Repeated, the codings are listed in order.
                        Some(prev) => Bytes::from([&prev[..], b", ", value].concat()),
                        None => Bytes::copy_from_slice(value),
                    });
                    if wrote_length {
                        // A length before the coding: left to the map, which drops it.
                        return None;
                    }
                    continue;
                }
                // Connection.
                _ => continue,
            }
        } else {
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"date") => passed.date = true,
                15 | 19 if is_rate_limit(name) => passed.rate_limit = true,
                _ if is_hop_by_hop(name) => continue,
                _ => {}
            }
        }
        put_line(&mut block, name, value);
    }
    if facts.names_others {
        return None;
    }
    passed.length = !facts.encoded && facts.length.is_some();
    passed.block = block;
    Some((passed, facts))
}

/// `RateLimit-Limit`, `RateLimit-Reset` or `RateLimit-Remaining`, which the gateway's own
/// rate limits set.
fn is_rate_limit(name: &[u8]) -> bool {
    [
        &b"ratelimit-limit"[..],
        b"ratelimit-reset",
        b"ratelimit-remaining",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

/// `value` (a slice of the buffer that starts at address `start`) as a header value sharing
/// `head`, the copy of that buffer's front.
fn shared_value(head: &Bytes, start: usize, value: &[u8]) -> Option<HeaderValue> {
    if value.is_empty() {
        return Some(HeaderValue::from_static(""));
    }
    let at = (value.as_ptr() as usize).checked_sub(start)?;
    let slice = head.get(at..at + value.len())?;
    HeaderValue::from_maybe_shared(head.slice_ref(slice)).ok()
}

#[cfg(test)]
#[path = "response_head_tests.rs"]
mod tests;
