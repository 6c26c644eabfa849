//! Secrets referenced from artifacts, end to end: a real platform, a real gateway and a real
//! upstream. The value goes upstream; it is rotated without a redeploy; it appears in no answer,
//! event, log line or database file on either side; a restarted gateway catches up.

use std::time::{Duration, Instant};

use super::*;
use crate::common::*;
use serde_json::json;

const FIRST: &str = "sk-first-0b7c1d2e3f4a5b6c";
const SECOND: &str = "sk-second-9a8b7c6d5e4f3a2b";

/// Creates secret `openai` and an LLM provider `prov` whose credential references it,
/// deployed to the gateway.
async fn provider_on_a_secret(env: &Env) -> String {
    let (s, b) = env
        .admin
        .post("/api/v1/secrets", &json!({"id": "openai", "value": FIRST}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let mut body = env.body("llm-providers", "prov");
    body["upstream"]["auth"]["value"] = json!(r#"Bearer {{ secret "openai" }}"#);
    let (s, b) = env
        .admin
        .post("/api/v1/llm-providers", &body)
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let d = env.deploy("llm-providers", "prov").await;
    env.wait_dep_status("llm-providers", "prov", &d, "DEPLOYED")
        .await;
    d
}

/// The `Authorization` the upstream received for one request through the provider.
async fn sent_upstream(env: &Env) -> Option<String> {
    let (s, b) = env.gw.traffic().get("/prov/models").await.ok()?;
    if s != 200 {
        return None;
    }
    b["headers"]["authorization"].as_str().map(str::to_owned)
}

async fn wait_sent(env: &Env, want: &str) -> Duration {
    let started = Instant::now();
    eventually(WAIT, &format!("upstream to receive {want}"), || async {
        (sent_upstream(env).await.as_deref() == Some(want)).then_some(())
    })
    .await
    .unwrap();
    started.elapsed()
}

async fn held_secrets(env: &Env) -> Vec<String> {
    env.status().await["secrets"]["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_sent_upstream_without_a_redeploy_and_shown_nowhere() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let first_deployment = provider_on_a_secret(&env).await;
    wait_sent(&env, &format!("Bearer {FIRST}")).await;

    // Rotated while requests keep flowing: each is answered, with the old value or the new.
    let traffic = env.gw.traffic();
    let load = tokio::spawn(async move {
        let mut statuses = vec![];
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let (s, b) = traffic.get("/prov/models").await.unwrap();
            statuses.push((s, b["headers"]["authorization"].clone()));
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, b) = env
        .admin
        .put("/api/v1/secrets/openai", &json!({"value": SECOND}))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let took = wait_sent(&env, &format!("Bearer {SECOND}")).await;
    eprintln!("rotation reached the upstream in {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the new value took {took:?} to be served"
    );
    let statuses = load.await.unwrap();
    assert!(statuses.len() > 10, "{} requests", statuses.len());
    for (s, auth) in &statuses {
        assert_eq!(*s, 200, "a request failed during the rotation");
        assert!(
            *auth == json!(format!("Bearer {FIRST}")) || *auth == json!(format!("Bearer {SECOND}")),
            "{auth}"
        );
    }
    // No redeploy happened: the same deployment is current.
    let (_, deps) = env
        .admin
        .get("/api/v1/llm-providers/prov/deployments")
        .await
        .unwrap();
    assert_eq!(deps["count"], 1, "{deps}");
    assert_eq!(deps["list"][0]["deploymentId"], first_deployment.as_str());

    // The value is in no answer of either API and in no event.
    let (_, provider) = env.admin.get("/api/v1/llm-providers/prov").await.unwrap();
    let (_, secret) = env.admin.get("/api/v1/secrets/openai").await.unwrap();
    let held = env.held("llm-providers", "prov").await.1;
    let events = events(
        &Client::anonymous(&env.p.base).with_header("api-key", &env.token),
        0,
    )
    .await;
    assert!(
        events.iter().any(|e| e["type"] == "secret.updated"),
        "{events:?}"
    );
    let status = env.status().await;
    for value in [FIRST, SECOND] {
        for (what, body) in [
            ("platform artifact", &provider),
            ("platform secret", &secret),
            ("gateway artifact", &held),
            ("gateway status", &status),
            ("events", &json!(events)),
        ] {
            assert!(!body.to_string().contains(value), "{what}: {body}");
        }
        // Nor in any database file or log line, on either side.
        assert_eq!(
            files_holding(env.p.db.dir.path(), value),
            Vec::<String>::new()
        );
        assert_eq!(
            files_holding(env.gw.dir.path(), value),
            Vec::<String>::new()
        );
        assert!(!env.p.process.output().contains(value), "platform log");
        assert!(!env.gw.process.output().contains(value), "gateway log");
    }
    // The gateway's document keeps the reference.
    assert_eq!(
        held["spec"]["upstream"]["auth"].get("value"),
        None,
        "credentials are not shown: {held}"
    );
    assert_eq!(held_secrets(&env).await, ["openai"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referenced_secret_is_kept_until_no_deployment_uses_it_then_forgotten() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    provider_on_a_secret(&env).await;
    wait_sent(&env, &format!("Bearer {FIRST}")).await;

    let (s, b) = env.admin.delete("/api/v1/secrets/openai").await.unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("llm-providers/prov"),
        "{b}"
    );
    // The artifact stops referencing it, but the deployment served still does.
    let mut body = env.body("llm-providers", "prov");
    body["upstream"]["auth"]["value"] = json!("Bearer sk-plain");
    let (s, b) = env
        .admin
        .put("/api/v1/llm-providers/prov", &body)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, b) = env.admin.delete("/api/v1/secrets/openai").await.unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("gateway 'edge'"),
        "{b}"
    );
    // Redeployed without it: the secret may go, and the gateway forgets its value.
    let d = env.deploy("llm-providers", "prov").await;
    env.wait_dep_status("llm-providers", "prov", &d, "DEPLOYED")
        .await;
    wait_sent(&env, "Bearer sk-plain").await;
    let (s, b) = env.admin.delete("/api/v1/secrets/openai").await.unwrap();
    assert_eq!(s, 204, "{b}");
    eventually(WAIT, "the gateway to forget the value", || async {
        held_secrets(&env).await.is_empty().then_some(())
    })
    .await
    .unwrap();
    // A deployment that names a secret that is gone cannot be restored.
    let (_, deps) = env
        .admin
        .get("/api/v1/llm-providers/prov/deployments")
        .await
        .unwrap();
    let old = deps["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["deploymentId"] != d.as_str())
        .unwrap()["deploymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = env
        .admin
        .post(
            &format!("/api/v1/llm-providers/prov/deployments/{old}/restore"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("secret 'openai'"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_while_a_secret_rotated_serves_the_new_value() {
    let mut env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    provider_on_a_secret(&env).await;
    wait_sent(&env, &format!("Bearer {FIRST}")).await;

    env.gw.kill();
    let (s, b) = env
        .admin
        .put("/api/v1/secrets/openai", &json!({"value": SECOND}))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    env.wait_connected().await;
    wait_sent(&env, &format!("Bearer {SECOND}")).await;

    // Restarted again while the control plane is unreachable: the value held (sealed in its
    // store) is served at once.
    env.gw.kill();
    env.p.process.kill();
    env.gw.respawn().unwrap();
    env.gw.wait_ready().await.unwrap();
    assert_eq!(
        sent_upstream(&env).await.as_deref(),
        Some(format!("Bearer {SECOND}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_url_held_in_a_secret_moves_traffic_when_rotated() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let other = gatehouse_testkit::echo::EchoServer::start("other").await;
    let (s, b) = env
        .admin
        .post(
            "/api/v1/secrets",
            &json!({"id": "orders-upstream", "value": env.up.url("/up")}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let mut body = env.body("rest-apis", "orders");
    body["upstream"]["main"]["url"] = json!(r#"{{ secret "orders-upstream" }}"#);
    let (s, b) = env.admin.post("/api/v1/rest-apis", &body).await.unwrap();
    assert_eq!(s, 201, "{b}");
    env.deploy("rest-apis", "orders").await;
    let served_by = || async {
        let (s, b) = env.gw.traffic().get("/orders/x").await.ok()?;
        Some((s, b))
    };
    eventually(WAIT, "the first upstream", || async {
        let (s, b) = served_by().await?;
        (s == 200 && b["upstream"] == "upstream").then_some(())
    })
    .await
    .unwrap();
    // Rotated to another upstream: traffic moves, with no redeploy.
    let (s, _) = env
        .admin
        .put(
            "/api/v1/secrets/orders-upstream",
            &json!({"value": other.url("/up")}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    eventually(WAIT, "the other upstream", || async {
        let (s, b) = served_by().await?;
        (s == 200 && b["upstream"] == "other").then_some(())
    })
    .await
    .unwrap();
    // A value that is not a URL: not served, and the answer names the field, not the value.
    let bad = "not-a-url-7f3e9c";
    let (s, _) = env
        .admin
        .put("/api/v1/secrets/orders-upstream", &json!({"value": bad}))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let answer = eventually(WAIT, "the artifact to stop being served", || async {
        let (s, b) = served_by().await?;
        (s == 503).then_some(b)
    })
    .await
    .unwrap();
    assert!(answer.to_string().contains("upstream.main.url"), "{answer}");
    assert!(!answer.to_string().contains(bad), "{answer}");
    assert!(!env.gw.process.output().contains(bad), "gateway log");
}
