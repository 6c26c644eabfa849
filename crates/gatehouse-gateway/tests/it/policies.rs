//! Policies on real traffic: api-key-auth, rate-limit, cors, set-headers, subscriptions.

use gatehouse_testkit::echo::EchoServer;
use serde_json::{json, Value};

use super::{create, gateway, rest_doc};

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
