//! `gatehouse dev`: the platform and one connected gateway in one process on embedded SQLite
//! under `./.gatehouse/`, a built-in echo upstream, and a sample REST API deployed with an API
//! key. Running it again keeps what was there.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

use gatehouse_client::{Client, Method, NewApiKey, NewArtifact, NewGateway};
use gatehouse_core::spec::ArtifactSpec;
use gatehouse_core::{ArtifactKind, Handle};

/// The handle dev registers its gateway under.
const DEV_GATEWAY: &str = "dev";
/// The handle of the sample API.
const SAMPLE_API: &str = "echo";
/// The handle of the sample API's key.
const SAMPLE_KEY: &str = "dev-key";

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

/// Writes `text` to `path`, readable by the user only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The built-in upstream: answers every request with what it received.
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

/// One of dev's fixed handles.
fn handle(value: &str) -> anyhow::Result<Handle> {
    Ok(Handle::parse("id", value)?)
}

/// The sample REST API: everything under `/echo` to the echo upstream, behind an API key.
fn sample_api(upstream: SocketAddr) -> anyhow::Result<NewArtifact> {
    let spec = json!({
        "displayName": "Echo", "version": "v1", "context": "/echo",
        "upstream": {"main": {"url": format!("http://{upstream}")}},
        "operations": [{"method": "GET", "path": "/*"}, {"method": "POST", "path": "/*"}],
        "policies": [{"name": "api-key-auth"}]
    });
    Ok(NewArtifact {
        id: handle(SAMPLE_API)?,
        project_id: None,
        spec: ArtifactSpec::parse(ArtifactKind::RestApi, spec)?,
    })
}

/// Whether the gateway token kept from an earlier run still admits the gateway.
async fn token_works(platform: &Client, token: Option<&str>) -> anyhow::Result<bool> {
    let Some(token) = token else {
        return Ok(false);
    };
    let (status, _) = platform
        .with_header("api-key", token)
        .request(Method::GET, "/api/internal/v1/deployments", None)
        .await?;
    Ok(status.is_success())
}

/// Registers the dev gateway and mints its token (a new one when the kept one no longer works),
/// creates or updates the sample API and its key, and deploys it; keeps what it made in `state`.
async fn provision(
    api: &Client,
    state: &mut DevState,
    state_path: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<()> {
    let gateway_id = handle(DEV_GATEWAY)?;

    let registered = api
        .create_gateway(&NewGateway {
            id: Some(gateway_id.clone()),
            display_name: "Dev gateway".into(),
            description: None,
        })
        .await;
    match registered {
        Err(e) if e.is_conflict() => {} // registered by an earlier run
        other => drop(other.context("registering the dev gateway")?),
    }
    if !token_works(&Client::new(api.base()), state.gateway_token.as_deref()).await? {
        for t in api.gateway_tokens(&gateway_id).await? {
            if t.is_active() {
                api.revoke_gateway_token(&gateway_id, &t.id).await?;
            }
        }
        let token = api
            .create_gateway_token(&gateway_id)
            .await
            .context("could not mint a gateway token")?;
        state.gateway_token = Some(token.token);
    }
    let sample = sample_api(upstream)?;
    match api.create_artifact(&sample).await {
        Err(e) if e.is_conflict() => drop(api.update_artifact(&sample).await?),
        other => drop(other.context("creating the sample API")?),
    }
    let key_id = handle(SAMPLE_KEY)?;
    let key_works = state.api_key.is_some()
        && api
            .api_keys(ArtifactKind::RestApi, &sample.id)
            .await?
            .list
            .iter()
            .any(|k| k.id == key_id && k.is_active());
    if !key_works {
        match api
            .revoke_api_key(ArtifactKind::RestApi, &sample.id, &key_id)
            .await
        {
            Err(e) if e.is_not_found() => {} // first run: no key yet
            other => other?,
        }
        let key = api
            .create_api_key(
                ArtifactKind::RestApi,
                &sample.id,
                &NewApiKey {
                    id: Some(key_id),
                    display_name: "dev key".into(),
                    ..Default::default()
                },
            )
            .await
            .context("could not create the sample key")?;
        state.api_key = Some(key.api_key);
    }
    write_private(state_path, &serde_json::to_string_pretty(state)?)?;
    let deployed = api
        .deployments(ArtifactKind::RestApi, &sample.id, Some(&gateway_id))
        .await?
        .list
        .iter()
        .any(|d| d.is_live());
    if !deployed {
        api.deploy(ArtifactKind::RestApi, &sample.id, &gateway_id)
            .await
            .context("deploying the sample API")?;
    }
    Ok(())
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
    let anonymous = Client::new(&base);
    let login = anonymous
        .login("admin", &state.admin_password, None)
        .await
        .context("logging in to the dev platform")?;
    let api = anonymous.with_token(&login.token);
    provision(&api, &mut state, &state_path, upstream_addr).await?;

    let gateway = gatehouse_gateway::start(gatehouse_gateway::GatewayConfig {
        listen: Some(args.gateway_listen),
        admin_listen: args.admin_listen,
        admin_password: Some(state.admin_password.clone()),
        data_dir: args.dir.join("gateway"),
        control_plane: Some(base.clone()),
        token: state.gateway_token.clone(),
        ..Default::default()
    })
    .await?;
    let key = state.api_key.clone().unwrap_or_default();
    let gateway_addr = gateway.addr.context("the dev gateway serves plain HTTP")?;
    let traffic = Client::new(&format!("http://{gateway_addr}")).with_header("API-Key", &key);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = traffic.request(Method::GET, "/echo/hello", None).await;
        if answer.is_ok_and(|(status, _)| status.is_success()) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the sample API was not served in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "\nGatehouse dev is running (state in {dir}).\n\n  console         {base}/console/\n  control plane   {base}   (API docs: {base}/docs)\n  gateway         http://{gw}\n  gateway admin   http://{admin}/api/management/v1\n  login           admin / {password}\n\nTry:\n  curl -s http://{gw}/echo/hello -H 'API-Key: {key}'\n  curl -s http://{gw}/echo/hello\n  curl -s http://{gw}/nope\n\nCtrl-C stops.",
        dir = args.dir.display(),
        gw = gateway_addr,
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
