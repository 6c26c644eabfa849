//! HTTPS on the traffic listener: a certificate per name by SNI (wildcards too) and a default,
//! HTTP/2 or HTTP/1.1 by ALPN, `X-Forwarded-Proto: https` upstream, and certificates replaced
//! on disk picked up without a restart while open connections go on unharmed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::free_addr;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{create, gateway, rest_doc};

pub(super) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub(super) fn new() -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        Self {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    }

    /// The CA certificate, PEM.
    pub(super) fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` and its key, PEM.
    pub(super) fn issue_pem(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server configuration with a certificate from this CA for `names`; with `client_auth`,
    /// clients must show a certificate from this CA too.
    pub(super) fn server_config(&self, names: &[&str], client_auth: bool) -> rustls::ServerConfig {
        use rustls::pki_types::pem::PemObject;
        let (cert, key) = self.issue_pem(names);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.cert.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder.with_single_cert(chain, key).unwrap()
    }

    /// A certificate for `names` written to `dir/file.crt` and `.key`; its DER.
    fn issue(&self, dir: &Path, file: &str, names: &[&str]) -> CertificateDer<'static> {
        let (cert, key) = self.issue_pem(names);
        std::fs::write(dir.join(format!("{file}.crt")), &cert).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key).unwrap();
        rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes()).unwrap()
    }
}

/// A TLS connection to the gateway naming `name` (an IP address sends no SNI); the
/// certificate it got and the protocol ALPN chose.
async fn connect(
    ca: &Ca,
    addr: std::net::SocketAddr,
    name: &str,
    alpn: &[&[u8]],
) -> (
    TlsStream<TcpStream>,
    CertificateDer<'static>,
    Option<Vec<u8>>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let (_, conn) = tls.get_ref();
    let cert = conn.peer_certificates().unwrap()[0].clone();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    (tls, cert, alpn)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn http1(tls: TlsStream<TcpStream>) -> Sender {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn get1(send: &mut Sender, host: &str, path: &str) -> (u16, Bytes) {
    let req = hyper::Request::get(path)
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_by_sni_with_alpn_and_certificates_replaced_without_a_restart() {
    let tmp = gatehouse_testkit::TempDir::new("tls").unwrap();
    let dir = tmp.path().to_owned();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = Ca::new();
    let default_der = ca.issue(&dir, "default", &["127.0.0.1", "default.test"]);
    let a_der = ca.issue(&certs, "a", &["a.test"]);
    let b_der = ca.issue(&certs, "wild", &["*.b.test"]);
    let tls_addr = free_addr();
    let (default_crt, default_key) = (dir.join("default.crt"), dir.join("default.key"));
    let gw = gateway(&[
        "--tls-listen",
        &tls_addr.to_string(),
        "--tls-cert",
        default_crt.to_str().unwrap(),
        "--tls-key",
        default_key.to_str().unwrap(),
        "--tls-cert-dir",
        certs.to_str().unwrap(),
        "--tls-reload-interval",
        "100ms",
    ])
    .await;
    let echo = EchoServer::start("secure").await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "secure",
            "/secure",
            &echo.url(""),
            json!([{"method": "GET", "path": "/*"}]),
            json!([]),
        ),
    )
    .await;

    // The certificate of each name, the default for a client that names none.
    for (name, want) in [
        ("a.test", &a_der),
        ("x.b.test", &b_der),
        ("127.0.0.1", &default_der),
    ] {
        let (_, got, _) = connect(&ca, tls_addr, name, &[b"http/1.1"]).await;
        assert_eq!(&got, want, "{name}");
    }

    // HTTP/2 by ALPN.
    let (tls, _, alpn) = connect(&ca, tls_addr, "a.test", &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let res = h2
        .send_request(
            hyper::Request::get("https://a.test/secure/items")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), http::Version::HTTP_2);
    let echoed: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");

    // HTTP/1.1 on a connection kept open across a certificate change.
    let (tls, _, alpn) = connect(&ca, tls_addr, "a.test", &[b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let mut old = http1(tls).await;
    let (status, body) = get1(&mut old, "a.test", "/secure/one").await;
    assert_eq!(status, 200);
    let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        echoed["headers"]["x-forwarded-proto"], "https",
        "HTTP/1.1 over TLS too"
    );
    let renewed = ca.issue(&certs, "a", &["a.test"]);
    assert_ne!(renewed, a_der);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, got, _) = connect(&ca, tls_addr, "a.test", &[b"http/1.1"]).await;
        if got == renewed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get1(&mut old, "a.test", "/secure/two").await.0,
        200,
        "the open connection is unharmed"
    );
    // Plain HTTP still serves too.
    let (s, _) = gw.traffic().get("/secure/plain").await.unwrap();
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_set_that_does_not_load_keeps_the_one_in_use() {
    let tmp = gatehouse_testkit::TempDir::new("tls").unwrap();
    let dir = tmp.path().to_owned();
    let ca = Ca::new();
    let first = ca.issue(&dir, "site", &["site.test"]);
    let tls_addr = free_addr();
    let gw = gateway(&[
        "--tls-listen",
        &tls_addr.to_string(),
        "--tls-cert-dir",
        dir.to_str().unwrap(),
        "--tls-reload-interval",
        "100ms",
    ])
    .await;
    // A key that does not match its certificate is refused; the old pair serves on.
    let other = KeyPair::generate().unwrap();
    std::fs::write(dir.join("site.key"), other.serialize_pem()).unwrap();
    let admin = gw.admin();
    gatehouse_testkit::eventually(Duration::from_secs(10), "a failed reload", || {
        let admin = admin.clone();
        async move {
            let (_, m) = admin.get_text("/metrics").await.ok()?;
            m.contains("gatehouse_tls_reload_failures_total")
                .then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.process.output()));
    let (tls, got, _) = connect(&ca, tls_addr, "site.test", &[b"http/1.1"]).await;
    assert_eq!(got, first);
    let mut send = http1(tls).await;
    assert_eq!(
        get1(&mut send, "site.test", "/_gateway-health/healthy")
            .await
            .0,
        200
    );
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert!(
        !metrics.contains("gatehouse_tls_reloads_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_whose_certificate_is_not_trusted_is_refused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // An HTTPS upstream with a certificate from a CA the system does not trust.
    let cfg = Ca::new().server_config(&["127.0.0.1"], false);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                if acceptor.accept(s).await.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let gw = gateway(&[]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "untrusted",
            "/untrusted",
            &format!("https://{addr}"),
            json!([{"method": "GET", "path": "/*"}]),
            json!([]),
        ),
    )
    .await;
    let (s, _) = gw.traffic().get("/untrusted/x").await.unwrap();
    assert_eq!(
        s, 503,
        "the handshake fails: the certificate is not trusted"
    );
    assert_eq!(served.load(Ordering::Relaxed), 0, "no request reached it");
}
