//! Request heads as the gateway's own HTTP/1.1 loop (`h1serve.rs`) reads them, and the heads of
//! its responses. A request that is anything but plain HTTP/1.1 (HTTP/1.0, an upgrade,
//! `Expect`, an unusual framing, anything the parser refuses) is left to hyper, which answers
//! those cases as it always did.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};

use super::h1wire::put_header as put;
use super::request_head::RawHead;
use super::response_head::PassedHeaders;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Uri, Version};

/// Header slots parsed on the stack; a larger `--max-headers` takes them from the heap.
const STACK_HEADERS: usize = 100;

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A request read whole (its head; the body follows on the connection).
pub struct RequestHead {
    /// The method and target (its headers are in `raw`, the map left empty).
    pub request: Request<()>,
    pub raw: RawHead,
    pub body: BodyFraming,
    /// The client wants the connection kept after the answer.
    pub keep_alive: bool,
    /// The client accepts trailers (`TE: trailers`).
    pub trailers: bool,
}

/// What the start of the read buffer holds.
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A request, taken off the buffer.
    Request(Box<RequestHead>),
    /// A request for hyper (left in the buffer).
    Hyper,
    /// A head that cannot be a request (taken off the buffer): 400, and the connection closes.
    Bad(&'static str),
}

/// Why a head is refused with 431.
#[derive(Debug, PartialEq, Eq)]
pub enum TooLarge {
    Bytes,
    Headers,
}

/// Reads a request head from the front of `buf`, held to `max_bytes` and `max_headers`.
pub fn parse_request(
    buf: &mut BytesMut,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Parsed, TooLarge> {
    let mut stack = [const { MaybeUninit::<httparse::Header>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if max_headers <= STACK_HEADERS {
        &mut stack[..max_headers]
    } else {
        heap.resize_with(max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_bytes => return Err(TooLarge::Bytes),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(TooLarge::Headers),
        Err(_) => return Ok(Parsed::Hyper),
    };
    if len > max_bytes {
        return Err(TooLarge::Bytes);
    }
    if req.version != Some(1) || req.method == Some("CONNECT") {
        return Ok(Parsed::Hyper);
    }
    let start = buf.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize - start, s.len());
    let (method, target) = match (req.method, req.path) {
        (Some(m), Some(p)) => (at(m.as_bytes()), at(p.as_bytes())),
        _ => return Ok(Parsed::Hyper),
    };
    let (mut length, mut chunked, mut close, mut trailers) = (None, false, false, false);
    let mut names_others = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                _ => return Ok(Parsed::Hyper),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if chunked || !h.value.eq_ignore_ascii_case(b"chunked") {
                return Ok(Parsed::Hyper);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Ok(Parsed::Hyper);
                } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
                    names_others = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"expect") {
            return Ok(Parsed::Hyper);
        } else if name.eq_ignore_ascii_case(b"te") {
            trailers = h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
        }
    }
    if chunked && length.is_some() {
        return Ok(Parsed::Hyper);
    }
    // One copy of the head, which the target and the header values share.
    let head = Bytes::copy_from_slice(&buf[..len]);
    let built = build(&head, method, target);
    let raw = RawHead::new(head, start, req.headers, names_others);
    buf.advance(len);
    let (method, uri) = match built {
        Ok(b) => b,
        Err(why) => return Ok(Parsed::Bad(why)),
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    let body = match (length, chunked) {
        (_, true) => BodyFraming::Chunked,
        (Some(0) | None, false) => BodyFraming::None,
        (Some(n), false) => BodyFraming::Length(n),
    };
    Ok(Parsed::Request(Box::new(RequestHead {
        request,
        raw,
        body,
        keep_alive: !close,
        trailers,
    })))
}

/// The method and target of a request head, the target sharing `head`.
fn build(
    head: &Bytes,
    method: (usize, usize),
    target: (usize, usize),
) -> Result<(Method, Uri), &'static str> {
    let method = Method::from_bytes(&head[method.0..method.0 + method.1])
        .map_err(|_| "the request method is malformed")?;
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| "the request target is malformed")?;
    Ok((method, uri))
}

thread_local! {
    /// The `Date` header of the current second.
    static DATE: RefCell<(u64, Option<HeaderValue>)> = const { RefCell::new((u64::MAX, None)) };
}

/// Today's `Date` header value, made once a second per thread.
pub fn date() -> HeaderValue {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        match &d.1 {
            Some(v) if d.0 == second => v.clone(),
            _ => {
                let v = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                    .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                *d = (second, Some(v.clone()));
                v
            }
        }
    })
}

/// How a response's body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// As many bytes as its `Content-Length`.
    Length,
    /// Chunked.
    Chunked,
}

/// Writes a response head into `out`: an upstream's headers as they came (`passed`), if any,
/// then `headers`. `exact` is the body's length when known.
pub fn encode_response(
    out: &mut Vec<u8>,
    status: http::StatusCode,
    passed: Option<&PassedHeaders>,
    headers: &HeaderMap,
    no_body: bool,
    exact: Option<u64>,
    close: bool,
) -> ResponseFraming {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let (mut has_date, mut length, mut te) = (false, false, None);
    if let Some(p) = passed {
        out.extend_from_slice(&p.block);
        (has_date, length) = (p.date, p.length);
        te = p.transfer_encoding.as_deref();
    }
    for (name, value) in headers.iter() {
        if name == header::CONNECTION {
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            te = Some(value.as_bytes());
            continue;
        }
        has_date |= name == header::DATE;
        length |= name == header::CONTENT_LENGTH;
        put(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !has_date {
        put(out, b"date", date().as_bytes());
    }
    let framing = if no_body {
        ResponseFraming::None
    } else if let Some(te) = te {
        // The body is decoded: chunked goes last.
        let v = te;
        let ends_chunked = v
            .rsplit(|b| *b == b',')
            .next()
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if ends_chunked {
            put(out, b"transfer-encoding", v);
        } else {
            put(out, b"transfer-encoding", &[v, b", chunked"].concat());
        }
        ResponseFraming::Chunked
    } else if length {
        ResponseFraming::Length
    } else if let Some(n) = exact {
        put(out, b"content-length", n.to_string().as_bytes());
        ResponseFraming::Length
    } else {
        put(out, b"transfer-encoding", b"chunked");
        ResponseFraming::Chunked
    };
    if close {
        put(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    framing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Parsed, TooLarge> {
        parse_request(&mut BytesMut::from(raw.as_bytes()), 64 << 10, 100)
    }

    fn request(raw: &str) -> RequestHead {
        match parse(raw) {
            Ok(Parsed::Request(r)) => *r,
            _ => panic!("not a request: {raw:?}"),
        }
    }

    #[test]
    fn a_plain_request_is_read_with_its_framing() {
        let mut buf = BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nNEXT"[..]);
        let Ok(Parsed::Request(r)) = parse_request(&mut buf, 64 << 10, 100) else {
            panic!("not parsed");
        };
        assert_eq!(r.request.uri().path(), "/a");
        assert_eq!(r.request.uri().query(), Some("b=1"));
        assert_eq!(r.raw.get(b"x-a"), Some(&b"1"[..]));
        assert!(!r.raw.names_others);
        assert_eq!(r.body, BodyFraming::None);
        assert!(r.keep_alive && !r.trailers);
        assert_eq!(&buf[..], b"NEXT", "the head is taken off, the rest stays");

        let r = request("POST / HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
        assert_eq!(r.body, BodyFraming::Length(5));
        assert!(!r.keep_alive);
        let r = request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n");
        assert_eq!(r.body, BodyFraming::Chunked);
        assert!(r.trailers);
        let r = request("GET / HTTP/1.1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\n");
        assert!(
            r.raw.names_others,
            "a Connection naming another header is noted"
        );
        let r = request("GET / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(!r.raw.names_others);
    }

    #[test]
    fn unusual_requests_are_left_to_hyper_untouched() {
        for raw in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(raw.as_bytes());
            assert!(
                matches!(parse_request(&mut buf, 64 << 10, 100), Ok(Parsed::Hyper)),
                "{raw:?}"
            );
            assert_eq!(&buf[..], raw.as_bytes(), "left in the buffer: {raw:?}");
        }
    }

    #[test]
    fn heads_over_the_limits_are_refused() {
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            parse_request(&mut BytesMut::from(big.as_bytes()), 1024, 100).err(),
            Some(TooLarge::Bytes)
        );
        let partial = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(2000));
        assert_eq!(
            parse_request(&mut BytesMut::from(partial.as_bytes()), 1024, 100).err(),
            Some(TooLarge::Bytes)
        );
        let many: String = (0..5).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_request(&mut BytesMut::from(raw.as_bytes()), 64 << 10, 4).err(),
            Some(TooLarge::Headers)
        );
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: x\r\n"),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn a_response_head_gets_its_framing_date_and_close() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut out = Vec::new();
        let f = encode_response(
            &mut out,
            http::StatusCode::OK,
            None,
            &h,
            false,
            Some(2),
            false,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(f, ResponseFraming::Length);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"));
        assert!(text.contains("\r\ndate: ") && text.contains("\r\ncontent-length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n"));

        let mut out = Vec::new();
        let f = encode_response(&mut out, http::StatusCode::OK, None, &h, false, None, true);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(f, ResponseFraming::Chunked);
        assert!(text.contains("transfer-encoding: chunked\r\n"));
        assert!(text.contains("connection: close\r\n"));

        let mut out = Vec::new();
        let f = encode_response(
            &mut out,
            http::StatusCode::NO_CONTENT,
            None,
            &h,
            true,
            None,
            false,
        );
        assert_eq!(f, ResponseFraming::None);
        assert!(!String::from_utf8(out)
            .unwrap()
            .contains("transfer-encoding"));
    }

    #[test]
    fn passed_headers_go_out_as_they_came_with_the_gateways_after_them() {
        let passed = PassedHeaders {
            block: b"X-Up: 1\r\nDate: then\r\n".to_vec(),
            transfer_encoding: Some(bytes::Bytes::from_static(b"gzip")),
            date: true,
            length: false,
            rate_limit: false,
        };
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", HeaderValue::from_static("5"));
        let mut out = Vec::new();
        let f = encode_response(
            &mut out,
            http::StatusCode::OK,
            Some(&passed),
            &h,
            false,
            None,
            false,
        );
        assert_eq!(f, ResponseFraming::Chunked);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nX-Up: 1\r\nDate: then\r\nratelimit-limit: 5\r\n\
             transfer-encoding: gzip, chunked\r\n\r\n"
        );
    }
}
