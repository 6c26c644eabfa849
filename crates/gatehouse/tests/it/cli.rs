//! The CLI end to end against a real platform and gateway.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use gatehouse_testkit::echo::EchoServer;
use gatehouse_testkit::{Gateway, TempDir};
use serde_json::json;

fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    cli_with_input(config, args, "")
}

/// `gatehouse login` to `p` as its admin, keeping the token in `config`.
fn login(config: &Path, p: &Platform) {
    let (ok, out, err) = cli(
        config,
        &[
            "login",
            "--server",
            &p.base,
            "--password",
            &p.admin_password,
        ],
    );
    assert!(ok, "{out}{err}");
}

/// A platform on SQLite and gateway `edge` connected to it.
async fn platform_and_gateway() -> (Platform, Gateway) {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let admin = p.login("default").await.unwrap();
    let token = gateway_token(&admin, "edge").await;
    let gw = Gateway::start(
        Path::new(BIN),
        &["--control-plane", &p.base, "--token", &token],
    )
    .await
    .unwrap();
    (p, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_and_deploy_from_the_command_line() {
    let (p, gw) = platform_and_gateway().await;
    let admin = p.login("default").await.unwrap();
    let up = EchoServer::start("upstream").await;
    let config = TempDir::new("cli-config").unwrap();
    let docs = TempDir::new("cli-docs").unwrap();

    login(config.path(), &p);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config.path().join("credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let url = up.url("/up");
    std::fs::write(
        docs.path().join("llm.yaml"),
        format!(
            "apiVersion: gatehouse.dev/v1\nkind: LlmProvider\nmetadata:\n  name: openai\nspec:\n  displayName: OpenAI\n  template: openai\n  context: /openai\n  upstream:\n    url: {url}\n    auth: {{ type: api-key, header: Authorization, value: Bearer sk-1 }}\n---\napiVersion: gatehouse.dev/v1\nkind: LlmProxy\nmetadata:\n  name: chat\nspec:\n  displayName: Chat\n  context: /chat\n  provider: {{ id: openai }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        docs.path().join("orders.yaml"),
        format!("apiVersion: gatehouse.dev/v1\nkind: RestApi\nmetadata:\n  name: orders\nspec:\n  displayName: Orders\n  version: v1.0\n  context: /orders/$version\n  upstream:\n    main: {{ url: {url} }}\n  operations:\n    - {{ method: GET, path: /items/{{id}} }}\n"),
    )
    .unwrap();
    std::fs::write(
        docs.path().join("tools.json"),
        json!({"apiVersion": "gatehouse.dev/v1", "kind": "Mcp", "metadata": {"name": "tools"}, "spec": {"displayName": "Tools", "context": "/tools", "upstream": {"url": url}}}).to_string(),
    )
    .unwrap();
    let dir = docs.path().to_str().unwrap();

    // A dry run shows the plan and changes nothing.
    let (ok, out, _) = cli(config.path(), &["apply", "-f", dir, "--dry-run"]);
    assert!(ok);
    assert_eq!(out.matches("+ create").count(), 4, "{out}");
    assert_eq!(admin.get("/api/v1/rest-apis/orders").await.unwrap().0, 404);

    let (ok, out, err) = cli(config.path(), &["apply", "-f", dir, "--deploy", "edge"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("applied 4 change(s)"), "{out}");
    let t = gw.traffic();
    for path in ["/orders/v1.0/items/1", "/openai/models", "/chat/models"] {
        eventually(Duration::from_secs(20), path, || async {
            (t.get(path).await.ok()?.0 == 200).then_some(())
        })
        .await
        .unwrap();
    }
    eventually(Duration::from_secs(20), "mcp", || async {
        (t.raw(reqwest::Method::GET, "/tools/mcp", &[])
            .await
            .ok()?
            .status()
            == 200)
            .then_some(())
    })
    .await
    .unwrap();

    // Again: nothing to do.
    let (ok, out, _) = cli(config.path(), &["apply", "-f", dir]);
    assert!(ok);
    assert!(out.contains("no change"), "{out}");
    assert_eq!(out.matches("= unchanged").count(), 4, "{out}");

    // A broken document: non-zero, the message names file and field, nothing changes.
    std::fs::write(docs.path().join("zz-broken.yaml"), "apiVersion: gatehouse.dev/v1\nkind: RestApi\nmetadata:\n  name: broken\nspec:\n  displayName: Broken\n  context: no-slash\n  upstream:\n    main: { url: http://x }\n").unwrap();
    let (ok, out, err) = cli(config.path(), &["apply", "-f", dir]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("zz-broken.yaml") && err.contains("spec.context"),
        "{err}"
    );
    assert_eq!(admin.get("/api/v1/rest-apis/broken").await.unwrap().0, 404);
    std::fs::remove_file(docs.path().join("zz-broken.yaml")).unwrap();

    // An update is planned as one.
    let orders = std::fs::read_to_string(docs.path().join("orders.yaml"))
        .unwrap()
        .replace("Orders", "Orders v2");
    std::fs::write(docs.path().join("orders.yaml"), orders).unwrap();
    let (ok, out, _) = cli(config.path(), &["apply", "-f", dir]);
    assert!(ok);
    assert!(out.contains("~ update    RestApi/orders"), "{out}");

    // get in each format.
    let (ok, out, _) = cli(config.path(), &["get", "rest-apis", "-o", "json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["list"][0]["displayName"], "Orders v2");
    let (ok, out, _) = cli(config.path(), &["get", "rest-apis", "orders", "-o", "yaml"]);
    assert!(ok && out.contains("context: /orders/$version"), "{out}");
    let (ok, out, _) = cli(config.path(), &["get", "gateways"]);
    assert!(
        ok && out.contains("edge") && out.contains("connected=true"),
        "{out}"
    );

    // deploy --wait returns once the gateway acked.
    let (ok, out, err) = cli(
        config.path(),
        &["deploy", "rest-apis/orders", "--gateway", "edge", "--wait"],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("deployed"), "{out}");
    let (ok, _, err) = cli(
        config.path(),
        &["deploy", "rest-apis/nope", "--gateway", "edge"],
    );
    assert!(!ok && err.contains("not found"), "{err}");

    // undeploy / restore --wait, with the traffic following.
    let (ok, out, err) = cli(
        config.path(),
        &[
            "undeploy",
            "rest-apis/orders",
            "--gateway",
            "edge",
            "--wait",
        ],
    );
    assert!(ok && out.contains("undeployed"), "{out}{err}");
    assert_eq!(t.get("/orders/v1.0/items/1").await.unwrap().0, 404);
    let (ok, out, err) = cli(
        config.path(),
        &["restore", "rest-apis/orders", "--gateway", "edge", "--wait"],
    );
    assert!(ok && out.contains("deployed"), "{out}{err}");
    assert_eq!(t.get("/orders/v1.0/items/1").await.unwrap().0, 200);

    // keys create / list / revoke.
    let (ok, out, _) = cli(
        config.path(),
        &[
            "keys",
            "create",
            "mcp-proxies/tools",
            "--id",
            "ci",
            "--name",
            "CI",
        ],
    );
    assert!(ok, "{out}");
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("ghk_"), "{out}");
    let (ok, out, _) = cli(config.path(), &["keys", "list", "mcp-proxies/tools"]);
    assert!(
        ok && out.contains("ci") && out.contains("active") && !out.contains(&key),
        "{out}"
    );
    let (ok, _, _) = cli(
        config.path(),
        &["keys", "revoke", "mcp-proxies/tools", "--id", "ci"],
    );
    assert!(ok);
    let (_, out, _) = cli(config.path(), &["keys", "list", "mcp-proxies/tools"]);
    assert!(out.contains("revoked"), "{out}");

    let (ok, out, _) = cli(config.path(), &["gateways"]);
    assert!(
        ok && out
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("edge") && l.contains("true")),
        "{out}"
    );
    let (ok, out, _) = cli(config.path(), &["delete", "mcp-proxies/tools"]);
    assert!(ok && out.contains("deleted"), "{out}");
    eventually(
        Duration::from_secs(20),
        "the delete to reach the gateway",
        || async {
            (t.raw(reqwest::Method::GET, "/tools/mcp", &[])
                .await
                .ok()?
                .status()
                == 404)
                .then_some(())
        },
    )
    .await
    .unwrap();
    let (ok, out, _) = cli(config.path(), &["completions", "bash"]);
    assert!(
        ok && out.contains("gatehouse") && out.contains("apply"),
        "completions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_llm_proxies_apply_and_serve_from_the_command_line() {
    let (p, gw) = platform_and_gateway().await;
    let up = gatehouse_testkit::fake_llm::FakeLlm::start("acme").await;
    let config = TempDir::new("cli-config").unwrap();
    let docs = TempDir::new("cli-docs").unwrap();
    login(config.path(), &p);
    let url = up.url("/v1");
    std::fs::write(
        docs.path().join("acme.yaml"),
        format!(
            "apiVersion: gatehouse.dev/v1\nkind: LlmProviderTemplate\nmetadata:\n  name: acme\nspec:\n  displayName: Acme\n  api: openai\n  auth: {{ header: X-Acme-Key, prefix: 'Key ' }}\n  extract:\n    requestModel: [{{ in: body, pointer: /model }}]\n    responseModel: [/model]\n    promptTokens: [/usage/prompt_tokens]\n    completionTokens: [/usage/completion_tokens]\n---\napiVersion: gatehouse.dev/v1\nkind: LlmProvider\nmetadata:\n  name: acme\nspec:\n  displayName: Acme\n  template: acme\n  context: /acme\n  upstream:\n    url: {url}\n    auth: {{ type: api-key, value: sk-acme }}\n---\napiVersion: gatehouse.dev/v1\nkind: LlmProxy\nmetadata:\n  name: acme-chat\nspec:\n  displayName: Acme chat\n  context: /acme-chat\n  provider: {{ id: acme }}\n  policies:\n    - {{ name: model-allow-list, params: {{ models: [acme-*] }} }}\n"
        ),
    )
    .unwrap();
    let dir = docs.path().to_str().unwrap();
    let (ok, out, err) = cli(config.path(), &["apply", "-f", dir, "--deploy", "edge"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("+ create    LlmProviderTemplate/acme"),
        "{out}"
    );
    let traffic = gw.traffic();
    let body = json!({"model": "acme-1", "messages": [{"role": "user", "content": "hello there"}]});
    let answer = eventually(Duration::from_secs(20), "the proxy is served", || {
        let (traffic, body) = (traffic.clone(), body.clone());
        async move {
            let (s, b) = traffic
                .post("/acme-chat/chat/completions", &body)
                .await
                .ok()?;
            (s == 200).then_some(b)
        }
    })
    .await
    .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from acme"
    );
    let seen = up.received();
    assert_eq!(seen.last().unwrap().headers["x-acme-key"], "Key sk-acme");
    let (s, b) = traffic
        .post(
            "/acme-chat/chat/completions",
            &json!({"model": "gpt-4o", "messages": []}),
        )
        .await
        .unwrap();
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("model_not_allowed")),
        "{b}"
    );
    let (_, metrics) = gw.admin().get_text("/metrics").await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gatehouse_llm_tokens_total{")
                && l.contains("artifact=\"acme-chat\"")
                && l.contains("type=\"prompt\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
    // Applying again changes nothing.
    let (ok, out, _) = cli(config.path(), &["apply", "-f", dir]);
    assert!(
        ok && out.contains("= unchanged LlmProviderTemplate/acme") && out.contains("no change"),
        "{out}"
    );
}

/// Runs the CLI with `stdin` as its standard input.
fn cli_with_input(config: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env("GATEHOUSE_CONFIG_DIR", config)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_standard_input_and_files_never_printed() {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let config = TempDir::new("cli-config").unwrap();
    login(config.path(), &p);
    let value = "sk-cli-0123456789";
    let (ok, out, err) = cli_with_input(
        config.path(),
        &["secrets", "create", "openai", "--name", "OpenAI key"],
        &format!("{value}\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("secret openai created (hmac-sha256:"), "{out}");
    // The trailing line break was taken off: the same value through the API fingerprints alike.
    let admin = p.login("default").await.unwrap();
    let (s, twin) = admin
        .post("/api/v1/secrets", &json!({"id": "twin", "value": value}))
        .await
        .unwrap();
    assert_eq!(s, 201);
    let (_, listed) = admin.get("/api/v1/secrets/openai").await.unwrap();
    assert_eq!(listed["fingerprint"], twin["fingerprint"]);
    assert_eq!(listed["displayName"], "OpenAI key");

    // Rotated from a file.
    let dir = TempDir::new("cli-secret").unwrap();
    let file = dir.path().join("value");
    std::fs::write(&file, "sk-cli-rotated\n").unwrap();
    let (ok, out, err) = cli(
        config.path(),
        &[
            "secrets",
            "rotate",
            "openai",
            "--from-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}{err}");
    let (_, rotated) = admin.get("/api/v1/secrets/openai").await.unwrap();
    assert_ne!(rotated["fingerprint"], listed["fingerprint"]);

    // Listed without values; an empty value refused; deleted.
    let (ok, out, err) = cli(config.path(), &["secrets", "list"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("openai") && out.contains("twin"), "{out}");
    assert!(
        out.contains(rotated["fingerprint"].as_str().unwrap()),
        "{out}"
    );
    assert!(
        !out.contains(value) && !out.contains("sk-cli-rotated"),
        "{out}"
    );
    let (ok, _, err) = cli_with_input(config.path(), &["secrets", "create", "empty"], "\n");
    assert!(!ok && err.contains("the value is empty"), "{err}");
    let (ok, out, err) = cli(config.path(), &["secrets", "delete", "twin"]);
    assert!(ok, "{out}{err}");
    assert_eq!(admin.get("/api/v1/secrets/twin").await.unwrap().0, 404);
    let (ok, _, err) = cli(config.path(), &["secrets", "delete", "twin"]);
    assert!(!ok && err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_from_the_command_line_and_a_login_with_an_api_token() {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let config = TempDir::new("cli-config").unwrap();
    let config = config.path();
    login(config, &p);
    let pw = "alice-password-1";
    let (ok, out, err) = cli_with_input(
        config,
        &["users", "create", "alice", "--role", "viewer"],
        &format!("{pw}\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(!out.contains(pw) && !err.contains(pw), "{out}{err}");
    let (ok, out, err) = cli(config, &["users", "set-role", "alice", "editor"]);
    assert!(ok && out.contains("alice is now editor"), "{out}{err}");
    let (ok, out, err) = cli(config, &["users", "list"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("alice") && l.ends_with("editor")),
        "{out}"
    );

    // Alice logs in, makes herself a token, and logs in with it.
    let alice = TempDir::new("cli-alice").unwrap();
    let alice = alice.path();
    let (ok, out, err) = cli(
        alice,
        &[
            "login",
            "--server",
            &p.base,
            "--username",
            "alice",
            "--password",
            pw,
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli_with_input(
        alice,
        &["users", "passwd"],
        &format!("{pw}\nalice-password-2\n"),
    );
    assert!(ok && out.contains("password changed"), "{out}{err}");
    let anon = Client::anonymous(&p.base);
    let (s, b) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "alice", "password": "alice-password-2"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let as_alice = anon.with_bearer(b["token"].as_str().unwrap());
    let (s, t) = as_alice
        .post(
            "/api/v1/tokens",
            &json!({"name": "laptop", "role": "viewer"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{t}");
    let token = t["token"].as_str().unwrap();
    let bot = TempDir::new("cli-bot").unwrap();
    let (ok, out, err) = cli_with_input(
        bot.path(),
        &["login", "--server", &p.base, "--token"],
        token,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("as alice (viewer)"), "{out}");
    let (ok, out, err) = cli(bot.path(), &["users", "me"]);
    assert!(ok && out.contains("alice (viewer)"), "{out}{err}");
    // A viewer's token lists but does not change.
    let (ok, out, err) = cli(bot.path(), &["users", "list"]);
    assert!(!ok && err.contains("your role 'viewer'"), "{out}{err}");
    let (ok, out, err) = cli(bot.path(), &["login", "--server", &p.base, "--token"]);
    assert!(!ok, "an empty token is refused: {out}{err}");
    let (ok, out, err) = cli(config, &["users", "delete", "alice"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(bot.path(), &["users", "me"]);
    assert!(!ok && err.contains("gatehouse login"), "{out}{err}");
}
