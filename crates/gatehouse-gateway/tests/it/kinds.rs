//! The LLM and MCP kinds served through the gateway.

use gatehouse_testkit::echo::EchoServer;
use serde_json::{json, Value};

use super::{create, gateway, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_and_mcp_kinds_are_served() {
    let llm = EchoServer::start("llm").await;
    let mcp = EchoServer::start("mcp").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let provider = json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": "openai"},
        "spec": {"displayName": "OpenAI", "template": "openai", "context": "/openai",
                 "upstream": {"url": llm.url("/v1"), "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-upstream-secret"}},
                 "accessControl": {"mode": "deny_all", "exceptions": [{"path": "/chat/completions", "methods": ["POST"]}, {"path": "/models"}]}}
    });
    create(&admin, "llm-providers", &provider).await;
    let proxy = json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "LlmProxy", "metadata": {"name": "assistant"},
        "spec": {"displayName": "Assistant", "context": "/assistant", "provider": {"id": "openai"},
                 "policies": [{"name": "api-key-auth"}]}
    });
    create(&admin, "llm-proxies", &proxy).await;
    let server = json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "tools"},
        "spec": {"displayName": "Tools", "context": "/tools", "upstream": {"url": mcp.url("/rpc")}}
    });
    create(&admin, "mcp-proxies", &server).await;
    let t = gw.traffic();

    // Provider: the credential is injected upstream; access control applies.
    let (s, b) = t
        .post("/openai/chat/completions", &json!({"model": "gpt"}))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["path"], "/v1/chat/completions");
    assert_eq!(b["headers"]["authorization"], "Bearer sk-upstream-secret");
    assert_eq!(get(&t, "/openai/models").await.0, 200);
    let (s, b) = get(&t, "/openai/chat/completions").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (403, Some("Forbidden")),
        "GET is not an excepted method"
    );
    assert_eq!(get(&t, "/openai/files").await.0, 403);
    // The client's own Authorization never reaches the provider.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/openai/models",
            &[("authorization", "Bearer client")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["headers"]["authorization"],
        "Bearer sk-upstream-secret"
    );
    // The management API never shows the credential.
    let (_, read) = admin
        .get("/api/management/v1/llm-providers/openai")
        .await
        .unwrap();
    assert!(!read.to_string().contains("sk-upstream-secret"), "{read}");
    assert_eq!(read["spec"]["upstream"]["auth"]["valueSet"], true);
    let data = std::fs::read(gw.dir.path().join("data/gateway.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&data).contains("sk-upstream-secret"),
        "the credential is sealed at rest"
    );

    // Proxy: through the provider, with the proxy's own key check.
    assert_eq!(
        t.post("/assistant/chat/completions", &json!({}))
            .await
            .unwrap()
            .0,
        401
    );
    let (_, k) = admin
        .post(
            "/api/management/v1/llm-proxies/assistant/api-keys",
            &json!({"displayName": "app", "apiKey": "my-own-key-0123456789"}),
        )
        .await
        .unwrap();
    assert_eq!(k["apiKey"], "my-own-key-0123456789");
    let r = t
        .with_header("api-key", "my-own-key-0123456789")
        .post("/assistant/chat/completions", &json!({"m": 1}))
        .await
        .unwrap();
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["path"], "/v1/chat/completions");
    assert_eq!(r.1["headers"]["authorization"], "Bearer sk-upstream-secret");
    assert_eq!(
        t.with_header("api-key", "my-own-key-0123456789")
            .get("/assistant/files")
            .await
            .unwrap()
            .0,
        403
    );

    // MCP: <context>/mcp to exactly the upstream URL, session id passed both ways.
    // POST carries JSON-RPC, read by the gateway and forwarded as sent.
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let r = reqwest::Client::new()
        .post(format!("{}/tools/mcp", gw.base))
        .header("mcp-session-id", "sess-1")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["mcp-session-id"], "sess-1");
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["path"].as_str(), b["method"].as_str()),
        (Some("/rpc"), Some("POST"))
    );
    assert_eq!(b["headers"]["mcp-session-id"], "sess-1");
    assert_eq!(
        serde_json::from_str::<Value>(b["body"].as_str().unwrap()).unwrap(),
        ping
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = t
            .raw(
                method.clone(),
                "/tools/mcp",
                &[("mcp-session-id", "sess-1")],
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(r.headers()["mcp-session-id"], "sess-1");
        let b: Value = r.json().await.unwrap();
        assert_eq!(
            (b["path"].as_str(), b["method"].as_str()),
            (Some("/rpc"), Some(method.as_str()))
        );
        assert_eq!(b["headers"]["mcp-session-id"], "sess-1");
    }
    assert_eq!(
        t.raw(reqwest::Method::PUT, "/tools/mcp", &[])
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(get(&t, "/tools/other").await.0, 404);
    let r = t
        .raw(reqwest::Method::GET, "/tools/mcp", &[])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Without its provider, the proxy is unavailable, not silently misrouted.
    assert_eq!(
        admin
            .delete("/api/management/v1/llm-providers/openai")
            .await
            .unwrap()
            .0,
        204
    );
    let (s, b) = t
        .with_header("api-key", "my-own-key-0123456789")
        .post("/assistant/chat/completions", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 503, "{b}");
}
