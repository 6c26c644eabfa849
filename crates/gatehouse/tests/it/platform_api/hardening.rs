//! Authentication hardening: failed logins slow down per username (429 with a growing
//! `Retry-After`, the password not even checked meanwhile), a login token can be ended before
//! it expires, and every answer carries the security headers.

use std::time::{Duration, Instant};

use crate::common::*;
use gatehouse_testkit::Client;
use serde_json::json;

async fn attempt(p: &Platform, password: &str) -> (u16, Option<u64>) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", p.base))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (res.status().as_u16(), retry)
}

/// Waits (polling) until the login is no longer throttled.
async fn until_not_throttled(p: &Platform, password: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, _) = attempt(p, password).await;
        if s != 429 || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_down_and_logins_can_be_ended() {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    for _ in 0..5 {
        assert_eq!(attempt(&p, "wrong-password").await, (401, None));
    }
    // Locked: even the right password waits, and says how long.
    let (s, first) = attempt(&p, &p.admin_password).await;
    assert_eq!(s, 429);
    assert!(first.is_some_and(|r| r >= 1), "{first:?}");
    // Once the wait is over, a further failure locks for longer.
    assert_eq!(until_not_throttled(&p, "wrong-password").await, 401);
    let (s, second) = attempt(&p, &p.admin_password).await;
    assert_eq!(s, 429);
    assert!(second > first, "{first:?} then {second:?}");
    // The right password after the wait works and clears the count.
    assert_eq!(until_not_throttled(&p, &p.admin_password).await, 200);
    assert_eq!(attempt(&p, "wrong-password").await, (401, None));
    assert_eq!(attempt(&p, &p.admin_password).await.0, 200);

    // A login token ended by logout is refused at once.
    let admin = p.login("default").await.unwrap();
    assert_eq!(admin.get("/api/v1/rest-apis").await.unwrap().0, 200);
    let (s, b) = admin.post("/api/v1/auth/logout", &json!({})).await.unwrap();
    assert_eq!(s, 204, "{b}");
    assert_eq!(admin.get("/api/v1/rest-apis").await.unwrap().0, 401);
    // An API token is revoked elsewhere.
    let admin = p.login("default").await.unwrap();
    let (_, t) = admin
        .post("/api/v1/tokens", &json!({"name": "bot"}))
        .await
        .unwrap();
    let bot = Client::anonymous(&p.base).with_bearer(t["token"].as_str().unwrap());
    let (s, b) = bot.post("/api/v1/auth/logout", &json!({})).await.unwrap();
    assert_eq!(s, 400, "{b}");

    // Security headers, on the API and elsewhere.
    let http = reqwest::Client::new();
    for path in ["/api/v1/openapi.json", "/health", "/api/v1/nope"] {
        let res = http.get(format!("{}{path}", p.base)).send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        if path.starts_with("/api/") {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
    }
}
