//! A client's request head kept as it came, for the gateway's own HTTP/1.1 loop (`h1serve.rs`).
//! When nothing on a request's way reads or edits its headers, other than the key an
//! `api-key-auth` policy takes, the head goes upstream without ever being put in a
//! `HeaderMap`: the client's header lines as written, less the hop-by-hop ones and those the
//! gateway sets itself (`Host`, `X-Forwarded-*`, the key), then the gateway's (`PassedRequest`).
//! Any other request has its headers put in a map first (`RawHead::to_map`), as hyper's
//! requests come. The request-side twin of `response_head.rs`.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;

use super::h1wire::{put_header as put, RequestFraming};
use super::hop::is_hop_by_hop;

/// Where one header line's name and value are in the head (byte ranges).
#[derive(Debug, Clone, Copy)]
struct Line {
    name: (u32, u32),
    value: (u32, u32),
}

/// A request head as the client wrote it: the bytes, and where each header is in them.
#[derive(Debug, Clone)]
pub struct RawHead {
    head: Bytes,
    lines: Vec<Line>,
    /// `Connection` names other headers, which are then hop-by-hop too.
    pub names_others: bool,
}

impl RawHead {
    /// The headers `parsed` (by httparse, which checked their names and values) of the buffer
    /// that starts at address `start`, whose front `head` is a copy of.
    pub fn new(
        head: Bytes,
        start: usize,
        parsed: &[httparse::Header<'_>],
        names_others: bool,
    ) -> Self {
        let range = |s: &[u8]| {
            let at = (s.as_ptr() as usize).wrapping_sub(start) as u32;
            (at, at + s.len() as u32)
        };
        let lines = parsed
            .iter()
            .map(|h| Line {
                name: range(h.name.as_bytes()),
                value: if h.value.is_empty() {
                    (0, 0)
                } else {
                    range(h.value)
                },
            })
            .collect();
        Self {
            head,
            lines,
            names_others,
        }
    }

    fn slice(&self, (from, to): (u32, u32)) -> &[u8] {
        &self.head[from as usize..to as usize]
    }

    /// Each header's name and value, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines
            .iter()
            .map(|l| (self.slice(l.name), self.slice(l.value)))
    }

    /// The first value of header `name` (lower case), its name compared ignoring case.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// `get` as a header value sharing the head.
    pub fn value(&self, name: &[u8]) -> Option<HeaderValue> {
        let line = self
            .lines
            .iter()
            .find(|l| self.slice(l.name).eq_ignore_ascii_case(name))?;
        let (from, to) = line.value;
        HeaderValue::from_maybe_shared(self.head.slice(from as usize..to as usize)).ok()
    }

    /// The headers in a map (room left for the `X-Forwarded-*` the gateway adds).
    pub fn to_map(&self) -> Result<HeaderMap, &'static str> {
        let mut map = HeaderMap::with_capacity(self.lines.len() + 4);
        for l in &self.lines {
            let name = HeaderName::from_bytes(self.slice(l.name))
                .map_err(|_| "a request header name is malformed")?;
            let (from, to) = l.value;
            let value = HeaderValue::from_maybe_shared(self.head.slice(from as usize..to as usize))
                .map_err(|_| "a request header value is malformed")?;
            map.append(name, value);
        }
        Ok(map)
    }
}

/// A request head going upstream as its client wrote it, with what the gateway puts after the
/// client's lines.
#[derive(Debug)]
pub struct PassedRequest {
    pub raw: RawHead,
    /// `X-Forwarded-For`: the client's address, after a previous hop's list.
    pub forwarded_for: HeaderValue,
    /// `X-Forwarded-Proto`.
    pub forwarded_proto: &'static str,
    /// `X-Forwarded-Host`: the `Host` the client called.
    pub forwarded_host: Option<HeaderValue>,
    /// A header a policy took from the request (the API key): never forwarded.
    pub taken: Option<HeaderName>,
}

/// Whether a header named `name` is one the gateway sets on the way upstream.
fn set_by_gateway(name: &[u8]) -> bool {
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    match name.len() {
        4 => is(b"host"),
        15 => is(b"x-forwarded-for"),
        16 => is(b"x-forwarded-host"),
        17 => is(b"x-forwarded-proto"),
        _ => false,
    }
}

impl PassedRequest {
    /// Writes the request line (`method pq`) and head into `out`, with `host` (the endpoint's
    /// `Host`) among the gateway's headers. The body's framing is the client's.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        method: &Method,
        pq: &str,
        host: &HeaderValue,
    ) -> RequestFraming {
        out.reserve(self.raw.head.len() + pq.len() + 128);
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(pq.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut framing = RequestFraming::Empty;
        let taken = self.taken.as_ref().map(|n| n.as_str().as_bytes());
        let head = &self.raw.head[..];
        // Kept lines that follow one another in the head, each ending in CRLF, are copied as
        // one run.
        let mut run: Option<(usize, usize)> = None;
        for l in &self.raw.lines {
            let name = self.raw.slice(l.name);
            if is_hop_by_hop(name)
                || set_by_gateway(name)
                || taken.is_some_and(|t| t.eq_ignore_ascii_case(name))
            {
                continue;
            }
            // The parser let through only `chunked` alone, and never beside a length.
            if name.eq_ignore_ascii_case(b"transfer-encoding") {
                framing = RequestFraming::Chunked;
            } else if name.eq_ignore_ascii_case(b"content-length") {
                framing = RequestFraming::Length;
            }
            let (start, end) = (l.name.0 as usize, l.value.1 as usize);
            let line_end = (end > start && head[end..].starts_with(b"\r\n")).then_some(end + 2);
            match (run, line_end) {
                (Some((from, to)), Some(next)) if to == start => run = Some((from, next)),
                (_, Some(next)) => {
                    if let Some((from, to)) = run.replace((start, next)) {
                        out.extend_from_slice(&head[from..to]);
                    }
                }
                (_, None) => {
                    if let Some((from, to)) = run.take() {
                        out.extend_from_slice(&head[from..to]);
                    }
                    put(out, name, self.raw.slice(l.value));
                }
            }
        }
        if let Some((from, to)) = run {
            out.extend_from_slice(&head[from..to]);
        }
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-for: ");
        out.extend_from_slice(self.forwarded_for.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-proto: ");
        out.extend_from_slice(self.forwarded_proto.as_bytes());
        if let Some(h) = &self.forwarded_host {
            out.extend_from_slice(b"\r\nx-forwarded-host: ");
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        framing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    fn raw(text: &str) -> RawHead {
        let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; 16];
        let mut req = httparse::Request::new(&mut []);
        let buf = text.as_bytes();
        req.parse_with_uninit_headers(buf, &mut slots).unwrap();
        RawHead::new(
            Bytes::copy_from_slice(buf),
            buf.as_ptr() as usize,
            req.headers,
            false,
        )
    }

    #[test]
    fn headers_are_found_ignoring_case_and_put_in_a_map_in_order() {
        let r = raw("GET / HTTP/1.1\r\nHost: a\r\nX-Two: 1\r\nx-two: 2\r\nEmpty:\r\n\r\n");
        assert_eq!(r.get(b"host"), Some(&b"a"[..]));
        assert_eq!(r.get(b"x-two"), Some(&b"1"[..]));
        assert_eq!(r.value(b"empty").unwrap(), "");
        assert_eq!(r.get(b"missing"), None);
        let map = r.to_map().unwrap();
        let twos: Vec<_> = map.get_all("x-two").iter().collect();
        assert_eq!(twos, ["1", "2"]);
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn a_passed_head_leaves_out_hop_by_hop_the_gateways_own_and_the_key() {
        let r = raw(
            "POST /in HTTP/1.1\r\nHost: client\r\nX-Forwarded-For: 9.9.9.9\r\n\
             X-Forwarded-Proto: ftp\r\nX-Forwarded-Host: old\r\nConnection: keep-alive\r\n\
             Keep-Alive: 5\r\nTE: trailers\r\nAPI-Key: secret\r\napi-key: again\r\n\
             Content-Length: 3\r\nX-Kept: Yes, Really\r\n\r\n",
        );
        let passed = PassedRequest {
            raw: r,
            forwarded_for: HeaderValue::from_static("9.9.9.9, 127.0.0.1"),
            forwarded_proto: "http",
            forwarded_host: Some(HeaderValue::from_static("client")),
            taken: Some(HeaderName::from_static("api-key")),
        };
        let mut out = Vec::new();
        let framing = passed.encode(
            &mut out,
            &Method::POST,
            "/up/in?q",
            &HeaderValue::from_static("up:81"),
        );
        assert_eq!(framing, RequestFraming::Length);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /up/in?q HTTP/1.1\r\nContent-Length: 3\r\nX-Kept: Yes, Really\r\n\
             host: up:81\r\nx-forwarded-for: 9.9.9.9, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: client\r\n\r\n"
        );
    }

    /// `text` passed over HTTPS from 1.2.3.4 without a key, written for endpoint `up`.
    fn pass(text: &str) -> (String, RequestFraming) {
        let passed = PassedRequest {
            raw: raw(text),
            forwarded_for: HeaderValue::from_static("1.2.3.4"),
            forwarded_proto: "https",
            forwarded_host: None,
            taken: None,
        };
        let mut out = Vec::new();
        let host = HeaderValue::from_static("up");
        let framing = passed.encode(&mut out, &Method::GET, "/", &host);
        (String::from_utf8(out).unwrap(), framing)
    }

    #[test]
    fn lines_are_copied_as_written_when_they_end_in_crlf_and_rewritten_otherwise() {
        let (head, _) =
            pass("GET / HTTP/1.1\r\nA: 1\nB:  2\r\nHost: x\r\nEmpty:\r\nC: 3\r\nD:4\r\n\r\n");
        assert_eq!(
            head,
            "GET / HTTP/1.1\r\nA: 1\r\nB:  2\r\nEmpty: \r\nC: 3\r\nD:4\r\nhost: up\r\n\
             x-forwarded-for: 1.2.3.4\r\nx-forwarded-proto: https\r\n\r\n"
        );
    }

    #[test]
    fn a_passed_head_keeps_the_clients_framing() {
        let chunked = pass("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.1, RequestFraming::Chunked);
        assert!(chunked.0.contains("\r\nTransfer-Encoding: chunked\r\n"));
        assert_eq!(
            pass("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n").1,
            RequestFraming::Empty
        );
    }
}
