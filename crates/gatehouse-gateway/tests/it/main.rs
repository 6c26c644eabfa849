//! The gateway on its own: the real `gatehouse` binary, real upstreams (echo servers), the
//! management API and traffic, end to end. One test binary, a module per concern.

mod jwt;
mod keepalive;
mod kinds;
mod limits;
mod llm;
mod management;
mod mcp;
mod mcp_multiplex;
mod policies;
mod pools;
mod protocol_fuzz;
mod reconfiguration;
mod routing;
mod scale;
mod serve_h1;
mod tls;
mod upstream_tls;
mod websocket;
mod wire;

use gatehouse_testkit::binary::gatehouse_bin;
use gatehouse_testkit::{Client, Gateway};
use serde_json::{json, Value};

pub async fn gateway(extra: &[&str]) -> Gateway {
    Gateway::start(&gatehouse_bin(), extra)
        .await
        .expect("gateway starts")
}

pub fn rest_doc(
    name: &str,
    context: &str,
    upstream: &str,
    operations: Value,
    policies: Value,
) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": name},
        "spec": {"displayName": name, "version": "v1.0", "context": context,
                 "upstream": {"main": {"url": upstream}}, "operations": operations, "policies": policies}
    })
}

pub async fn create(admin: &Client, collection: &str, doc: &Value) {
    let (s, b) = admin
        .post(&format!("/api/management/v1/{collection}"), doc)
        .await
        .unwrap();
    assert_eq!(s, 201, "creating {doc}: {b}");
}

/// A new API key (its value) of the REST API `api`.
pub async fn issue_key(admin: &Client, api: &str, label: &str) -> String {
    let (s, k) = admin
        .post(
            &format!("/api/management/v1/rest-apis/{api}/api-keys"),
            &json!({"displayName": label}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{k}");
    k["apiKey"].as_str().unwrap().to_owned()
}

pub async fn get(c: &Client, path: &str) -> (u16, Value) {
    c.get(path).await.unwrap()
}
