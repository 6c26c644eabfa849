//! The headers the gateway adds or edits on a request's way: `X-Forwarded-*`, `set-headers`,
//! CORS, the `RateLimit-*` state, and whether a request's head can go upstream as it came
//! (`request_head.rs`).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::policies::{self, RateLimit};
use super::pool::Pool;
use super::request_head::{PassedRequest, RawHead};
use super::routes::{Entry, Op};
use super::{strip_hop_by_hop, Peer, METADATA_PREFIX};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Whether a request to `op` of `entry` through `pool` can go upstream with its head as the
/// client wrote it: nothing on its way reads or edits its headers but `api-key-auth` (which
/// takes its key), it goes to a plain `http://` endpoint over this thread's HTTP/1.1 pool, and
/// it is not gRPC (which goes over HTTP/2).
pub fn passable(entry: &Entry, op: Option<&Op>, pool: &Pool, raw: &RawHead) -> bool {
    let plain_op = op.is_some_and(|op| {
        let c = &op.chain;
        c.cors.is_none()
            && c.jwt.is_none()
            && c.set_headers
                .as_ref()
                .is_none_or(|sh| sh.request.is_empty())
    });
    plain_op
        && pool.plain_http()
        && entry.cors.is_none()
        && entry.llm.is_none()
        && entry.mcp.is_none()
        && entry.subscriptions.is_none()
        && !raw.names_others
        && !raw
            .get(b"content-type")
            .is_some_and(|v| v.starts_with(b"application/grpc"))
}

/// The gateway's headers after a passed request head's own (see `prepare_headers`).
pub fn passed(
    raw: RawHead,
    peer: &Peer,
    original_host: Option<HeaderValue>,
    taken: Option<HeaderName>,
) -> PassedRequest {
    let forwarded_for = forwarded_for(raw.get(b"x-forwarded-for"), peer);
    PassedRequest {
        raw,
        forwarded_for,
        forwarded_proto: if peer.https { "https" } else { "http" },
        forwarded_host: original_host,
        taken,
    }
}

/// `X-Forwarded-For` going upstream: a previous hop's list with the client appended, or the
/// client alone (most requests, without allocating).
fn forwarded_for(previous: Option<&[u8]>, peer: &Peer) -> HeaderValue {
    let visible = |v: &&[u8]| v.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b));
    match previous.filter(visible) {
        Some(prev) => {
            let prev = String::from_utf8_lossy(prev);
            let ip = peer.ip.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{prev}, {ip}")).unwrap_or_else(|_| peer.ip.clone())
        }
        None => peer.ip.clone(),
    }
}

/// `scheme://host` as the client called the gateway (`X-Forwarded-Proto` when a proxy in front
/// says so).
pub fn public_base(headers: &HeaderMap, https: bool) -> String {
    let scheme = headers
        .get(&X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .filter(|s| matches!(*s, "http" | "https"))
        .unwrap_or(if https { "https" } else { "http" });
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// The protected-resource metadata URL of the MCP proxy at `context`.
pub fn metadata_url(headers: &HeaderMap, https: bool, context: &str) -> String {
    format!(
        "{}{METADATA_PREFIX}{context}/mcp",
        public_base(headers, https)
    )
}

/// Prepares a request's headers for upstream: hop-by-hop headers removed, `X-Forwarded-*`
/// set, the chain's `set-headers` applied.
pub fn prepare_headers(
    headers: &mut HeaderMap,
    peer: &Peer,
    original_host: Option<HeaderValue>,
    chain: &policies::Chain,
) {
    strip_hop_by_hop(headers);
    let previous = headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes);
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for(previous, peer));
    let proto = if peer.https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(h) = original_host {
        headers.insert(X_FORWARDED_HOST.clone(), h);
    }
    if let Some(sh) = &chain.set_headers {
        sh.request.apply(headers);
    }
}

/// Applies the chain's response headers: `set-headers`, CORS, and the state of the tightest
/// limit.
pub fn finish_headers(
    h: &mut HeaderMap,
    chain: &policies::Chain,
    origin: Option<&HeaderValue>,
    decision: Option<&policies::rate_limit::Decision>,
) {
    if let Some(sh) = &chain.set_headers {
        sh.response.apply(h);
    }
    if let Some(cors) = &chain.cors {
        cors.apply(origin, h);
    }
    if let Some(d) = decision {
        // A token limit's state, set by the LLM path, is the tighter one when present.
        if !h.contains_key(&policies::rate_limit::RATELIMIT_LIMIT) {
            RateLimit::headers(d, h);
        }
    }
}
