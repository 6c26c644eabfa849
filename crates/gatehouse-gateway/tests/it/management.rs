//! The management API: validation, and a store left unchanged by bad input.

use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::Client;
use serde_json::json;

use super::{gateway, get, rest_doc};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_resolve_from_the_environment_and_never_go_upstream_unresolved() {
    let (bare, accepted) = super::wire::bare_upstream().await;
    let up = EchoServer::start("main").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    let with_header = |id: &str, url: &str, value: &str| {
        let policies =
            json!([{"name": "set-headers", "params": {"request": {"set": {"X-Token": value}}}}]);
        rest_doc(id, &format!("/{id}"), url, json!([]), policies)
    };
    // A variable of the gateway's environment is put in place.
    let doc = with_header("env", &up.url(""), r#"path={{ env "PATH" }}"#);
    let (s, b) = admin
        .post("/api/management/v1/rest-apis", &doc)
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let (s, b) = get(&gw.traffic(), "/env/x").await;
    assert_eq!(s, 200, "{b}");
    let want = format!("path={}", std::env::var("PATH").unwrap());
    assert_eq!(b["headers"]["x-token"], want.as_str(), "{b}");
    // The stored document keeps the reference.
    let (_, held) = admin.get("/api/management/v1/rest-apis/env").await.unwrap();
    assert!(held.to_string().contains("{{ env"), "{held}");

    // What cannot be resolved is not served, and its text never goes upstream.
    for (id, value, why) in [
        (
            "own",
            r#"{{ env "GATEHOUSE_ADMIN_PASSWORD" }}"#,
            "cannot be referenced",
        ),
        (
            "unset",
            r#"{{ env "GATEHOUSE_TEST_UNSET" }}x{{ env "SURELY_UNSET_VARIABLE_1234" }}"#,
            "cannot be referenced",
        ),
        (
            "missing",
            r#"{{ env "SURELY_UNSET_VARIABLE_1234" }}"#,
            "is not set on this gateway",
        ),
        (
            "secret",
            r#"Bearer {{ secret "openai" }}"#,
            "has not received",
        ),
    ] {
        let doc = with_header(id, &bare, value);
        let (s, b) = admin
            .post("/api/management/v1/rest-apis", &doc)
            .await
            .unwrap();
        assert_eq!(s, 201, "{id}: {b}");
        let (s, b) = get(&gw.traffic(), &format!("/{id}/x")).await;
        assert_eq!(s, 503, "{id}: {b}");
        assert!(b.to_string().contains(why), "{id}: {b}");
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the reference's text never went upstream"
    );
}
