//! TLS to upstreams with settings of their own (`upstream.main.tls`): a private CA instead of
//! the system's roots, and a client certificate for an upstream that demands one (mTLS). The
//! client key is a credential: never read back, not stored in plain text, kept on a replace
//! that leaves it out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

use super::tls::Ca;
use super::{create, gateway, get};

/// An HTTPS upstream on 127.0.0.1 with a certificate from `ca` that refuses clients without a
/// certificate from `ca`; answers 200 with the client certificate's size. Counts the requests
/// it served.
async fn mtls_upstream(ca: &Ca) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let cfg = ca.server_config(&["127.0.0.1", "localhost"], true);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let client_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map_or(0, |c| c.len());
                let svc = hyper::service::service_fn(move |_req| {
                    count.fetch_add(1, Ordering::Relaxed);
                    let body = format!("client certificate of {client_cert} bytes");
                    async move {
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, served)
}

fn doc(name: &str, url: &str, tls: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": name},
        "spec": {"displayName": name, "version": "v1.0", "context": format!("/{name}"),
                 "upstream": {"main": {"url": url, "tls": tls}},
                 "operations": [{"method": "GET", "path": "/*"}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_demanding_a_client_certificate_gets_it_and_the_key_stays_secret() {
    let ca = Ca::new();
    let (addr, served) = mtls_upstream(&ca).await;
    let url = format!("https://localhost:{}", addr.port());
    let (client_cert, client_key) = ca.issue_pem(&["gateway.internal"]);
    let gw = gateway(&[]).await;
    let admin = gw.admin();

    // With the private CA and the client certificate: served.
    let full = json!({"ca": ca.pem(), "clientCert": client_cert, "clientKey": client_key});
    create(&admin, "rest-apis", &doc("mtls", &url, full)).await;
    let (s, body) = gw.traffic().get("/mtls/x").await.unwrap();
    assert_eq!(s, 200, "{body}");
    assert!(
        body.to_string().contains("client certificate of"),
        "the upstream saw the client certificate: {body}"
    );
    assert_eq!(served.load(Ordering::Relaxed), 1);

    // The key is never read back, and the store does not hold it in plain text.
    let (_, read) = get(&admin, "/api/management/v1/rest-apis/mtls").await;
    let tls = &read["spec"]["upstream"]["main"]["tls"];
    assert_eq!(tls["clientKeySet"], json!(true), "{read}");
    assert!(tls.get("clientKey").is_none(), "{read}");
    assert!(!read.to_string().contains("PRIVATE KEY"), "{read}");
    let key_line = client_key.lines().nth(1).unwrap();
    let raw = std::fs::read(gw.dir.path().join("data").join("gateway.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains(key_line),
        "the client key is sealed at rest"
    );

    // A replace that leaves the key out keeps it.
    let kept = json!({"ca": ca.pem(), "clientCert": client_cert});
    let (s, b) = admin
        .put(
            "/api/management/v1/rest-apis/mtls",
            &doc("mtls", &url, kept),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, body) = gw.traffic().get("/mtls/y").await.unwrap();
    assert_eq!(s, 200, "the stored key is kept: {body}");

    // The private CA alone: the upstream refuses the handshake, and no request reaches it.
    create(
        &admin,
        "rest-apis",
        &doc("ca-only", &url, json!({"ca": ca.pem()})),
    )
    .await;
    let before = served.load(Ordering::Relaxed);
    let (s, body) = gw.traffic().get("/ca-only/x").await.unwrap();
    assert!(s == 502 || s == 503, "no client certificate: {s} {body}");
    // Without the private CA the upstream's certificate is not trusted.
    let untrusted = json!({"clientCert": client_cert, "clientKey": client_key});
    create(&admin, "rest-apis", &doc("no-ca", &url, untrusted)).await;
    let (s, _) = gw.traffic().get("/no-ca/x").await.unwrap();
    assert_eq!(s, 503, "the system roots do not trust the private CA");
    assert_eq!(served.load(Ordering::Relaxed), before, "neither reached it");

    // A key that is PEM but no usable key: the API answers 503 saying why.
    let unusable = json!({"ca": ca.pem(), "clientCert": client_cert,
                          "clientKey": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"});
    create(&admin, "rest-apis", &doc("bad-key", &url, unusable)).await;
    let (s, body) = gw.traffic().get("/bad-key/x").await.unwrap();
    assert_eq!(s, 503, "{body}");
    assert!(
        body.to_string().contains("TLS settings cannot be used"),
        "{body}"
    );
    assert_eq!(served.load(Ordering::Relaxed), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_that_cannot_work_are_refused_naming_the_field() {
    let ca = Ca::new();
    let (cert, key) = ca.issue_pem(&["gateway.internal"]);
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let cases = [
        (
            "http://127.0.0.1:9",
            json!({"ca": ca.pem()}),
            "upstream.main.tls",
        ),
        (
            "https://127.0.0.1:9",
            json!({"ca": "not a certificate"}),
            "upstream.main.tls.ca",
        ),
        (
            "https://127.0.0.1:9",
            json!({"clientKey": key}),
            "upstream.main.tls.clientKey",
        ),
        (
            "https://127.0.0.1:9",
            json!({"clientCert": cert, "clientKey": "not a key"}),
            "upstream.main.tls.clientKey",
        ),
        ("https://127.0.0.1:9", json!({"verify": false}), "verify"),
    ];
    for (i, (url, tls, field)) in cases.into_iter().enumerate() {
        let (s, b) = admin
            .post(
                "/api/management/v1/rest-apis",
                &doc(&format!("bad-{i}"), url, tls.clone()),
            )
            .await
            .unwrap();
        assert_eq!(s, 400, "{tls}: {b}");
        assert!(
            b.to_string().contains(field),
            "{tls}: the error names {field}: {b}"
        );
    }
}
