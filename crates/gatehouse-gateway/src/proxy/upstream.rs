//! The upstream client: pooled keep-alive connections (HTTP/1.1, or HTTP/2 over TLS when the
//! upstream offers it), connect and response timeouts.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The client that streams request bodies through.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// The client of exchanges whose request bodies are read (and maybe rewritten) first: LLM
/// requests and MCP JSON-RPC.
pub type BufferedClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A serving thread's clients, each with its own connection pool.
pub struct Clients {
    pub plain: UpstreamClient,
    pub buffered: BufferedClient,
}

impl Clients {
    /// Both clients.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            plain: client(connect_timeout),
            buffered: client(connect_timeout),
        }
    }
}

/// Builds a client for request bodies of type `B`.
pub fn client<B>(connect_timeout: Duration) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(https)
}
