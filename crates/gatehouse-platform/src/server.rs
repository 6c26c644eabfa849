//! Starting and stopping a platform process: store, keys, bootstrap, background tasks, listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::task::JoinHandle;

use crate::auth::JwtKeys;
use crate::changelog::{self, ChangeFeed};
use crate::config::PlatformConfig;
use crate::crypto::{random_bytes, Sealer};
use crate::service::{deployments, identity};
use crate::state::{AppState, Platform};
use crate::store::{now_ms, Db};

/// A platform serving in the background.
pub struct RunningPlatform {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state.
    pub state: AppState,
    shutdown: axum_server::Handle,
    server: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningPlatform {
    /// Waits until the server stops (on error or after `shutdown`).
    pub async fn wait(self) -> anyhow::Result<()> {
        let res = self.server.await;
        for t in &self.tasks {
            t.abort();
        }
        self.state.db.close().await;
        res.context("server task")?.context("serving")?;
        Ok(())
    }

    /// Stops accepting connections, lets requests in flight finish, then returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown
            .graceful_shutdown(Some(Duration::from_secs(10)));
        self.wait().await
    }
}

/// A key from settings, or generated and stored on first start (race-safe between replicas).
async fn setting_key(db: &Db, name: &str, configured: Option<&str>) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = configured {
        let key = STANDARD
            .decode(k.trim())
            .with_context(|| format!("{name} must be base64"))?;
        if key.len() < 32 {
            anyhow::bail!("{name} must be at least 32 bytes");
        }
        return Ok(key);
    }
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(name)
        .bind(STANDARD.encode(random_bytes(32)))
        .execute(db.pool())
        .await?;
    let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(name)
        .fetch_one(db.pool())
        .await?;
    Ok(STANDARD.decode(stored)?)
}

/// Starts a platform: connects and migrates the store, bootstraps, binds the listener.
pub async fn start(config: PlatformConfig) -> anyhow::Result<RunningPlatform> {
    let db = Db::connect(&config.database).await?;
    let signing = setting_key(&db, "signing_key", config.signing_key.as_deref()).await?;
    let sealing = setting_key(&db, "encryption_key", config.encryption_key.as_deref()).await?;
    if let Some(password) = identity::bootstrap(&db, config.admin_password.as_deref()).await? {
        // Printed once on the terminal, never logged.
        eprintln!("\n  Gatehouse created user 'admin' with password: {password}\n  It is not shown again.\n");
    }
    crate::api::ops_prometheus();
    let state = AppState(Arc::new(Platform {
        jwt: JwtKeys::new(&signing),
        sealer: Sealer::new(&sealing[..32])?,
        feed: ChangeFeed::default(),
        hub: crate::hub::Hub::default(),
        db,
        config,
    }));
    let mut tasks = vec![
        spawn_timeout_sweeper(state.clone()),
        spawn_compactor(state.clone()),
    ];
    if state.db.backend() == crate::store::Backend::Postgres {
        tasks.push(spawn_pg_listener(state.clone()));
    }

    let std_listener = std::net::TcpListener::bind(state.config.listen)
        .with_context(|| format!("binding {}", state.config.listen))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let app = crate::api::router(state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let server = match &state.config.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            let server = axum_server::from_tcp_rustls(std_listener, tls).handle(handle.clone());
            tokio::spawn(server.serve(app))
        }
        None => {
            let server = axum_server::from_tcp(std_listener).handle(handle.clone());
            tokio::spawn(server.serve(app))
        }
    };
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, database = %crate::store::redact_url(&state.config.database), "platform listening on {scheme}://{addr}");
    Ok(RunningPlatform {
        addr,
        state,
        shutdown: handle,
        server,
        tasks,
    })
}

/// Runs a platform until Ctrl-C or SIGTERM.
pub async fn run(config: PlatformConfig) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Fails deploys and undeploys whose ack did not come in time.
fn spawn_timeout_sweeper(state: AppState) -> JoinHandle<()> {
    let timeout = state.config.deployment_timeout;
    let every = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match deployments::sweep_timeouts(&state.db, timeout.as_millis() as i64).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    count = n,
                    "deployments timed out waiting for their gateway's ack"
                ),
                Err(e) => tracing::warn!(error = %e, "deployment timeout sweep failed"),
            }
        }
    })
}

/// Removes change-log events older than the retention period.
fn spawn_compactor(state: AppState) -> JoinHandle<()> {
    let retention = state.config.event_retention;
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let cutoff = now_ms() - retention.as_millis() as i64;
            match changelog::compact(&state.db, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "compacted the change log"),
                Err(e) => tracing::warn!(error = %e, "change-log compaction failed"),
            }
        }
    })
}

/// With PostgreSQL, other replicas' appends and gateway closures arrive as notifications and
/// wake this replica's connections.
fn spawn_pg_listener(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let listener = async {
                let mut l = sqlx::postgres::PgListener::connect(&state.config.database).await?;
                l.listen_all([changelog::CHANGES_CHANNEL, "gatehouse_gateway_closed"])
                    .await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL notifications unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            loop {
                match listener.recv().await {
                    Ok(n) if n.channel() == "gatehouse_gateway_closed" => {
                        state.hub.close_gateway(n.payload())
                    }
                    Ok(n) => state.feed.relay(n.payload()),
                    Err(e) => {
                        tracing::warn!(error = %e, "PostgreSQL notification stream broke; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}
