//! `gatehouse dev`: the platform and one connected gateway in one process on embedded SQLite
//! under `./.gatehouse/`, a built-in echo upstream, and a sample REST API deployed with an API
//! key. Running it again keeps what was there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

/// Flags of `gatehouse dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where dev keeps its state.
    #[arg(long, env = "GATEHOUSE_DEV_DIR", default_value = ".gatehouse")]
    dir: PathBuf,
    /// Control plane address.
    #[arg(long, default_value = "127.0.0.1:9243")]
    platform_listen: SocketAddr,
    /// Gateway traffic address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway_listen: SocketAddr,
    /// Gateway management address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Built-in echo upstream address.
    #[arg(long, default_value = "127.0.0.1:9300")]
    upstream_listen: SocketAddr,
}

/// What dev remembers between runs (a local sandbox: kept in a 0600 file).
#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DevState {
    admin_password: String,
    gateway_token: Option<String>,
    api_key: Option<String>,
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn echo(req: axum::extract::Request) -> axum::Json<Value> {
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default())))
        .collect();
    axum::Json(
        json!({"echo": "gatehouse dev upstream", "method": req.method().as_str(), "path": req.uri().path(), "headers": headers}),
    )
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

/// Runs the dev stack until Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let state_path = args.dir.join("dev.json");
    let mut state: DevState = match std::fs::read_to_string(&state_path) {
        Ok(t) => serde_json::from_str(&t).context("reading the dev state")?,
        Err(_) => DevState {
            admin_password: gatehouse_core::crypto::random_token(""),
            ..Default::default()
        },
    };
    write_private(&state_path, &serde_json::to_string_pretty(&state)?)?;

    let upstream = tokio::net::TcpListener::bind(args.upstream_listen)
        .await
        .context("binding the echo upstream")?;
    let upstream_addr = upstream.local_addr()?;
    let upstream_task = tokio::spawn(async move {
        let _ = axum::serve(upstream, axum::Router::new().fallback(echo)).await;
    });

    let platform = gatehouse_platform::start(gatehouse_platform::PlatformConfig {
        listen: args.platform_listen,
        database: format!("sqlite://{}", args.dir.join("platform.db").display()),
        admin_password: Some(state.admin_password.clone()),
        ..Default::default()
    })
    .await?;
    let base = format!("http://{}", platform.addr);
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": state.admin_password}))
        .send()
        .await?
        .error_for_status()
        .context("logging in to the dev platform")?
        .json()
        .await?;
    let api = Api {
        http: http.clone(),
        base: base.clone(),
        token: login["token"].as_str().unwrap_or_default().to_owned(),
    };

    // The gateway, its token (a new one when the kept one no longer works), the sample API and key.
    api.call(
        reqwest::Method::POST,
        "/api/v1/gateways",
        Some(json!({"id": "dev", "displayName": "Dev gateway"})),
    )
    .await?;
    let token_works = match &state.gateway_token {
        Some(t) => http
            .get(format!("{base}/api/internal/v1/deployments"))
            .header("api-key", t)
            .send()
            .await?
            .status()
            .is_success(),
        None => false,
    };
    if !token_works {
        let (_, tokens) = api
            .call(reqwest::Method::GET, "/api/v1/gateways/dev/tokens", None)
            .await?;
        for t in tokens
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["status"] == "active")
        {
            let id = t["id"].as_str().unwrap_or_default();
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/gateways/dev/tokens/{id}"),
                None,
            )
            .await?;
        }
        let (s, t) = api
            .call(
                reqwest::Method::POST,
                "/api/v1/gateways/dev/tokens",
                Some(json!({})),
            )
            .await?;
        anyhow::ensure!(s == 201, "could not mint a gateway token: {t}");
        state.gateway_token = t["token"].as_str().map(str::to_owned);
    }
    let sample = json!({
        "id": "echo", "displayName": "Echo", "projectId": "default", "version": "v1", "context": "/echo",
        "upstream": {"main": {"url": format!("http://{upstream_addr}")}},
        "operations": [{"method": "GET", "path": "/*"}, {"method": "POST", "path": "/*"}],
        "policies": [{"name": "api-key-auth"}]
    });
    let (s, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/rest-apis",
            Some(sample.clone()),
        )
        .await?;
    if s == 409 {
        api.call(reqwest::Method::PUT, "/api/v1/rest-apis/echo", Some(sample))
            .await?;
    }
    let key_works = state.api_key.is_some() && {
        let (_, keys) = api
            .call(
                reqwest::Method::GET,
                "/api/v1/rest-apis/echo/api-keys",
                None,
            )
            .await?;
        keys["list"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["id"] == "dev-key" && k["status"] == "active")
    };
    if !key_works {
        api.call(
            reqwest::Method::DELETE,
            "/api/v1/rest-apis/echo/api-keys/dev-key",
            None,
        )
        .await?;
        let (s, k) = api
            .call(
                reqwest::Method::POST,
                "/api/v1/rest-apis/echo/api-keys",
                Some(json!({"id": "dev-key", "displayName": "dev key"})),
            )
            .await?;
        anyhow::ensure!(s == 201, "could not create the sample key: {k}");
        state.api_key = k["apiKey"].as_str().map(str::to_owned);
    }
    write_private(&state_path, &serde_json::to_string_pretty(&state)?)?;
    let (_, deps) = api
        .call(
            reqwest::Method::GET,
            "/api/v1/rest-apis/echo/deployments?gatewayId=dev",
            None,
        )
        .await?;
    let deployed = deps["list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["status"] == "DEPLOYED" || d["status"] == "DEPLOYING");
    if !deployed {
        api.call(
            reqwest::Method::POST,
            "/api/v1/rest-apis/echo/deployments",
            Some(json!({"gatewayId": "dev"})),
        )
        .await?;
    }

    let gateway = gatehouse_gateway::start(gatehouse_gateway::GatewayConfig {
        listen: args.gateway_listen,
        admin_listen: args.admin_listen,
        admin_password: Some(state.admin_password.clone()),
        data_dir: args.dir.join("gateway"),
        control_plane: Some(base.clone()),
        token: state.gateway_token.clone(),
        ..Default::default()
    })
    .await?;
    let key = state.api_key.clone().unwrap_or_default();
    let served = format!("http://{}/echo/hello", gateway.addr);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.get(&served).header("API-Key", &key).send().await;
        if r.map(|r| r.status().is_success()).unwrap_or(false) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the sample API was not served in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "\nGatehouse dev is running (state in {dir}).\n\n  control plane   {base}   (API docs: {base}/docs)\n  gateway         http://{gw}\n  gateway admin   http://{admin}/api/management/v1\n  login           admin / {password}\n\nTry:\n  curl -s http://{gw}/echo/hello -H 'API-Key: {key}'\n  curl -s http://{gw}/echo/hello\n  curl -s http://{gw}/nope\n\nCtrl-C stops.",
        dir = args.dir.display(),
        gw = gateway.addr,
        admin = gateway.admin_addr,
        password = state.admin_password,
    );
    shutdown_signal().await;
    eprintln!("stopping");
    gateway.shutdown().await;
    platform.shutdown().await?;
    upstream_task.abort();
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
