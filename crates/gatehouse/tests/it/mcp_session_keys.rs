//! The session secret of MCP proxies over several servers: set by the control plane when it
//! delivers them, the same for every gateway of an organization and different across
//! organizations, refused from users and never read back.

use crate::common::*;
use serde_json::{json, Value};

both_backends!(multiplexed_mcp_proxies_carry_their_organizations_session_key);

fn proxy(id: &str) -> Value {
    json!({"id": id, "displayName": id, "projectId": "default", "context": format!("/{id}"),
           "upstreams": [{"name": "docs", "url": "http://127.0.0.1:9/mcp"}, {"name": "git", "url": "http://127.0.0.1:10/mcp"}]})
}

async fn delivered(admin: &Client, gw: &Client, id: &str, gateway: &str) -> Value {
    let d = deploy(admin, "mcp-proxies", id, gateway).await;
    let (s, got) = gw
        .post(
            "/api/internal/v1/deployments/fetch-batch",
            &json!({"deploymentIds": [d["deploymentId"]]}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{got}");
    got["deployments"][0]["content"]["spec"].clone()
}

async fn multiplexed_mcp_proxies_carry_their_organizations_session_key(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other", "displayName": "Other"}),
        )
        .await
        .unwrap();
    let other = p.login("other").await.unwrap();

    let mut with_key = proxy("tools");
    with_key["sessionKey"] = json!("x".repeat(40));
    let (s, b) = admin.post("/api/v1/mcp-proxies", &with_key).await.unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("sessionKey"), "{b}");

    for (c, id) in [(&admin, "tools"), (&admin, "more"), (&other, "tools")] {
        let (s, b) = c.post("/api/v1/mcp-proxies", &proxy(id)).await.unwrap();
        assert_eq!(s, 201, "{b}");
        assert!(b.get("sessionKey").is_none(), "{b}");
    }
    let edge = gateway(&admin, &p.base, "edge").await;
    let edge2 = gateway(&admin, &p.base, "edge-2").await;
    let theirs = gateway(&other, &p.base, "edge").await;
    let a = delivered(&admin, &edge, "tools", "edge").await;
    let b = delivered(&admin, &edge2, "tools", "edge-2").await;
    let c = delivered(&admin, &edge2, "more", "edge-2").await;
    let d = delivered(&other, &theirs, "tools", "edge").await;
    let key = a["sessionKey"].as_str().expect("a session key");
    assert!(key.len() >= 32);
    assert_eq!(b["sessionKey"], key, "every gateway of the organization");
    assert_eq!(
        c["sessionKey"], key,
        "proxies are told apart by the sealing, not the key"
    );
    assert_ne!(d["sessionKey"], key, "another organization's differs");
    let (_, read) = admin.get("/api/v1/mcp-proxies/tools").await.unwrap();
    assert!(read.get("sessionKey").is_none(), "{read}");
}
