//! Shared setup of the end-to-end tests: the real binary, a database per test, both backends.

#![allow(dead_code, unused_imports)]

use serde_json::{json, Value};

pub use gatehouse_testkit::{eventually, Backend, Client, Platform, TestDatabase};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Starts a platform on a fresh database of `backend`; `None` (test skipped) when PostgreSQL
/// is not configured.
pub async fn platform(backend: Backend, extra: &[&str]) -> Option<Platform> {
    let db = TestDatabase::new(backend).await.expect("test database")?;
    Some(
        Platform::start(
            std::path::Path::new(env!("CARGO_BIN_EXE_gatehouse")),
            db,
            extra,
        )
        .await
        .expect("platform starts"),
    )
}

/// Runs a test body against SQLite and against PostgreSQL (when configured).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(gatehouse_testkit::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if std::env::var(gatehouse_testkit::PG_ENV).is_err() {
                        eprintln!("skipped: {} is not set", gatehouse_testkit::PG_ENV);
                        return;
                    }
                    super::$name(gatehouse_testkit::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// The body of a minimal valid artifact of each kind (by collection), served at `context`.
pub fn artifact_body(collection: &str, id: &str, context: &str) -> Value {
    match collection {
        "rest-apis" => json!({
            "id": id, "displayName": format!("API {id}"), "projectId": "default", "version": "v1",
            "context": context, "upstream": {"main": {"url": "http://127.0.0.1:9/api"}},
            "operations": [{"method": "GET", "path": "/items/{id}"}]
        }),
        "llm-providers" => json!({
            "id": id, "displayName": format!("Provider {id}"), "template": "openai", "context": context,
            "upstream": {"url": "http://127.0.0.1:9/v1", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-secret-value"}}
        }),
        "llm-proxies" => json!({
            "id": id, "displayName": format!("Proxy {id}"), "projectId": "default", "context": context,
            "provider": {"id": "prov"}
        }),
        "mcp-proxies" => json!({
            "id": id, "displayName": format!("MCP {id}"), "projectId": "default", "context": context,
            "upstream": {"url": "http://127.0.0.1:9/mcp"}
        }),
        other => panic!("unknown collection {other}"),
    }
}

/// The four collections, provider first (proxies need it).
pub const COLLECTIONS: [&str; 4] = ["llm-providers", "llm-proxies", "rest-apis", "mcp-proxies"];

/// Event type prefix of a collection.
pub fn event_prefix(collection: &str) -> &'static str {
    match collection {
        "rest-apis" => "api",
        "llm-providers" => "llmprovider",
        "llm-proxies" => "llmproxy",
        "mcp-proxies" => "mcpproxy",
        other => panic!("unknown collection {other}"),
    }
}

/// Creates gateway `handle` and returns a client authenticated with a fresh token of it.
pub async fn gateway(admin: &Client, base: &str, handle: &str) -> Client {
    let token = gateway_token(admin, handle).await;
    Client::anonymous(base).with_header("api-key", &token)
}

/// Registers gateway `handle` and gives back a registration token for it.
pub async fn gateway_token(admin: &Client, handle: &str) -> String {
    let (s, b) = admin
        .post(
            "/api/v1/gateways",
            &json!({"id": handle, "displayName": handle}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let (s, t) = admin
        .post(&format!("/api/v1/gateways/{handle}/tokens"), &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{t}");
    t["token"].as_str().unwrap().to_owned()
}

/// Creates an artifact and returns its body.
pub async fn create(admin: &Client, collection: &str, id: &str, context: &str) -> Value {
    let (s, b) = admin
        .post(
            &format!("/api/v1/{collection}"),
            &artifact_body(collection, id, context),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "creating {collection}/{id}: {b}");
    b
}

/// Deploys and returns the deployment body.
pub async fn deploy(admin: &Client, collection: &str, id: &str, gateway: &str) -> Value {
    let (s, b) = admin
        .post(
            &format!("/api/v1/{collection}/{id}/deployments"),
            &json!({"gatewayId": gateway}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "deploying {collection}/{id}: {b}");
    assert_eq!(b["status"], "DEPLOYING");
    b
}

/// Acknowledges the last action on a deployment as the gateway would.
pub async fn ack(
    gw: &Client,
    artifact_uuid: &str,
    dep: &Value,
    action: &str,
    status: &str,
) -> bool {
    let (s, b) = gw
        .post(
            "/api/internal/v1/deployment-acks",
            &json!({"artifactId": artifact_uuid, "deploymentId": dep["deploymentId"], "performedAt": dep["performedAt"],
                    "action": action, "status": status, "errorCode": if status == "failed" { json!("BAD_CONFIG") } else { Value::Null }}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    b["applied"].as_bool().unwrap()
}

/// All events for a gateway after `after`.
pub async fn events(gw: &Client, after: i64) -> Vec<Value> {
    let (s, b) = gw
        .get(&format!("/api/internal/v1/events?after={after}"))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    b["events"].as_array().unwrap().clone()
}

/// A connection to the platform's database, to look at what it stores.
pub async fn database(p: &Platform) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&p.db.url)
        .await
        .unwrap()
}
