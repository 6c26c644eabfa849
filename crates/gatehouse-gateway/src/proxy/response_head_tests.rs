use super::*;
use crate::proxy::h1wire::Framing;

fn parse(raw: &str) -> Result<Option<Head>, WireError> {
    parse_head(&mut BytesMut::from(raw.as_bytes()), HeadForm::Map)
}

fn head(raw: &str) -> Head {
    parse(raw).unwrap().unwrap()
}

#[test]
fn a_head_is_parsed_and_taken_off_the_buffer() {
    let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok";
    let mut buf = BytesMut::from(raw.as_bytes());
    let h = parse_head(&mut buf, HeadForm::Map).unwrap().unwrap();
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
    assert!(parse_head(&mut partial, HeadForm::Map).unwrap().is_none());
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

fn passed(raw: &str) -> Head {
    parse_head(&mut BytesMut::from(raw.as_bytes()), HeadForm::Passed)
        .unwrap()
        .unwrap()
}

#[test]
fn passed_headers_keep_the_upstreams_and_leave_out_hop_by_hop_ones() {
    let h = passed(
        "HTTP/1.1 200 OK\r\nX-Trace: a b\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
         Date: Sun, 29 Nov 2026 06:00:00 GMT\r\nContent-Length: 2\r\nX-Empty:\r\n\r\nok",
    );
    assert!(h.headers.is_empty());
    let p = h.passed.clone().expect("passed through");
    assert_eq!(
        &p.block[..],
        b"X-Trace: a b\r\nDate: Sun, 29 Nov 2026 06:00:00 GMT\r\nContent-Length: 2\r\nX-Empty: \r\n"
    );
    assert!(p.date && p.length && !p.rate_limit);
    assert!(p.transfer_encoding.is_none());
    assert!(matches!(
        h.framing(&Method::GET).unwrap(),
        Framing::Length(2)
    ));
    assert!(h.keep_alive());
    // Made a map again, the same headers.
    let map = p.into_map();
    assert_eq!(map.len(), 4);
    assert_eq!(map["x-trace"], "a b");
    assert_eq!(map["x-empty"], "");
    assert_eq!(map["content-length"], "2");
}

#[test]
fn passed_headers_keep_the_coding_apart_and_drop_a_length_beside_it() {
    let h = passed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    // A length before the coding: a map, which leaves the length out.
    assert!(h.passed.is_none());
    assert!(!h.headers.contains_key("content-length"));
    assert_eq!(h.headers["transfer-encoding"], "chunked");
    let h = passed(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\nRateLimit-Limit: 10\r\n\r\n",
    );
    let p = h.passed.clone().unwrap();
    assert_eq!(&p.block[..], b"RateLimit-Limit: 10\r\n");
    assert_eq!(p.transfer_encoding.as_deref(), Some(&b"gzip, chunked"[..]));
    assert!(!p.length && p.rate_limit);
    assert!(matches!(
        h.framing(&Method::GET).unwrap(),
        Framing::Chunked(_)
    ));
    let map = p.into_map();
    assert_eq!(map["transfer-encoding"], "gzip, chunked");
    // The map form leaves the length out too.
    let m = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    assert!(!m.headers.contains_key("content-length"));
}

#[test]
fn a_connection_naming_other_headers_gives_a_map() {
    let h = passed("HTTP/1.1 200 OK\r\nConnection: x-hop, close\r\nX-Hop: 1\r\n\r\n");
    assert!(
        h.passed.is_none(),
        "the named header must be removed from a map"
    );
    assert_eq!(h.headers["x-hop"], "1");
    assert!(!h.keep_alive());
    let h = passed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive, Upgrade\r\n\r\n");
    assert!(h.passed.is_some());
    assert!(h.keep_alive());
}
