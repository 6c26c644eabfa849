//! A running gateway: its store, its data plane and the rebuild that joins them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::admin;
use crate::llm::pricing::Pricing;
use crate::proxy::llm::LlmState;
use crate::proxy::policies::RateLimiters;
use crate::proxy::routes::{Held, RouteTable};
use crate::proxy::{self, Proxy, Timeouts};
use crate::secrets::{self, Resolved, Secrets};
use crate::store::StoredArtifact;
use crate::store::{Store, StoreError};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The local store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the store holds could not be compiled into a route table.
    #[error("building the route table from the local store: {0}")]
    RouteTable(#[source] StoreError),
    /// The management API's password could not be set up.
    #[error("setting up the management API password: {0:#}")]
    AdminPassword(anyhow::Error),
    /// A listener could not be bound.
    #[error("binding the {listener} listener {addr}: {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The LLM pricing file cannot be read or is not a price table.
    #[error("LLM pricing file {path}: {message}")]
    Pricing { path: PathBuf, message: String },
    /// The TLS certificates do not load.
    #[error("TLS: {0}")]
    Tls(#[from] proxy::tls::TlsError),
    /// Neither plain nor TLS traffic would be served.
    #[error("no traffic listener: give --listen or --tls-listen")]
    NoListener,
    /// The control-plane client could not be built.
    #[error("control plane client: {0}")]
    ControlPlane(#[source] crate::sync::SyncError),
    /// The shared rate-limit store's address is not usable.
    #[error(transparent)]
    QuotaStore(#[from] crate::quota_store::QuotaStoreError),
    /// A control plane was named without a registration token.
    #[error("--control-plane needs --token (a gateway registration token)")]
    MissingToken,
}

/// Everything `gatehouse gateway` needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where plain HTTP traffic is served (`None`: not at all).
    pub listen: Option<SocketAddr>,
    /// Where HTTPS traffic is served, and the certificates.
    pub tls: Option<TlsListen>,
    /// Where the management API and `/metrics` listen.
    pub admin_listen: SocketAddr,
    /// Password of the management API's user `admin`; generated and printed once when unset.
    pub admin_password: Option<String>,
    /// Where the local store lives.
    pub data_dir: PathBuf,
    /// Upstream connect timeout (then 503).
    pub connect_timeout: Duration,
    /// Upstream response-headers timeout (then 504).
    pub upstream_timeout: Duration,
    /// Largest management API body.
    pub admin_body_limit: usize,
    /// Threads serving traffic (0: one per core).
    pub workers: usize,
    /// Control-plane base URL; `None` runs standalone.
    pub control_plane: Option<String>,
    /// Registration token for the control plane.
    pub token: Option<String>,
    /// Period of the full reconcile with the control plane.
    pub sync_interval: Duration,
    /// JSON file of LLM prices over the built-in ones (see `crate::llm::pricing`).
    pub llm_pricing: Option<PathBuf>,
    /// What each client connection is held to.
    pub limits: proxy::ServeLimits,
    /// `redis://HOST:PORT/DB` where rate limits and quotas are counted with other gateways
    /// (`None`: each gateway counts alone).
    pub rate_limit_store: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            tls: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            admin_password: None,
            data_dir: PathBuf::from("./data/gateway"),
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            admin_body_limit: 1024 * 1024,
            workers: 0,
            control_plane: None,
            token: None,
            sync_interval: Duration::from_secs(600),
            llm_pricing: None,
            limits: proxy::ServeLimits::default(),
            rate_limit_store: None,
        }
    }
}

/// HTTPS on the traffic side.
#[derive(Debug, Clone)]
pub struct TlsListen {
    pub listen: SocketAddr,
    pub files: proxy::tls::TlsFiles,
    /// How often certificate files are checked for changes.
    pub reload_every: Duration,
}

/// Shared state of the gateway's parts.
pub struct Runtime {
    pub store: Store,
    pub proxy: Arc<Proxy>,
    limiters: RateLimiters,
    llm: LlmState,
    /// The secret values the held artifacts reference, in memory.
    pub secrets: Secrets,
    /// Local artifacts to publish to the control plane, and its answers.
    pub publish: crate::sync::publish::Publish,
    rebuild_lock: Mutex<()>,
    /// Duration of the last route-table rebuild.
    pub last_rebuild: std::sync::Mutex<Duration>,
    /// The control-plane connection's state.
    pub sync: std::sync::Mutex<crate::sync::SyncStatus>,
}

impl Runtime {
    /// Changes the recorded control-plane connection state.
    /// What `/status` says of where rate limits count.
    pub fn rate_limit_store_status(&self) -> serde_json::Value {
        match self.limiters.store() {
            Some(store) => store.status(),
            None => serde_json::json!({"kind": "local"}),
        }
    }

    pub fn update_sync(&self, f: impl FnOnce(&mut crate::sync::SyncStatus)) {
        f(&mut self.sync.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The control-plane connection's state.
    pub fn sync_status(&self) -> crate::sync::SyncStatus {
        self.sync.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuilds the route table from the store and swaps it in. Rebuilds run one at a time and
    /// each reads the store afresh, so the last one always reflects the last change.
    pub async fn rebuild(&self) -> Result<(), crate::store::StoreError> {
        let _one_at_a_time = self.rebuild_lock.lock().await;
        self.rebuild_locked().await
    }

    /// Brings the route table in line with what the store holds for artifact `id` (its
    /// document, state, keys and subscriptions) without compiling the other artifacts. A change
    /// that touches others (an LLM provider, which its proxies depend on, or a context other
    /// artifacts claim) compiles the whole table instead.
    pub async fn refresh(&self, id: &str) -> Result<(), crate::store::StoreError> {
        let _one_at_a_time = self.rebuild_lock.lock().await;
        let started = Instant::now();
        let art = self.store.by_id(id).await?;
        let deployed = art.filter(|a| a.state == crate::store::State::Deployed);
        let current = self.proxy.table();
        let provider = |a: &Option<StoredArtifact>| {
            a.as_ref()
                .is_some_and(|a| a.kind() == gatehouse_core::ArtifactKind::LlmProvider)
        };
        if provider(&deployed) || (deployed.is_none() && current.is_provider(id)) {
            return self.rebuild_locked().await;
        }
        let served = match &deployed {
            Some(a) => Some(self.compile_one(a).await?),
            None => None,
        };

        let table = match current.with_artifact(id, served) {
            Ok(t) => t,
            Err(why) => {
                tracing::debug!(artifact = id, %why, "compiling the whole route table");
                return self.rebuild_locked().await;
            }
        };
        if deployed.is_none() {
            self.limiters.retain(|scope| scope != id);
            self.llm.retain(|scope| scope != id);
        }
        metrics::gauge!("gatehouse_gateway_route_table_routes").set(table.routes as f64);
        metrics::gauge!("gatehouse_gateway_route_table_artifacts").set(table.len() as f64);
        self.proxy.swap(table);
        metrics::counter!("gatehouse_gateway_route_table_updates_total").increment(1);
        metrics::histogram!("gatehouse_gateway_route_table_update_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The context and entry of one deployed artifact, from the store.
    async fn compile_one(
        &self,
        art: &StoredArtifact,
    ) -> Result<(String, crate::proxy::routes::Entry), crate::store::StoreError> {
        let keys = self.store.keys_of(&art.id).await?;
        let (subs, plans) = if art.document.spec.subscription_plans().is_empty() {
            (vec![], vec![])
        } else {
            (
                self.store.subscriptions_of(&art.id).await?,
                self.store.plans().await?,
            )
        };
        let mut providers_held = vec![];
        if let gatehouse_core::spec::ArtifactSpec::LlmProxy(p) = &art.document.spec {
            for named in p.provider_list() {
                let held = self
                    .store
                    .artifact(gatehouse_core::ArtifactKind::LlmProvider, named.id.as_str())
                    .await?;
                providers_held.extend(held.filter(|a| a.state == crate::store::State::Deployed));
            }
        }
        let providers_resolved: Vec<Resolved> = providers_held
            .iter()
            .map(|a| secrets::resolve(a, &self.secrets))
            .collect();
        let providers = providers_resolved
            .iter()
            .filter_map(|r| r.artifact.as_deref().ok())
            .map(|a| (a.handle(), a))
            .collect();
        let plans = plans.iter().map(|p| (p.id.as_str(), p)).collect();
        let resolved = secrets::resolve(art, &self.secrets);
        let inputs = crate::proxy::routes::EntryInputs {
            keys: keys.iter().collect(),
            subs: subs.iter().collect(),
            plans: &plans,
            providers: &providers,
            unresolved: resolved.artifact.as_ref().err().map(String::as_str),
        };
        let served = resolved.artifact.as_deref().unwrap_or(art);
        let mut entry =
            crate::proxy::routes::compile_artifact(served, inputs, &self.limiters, &self.llm);
        entry.secrets = resolved.secrets.into();
        Ok((art.document.spec.resolved_context(), entry))
    }

    /// Recompiles the artifacts that reference the secrets `ids` (after their values changed).
    pub async fn secrets_changed(&self, ids: &[String]) -> Result<(), crate::store::StoreError> {
        let table = self.proxy.table();
        let mut artifacts: Vec<Arc<str>> =
            ids.iter().flat_map(|id| table.referencing(id)).collect();
        artifacts.sort_unstable();
        artifacts.dedup();
        for id in artifacts {
            self.refresh(&id).await?;
        }
        Ok(())
    }

    /// Opens the sealed secret values the store holds into memory; one that does not open
    /// (sealed under another token) is dropped, to be fetched again at the next sync.
    async fn load_secrets(&self) -> Result<(), crate::store::StoreError> {
        for sealed in self.store.sealed_secrets().await? {
            match self.secrets.open(&sealed.sealed_value) {
                Ok(value) => {
                    self.secrets.put(&sealed.id, &value);
                }
                Err(e) => {
                    tracing::warn!(secret = %sealed.id, error = %e, "a stored secret value does not open; it will be fetched again");
                    let change = crate::store::ControlPlaneChange::SecretDeleted { id: &sealed.id };
                    self.store.apply_control_plane(change, None).await?;
                }
            }
        }
        Ok(())
    }

    async fn rebuild_locked(&self) -> Result<(), crate::store::StoreError> {
        let started = Instant::now();
        metrics::counter!("gatehouse_gateway_route_table_rebuilds_total").increment(1);
        let artifacts = self.store.artifacts().await?;
        let keys = self.store.keys().await?;
        let plans = self.store.plans().await?;
        let subs = self.store.subscriptions().await?;
        let held = Held {
            artifacts: &artifacts,
            keys: &keys,
            plans: &plans,
            subs: &subs,
        };
        let table = RouteTable::compile_with(held, &self.secrets, &self.limiters, &self.llm);
        metrics::gauge!("gatehouse_gateway_route_table_routes").set(table.routes as f64);
        metrics::gauge!("gatehouse_gateway_route_table_artifacts").set(table.len() as f64);
        self.proxy.swap(table);
        let took = started.elapsed();
        metrics::histogram!("gatehouse_gateway_route_table_rebuild_seconds")
            .record(took.as_secs_f64());
        *self.last_rebuild.lock().unwrap_or_else(|e| e.into_inner()) = took;
        Ok(())
    }
}

/// A gateway serving in the background.
pub struct RunningGateway {
    /// Where plain HTTP is served.
    pub addr: Option<SocketAddr>,
    /// Where HTTPS is served.
    pub tls_addr: Option<SocketAddr>,
    pub admin_addr: SocketAddr,
    pub runtime: Arc<Runtime>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    workers: proxy::Workers,
}

impl RunningGateway {
    /// Stops accepting, lets requests in flight finish, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let workers = self.workers;
        let _ = tokio::task::spawn_blocking(move || workers.join()).await;
    }
}

/// Starts a gateway: opens the store, builds the route table from what it holds (so it serves
/// its last-known state before anything else), then binds the listeners.
pub async fn start(config: GatewayConfig) -> Result<RunningGateway, StartError> {
    let mut pricing = Pricing::builtin();
    if let Some(path) = &config.llm_pricing {
        let fail = |message: String| StartError::Pricing {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        pricing = pricing.with_overrides(&text).map_err(fail)?;
    }
    let store = Store::open(&config.data_dir).await?;
    let quota_store = match &config.rate_limit_store {
        Some(url) => Some(crate::quota_store::QuotaStore::connect(url).await?),
        None => None,
    };
    let credentials = admin::AdminCredentials::load(&store, config.admin_password.as_deref())
        .await
        .map_err(StartError::AdminPassword)?;
    crate::admin::install_prometheus();
    let proxy = Arc::new(Proxy::new(
        RouteTable::default(),
        Timeouts {
            connect: config.connect_timeout,
            response: config.upstream_timeout,
        },
    ));
    let runtime = Arc::new(Runtime {
        store,
        proxy: proxy.clone(),
        limiters: RateLimiters::with_store(quota_store.clone()),
        llm: LlmState::sharing(pricing, quota_store),
        secrets: Secrets::new(config.token.as_deref()),
        publish: Default::default(),
        rebuild_lock: Mutex::new(()),
        last_rebuild: std::sync::Mutex::new(Duration::ZERO),
        sync: std::sync::Mutex::new(Default::default()),
    });
    runtime
        .load_secrets()
        .await
        .map_err(StartError::RouteTable)?;
    runtime.rebuild().await.map_err(StartError::RouteTable)?;
    proxy.set_ready();

    let bind_error = |listener, addr| {
        move |source| StartError::Bind {
            listener,
            addr,
            source,
        }
    };
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(bind_error("management", config.admin_listen))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(bind_error("management", config.admin_listen))?;
    let (tx, rx) = watch::channel(false);
    let threads = match config.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    };
    let mut tasks = vec![];
    let tls = match &config.tls {
        Some(t) => {
            let store = proxy::tls::CertStore::load(t.files.clone())?;
            tasks.push(tokio::spawn(
                store.clone().watch(t.reload_every, rx.clone()),
            ));
            Some((t.listen, store.server_config()))
        }
        None => None,
    };
    if config.listen.is_none() && tls.is_none() {
        return Err(StartError::NoListener);
    }
    let bound = config
        .listen
        .or(config.tls.as_ref().map(|t| t.listen))
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let listen = proxy::Listen {
        plain: config.listen,
        tls,
    };
    let workers = proxy::serve_workers(proxy.clone(), listen, threads, config.limits, rx.clone())
        .map_err(bind_error("traffic", bound))?;
    let (addr, tls_addr) = (workers.addr, workers.tls_addr);
    if let Some(cp) = &config.control_plane {
        let token = config.token.clone().ok_or(StartError::MissingToken)?;
        let api =
            crate::sync::api::InternalApi::new(cp, &token).map_err(StartError::ControlPlane)?;
        let sync = crate::sync::SyncConfig {
            control_plane: cp.clone(),
            token,
            interval: config.sync_interval,
        };
        tasks.push(tokio::spawn(crate::sync::run(
            runtime.clone(),
            sync,
            rx.clone(),
        )));
        tasks.push(tokio::spawn(crate::sync::publish::run(
            runtime.clone(),
            api,
            rx.clone(),
        )));
    }
    let app = admin::router(runtime.clone(), credentials, config.admin_body_limit);
    let mut admin_rx = rx;
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(admin_listener, app.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = admin_rx.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "management API stopped");
        }
    }));
    let table = runtime.proxy.table();
    tracing::info!(addr = ?addr, tls_addr = ?tls_addr, %admin_addr, artifacts = table.len(), routes = table.routes, "gateway serving");
    Ok(RunningGateway {
        addr,
        tls_addr,
        admin_addr,
        runtime,
        shutdown: tx,
        tasks,
        workers,
    })
}

/// Runs a gateway until Ctrl-C or SIGTERM (the process entry point, hence `anyhow`).
pub async fn run(config: GatewayConfig) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
