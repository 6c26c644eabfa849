//! Quotas shared through Redis (`--rate-limit-store`, docs/quotas.md), end to end with the real
//! binary: two gateways on one Redis spend one count (a per-key `rate-limit`, a plan quota and a
//! `token-rate-limit`);
//! a gateway whose Redis goes away keeps serving on its own counters (or answers 503 for a
//! `failClosed` limit), says so once in its log and in `/status` and metrics, and goes back to
//! Redis when it returns.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::private_redis::{shared_redis_url, PrivateRedis};
use gatehouse_testkit::Gateway;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// Deletes the counts of `artifacts` (the tests share one Redis and leave nothing in it).
async fn forget_counts(url: &str, artifacts: &[&str]) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    for a in artifacts {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("gatehouse:quota:{a}|*"))
            .query_async(&mut c)
            .await
            .unwrap();
        for k in keys {
            let _: i64 = redis::cmd("DEL").arg(k).query_async(&mut c).await.unwrap();
        }
    }
}

/// The counts Redis holds, by key.
async fn counts(url: &str) -> Vec<(String, u64)> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("gatehouse:quota:*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = vec![];
    for k in keys {
        let n: u64 = redis::cmd("HGET")
            .arg(&k)
            .arg("c")
            .query_async(&mut c)
            .await
            .unwrap();
        out.push((k, n));
    }
    out
}

/// Sends requests with `headers` to each gateway in turn until every gateway has answered 429
/// `rounds` times; returns how many were served (200).
async fn spend_everywhere(gws: &[&Gateway], path: &str, headers: &[(&str, &str)]) -> usize {
    let mut served = 0;
    let mut refused = vec![0; gws.len()];
    for _ in 0..200 {
        for (i, gw) in gws.iter().enumerate() {
            let r = gw.traffic().raw(Method::GET, path, headers).await.unwrap();
            match r.status().as_u16() {
                200 => served += 1,
                429 => {
                    assert_eq!(r.headers()["ratelimit-remaining"], "0");
                    refused[i] += 1;
                }
                s => panic!("{path} on gateway {i}: {s}"),
            }
        }
        if refused.iter().all(|&n| n >= 2) {
            return served;
        }
    }
    panic!("{path} was never refused on every gateway: {refused:?}");
}

/// Waits until `path` answers `want` on `gw` without credentials (the artifact is served).
async fn wait_status(gw: &Gateway, path: &str, want: u16) {
    let t = gw.traffic();
    eventually(WAIT, &format!("{path} to answer {want}"), || async {
        (t.get(path).await.ok()?.0 == want).then_some(())
    })
    .await
    .unwrap();
}

async fn store_status(gw: &Gateway) -> Value {
    let (_, s) = gw.admin().get("/api/management/v1/status").await.unwrap();
    s["rateLimitStore"].clone()
}

/// A platform and its gateways `east` and `west`, both counting in the shared Redis.
struct TwoOnRedis {
    url: String,
    _platform: gatehouse_testkit::Platform,
    admin: Client,
    gws: Vec<Gateway>,
}

/// `TwoOnRedis`, or `None` (saying so) without `GATEHOUSE_TEST_REDIS_URL`.
async fn two_gateways_on_redis() -> Option<TwoOnRedis> {
    let Some(url) = shared_redis_url() else {
        eprintln!("skipped: GATEHOUSE_TEST_REDIS_URL is not set (.ci/run sets it)");
        return None;
    };
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let admin = p.login("default").await.unwrap();
    let mut gws = vec![];
    for name in ["east", "west"] {
        let token = gateway_token(&admin, name).await;
        let args = [
            "--control-plane",
            p.base.as_str(),
            "--token",
            token.as_str(),
            "--rate-limit-store",
            url.as_str(),
        ];
        gws.push(Gateway::start(Path::new(BIN), &args).await.unwrap());
    }
    Some(TwoOnRedis {
        url,
        _platform: p,
        admin,
        gws,
    })
}

/// Deploys the artifact `id` of `collection` to both gateways of `two_gateways_on_redis`.
async fn deploy_to_both(admin: &Client, collection: &str, id: &str) {
    for gw in ["east", "west"] {
        deploy(admin, collection, id, gw).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_spend_one_token_limit() {
    let Some(TwoOnRedis {
        url,
        _platform,
        admin,
        gws,
    }) = two_gateways_on_redis().await
    else {
        return;
    };
    let up = gatehouse_testkit::fake_llm::FakeLlm::start("tokens").await;
    // 30 tokens a day; each exchange below is 7 (4 prompt words, 3 in the reply).
    let (s, b) = admin
        .post("/api/v1/llm-providers", &json!({
            "id": "metered-llm", "displayName": "Metered", "template": "openai",
            "context": "/metered-llm", "upstream": {"url": up.url("/v1"), "auth": {"type": "api-key", "value": "sk-test"}},
            "policies": [{"name": "token-rate-limit", "params": {"tokens": 30, "window": "1d"}}]
        }))
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let uuid = b["uuid"].as_str().unwrap().to_owned();
    deploy_to_both(&admin, "llm-providers", "metered-llm").await;
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "one two three four"}]});
    let mut served = 0;
    for gw in &gws {
        let t = &gw.traffic();
        let b = &body;
        eventually(WAIT, "the provider to be served", || async move {
            let (s, _) = t.post("/metered-llm/chat/completions", b).await.ok()?;
            (s == 200).then_some(())
        })
        .await
        .unwrap();
        served += 1;
    }
    // Alternate between the gateways until both refuse: a request is let through while the
    // count is under the limit and is charged when its answer is read, so 5 exchanges (35
    // tokens) pass across both; on counters of their own they would pass 5 each.
    let mut refused = [0; 2];
    for _ in 0..40 {
        for (i, gw) in gws.iter().enumerate() {
            let (s, b) = gw
                .traffic()
                .post("/metered-llm/chat/completions", &body)
                .await
                .unwrap();
            match s {
                200 => {
                    assert_eq!(b["usage"]["total_tokens"], 7, "{b}");
                    served += 1;
                }
                429 => refused[i] += 1,
                s => panic!("gateway {i}: {s} {b}"),
            }
        }
        if refused.iter().all(|&n| n >= 2) {
            break;
        }
    }
    assert!(refused.iter().all(|&n| n >= 2), "{refused:?}");
    assert_eq!(served, 5, "one token count across both gateways");
    let spent: u64 = counts(&url)
        .await
        .into_iter()
        .filter(|(k, _)| k.contains(&uuid))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(spent, 35, "Redis holds the tokens of both gateways");
    forget_counts(&url, &[&uuid]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_spend_one_quota() {
    let Some(TwoOnRedis {
        url,
        _platform,
        admin,
        gws,
    }) = two_gateways_on_redis().await
    else {
        return;
    };
    let up = EchoServer::start("upstream").await;
    for gw in &gws {
        let store = store_status(gw).await;
        assert_eq!(
            (&store["kind"], &store["reachable"]),
            (&json!("redis"), &json!(true)),
            "{store}"
        );
        assert!(!store.to_string().contains('@'), "no credentials shown");
    }

    // An API limited to 10 requests a day per API key, and one offering a plan of 7 a day.
    let (s, plan) = admin
        .post("/api/v1/subscription-plans", &json!({"id": "seven", "displayName": "Seven", "limits": [{"limitCount": 7, "timeUnit": "DAY", "stopOnQuotaReach": true}]}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{plan}");
    let mut uuids = vec![];
    for (id, extra) in [
        (
            "keyed",
            json!({"policies": [{"name": "api-key-auth"}, {"name": "rate-limit", "params": {"requests": 10, "window": "1d", "per": "key"}}]}),
        ),
        ("metered", json!({"subscriptionPlans": ["seven"]})),
    ] {
        let mut body = json!({"id": id, "displayName": id, "projectId": "default", "context": format!("/{id}"), "upstream": {"main": {"url": up.url("/up")}}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, b) = admin.post("/api/v1/rest-apis", &body).await.unwrap();
        assert_eq!(s, 201, "{b}");
        uuids.push(b["uuid"].as_str().unwrap().to_owned());
        deploy_to_both(&admin, "rest-apis", id).await;
    }
    let mut keys = vec![];
    for name in ["first", "second"] {
        let (s, k) = admin
            .post(
                "/api/v1/rest-apis/keyed/api-keys",
                &json!({"displayName": name}),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{k}");
        keys.push(k["apiKey"].as_str().unwrap().to_owned());
    }
    let (s, sub) = admin
        .post("/api/v1/subscriptions", &json!({"artifactId": "metered", "kind": "RestApi", "subscriberId": "team", "planId": "seven"}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{sub}");
    let sub_token = sub["subscriptionToken"].as_str().unwrap().to_owned();
    let gw_refs: Vec<&Gateway> = gws.iter().collect();
    for gw in &gws {
        wait_status(gw, "/keyed/x", 401).await;
        wait_status(gw, "/metered/x", 403).await;
    }
    // Credentials arrive as events; a request refused for its credential spends nothing.
    let mut served = 0;
    for gw in &gws {
        for (path, header, value) in [
            ("/keyed/x", "api-key", keys[0].as_str()),
            ("/keyed/x", "api-key", keys[1].as_str()),
            ("/metered/x", "subscription-key", sub_token.as_str()),
        ] {
            let t = gw.traffic();
            eventually(WAIT, "the credential to reach the gateway", || async {
                let s = t
                    .raw(Method::GET, path, &[(header, value)])
                    .await
                    .ok()?
                    .status();
                (s != 401 && s != 403).then_some(())
            })
            .await
            .unwrap();
            if path == "/keyed/x" && value == keys[0] {
                served += 1;
            }
        }
    }

    // Ten requests of the first key across both gateways, then 429 on both.
    served += spend_everywhere(&gw_refs, "/keyed/x", &[("api-key", &keys[0])]).await;
    assert_eq!(
        served, 10,
        "the per-key limit is one count across both gateways"
    );
    // The second key has its own count: 2 spent while waiting above, 8 left across both.
    let second = spend_everywhere(&gw_refs, "/keyed/x", &[("api-key", &keys[1])]).await;
    assert_eq!(second, 8);
    // The plan's 7 a day: 2 spent while waiting, 5 left across both.
    let metered =
        spend_everywhere(&gw_refs, "/metered/x", &[("subscription-key", &sub_token)]).await;
    assert_eq!(
        metered, 5,
        "the plan quota is one count across both gateways"
    );

    forget_counts(&url, &uuids.iter().map(String::as_str).collect::<Vec<_>>()).await;
}

fn local_api(up: &EchoServer, name: &str, params: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": name},
        "spec": {"displayName": name, "version": "v1.0", "context": format!("/{name}"),
                 "upstream": {"main": {"url": up.url("/up")}},
                 "policies": [{"name": "rate-limit", "params": params}]}
    })
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_redis_goes_away_keeps_serving_says_so_and_comes_back() {
    let mut redis = match PrivateRedis::start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skipped: no private Redis here: {e:#}");
            return;
        }
    };
    let url = redis.url(0);
    let gw = Gateway::start(Path::new(BIN), &["--rate-limit-store", &url])
        .await
        .unwrap();
    let up = EchoServer::start("upstream").await;
    let admin = gw.admin();
    for (name, params) in [
        ("open", json!({"requests": 1000, "window": "1d"})),
        (
            "strict",
            json!({"requests": 1000, "window": "1d", "failClosed": true}),
        ),
    ] {
        let (s, b) = admin
            .post(
                "/api/management/v1/rest-apis",
                &local_api(&up, name, params),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{b}");
    }
    wait_status(&gw, "/open/x", 200).await;
    wait_status(&gw, "/strict/x", 200).await;
    let counted: u64 = counts(&url).await.iter().map(|c| c.1).sum();
    assert_eq!(counted, 2, "one request of each counted in Redis");
    assert_eq!(store_status(&gw).await["reachable"], true);

    // Redis goes away: the fail-open limit serves on local counts, the fail-closed one is 503.
    redis.stop();
    let t = gw.traffic();
    for _ in 0..10 {
        assert_eq!(t.get("/open/x").await.unwrap().0, 200);
        let (s, b) = t.get("/strict/x").await.unwrap();
        assert_eq!(s, 503, "{b}");
        assert!(
            b.to_string().contains("rate-limit store is unreachable"),
            "{b}"
        );
    }
    let store = store_status(&gw).await;
    assert_eq!(store["reachable"], false, "{store}");
    assert!(store["lastError"].is_string(), "{store}");
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert_eq!(
        metric(&metrics, "gatehouse_gateway_rate_limit_store_up "),
        0.0
    );
    assert!(
        metric(
            &metrics,
            "gatehouse_gateway_rate_limit_store_fallbacks_total{outcome=\"local\"}"
        ) >= 10.0
    );
    assert!(
        metric(
            &metrics,
            "gatehouse_gateway_rate_limit_store_fallbacks_total{outcome=\"refused\"}"
        ) >= 10.0
    );
    let said = gw
        .process
        .output()
        .matches("rate-limit store unreachable")
        .count();
    assert_eq!(said, 1, "logged once:\n{}", gw.process.output());

    // Redis returns (empty): the gateway goes back to it on its own.
    redis.restart().unwrap();
    eventually(WAIT, "the gateway to reach Redis again", || async {
        (store_status(&gw).await["reachable"] == true).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(t.get("/strict/x").await.unwrap().0, 200);
    assert_eq!(t.get("/open/x").await.unwrap().0, 200);
    let counted: u64 = counts(&url).await.iter().map(|c| c.1).sum();
    assert_eq!(counted, 2, "counting in Redis again");
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert_eq!(
        metric(&metrics, "gatehouse_gateway_rate_limit_store_up "),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_store_address_is_refused_at_start() {
    let out = std::process::Command::new(BIN)
        .args(["gateway", "--rate-limit-store", "http://127.0.0.1:6379"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis://HOST:PORT/DB"), "{err}");
}
