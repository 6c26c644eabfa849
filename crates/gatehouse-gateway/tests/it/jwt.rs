//! `jwt-auth` end to end: a JWKS served by the test, tokens signed with EdDSA and ES256 keys
//! made by the test, the real gateway in front of an echo upstream and an MCP proxy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::eventually;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::{create, gateway, rest_doc};

const ISSUER: &str = "https://id.test";

/// A JWKS endpoint whose document the test changes, counting fetches.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let doc = Arc::new(Mutex::new(doc));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (d, f) = (doc.clone(), fetches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (d, f) = (d.clone(), f.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |_req| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let body = d.lock().unwrap().to_string();
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { url, doc, fetches }
    }
}

/// A signing key and its public JWK.
struct Key {
    encoding: EncodingKey,
    alg: Algorithm,
    kid: String,
    jwk: Value,
}

fn ed25519(kid: &str) -> Key {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    Key {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        alg: Algorithm::EdDSA,
        kid: kid.into(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
    }
}

fn p256(kid: &str) -> Key {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref(); // 0x04 || x || y
    Key {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        alg: Algorithm::ES256,
        kid: kid.into(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
    }
}

/// The RSA test key of `testdata/` (RSA keys take long to make in a debug build).
fn rs256() -> Key {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/testdata");
    let pem = std::fs::read(dir.join("jwt-rs256-test-key.pem")).unwrap();
    let jwk: Value =
        serde_json::from_slice(&std::fs::read(dir.join("jwt-rs256-test-key.jwk.json")).unwrap())
            .unwrap();
    Key {
        encoding: EncodingKey::from_rsa_pem(&pem).unwrap(),
        alg: Algorithm::RS256,
        kid: "rs1".into(),
        jwk,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(key: &Key, claims: Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    encode(&h, &claims, &key.encoding).unwrap()
}

fn claims(aud: &str, exp: u64, scope: &str) -> Value {
    json!({"iss": ISSUER, "aud": aud, "sub": "user-7", "exp": exp, "scope": scope})
}

async fn call(
    gw: &gatehouse_testkit::Gateway,
    path: &str,
    bearer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", gw.base));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_against_the_issuers_keys() {
    let (ed, ec, rs, forger) = (ed25519("ed1"), p256("ec1"), rs256(), ed25519("ed1"));
    let jwks = JwksServer::start(json!({"keys": [ed.jwk, ec.jwk, rs.jwk]})).await;
    let up = EchoServer::start("orders").await;
    let gw = gateway(&[]).await;
    let policy = json!([{"name": "jwt-auth", "params": {
        "issuer": ISSUER, "audiences": ["orders"], "jwksUrl": jwks.url, "requiredScopes": ["read"],
        "clockSkew": "5s", "forwardClaims": {"sub": "X-User"}}}]);
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("orders", "/orders", &up.url("/"), json!([]), policy),
    )
    .await;
    let exp = now() + 300;

    let (s, h, _) = call(&gw, "/orders/1", None).await;
    assert_eq!(s, 401);
    assert_eq!(h["www-authenticate"], "Bearer realm=\"gatehouse\"");

    for key in [&ed, &ec, &rs] {
        let (s, _, b) = call(
            &gw,
            "/orders/1",
            Some(&token(key, claims("orders", exp, "read write"))),
        )
        .await;
        assert_eq!(s, 200, "{:?}: {b}", key.alg);
        assert_eq!(
            b["headers"]["x-user"], "user-7",
            "a claim forwarded upstream"
        );
    }
    let refused = |t: String, want: &'static str| {
        let gw = &gw;
        async move {
            let (s, h, _) = call(gw, "/orders/1", Some(&t)).await;
            let challenge = h["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains(want), "{s} {challenge}");
            s
        }
    };
    assert_eq!(
        refused(token(&ed, claims("orders", now() - 60, "read")), "expired").await,
        401
    );
    assert_eq!(
        refused(token(&forger, claims("orders", exp, "read")), "signature").await,
        401
    );
    assert_eq!(
        refused(token(&ed, claims("billing", exp, "read")), "audience").await,
        401
    );
    assert_eq!(
        refused(
            token(&ed, claims("orders", exp, "write")),
            "insufficient_scope"
        )
        .await,
        403
    );
    let mut other_issuer = claims("orders", exp, "read");
    other_issuer["iss"] = json!("https://evil.test");
    assert_eq!(refused(token(&ed, other_issuer), "issuer").await, 401);
    // `alg: none`, and HMAC keyed with the public key, are refused.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"ed1"}"#),
        URL_SAFE_NO_PAD.encode(claims("orders", exp, "read").to_string())
    );
    assert_eq!(refused(none, "invalid_token").await, 401);
    let public = URL_SAFE_NO_PAD
        .decode(ed.jwk["x"].as_str().unwrap())
        .unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("ed1".into());
    let hmac = encode(
        &h,
        &claims("orders", exp, "read"),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(refused(hmac, "refused").await, 401);

    // An unknown kid fetches the key set again, at most once per 10 s however many ask.
    let before = jwks.fetches.load(Ordering::SeqCst);
    let ed2 = ed25519("ed2");
    for _ in 0..20 {
        assert_eq!(
            call(
                &gw,
                "/orders/1",
                Some(&token(&ed2, claims("orders", exp, "read")))
            )
            .await
            .0,
            401
        );
    }
    assert!(
        jwks.fetches.load(Ordering::SeqCst) <= before + 1,
        "refreshes are bounded"
    );
    jwks.doc.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(ed2.jwk.clone());
    let t2 = token(&ed2, claims("orders", exp, "read"));
    eventually(
        Duration::from_secs(20),
        "the rotated key to be accepted",
        || {
            let t2 = t2.clone();
            let gw = &gw;
            async move { (call(gw, "/orders/1", Some(&t2)).await.0 == 200).then_some(()) }
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_proxies_publish_their_protected_resource_metadata() {
    let ed = ed25519("k");
    let jwks = JwksServer::start(json!({"keys": [ed.jwk]})).await;
    let up = EchoServer::start("mcp").await;
    let gw = gateway(&[]).await;
    create(&gw.admin(), "mcp-proxies", &json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "tools"},
        "spec": {"displayName": "Tools", "context": "/tools", "upstream": {"url": up.url("/mcp")},
                 "policies": [{"name": "jwt-auth", "params": {"issuer": ISSUER, "audiences": ["mcp"],
                               "jwksUrl": jwks.url, "requiredScopes": ["tools"]}}]}
    })).await;
    let host = gw.base.trim_start_matches("http://");
    let metadata = format!("http://{host}/.well-known/oauth-protected-resource/tools/mcp");
    let r = reqwest::Client::new()
        .post(format!("{}/tools/mcp", gw.base))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{challenge}"
    );
    let doc: Value = reqwest::get(&metadata).await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], format!("http://{host}/tools/mcp"));
    assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    assert_eq!(doc["scopes_supported"], json!(["tools"]));
    // With a token the call goes through.
    let t = token(
        &ed,
        json!({"iss": ISSUER, "aud": "mcp", "exp": now() + 60, "scope": "tools"}),
    );
    let r = reqwest::Client::new()
        .post(format!("{}/tools/mcp", gw.base))
        .bearer_auth(t)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        reqwest::get(format!(
            "{}/.well-known/oauth-protected-resource/nothing/mcp",
            gw.base
        ))
        .await
        .unwrap()
        .status(),
        404
    );
}
