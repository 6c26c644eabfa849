//! The upstream client: pooled keep-alive connections (HTTP/1.1, or HTTP/2 over TLS when the
//! upstream offers it), connect and response timeouts.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The client that streams request bodies through.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// A client's request body on its way upstream, cut off past an artifact's
/// `maxRequestBody` (the exchange then fails, and `exceeded` tells the gateway to answer 413).
pub struct RequestBody {
    /// `None`: no body (a retried request).
    inner: Option<Incoming>,
    cap: Option<(u64, Arc<AtomicBool>)>,
}

impl RequestBody {
    /// `inner` as sent.
    pub fn plain(inner: Incoming) -> Self {
        Self {
            inner: Some(inner),
            cap: None,
        }
    }

    /// No body.
    pub fn empty() -> Self {
        Self {
            inner: None,
            cap: None,
        }
    }

    /// `inner`, failing once more than `max` bytes came; `exceeded` turns true then.
    pub fn capped(inner: Incoming, max: u64, exceeded: Arc<AtomicBool>) -> Self {
        Self {
            inner: Some(inner),
            cap: Some((max, exceeded)),
        }
    }
}

/// Why a capped body stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error(transparent)]
    Client(#[from] hyper::Error),
    #[error("the request body is larger than the limit")]
    TooLarge,
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        if let (Some(Ok(f)), Some((left, exceeded))) = (&frame, &mut this.cap) {
            let n = f.data_ref().map_or(0, |d| d.len() as u64);
            if n > *left {
                exceeded.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(RequestBodyError::TooLarge)));
            }
            *left -= n;
        }
        Poll::Ready(frame.map(|f| f.map_err(RequestBodyError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match &self.inner {
            Some(b) => b.size_hint(),
            None => hyper::body::SizeHint::with_exact(0),
        }
    }
}

/// The client of exchanges whose request bodies are read (and maybe rewritten) first: LLM
/// requests and MCP JSON-RPC.
pub type BufferedClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A serving thread's clients, each with its own connection pool.
pub struct Clients {
    pub plain: UpstreamClient,
    pub buffered: BufferedClient,
    /// HTTP/2 only (h2c to `http://` upstreams, h2 by ALPN to `https://`): gRPC.
    pub http2: UpstreamClient,
}

impl Clients {
    /// Both clients.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            plain: client(connect_timeout),
            buffered: client(connect_timeout),
            http2: Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .http2_only(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .build(connector(connect_timeout)),
        }
    }
}

/// How upstream TLS certificates are verified: against the system's trusted roots
/// (`/etc/ssl/certs` and the like, read once), or the bundled Mozilla roots where the system has
/// none. TLS 1.2 and 1.3, hostname checked; there is no way to turn verification off.
fn tls_config() -> rustls::ClientConfig {
    static CONFIG: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("no system root certificates found; upstream TLS is verified against the bundled Mozilla roots");
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth()
        })
        .clone()
}

/// The connector of upstream clients: TCP with no delay and keep-alive, TLS verified against
/// the system's roots with HTTP/2 or HTTP/1.1 by the server's ALPN, connections given up after
/// `connect_timeout`.
pub fn connector(connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

/// Builds a client for request bodies of type `B`.
pub fn client<B>(connect_timeout: Duration) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(connector(connect_timeout))
}
