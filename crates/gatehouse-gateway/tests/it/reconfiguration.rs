//! Restarts and changes under load: the gateway keeps serving what it holds.

use gatehouse_testkit::echo::EchoServer;
use serde_json::json;

use super::{create, gateway, get, rest_doc};

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
        t.raw(reqwest::Method::GET, "/tools/mcp", &[])
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
