//! The gateway on its own: the real binary, real upstreams (echo servers), the management API
//! and traffic, end to end.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::{Client, Gateway};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

async fn gateway(extra: &[&str]) -> Gateway {
    Gateway::start(Path::new(BIN), extra)
        .await
        .expect("gateway starts")
}

fn rest_doc(
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

async fn create(admin: &Client, collection: &str, doc: &Value) {
    let (s, b) = admin
        .post(&format!("/api/management/v1/{collection}"), doc)
        .await
        .unwrap();
    assert_eq!(s, 201, "creating {doc}: {b}");
}

async fn get(c: &Client, path: &str) -> (u16, Value) {
    c.get(path).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_by_specificity_and_forward_to_the_upstream() {
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let ops = json!([
        {"method": "GET", "path": "/items/*"},
        {"method": "GET", "path": "/items/{id}"},
        {"method": "GET", "path": "/items/special"},
        {"method": "POST", "path": "/items"},
        {"method": "GET", "path": "/"}
    ]);
    create(
        &admin,
        "rest-apis",
        &rest_doc("shop", "/shop/$version", &up.url("/base"), ops, json!([])),
    )
    .await;
    let t = gw.traffic();

    let (s, b) = get(&t, "/shop/v1.0/items/42?x=1&y=2").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["path"], "/base/items/42",
        "context stripped, base path prepended"
    );
    assert_eq!(b["query"], "x=1&y=2");
    assert_eq!(b["method"], "GET");
    // Forwarding headers, host rewritten to the upstream.
    assert_eq!(b["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(b["headers"]["x-forwarded-proto"], "http");
    assert_eq!(b["headers"]["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(b["headers"]["host"], up.addr.to_string());
    assert_eq!(
        get(&t, "/shop/v1.0/items/special").await.1["path"],
        "/base/items/special"
    );
    assert_eq!(
        get(&t, "/shop/v1.0/items/42/").await.1["path"],
        "/base/items/42/",
        "trailing slash kept"
    );
    assert_eq!(
        get(&t, "/shop/v1.0/items/42/parts/7").await.1["path"],
        "/base/items/42/parts/7"
    );
    assert_eq!(get(&t, "/shop/v1.0").await.1["path"], "/base");
    let (s, b) = t.post("/shop/v1.0/items", &json!({"n": 1})).await.unwrap();
    assert_eq!((s, b["method"].as_str()), (200, Some("POST")));
    assert_eq!(b["body"], r#"{"n":1}"#);

    // Wrong method, unknown path, unknown context, a sibling prefix: 404 with the JSON body.
    for (method, path) in [
        ("DELETE", "/shop/v1.0/items"),
        ("GET", "/shop/v1.0/other"),
        ("GET", "/nowhere"),
        ("GET", "/shopping/v1.0/items/1"),
        ("GET", "/shop/v2.0/items/1"),
    ] {
        let r = t.raw(method.parse().unwrap(), path, &[]).await.unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.text().await.unwrap(), r#"{"error":"Not Found"}"#);
    }

    // Hop-by-hop headers are not forwarded; end-to-end ones are.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/shop/v1.0/items/1",
            &[
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "1"),
                ("x-end", "2"),
            ],
        )
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert!(b["headers"].get("x-hop").is_none(), "{b}");
    assert_eq!(b["headers"]["x-end"], "2");
    // An X-Forwarded-For from a previous hop is extended.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/shop/v1.0/items/1",
            &[("x-forwarded-for", "10.0.0.1")],
        )
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-forwarded-for"], "10.0.0.1, 127.0.0.1");

    assert_eq!(
        get(&t, "/_gateway-health/ready").await,
        (200, json!({"status": "ready"}))
    );
    assert_eq!(
        get(&t, "/_gateway-health/healthy").await,
        (200, json!({"status": "healthy"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_hosts_reach_the_sandbox_upstream() {
    let main = EchoServer::start("main").await;
    let sandbox = EchoServer::start("sandbox").await;
    let gw = gateway(&[]).await;
    let mut doc = rest_doc("pets", "/pets", &main.url(""), json!([]), json!([]));
    doc["spec"]["upstream"]["sandbox"] = json!({"url": sandbox.url("/sb")});
    create(&gw.admin(), "rest-apis", &doc).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("plain", "/plain", &main.url(""), json!([]), json!([])),
    )
    .await;
    let t = gw.traffic();
    let (_, b) = get(&t, "/pets/dogs").await;
    assert_eq!(
        (b["upstream"].as_str(), b["path"].as_str()),
        (Some("main"), Some("/dogs"))
    );
    let r = t
        .raw(
            reqwest::Method::GET,
            "/pets/dogs",
            &[("host", "sandbox-api.example")],
        )
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["upstream"].as_str(), b["path"].as_str()),
        (Some("sandbox"), Some("/sb/dogs"))
    );
    // An API without a sandbox upstream is not served on sandbox hosts.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/plain/x",
            &[("host", "sandbox-api.example")],
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_answer_503_and_504() {
    let up = EchoServer::start("slow").await;
    let gw = gateway(&[
        "--upstream-timeout",
        "300ms",
        "--upstream-connect-timeout",
        "500ms",
    ])
    .await;
    let closed = gatehouse_testkit::free_addr();
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc(
            "down",
            "/down",
            &format!("http://{closed}"),
            json!([]),
            json!([]),
        ),
    )
    .await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("slow", "/slow", &up.url(""), json!([]), json!([])),
    )
    .await;
    let t = gw.traffic();
    let (s, b) = get(&t, "/down/x").await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"], "Service Unavailable");
    let started = Instant::now();
    let (s, b) = get(&t, "/slow/x?delay_ms=3000").await;
    assert_eq!(s, 504, "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout applies"
    );
    let (s, _) = get(&t, "/slow/x?delay_ms=10").await;
    assert_eq!(s, 200);
    // Upstream statuses pass through.
    assert_eq!(get(&t, "/slow/status/418").await.0, 418);
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert!(
        metrics.contains("gatehouse_gateway_upstream_errors_total{artifact=\"down\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_bodies_arrive_as_the_upstream_sends_them() {
    use futures::StreamExt;
    let up = EchoServer::start("stream").await;
    let gw = gateway(&[]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("events", "/events", &up.url(""), json!([]), json!([])),
    )
    .await;
    let client = reqwest::Client::new();
    for (path, first_marker) in [
        ("/events/sse?events=4&interval_ms=300", "event-0"),
        ("/events/chunked?chunks=4&interval_ms=300", "chunk-0"),
    ] {
        let started = Instant::now();
        let r = client
            .get(format!("{}{path}", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut stream = r.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        let first_at = started.elapsed();
        assert!(String::from_utf8_lossy(&first).contains(first_marker));
        let mut all = first.to_vec();
        while let Some(chunk) = stream.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        let total = started.elapsed();
        assert!(
            first_at < Duration::from_millis(600),
            "first part came after {first_at:?}: buffered?"
        );
        assert!(
            total >= Duration::from_millis(850),
            "the whole body takes the upstream's time ({total:?})"
        );
        assert!(
            String::from_utf8_lossy(&all).contains("-3"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_served() {
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    create(
        &gw.admin(),
        "rest-apis",
        &rest_doc("h2", "/h2", &up.url(""), json!([]), json!([])),
    )
    .await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/h2/x", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["path"], "/x");
    assert_eq!(b["version"], "HTTP/1.1", "upstream leg is HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_apply_end_to_end() {
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let policies = json!([
        {"name": "api-key-auth", "params": {"header": "X-Key"}},
        {"name": "rate-limit", "params": {"requests": 3, "window": "1m"}},
        {"name": "cors", "params": {"allowOrigins": ["https://app.example"], "allowMethods": ["GET"], "maxAge": 60}},
        {"name": "set-headers", "params": {"request": {"set": {"X-Env": "prod"}, "remove": ["Cookie"]}, "response": {"set": {"X-Served-By": "gatehouse"}}}}
    ]);
    let ops = json!([{"method": "GET", "path": "/open", "policies": [{"name": "api-key-auth", "params": {"header": "X-Other"}}]}, {"method": "GET", "path": "/data"}]);
    create(
        &admin,
        "rest-apis",
        &rest_doc("guarded", "/g", &up.url(""), ops, policies),
    )
    .await;
    let (s, k) = admin
        .post(
            "/api/management/v1/rest-apis/guarded/api-keys",
            &json!({"displayName": "ci"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{k}");
    let key = k["apiKey"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ghk_") && key.len() > 40);
    let t = gw.traffic();

    // Preflight answered at the gateway, no key needed.
    let r = t
        .raw(
            reqwest::Method::OPTIONS,
            "/g/data",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(r.headers()["access-control-max-age"], "60");

    // No key, a wrong key: 401 with a JSON body.
    let r = t.raw(reqwest::Method::GET, "/g/data", &[]).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "Unauthorized");
    assert_eq!(
        t.raw(reqwest::Method::GET, "/g/data", &[("x-key", "nope")])
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        t.raw(reqwest::Method::GET, "/g/data", &[("api-key", &key)])
            .await
            .unwrap()
            .status(),
        401,
        "configured header only"
    );

    // A good key: forwarded with the request header edits, the key itself not forwarded.
    let r = t
        .raw(
            reqwest::Method::GET,
            "/g/data",
            &[
                ("x-key", &key),
                ("cookie", "s=1"),
                ("origin", "https://app.example"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-served-by"], "gatehouse");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(r.headers()["ratelimit-limit"], "3");
    assert_eq!(r.headers()["ratelimit-remaining"], "2");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-env"], "prod");
    assert!(b["headers"].get("cookie").is_none());
    assert!(
        b["headers"].get("x-key").is_none(),
        "the API key never reaches the upstream"
    );

    // The operation-level auth replaces the API-level one.
    assert_eq!(
        t.raw(reqwest::Method::GET, "/g/open", &[("x-other", &key)])
            .await
            .unwrap()
            .status(),
        200
    );

    // Rate limit: 3 per minute for /data (the /open operation has its own window).
    assert_eq!(
        t.raw(reqwest::Method::GET, "/g/data", &[("x-key", &key)])
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        t.raw(reqwest::Method::GET, "/g/data", &[("x-key", &key)])
            .await
            .unwrap()
            .status(),
        200
    );
    let r = t
        .raw(reqwest::Method::GET, "/g/data", &[("x-key", &key)])
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));

    // Revoking the key closes the door at once.
    let (_, keys) = admin
        .get("/api/management/v1/rest-apis/guarded/api-keys")
        .await
        .unwrap();
    assert_eq!(keys["count"], 1);
    assert!(keys["list"][0]["maskedApiKey"]
        .as_str()
        .unwrap()
        .starts_with("***"));
    assert!(
        !keys.to_string().contains(&key),
        "listing never shows a key"
    );
    let kid = k["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!(
                "/api/management/v1/rest-apis/guarded/api-keys/{kid}"
            ))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        t.raw(reqwest::Method::GET, "/g/open", &[("x-other", &key)])
            .await
            .unwrap()
            .status(),
        401
    );
}

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
    for method in [
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::DELETE,
    ] {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_validates_and_leaves_the_store_unchanged_on_bad_input() {
    let up = EchoServer::start("main").await;
    let mut gw = gateway(&["--admin-body-limit", "20000"]).await;
    let admin = gw.admin();
    let yaml = format!(
        "apiVersion: gatehouse.dev/v1\nkind: RestApi\nmetadata:\n  name: orders\nspec:\n  displayName: Orders\n  version: v1.0\n  context: /orders/$version\n  upstream:\n    main: {{ url: {} }}\n  operations:\n    - {{ method: GET, path: /items/{{id}} }}\n    - {{ method: POST, path: /items }}\n  policies:\n    - {{ name: api-key-auth, version: v1 }}\n",
        up.url("/api")
    );
    let (s, b) = admin
        .post_typed(
            "/api/management/v1/rest-apis",
            "application/yaml",
            yaml.clone().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"]["state"], "deployed");
    assert_eq!(b["status"]["origin"], "gateway_api");
    // Without a content type, YAML is recognized too; a second one with the handle is 409.
    let (s, b) = admin
        .post_typed(
            "/api/management/v1/rest-apis",
            "",
            yaml.clone().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("configuration already exists"),
        "{b}"
    );

    let snapshot = admin.get("/api/management/v1/rest-apis").await.unwrap().1;
    for (ct, body, status, field) in [
        ("application/yaml", "kind: [unclosed".to_string(), 400, None),
        ("application/json", "{\"apiVersion\": ".to_string(), 400, None),
        ("application/json", json!({"apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": "x"}, "spec": {"displayName": 5}}).to_string(), 400, Some("spec.displayName")),
        ("application/json", json!({"apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "x"}, "spec": {"displayName": "x", "context": "/x", "upstream": {"url": "http://a"}}}).to_string(), 400, Some("kind")),
        ("application/json", rest_doc("other", "orders-no-slash", &up.url(""), json!([]), json!([])).to_string(), 400, Some("spec.context")),
        ("application/json", rest_doc("clash", "/orders/v1.0", &up.url(""), json!([]), json!([])).to_string(), 409, None),
        ("application/json", "[1, 2]".to_string(), 400, None),
        ("application/json", format!("{{\"pad\": \"{}\"}}", "x".repeat(30_000)), 413, None),
    ] {
        let (s, b) = admin.post_typed("/api/management/v1/rest-apis", ct, body.into_bytes()).await.unwrap();
        assert_eq!(s, status, "{b}");
        if let Some(f) = field {
            assert_eq!(b["field"], f, "{b}");
        }
    }
    assert_eq!(
        admin.get("/api/management/v1/rest-apis").await.unwrap().1,
        snapshot,
        "the store is unchanged"
    );

    // Read, replace, delete; 404 for what is not held; 401 without credentials.
    let (s, b) = admin
        .get("/api/management/v1/rest-apis/orders")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(b["spec"]["operations"][0]["path"], "/items/{id}");
    assert_eq!(
        admin
            .get("/api/management/v1/rest-apis/nope")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        admin
            .get("/api/management/v1/mcp-proxies/orders")
            .await
            .unwrap()
            .0,
        404,
        "held as another kind"
    );
    let anon = Client::anonymous(&gw.admin_base);
    assert_eq!(
        anon.get("/api/management/v1/rest-apis").await.unwrap().0,
        401
    );
    let wrong = anon.with_header("authorization", "Basic YWRtaW46d3Jvbmc=");
    assert_eq!(
        wrong.get("/api/management/v1/rest-apis").await.unwrap().0,
        401
    );
    let mut replaced = rest_doc("orders", "/orders/v2", &up.url("/v2"), json!([]), json!([]));
    let (s, b) = admin
        .put("/api/management/v1/rest-apis/orders", &replaced)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    replaced["metadata"]["name"] = json!("renamed");
    assert_eq!(
        admin
            .put("/api/management/v1/rest-apis/orders", &replaced)
            .await
            .unwrap()
            .1["field"],
        "metadata.name"
    );
    let t = gw.traffic();
    assert_eq!(
        get(&t, "/orders/v1.0/items/1").await.0,
        404,
        "the old context is gone"
    );
    assert_eq!(get(&t, "/orders/v2/x").await.1["path"], "/v2/x");
    let (_, status) = admin.get("/api/management/v1/status").await.unwrap();
    assert_eq!(status["artifacts"]["total"], 1);
    assert_eq!(status["routeTable"]["artifacts"], 1);
    assert_eq!(
        admin
            .delete("/api/management/v1/rest-apis/orders")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin
            .delete("/api/management/v1/rest-apis/orders")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(get(&t, "/orders/v2/x").await.0, 404);
    gw.kill();
}

/// After SIGKILL and a restart the gateway serves what it held, with the same keys, before
/// anyone calls its management API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_serves_the_last_known_state_before_any_call() {
    let up = EchoServer::start("main").await;
    let mut gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "rest-apis",
        &rest_doc(
            "orders",
            "/orders",
            &up.url(""),
            json!([]),
            json!([{"name": "api-key-auth"}]),
        ),
    )
    .await;
    create(&admin, "mcp-proxies", &json!({"apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "tools"},
        "spec": {"displayName": "Tools", "context": "/tools", "upstream": {"url": up.url("/mcp")}}})).await;
    let (_, k) = admin
        .post(
            "/api/management/v1/rest-apis/orders/api-keys",
            &json!({"displayName": "a"}),
        )
        .await
        .unwrap();
    let key = k["apiKey"].as_str().unwrap().to_owned();
    let (_, k2) = admin
        .post(
            "/api/management/v1/rest-apis/orders/api-keys",
            &json!({"displayName": "b"}),
        )
        .await
        .unwrap();
    admin
        .delete(&format!(
            "/api/management/v1/rest-apis/orders/api-keys/{}",
            k2["id"].as_str().unwrap()
        ))
        .await
        .unwrap();

    gw.kill();
    gw.respawn().unwrap();
    gw.wait_ready().await.unwrap();
    let t = gw.traffic();
    let r = t
        .raw(reqwest::Method::GET, "/orders/x", &[("api-key", &key)])
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "served right after ready");
    let revoked = k2["apiKey"].as_str().unwrap();
    assert_eq!(
        t.raw(reqwest::Method::GET, "/orders/x", &[("api-key", revoked)])
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        t.raw(reqwest::Method::POST, "/tools/mcp", &[])
            .await
            .unwrap()
            .status(),
        200
    );
    let (_, status) = gw.admin().get("/api/management/v1/status").await.unwrap();
    assert_eq!(status["artifacts"]["total"], 2);
}

/// While a client sends a steady stream of requests, artifacts are added and removed; requests
/// to the unchanged route never fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguration_under_load_never_fails_unchanged_routes() {
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "rest-apis",
        &rest_doc("steady", "/steady", &up.url(""), json!([]), json!([])),
    )
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loaders = vec![];
    for _ in 0..4 {
        let (stop, base) = (stop.clone(), gw.base.clone());
        loaders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut ok, mut failed) = (0u32, vec![]);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(format!("{base}/steady/ping")).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    for i in 0..25 {
        let name = format!("churn-{i}");
        create(
            &admin,
            "rest-apis",
            &rest_doc(
                &name,
                &format!("/churn/{i}"),
                &up.url(""),
                json!([]),
                json!([]),
            ),
        )
        .await;
        if i % 2 == 0 {
            assert_eq!(
                admin
                    .delete(&format!("/api/management/v1/rest-apis/{name}"))
                    .await
                    .unwrap()
                    .0,
                204
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in loaders {
        let (ok, failed) = l.await.unwrap();
        assert!(
            failed.is_empty(),
            "requests failed during reconfiguration: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 50, "only {total} requests were sent");
    assert_eq!(get(&gw.traffic(), "/churn/1/x").await.0, 200);
    assert_eq!(get(&gw.traffic(), "/churn/0/x").await.0, 404);
}
