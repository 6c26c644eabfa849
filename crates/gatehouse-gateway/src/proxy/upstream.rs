//! The upstream client: pooled keep-alive connections (HTTP/1.1, or HTTP/2 over TLS when the
//! upstream offers it), connect and response timeouts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Frame;

use super::client_body::ClientBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use gatehouse_core::spec::EndpointTls;

/// The client that streams request bodies through.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// A client's request body on its way upstream, cut off past an artifact's
/// `maxRequestBody` (the exchange then fails, and `exceeded` tells the gateway to answer 413).
pub struct RequestBody {
    /// `None`: no body (a retried request).
    inner: Option<ClientBody>,
    cap: Option<(u64, Arc<AtomicBool>)>,
}

impl RequestBody {
    /// `inner` as sent.
    pub fn plain(inner: ClientBody) -> Self {
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
    pub fn capped(inner: ClientBody, max: u64, exceeded: Arc<AtomicBool>) -> Self {
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
    Client(#[from] std::io::Error),
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
    /// Clients of upstreams with their own TLS settings (a CA, a client certificate), by
    /// settings and HTTP/2-only; made on first use.
    custom: Mutex<HashMap<(u64, bool), UpstreamClient>>,
    connect_timeout: Duration,
    /// HTTP/1.1 to plain `http://` upstreams.
    pub h1: Arc<super::h1pool::H1Pool>,
}

impl Clients {
    /// The clients of one serving thread.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            plain: client(connector(connect_timeout, default_tls_config())),
            buffered: client(connector(connect_timeout, default_tls_config())),
            http2: http2_client(connector(connect_timeout, default_tls_config())),
            custom: Mutex::new(HashMap::new()),
            connect_timeout,
            h1: super::h1pool::H1Pool::new(connect_timeout),
        }
    }

    /// The client for requests to `tls`'s upstream (the shared one when it has no settings of
    /// its own); `http2` for HTTP/2 only (gRPC).
    pub fn for_tls(&self, tls: Option<&UpstreamTls>, http2: bool) -> Cow<'_, UpstreamClient> {
        let Some(tls) = tls else {
            return Cow::Borrowed(if http2 { &self.http2 } else { &self.plain });
        };
        let mut custom = self.custom.lock().unwrap_or_else(|e| e.into_inner());
        let client = custom.entry((tls.id, http2)).or_insert_with(|| {
            let c = connector(self.connect_timeout, tls.config.clone());
            if http2 {
                http2_client(c)
            } else {
                client(c)
            }
        });
        Cow::Owned(client.clone())
    }
}

/// TLS settings of one upstream (`upstream.main.tls`): the CA its certificate must lead to,
/// and the client certificate it is shown (mTLS).
pub struct UpstreamTls {
    /// Equal settings have equal ids (and share connections).
    pub id: u64,
    pub config: rustls::ClientConfig,
}

impl UpstreamTls {
    /// Builds the client configuration; the error names what is wrong.
    pub fn build(t: &EndpointTls) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs = |what: &str, pem: &str| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{what}: {e}"))
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
        let builder = match &t.ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs("tls.ca", ca)? {
                    roots.add(c).map_err(|e| format!("tls.ca: {e}"))?;
                }
                builder.with_root_certificates(roots)
            }
            None => builder.with_root_certificates(system_roots()),
        };
        let config = match (&t.client_cert, &t.client_key) {
            (Some(cert), Some(key)) => {
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| format!("tls.clientKey: {e}"))?;
                builder
                    .with_client_auth_cert(certs("tls.clientCert", cert)?, key)
                    .map_err(|e| format!("tls.clientCert and tls.clientKey: {e}"))?
            }
            (Some(_), None) => return Err("tls.clientCert has no clientKey".into()),
            (None, _) => builder.with_no_client_auth(),
        };
        let mut h = std::hash::DefaultHasher::new();
        (&t.ca, &t.client_cert, &t.client_key).hash(&mut h);
        Ok(Self {
            id: h.finish(),
            config,
        })
    }
}

/// The system's trusted roots (`/etc/ssl/certs` and the like, read once), or the bundled
/// Mozilla roots where the system has none.
fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("no system root certificates found; upstream TLS is verified against the bundled Mozilla roots");
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(roots)
        })
        .clone()
}

/// How upstream TLS certificates are verified by default: against the system's roots. TLS 1.2
/// and 1.3, hostname checked; there is no way to turn verification off.
pub fn default_tls_config() -> rustls::ClientConfig {
    static CONFIG: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(system_roots())
            .with_no_client_auth()
        })
        .clone()
}

/// The connector of upstream clients: TCP with no delay and keep-alive, TLS by `tls` with
/// HTTP/2 or HTTP/1.1 by the server's ALPN, connections given up after `connect_timeout`.
pub fn connector(
    connect_timeout: Duration,
    tls: rustls::ClientConfig,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

/// Builds a client for request bodies of type `B`.
pub fn client<B>(
    connector: HttpsConnector<HttpConnector>,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// Builds an HTTP/2-only client (h2c to `http://`, h2 by ALPN to `https://`).
fn http2_client(connector: HttpsConnector<HttpConnector>) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .http2_only(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .build(connector)
}
