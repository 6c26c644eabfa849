//! The LLM path end to end: the real gateway binary in front of fake providers speaking the
//! OpenAI, Anthropic and Gemini APIs (`gatehouse_testkit::fake_llm`).

use gatehouse_testkit::fake_llm::FakeLlm;
use gatehouse_testkit::Gateway;
use serde_json::{json, Value};

use super::{create, gateway};

fn provider(name: &str, template: &str, url: &str, policies: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": name},
        "spec": {"displayName": name, "template": template, "context": format!("/{name}"),
                 "upstream": {"url": url, "auth": {"type": "api-key", "value": format!("sk-{name}")}},
                 "policies": policies}
    })
}

fn proxy(name: &str, spec: Value) -> Value {
    let mut s = json!({"displayName": name, "context": format!("/{name}")});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"apiVersion": "gatehouse.dev/v1", "kind": "LlmProxy", "metadata": {"name": name}, "spec": s})
}

/// The value of the series `name` whose labels include `labels`, or 0.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(gw: &Gateway) -> String {
    gw.admin().get_text("/metrics").await.unwrap().1
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]})
}

/// Posts `body` to the gateway's traffic port; returns status, headers and the body as text.
async fn post_text(
    gw: &Gateway,
    path: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gw.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_outside_the_allow_list_are_refused_in_the_provider_shape() {
    let up = FakeLlm::start("openai").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider(
            "oai",
            "openai",
            &up.url("/v1"),
            json!([{"name": "model-allow-list", "params": {"models": ["gpt-4o*", "o3"]}}]),
        ),
    )
    .await;
    let t = gw.traffic();
    let (s, b) = t
        .post("/oai/chat/completions", &chat("gpt-4o-mini", "hi there"))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["choices"][0]["message"]["content"], "Hello from openai");
    let seen = up.received();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-oai");

    let (s, b) = t
        .post("/oai/chat/completions", &chat("gpt-3.5-turbo", "hi"))
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "model_not_allowed");
    assert_eq!(b["error"]["type"], "invalid_request_error");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("'gpt-3.5-turbo'") && msg.contains("gpt-4o*"),
        "{msg}"
    );
    assert_eq!(
        up.received().len(),
        1,
        "the provider never saw the refused request"
    );

    let (s, b) = t
        .post_typed(
            "/oai/chat/completions",
            "application/json",
            b"{not json".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_usage_is_counted_and_hidden_unless_asked() {
    let up = FakeLlm::start("openai").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider("oai", "openai-compatible", &up.url("/v1"), json!([])),
    )
    .await;
    create(
        &admin,
        "llm-proxies",
        &proxy("chat", json!({"provider": {"id": "oai"}})),
    )
    .await;
    let t = gw.traffic();
    let labels = [("artifact", "chat"), ("provider", "oai"), ("model", "m1")];
    let tokens = |text: &str, kind: &str| {
        let mut l = labels.to_vec();
        l.push(("type", kind));
        metric(text, "gatehouse_llm_tokens_total", &l)
    };

    let mut body = chat("m1", "one two three");
    body["stream"] = json!(true);
    let (s, h, text) = post_text(&gw, "/chat/chat/completions", &body).await;
    assert_eq!(s, 200, "{text}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(
        !text.contains("usage"),
        "no usage the client did not ask for: {text}"
    );
    assert!(
        text.contains("\"content\":\"Hello \"") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    let sent = &up.received()[0].body;
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "the gateway asked for usage"
    );
    let m = metrics(&gw).await;
    // "be brief" + "one two three" = 5 prompt words; "Hello from openai" = 3 chunks.
    assert_eq!(
        (tokens(&m, "prompt"), tokens(&m, "completion")),
        (5.0, 3.0),
        "{m}"
    );

    // Asked for: exactly one usage chunk comes back.
    body["stream_options"] = json!({"include_usage": true});
    let (_, _, text) = post_text(&gw, "/chat/chat/completions", &body).await;
    assert_eq!(text.matches("\"choices\":[]").count(), 1, "{text}");
    let m = metrics(&gw).await;
    assert_eq!(
        (tokens(&m, "prompt"), tokens(&m, "completion")),
        (10.0, 6.0)
    );

    // Plain calls count too, and requests are counted by status.
    let (s, _) = t
        .post("/chat/chat/completions", &chat("m1", "four"))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let m = metrics(&gw).await;
    assert_eq!(tokens(&m, "prompt"), 13.0, "{m}");
    let mut l = labels.to_vec();
    l.push(("status", "200"));
    assert_eq!(metric(&m, "gatehouse_llm_requests_total", &l), 3.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limit_lets_the_crossing_request_finish_then_refuses() {
    let up = FakeLlm::start("openai").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider("oai", "openai", &up.url("/v1"), json!([])),
    )
    .await;
    create(
        &admin,
        "llm-proxies",
        &proxy(
            "capped",
            json!({"provider": {"id": "oai"},
                   "policies": [{"name": "token-rate-limit", "params": {"tokens": 12, "window": "1h"}}]}),
        ),
    )
    .await;
    let t = gw.traffic();
    // Each call: 2 + 1 prompt words and 3 completion words = 6 tokens.
    for _ in 0..2 {
        let (s, b) = t
            .post("/capped/chat/completions", &chat("m", "hi"))
            .await
            .unwrap();
        assert_eq!(s, 200, "{b}");
    }
    let (s, h, text) = post_text(&gw, "/capped/chat/completions", &chat("m", "hi")).await;
    assert_eq!(s, 429, "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["error"]["type"], "rate_limit_error", "{b}");
    assert!(h.contains_key("retry-after"));
    assert_eq!(h["ratelimit-limit"], "12");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(up.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_moves_on_before_any_byte_and_cools_the_failed_provider() {
    let a = FakeLlm::start("a").await;
    let b = FakeLlm::start("b").await;
    a.fail_with(503);
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider("pa", "openai", &a.url("/v1"), json!([])),
    )
    .await;
    create(
        &admin,
        "llm-providers",
        &provider("pb", "openai", &b.url("/v1"), json!([])),
    )
    .await;
    create(
        &admin,
        "llm-proxies",
        &proxy(
            "ha",
            json!({"providers": [{"id": "pa", "priority": 0}, {"id": "pb", "priority": 1}],
                   "failover": {"cooldown": "1h"}}),
        ),
    )
    .await;
    let t = gw.traffic();
    let (s, body) = t
        .post("/ha/chat/completions", &chat("m", "hi"))
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from b");
    assert_eq!((a.received().len(), b.received().len()), (1, 1));
    assert_eq!(b.received()[0].headers["authorization"], "Bearer sk-pb");
    let (s, _) = t
        .post("/ha/chat/completions", &chat("m", "hi"))
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(
        (a.received().len(), b.received().len()),
        (1, 2),
        "the failed provider is skipped while it cools down"
    );
    let m = metrics(&gw).await;
    assert_eq!(
        metric(
            &m,
            "gatehouse_llm_failovers_total",
            &[("artifact", "ha"), ("provider", "pa"), ("reason", "503")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "gatehouse_llm_requests_total",
            &[("artifact", "ha"), ("provider", "pb")]
        ),
        2.0
    );

    // When every provider fails, the last one's answer reaches the client.
    b.fail_with(500);
    let (s, body) = t
        .post("/ha/chat/completions", &chat("m", "hi"))
        .await
        .unwrap();
    assert_eq!(s, 503, "pb (500) then the cooling pa (503): {body}");
    assert_eq!((a.received().len(), b.received().len()), (2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_clients_reach_an_anthropic_provider_translated() {
    let up = FakeLlm::start("claude").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider("anth", "anthropic", &up.url(""), json!([])),
    )
    .await;
    create(
        &admin,
        "llm-proxies",
        &proxy("oa", json!({"provider": {"id": "anth"}, "api": "openai"})),
    )
    .await;
    let t = gw.traffic();
    let (s, b) = t
        .post(
            "/oa/chat/completions",
            &chat("claude-3-5-haiku", "hello you"),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["object"], "chat.completion");
    assert_eq!(b["choices"][0]["message"]["content"], "Hello from claude");
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
    assert_eq!(b["usage"]["prompt_tokens"], 4);
    assert_eq!(b["usage"]["completion_tokens"], 3);
    let sent = &up.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-anth");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.body["system"], "be brief");
    assert!(sent.body["max_tokens"].as_u64().is_some());

    let mut body = chat("claude-3-5-haiku", "hello you");
    body["stream"] = json!(true);
    let (s, _, text) = post_text(&gw, "/oa/chat/completions", &body).await;
    assert_eq!(s, 200, "{text}");
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from claude");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(text.ends_with("data: [DONE]\n\n"));
    let m = metrics(&gw).await;
    assert_eq!(
        metric(
            &m,
            "gatehouse_llm_tokens_total",
            &[
                ("artifact", "oa"),
                ("provider", "anth"),
                ("type", "completion")
            ]
        ),
        6.0,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_models_come_from_the_path_and_usage_from_usage_metadata() {
    let up = FakeLlm::start("gemini").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider(
            "gem",
            "gemini",
            &up.url(""),
            json!([{"name": "model-allow-list", "params": {"models": ["gemini-2.0-*"]}}]),
        ),
    )
    .await;
    let t = gw.traffic();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "tell me"}]}]});
    let (s, b) = t
        .post("/gem/v1beta/models/gemini-2.0-flash:generateContent", &body)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(up.received()[0].headers["x-goog-api-key"], "sk-gem");
    let (s, b) = t
        .post("/gem/v1beta/models/gemini-1.5-pro:generateContent", &body)
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["status"], "INVALID_ARGUMENT", "{b}");
    let (s, _, text) = post_text(
        &gw,
        "/gem/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        &body,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let m = metrics(&gw).await;
    let l = [("artifact", "gem"), ("model", "gemini-2.0-flash")];
    let mut p = l.to_vec();
    p.push(("type", "prompt"));
    let mut c = l.to_vec();
    c.push(("type", "completion"));
    assert_eq!(
        (
            metric(&m, "gatehouse_llm_tokens_total", &p),
            metric(&m, "gatehouse_llm_tokens_total", &c)
        ),
        (4.0, 6.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrails_refuse_mask_and_bound_prompts() {
    let up = FakeLlm::start("openai").await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-providers",
        &provider(
            "g",
            "openai",
            &up.url("/v1"),
            json!([
                {"name": "regex-guardrail", "params": {"rules": [
                    {"name": "no-secrets", "pattern": "(?i)password"},
                    {"name": "no-leaks", "pattern": "internal-only", "appliesTo": "response"}]}},
                {"name": "pii-masking", "params": {"custom": [{"name": "ticket", "pattern": "TCK-\\d+"}]}},
                {"name": "prompt-size-limit", "params": {"maxChars": 200}}
            ]),
        ),
    )
    .await;
    let t = gw.traffic();
    let (s, b) = t
        .post("/g/chat/completions", &chat("m", "my Password is hunter2"))
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-secrets"),
        "{b}"
    );
    assert!(up.received().is_empty());

    let (s, b) = t
        .post(
            "/g/chat/completions",
            &chat(
                "m",
                "mail ann@example.com about TCK-1234, card 4111 1111 1111 1111",
            ),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let sent = up.received()[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        sent.contains("[EMAIL]") && sent.contains("[TICKET]") && sent.contains("[CARD]"),
        "{sent}"
    );
    assert!(
        !sent.contains("ann@example.com") && !sent.contains("4111"),
        "{sent}"
    );

    let (s, b) = t
        .post("/g/chat/completions", &chat("m", &"x".repeat(300)))
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "prompt_too_large", "{b}");

    up.set_reply("this is internal-only data");
    let (s, b) = t
        .post("/g/chat/completions", &chat("m", "hi"))
        .await
        .unwrap();
    assert_eq!(s, 502, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("no-leaks"),
        "{b}"
    );
    let mut body = chat("m", "hi");
    body["stream"] = json!(true);
    let (s, _, text) = post_text(&gw, "/g/chat/completions", &body).await;
    assert_eq!(s, 200);
    assert!(
        text.contains("no-leaks") && !text.contains("\"internal-only"),
        "the stream is cut before the matching chunk: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_over_a_missing_provider_is_unavailable_with_its_name() {
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "llm-proxies",
        &proxy("orphan", json!({"providers": [{"id": "nowhere"}]})),
    )
    .await;
    let (s, b) = gw
        .traffic()
        .post("/orphan/chat/completions", &chat("m", "hi"))
        .await
        .unwrap();
    assert_eq!(s, 503, "{b}");
    assert!(b.to_string().contains("nowhere"), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_of_its_own_and_prices_of_the_operator() {
    let up = FakeLlm::start("acme").await;
    let dir = gatehouse_testkit::TempDir::new("pricing").unwrap();
    let prices = dir.path().join("prices.json");
    std::fs::write(&prices, r#"{"acme-1": {"input": 1000000, "output": 0}}"#).unwrap();
    let gw = gateway(&["--llm-pricing", prices.to_str().unwrap()]).await;
    let admin = gw.admin();
    // Without organization templates, a provider names a built-in one or brings its own.
    let mut doc = provider("acme", "acme", &up.url("/v1"), json!([]));
    let (s, b) = admin
        .post("/api/management/v1/llm-providers", &doc)
        .await
        .unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("spec.template")),
        "{b}"
    );
    doc["spec"]["templateDefinition"] = json!({
        "id": "acme", "displayName": "Acme", "api": "openai",
        "auth": {"header": "X-Acme-Key", "prefix": "Key "},
        "extract": {"requestModel": [{"in": "body", "pointer": "/model"}],
                    "responseModel": ["/model"],
                    "promptTokens": ["/usage/prompt_tokens"], "completionTokens": ["/usage/completion_tokens"]}
    });
    create(&admin, "llm-providers", &doc).await;
    let (s, b) = gw
        .traffic()
        .post("/acme/chat/completions", &chat("acme-1", "one two"))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(up.received()[0].headers["x-acme-key"], "Key sk-acme");
    // 4 prompt tokens at the operator's price of 1 USD each (per million: 1e6).
    let m = metrics(&gw).await;
    assert_eq!(
        metric(
            &m,
            "gatehouse_llm_cost_usd_total",
            &[("artifact", "acme"), ("model", "acme-1")]
        ),
        4.0,
        "{m}"
    );
}
