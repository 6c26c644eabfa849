//! Every secret a run creates (a password, a login token, an API token, a gateway token, an API
//! key, a subscription token, a provider credential, a secret's value) is collected, used for
//! real, and then looked for everywhere it must not be: log lines and metrics of both
//! processes, change-log event payloads, API answers after its creation (control plane and
//! gateway), and the database files of both sides.

use super::*;
use crate::common::*;
use gatehouse_testkit::Client;
use serde_json::{json, Value};

async fn must(c: &Client, path: &str) -> Value {
    let (s, b) = c.get(path).await.unwrap();
    assert_eq!(s, 200, "{path}: {b}");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_metrics_events_answers_or_databases() {
    let env = setup(Backend::Sqlite, &[], &[], false).await.unwrap();
    let admin = &env.admin;
    let mut secrets: Vec<(&str, String)> = vec![("gateway token", env.token.clone())];

    // A user's password and login token; an API token.
    let password = "leak-check-password-1".to_owned();
    let (s, b) = admin
        .post(
            "/api/v1/users",
            &json!({"username": "leaky", "password": password, "role": "editor"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let anon = Client::anonymous(&env.p.base);
    let (_, login) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "leaky", "password": password}),
        )
        .await
        .unwrap();
    let login_token = login["token"].as_str().unwrap().to_owned();
    let leaky = anon.with_bearer(&login_token);
    let (_, t) = leaky
        .post("/api/v1/tokens", &json!({"name": "ci"}))
        .await
        .unwrap();
    let api_token = t["token"].as_str().unwrap().to_owned();
    let bot = Client::anonymous(&env.p.base).with_bearer(&api_token);
    assert_eq!(bot.get("/api/v1/rest-apis").await.unwrap().0, 200);
    secrets.push(("password", password));
    secrets.push(("login token", login_token));
    secrets.push(("API token", api_token));

    // A secret's value, and a provider credential given in plain text.
    let secret_value = "sk-secret-value-4d1e9a";
    let credential = "sk-plain-credential-8c2b7f";
    assert_eq!(
        admin
            .post(
                "/api/v1/secrets",
                &json!({"id": "vault", "value": secret_value}),
            )
            .await
            .unwrap()
            .0,
        201
    );
    for (id, value) in [
        ("plainprov", format!("Bearer {credential}")),
        ("refprov", r#"Bearer {{ secret "vault" }}"#.to_owned()),
    ] {
        let mut body = env.body("llm-providers", id);
        body["upstream"]["auth"]["value"] = json!(value);
        let (s, b) = admin.post("/api/v1/llm-providers", &body).await.unwrap();
        assert_eq!(s, 201, "{b}");
        let d = env.deploy("llm-providers", id).await;
        env.wait_dep_status("llm-providers", id, &d, "DEPLOYED")
            .await;
        env.wait_probe("llm-providers", id, 200).await;
    }
    secrets.push(("secret value", secret_value.to_owned()));
    secrets.push(("provider credential", credential.to_owned()));

    // An API key and a subscription token, used for real.
    let (s, plan) = admin
        .post(
            "/api/v1/subscription-plans",
            &json!({"id": "leakplan", "displayName": "Leak plan", "limits": []}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{plan}");
    let mut api = env.body("rest-apis", "guarded");
    api["subscriptionPlans"] = json!(["leakplan"]);
    assert_eq!(admin.post("/api/v1/rest-apis", &api).await.unwrap().0, 201);
    let (_, key) = admin
        .post(
            "/api/v1/rest-apis/guarded/api-keys",
            &json!({"displayName": "app"}),
        )
        .await
        .unwrap();
    let api_key = key["apiKey"].as_str().unwrap().to_owned();
    let (_, sub) = admin
        .post("/api/v1/subscriptions", &json!({"artifactId": "guarded", "kind": "RestApi", "subscriberId": "team", "planId": "leakplan"}))
        .await
        .unwrap();
    let sub_token = sub["subscriptionToken"].as_str().unwrap().to_owned();
    env.deploy("rest-apis", "guarded").await;
    let t = env.gw.traffic();
    eventually(WAIT, "the subscription to be served", || async {
        let r = t
            .raw(
                reqwest::Method::GET,
                "/guarded/x",
                &[("subscription-key", sub_token.as_str())],
            )
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .unwrap();
    let _ = t
        .raw(
            reqwest::Method::GET,
            "/guarded/x",
            &[("api-key", api_key.as_str())],
        )
        .await;
    secrets.push(("API key", api_key));
    secrets.push(("subscription token", sub_token));

    // Everything a secret must not be in.
    let gw_token_client = Client::anonymous(&env.p.base).with_header("api-key", &env.token);
    let events = events(&gw_token_client, 0).await;
    let gw_admin = env.gw.admin();
    let http = reqwest::Client::new();
    let platform_metrics = http
        .get(format!("{}/metrics", env.p.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gateway_metrics = gw_admin.get_text("/metrics").await.unwrap().1;
    let mut answers: Vec<(String, Value)> = vec![];
    for path in [
        "/api/v1/users",
        "/api/v1/users/leaky",
        "/api/v1/tokens",
        "/api/v1/gateways/edge",
        "/api/v1/gateways/edge/tokens",
        "/api/v1/rest-apis/guarded",
        "/api/v1/rest-apis/guarded/api-keys",
        "/api/v1/subscriptions",
        "/api/v1/llm-providers/plainprov",
        "/api/v1/llm-providers/refprov",
        "/api/v1/secrets",
        "/api/v1/audit-log?limit=1000",
    ] {
        answers.push((path.to_owned(), must(admin, path).await));
    }
    for path in [
        "/api/management/v1/status",
        "/api/management/v1/llm-providers/plainprov",
        "/api/management/v1/llm-providers/refprov",
        "/api/management/v1/rest-apis/guarded",
        "/api/management/v1/rest-apis/guarded/api-keys",
    ] {
        answers.push((format!("gateway {path}"), must(&gw_admin, path).await));
    }
    let platform_log = env.p.process.output();
    let gateway_log = env.gw.process.output();
    for (what, secret) in &secrets {
        assert!(
            !platform_log.contains(secret.as_str()),
            "{what} in the platform's log"
        );
        assert!(
            !gateway_log.contains(secret.as_str()),
            "{what} in the gateway's log"
        );
        assert!(
            !platform_metrics.contains(secret.as_str()),
            "{what} in the platform's metrics"
        );
        assert!(
            !gateway_metrics.contains(secret.as_str()),
            "{what} in the gateway's metrics"
        );
        assert!(
            !json!(events).to_string().contains(secret.as_str()),
            "{what} in an event payload"
        );
        for (path, body) in &answers {
            assert!(
                !body.to_string().contains(secret.as_str()),
                "{what} in the answer of {path}"
            );
        }
        assert_eq!(
            files_holding(env.p.db.dir.path(), secret),
            Vec::<String>::new(),
            "{what} in the platform's database"
        );
        assert_eq!(
            files_holding(env.gw.dir.path(), secret),
            Vec::<String>::new(),
            "{what} in the gateway's files"
        );
    }
}
