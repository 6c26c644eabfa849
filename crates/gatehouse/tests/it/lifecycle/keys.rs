//! API keys, subscriptions and plan quotas through the lifecycle.

use std::time::Duration;

use super::*;
use crate::common::*;
use serde_json::{json, Value};

/// The seed's second bug: keys must live exactly as long as their artifact, for REST APIs and
/// LLM proxies. Keys reach the gateway with the deploy and later as events (also when made
/// while the gateway is stopped); a revoke stops a key within a second; a key of one artifact
/// does not open another; deleting the deployment (artifact kept) and restarting keeps the
/// artifact and its keys; redeploying serves the old key; deleting the artifact removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_as_long_as_their_artifact() {
    let mut env = setup(Backend::Sqlite, &[], &["--sync-interval", "1s"], false)
        .await
        .unwrap();
    env.base_provider().await;
    // Another artifact with key auth: keys of the first must not open it.
    let mut other = env.body("rest-apis", "neighbour");
    other["policies"] = json!([{"name": "api-key-auth"}]);
    assert_eq!(
        env.admin.post("/api/v1/rest-apis", &other).await.unwrap().0,
        201
    );
    env.deploy("rest-apis", "neighbour").await;
    let traffic = env.gw.traffic();
    let call = |path: String, key: Option<String>| {
        let t = traffic.clone();
        async move {
            let headers: Vec<(&str, &str)> = match &key {
                Some(k) => vec![("api-key", k.as_str())],
                None => vec![],
            };
            t.raw(reqwest::Method::GET, &path, &headers)
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let wait_call = |path: String, key: Option<String>, want: u16| {
        let call = &call;
        async move {
            eventually(
                WAIT,
                &format!("{path} with {key:?} to answer {want}"),
                || {
                    let (path, key) = (path.clone(), key.clone());
                    async move { (call(path, key).await == want).then_some(()) }
                },
            )
            .await
            .unwrap()
        }
    };
    for c in ["rest-apis", "llm-proxies"] {
        let id = format!("keyed-{}", event_prefix(c));
        let path = format!("/{id}/models");
        let mut body = env.body(c, &id);
        body["policies"] = json!([{"name": "api-key-auth"}]);
        assert_eq!(
            env.admin
                .post(&format!("/api/v1/{c}"), &body)
                .await
                .unwrap()
                .0,
            201
        );
        let (s, k1) = env
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/api-keys"),
                &json!({"displayName": "first"}),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{k1}");
        let k1 = k1["apiKey"].as_str().unwrap().to_owned();
        assert!(k1.starts_with("ghk_") && k1.len() >= 40);
        let (_, listed) = env
            .admin
            .get(&format!("/api/v1/{c}/{id}/api-keys"))
            .await
            .unwrap();
        assert!(!listed.to_string().contains(&k1), "listing is masked");
        let d = env.deploy(c, &id).await;
        wait_call(path.clone(), Some(k1.clone()), 200).await;
        assert_eq!(call(path.clone(), None).await, 401);
        assert_eq!(
            call("/neighbour/models".into(), Some(k1.clone())).await,
            401,
            "a key opens only its artifact"
        );
        // A key made after the deploy arrives as an event; a revoke stops it within a second.
        let supplied = format!("supplied-key-{id}-0123456789");
        let (_, k2) = env
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/api-keys"),
                &json!({"id": "second", "displayName": "Second", "apiKey": supplied}),
            )
            .await
            .unwrap();
        assert_eq!(k2["apiKey"], supplied.as_str());
        wait_call(path.clone(), Some(supplied.clone()), 200).await;
        let revoked_at = std::time::Instant::now();
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}/api-keys/second"))
                .await
                .unwrap()
                .0,
            204
        );
        wait_call(path.clone(), Some(supplied.clone()), 401).await;
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "revocation took {:?}",
            revoked_at.elapsed()
        );
        // A key made while the gateway is stopped works once it is back.
        env.gw.kill();
        let (_, k3) = env
            .admin
            .post(
                &format!("/api/v1/{c}/{id}/api-keys"),
                &json!({"displayName": "while stopped"}),
            )
            .await
            .unwrap();
        let k3 = k3["apiKey"].as_str().unwrap().to_owned();
        env.gw.respawn().unwrap();
        env.gw.wait_ready().await.unwrap();
        wait_call(path.clone(), Some(k3.clone()), 200).await;

        // Undeploy keeps the keys; deleting the deployment keeps artifact and keys (retained
        // by the periodic sync); so does a restart.
        env.action(c, &id, &d, "undeploy").await;
        env.wait_held_state(c, &id, Some("undeployed")).await;
        assert_eq!(call(path.clone(), Some(k1.clone())).await, 404);
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}/deployments/{d}"))
                .await
                .unwrap()
                .0,
            204
        );
        eventually(WAIT, "a sync that retains it", || async {
            (env.status().await["lastSync"]["retained"].as_u64() >= Some(1)).then_some(())
        })
        .await
        .unwrap();
        env.gw.kill();
        env.gw.respawn().unwrap();
        env.gw.wait_ready().await.unwrap();
        env.wait_held_state(c, &id, Some("undeployed")).await;
        let (_, keys) = env
            .gw
            .admin()
            .get(&format!("/api/management/v1/{c}/{id}/api-keys"))
            .await
            .unwrap();
        assert_eq!(keys["count"], 3, "{keys}");
        // Redeploy: the old keys are served, the revoked one is not.
        env.deploy(c, &id).await;
        wait_call(path.clone(), Some(k1.clone()), 200).await;
        assert_eq!(call(path.clone(), Some(k3.clone())).await, 200);
        assert_eq!(call(path.clone(), Some(supplied.clone())).await, 401);
        // Deleting the artifact removes it and its keys everywhere.
        assert_eq!(
            env.admin
                .delete(&format!("/api/v1/{c}/{id}"))
                .await
                .unwrap()
                .0,
            204
        );
        env.wait_held_state(c, &id, None).await;
        assert_eq!(
            env.gw
                .admin()
                .get(&format!("/api/management/v1/{c}/{id}/api-keys"))
                .await
                .unwrap()
                .0,
            404
        );
        wait_call(path, Some(k1), 404).await;
    }
}

/// Subscription plans and subscriptions, from the control plane to traffic: an artifact that
/// offers plans needs an active subscription (403), the plan's quota applies (429 with
/// RateLimit-* and Retry-After), the subscription header is not forwarded, and changes to
/// subscriptions reach the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_plan_quotas_are_enforced() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let (s, plan) = env
        .admin
        .post("/api/v1/subscription-plans", &json!({"id": "bronze", "displayName": "Bronze", "limits": [{"limitCount": 3, "timeUnit": "MINUTE", "stopOnQuotaReach": true}]}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{plan}");
    let (s, b) = env
        .admin
        .post(
            "/api/v1/subscription-plans",
            &json!({"displayName": "Bad", "limits": [{"limitCount": 3, "timeUnit": "WEEK"}]}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("limits[0].timeUnit")));
    let mut body = env.body("rest-apis", "metered");
    body["subscriptionPlans"] = json!(["bronze"]);
    assert_eq!(
        env.admin.post("/api/v1/rest-apis", &body).await.unwrap().0,
        201
    );
    let mut bad = env.body("rest-apis", "unmetered");
    bad["subscriptionPlans"] = json!(["gold"]);
    let (s, b) = env.admin.post("/api/v1/rest-apis", &bad).await.unwrap();
    assert_eq!(
        (s, &b["field"]),
        (404, &json!("subscriptionPlans[0]")),
        "{b}"
    );
    env.deploy("rest-apis", "metered").await;
    env.wait_probe("rest-apis", "metered", 403).await;

    let (s, sub) = env
        .admin
        .post("/api/v1/subscriptions", &json!({"artifactId": "metered", "kind": "RestApi", "subscriberId": "team-a", "planId": "bronze"}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{sub}");
    let token = sub["subscriptionToken"].as_str().unwrap().to_owned();
    let (_, listed) = env
        .admin
        .get("/api/v1/subscriptions?artifactId=metered")
        .await
        .unwrap();
    assert_eq!(listed["count"], 1);
    assert!(
        !listed.to_string().contains(&token),
        "the token is shown once"
    );
    let t = env.gw.traffic();
    let call = |tok: &str| {
        let (t, tok) = (t.clone(), tok.to_owned());
        async move {
            t.raw(
                reqwest::Method::GET,
                "/metered/x",
                &[("subscription-key", tok.as_str())],
            )
            .await
            .unwrap()
        }
    };
    eventually(WAIT, "the subscription to reach the gateway", || async {
        (call(&token).await.status() == 200).then_some(())
    })
    .await
    .unwrap();
    // That was request 1 of 3 in this minute.
    let r = call(&token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-limit"], "3");
    assert_eq!(r.headers()["ratelimit-remaining"], "1");
    let echoed: Value = r.json().await.unwrap();
    assert!(
        echoed["headers"].get("subscription-key").is_none(),
        "not forwarded upstream"
    );
    assert_eq!(call(&token).await.status(), 200);
    let r = call(&token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(call("not-a-subscription").await.status(), 403);
    // The window resets when Retry-After said it would.
    tokio::time::sleep(Duration::from_millis(retry * 1000 + 300)).await;
    let r = call(&token).await;
    assert_eq!(r.status(), 200, "a new window");
    assert_eq!(r.headers()["ratelimit-remaining"], "2");

    // Inactive, then deleted: refused.
    let sid = sub["id"].as_str().unwrap();
    let (s, _) = env
        .admin
        .put(
            &format!("/api/v1/subscriptions/{sid}"),
            &json!({"status": "INACTIVE"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    eventually(WAIT, "the inactive subscription to be refused", || async {
        (call(&token).await.status() == 403).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.admin
            .delete("/api/v1/subscription-plans/bronze")
            .await
            .unwrap()
            .0,
        409,
        "a plan in use is kept"
    );
    assert_eq!(
        env.admin
            .delete(&format!("/api/v1/subscriptions/{sid}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        env.admin
            .get(&format!("/api/v1/subscriptions/{sid}"))
            .await
            .unwrap()
            .0,
        404
    );

    // Another organization sees none of it.
    env.admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other", "displayName": "Other"}),
        )
        .await
        .unwrap();
    let other = env.p.login("other").await.unwrap();
    assert_eq!(
        other
            .get("/api/v1/subscription-plans/bronze")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        other.get("/api/v1/subscriptions").await.unwrap().1["count"],
        0
    );
    let (s, _) = other
        .post(
            "/api/v1/subscriptions",
            &json!({"artifactId": "metered", "kind": "RestApi", "subscriberId": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(
        s, 404,
        "another organization's artifact cannot be subscribed to"
    );
}
