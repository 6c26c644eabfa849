//! A REST API's upstream client key (`upstream.main.tls.clientKey`) through the platform: sealed
//! in its database, never returned, kept by a replace that leaves it out, and delivered to the
//! gateway in plain text over the gateway's channel.

use super::*;
use crate::common::*;

both_backends!(an_upstream_client_key_is_sealed_on_the_platform_and_usable_on_the_gateway,);

fn issue(ca: &(rcgen::Certificate, rcgen::KeyPair), name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &ca.0, &ca.1)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn an_upstream_client_key_is_sealed_on_the_platform_and_usable_on_the_gateway(
    backend: Backend,
) {
    let Some(env) = setup(backend, &[], &[], false).await else {
        return;
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = (params.self_signed(&ca_key).unwrap(), ca_key);
    let (cert, key) = issue(&ca, "gateway.internal");
    let key_line = key.lines().nth(1).unwrap().to_owned();
    // Nothing listens at the URL: what matters is whether the gateway can use the settings.
    let tls = json!({"ca": ca.0.pem(), "clientCert": cert, "clientKey": key});
    let body = json!({"id": "mtls", "displayName": "mtls", "projectId": "default", "context": "/mtls",
                      "upstream": {"main": {"url": "https://127.0.0.1:1", "tls": tls}}});
    let (s, created) = env.admin.post("/api/v1/rest-apis", &body).await.unwrap();
    assert_eq!(s, 201, "{created}");
    let read_tls = &created["upstream"]["main"]["tls"];
    assert_eq!(read_tls["clientKeySet"], true, "{created}");
    assert!(!created.to_string().contains("PRIVATE KEY"), "{created}");

    // Sealed in the platform's database.
    let db = database(&env.p).await;
    let spec: String = sqlx::query_scalar("SELECT spec FROM artifacts WHERE handle = 'mtls'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(spec.contains("clientKey"), "{spec}");
    assert!(
        !spec.contains(&key_line),
        "the key is sealed at rest: {spec}"
    );

    // A replace without the key keeps it; a certificate without any key is refused.
    let (s, b) = env
        .admin
        .put("/api/v1/rest-apis/mtls", &created)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let mut no_key = body.clone();
    no_key["id"] = json!("nokey");
    no_key["context"] = json!("/nokey");
    no_key["upstream"]["main"]["tls"] = json!({"ca": ca.0.pem(), "clientCert": cert});
    let (s, b) = env.admin.post("/api/v1/rest-apis", &no_key).await.unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("upstream.main.tls.clientKey")),
        "{b}"
    );

    // Deployed: the gateway got a key it can use (a sealed or missing one would make the route
    // answer that its TLS settings cannot be used), and does not show it either.
    env.deploy("rest-apis", "mtls").await;
    let t = env.gw.traffic();
    let answer = eventually(WAIT, "the API to be served", || async {
        let (s, b) = t.get("/mtls/x").await.ok()?;
        (s != 404).then_some((s, b))
    })
    .await
    .unwrap();
    assert_eq!(answer.0, 503, "{answer:?}");
    assert!(
        !answer.1.to_string().contains("TLS settings"),
        "the gateway could use the key: {answer:?}"
    );
    let (_, held) = env.held("rest-apis", "mtls").await;
    assert_eq!(
        held["spec"]["upstream"]["main"]["tls"]["clientKeySet"], true,
        "{held}"
    );
    assert!(!held.to_string().contains("PRIVATE KEY"), "{held}");
}
