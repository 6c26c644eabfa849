//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so the gateway removes
//! them from what it forwards, in both directions.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one hop, never forwarded.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Whether a name of `len` bytes can be hop-by-hop: most names are passed over on their length.
fn hop_by_hop_length(len: usize) -> bool {
    matches!(len, 2 | 7 | 10 | 16 | 18 | 19)
}

/// Whether a header named `name` (any case) describes one hop.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    hop_by_hop_length(name.len())
        && HOP_BY_HOP
            .iter()
            .any(|n| n.as_str().as_bytes().eq_ignore_ascii_case(name))
}

/// Removes the headers that describe one hop.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most messages carry none or only `Connection`: one pass over the names finds those
    // present, without hashing any.
    let mut present = [false; HOP_BY_HOP.len()];
    let mut any = false;
    for name in h.keys() {
        if !hop_by_hop_length(name.as_str().len()) {
            continue;
        }
        if let Some(i) = HOP_BY_HOP.iter().position(|n| n == name) {
            present[i] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    // Headers named by `Connection` are hop-by-hop too. The usual tokens (`keep-alive`,
    // `close`, `upgrade`) name no other header, and then nothing is collected.
    let other_names = |h: &HeaderMap| {
        h.get_all(header::CONNECTION)
            .iter()
            .map(HeaderValue::as_bytes)
            .filter(|v| !v.eq_ignore_ascii_case(b"keep-alive") && !v.eq_ignore_ascii_case(b"close"))
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| {
                !t.eq_ignore_ascii_case("close")
                    && !HOP_BY_HOP
                        .iter()
                        .any(|n| t.eq_ignore_ascii_case(n.as_str()))
            })
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect::<Vec<_>>()
    };
    if present[0] {
        for n in &other_names(h) {
            h.remove(n);
        }
    }
    for (n, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        h.remove(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hop_by_hop_name_has_a_length_the_filter_lets_through() {
        for name in &HOP_BY_HOP {
            assert!(hop_by_hop_length(name.as_str().len()), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
        let mut plain = HeaderMap::new();
        plain.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 1);
    }
}
