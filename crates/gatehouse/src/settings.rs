//! Settings of each command: a flag wins over its `GATEHOUSE_*` environment variable, which
//! wins over the TOML file given by `--config`, which wins over the default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use gatehouse_platform::PlatformConfig;

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `gatehouse platform`.
#[derive(Debug, Args, Default)]
pub struct PlatformArgs {
    /// TOML file with any of the settings below (keys as the flags, with '_' or '-').
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the public and internal APIs [default: 127.0.0.1:9243].
    #[arg(long, env = "GATEHOUSE_LISTEN")]
    listen: Option<SocketAddr>,
    /// sqlite://PATH or postgres://... [default: sqlite://./data/platform.db].
    #[arg(long, env = "GATEHOUSE_DATABASE")]
    database: Option<String>,
    /// Password of user 'admin' on first start (generated and printed once when unset).
    #[arg(long, env = "GATEHOUSE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// TLS certificate (PEM); needs --tls-key.
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How long a deploy or undeploy waits for the gateway's ack before FAILED [default: 60s].
    #[arg(long, env = "GATEHOUSE_DEPLOYMENT_TIMEOUT", value_parser = humantime::parse_duration)]
    deployment_timeout: Option<Duration>,
    /// How long change-log events are kept [default: 7d].
    #[arg(long, env = "GATEHOUSE_EVENT_RETENTION", value_parser = humantime::parse_duration)]
    event_retention: Option<Duration>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "GATEHOUSE_BODY_LIMIT")]
    body_limit: Option<usize>,
    /// Lifetime of login tokens [default: 12h].
    #[arg(long, env = "GATEHOUSE_TOKEN_TTL", value_parser = humantime::parse_duration)]
    token_ttl: Option<Duration>,
    /// Archived deployments kept per artifact and gateway [default: 20].
    #[arg(long, env = "GATEHOUSE_MAX_ARCHIVED_DEPLOYMENTS")]
    max_archived_deployments: Option<i64>,
    /// Do not advertise (or serve) a capability, e.g. artifacts.exists. Repeatable.
    #[arg(long, env = "GATEHOUSE_DISABLE_CAPABILITY", value_delimiter = ',')]
    disable_capability: Vec<String>,
    /// Base64 key (32 bytes) that signs login tokens; generated and stored when unset.
    #[arg(long, env = "GATEHOUSE_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// Base64 key (32 bytes) that seals stored credentials; generated and stored when unset.
    #[arg(long, env = "GATEHOUSE_ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PlatformFile {
    #[serde(alias = "listen")]
    listen: Option<SocketAddr>,
    database: Option<String>,
    #[serde(alias = "admin_password")]
    admin_password: Option<String>,
    #[serde(alias = "tls_cert")]
    tls_cert: Option<PathBuf>,
    #[serde(alias = "tls_key")]
    tls_key: Option<PathBuf>,
    #[serde(alias = "deployment_timeout")]
    deployment_timeout: Option<String>,
    #[serde(alias = "event_retention")]
    event_retention: Option<String>,
    #[serde(alias = "body_limit")]
    body_limit: Option<usize>,
    #[serde(alias = "token_ttl")]
    token_ttl: Option<String>,
    #[serde(alias = "max_archived_deployments")]
    max_archived_deployments: Option<i64>,
    #[serde(alias = "disable_capability")]
    disable_capability: Option<Vec<String>>,
    #[serde(alias = "signing_key")]
    signing_key: Option<String>,
    #[serde(alias = "encryption_key")]
    encryption_key: Option<String>,
}

fn duration(field: &str, raw: Option<String>) -> anyhow::Result<Option<Duration>> {
    raw.map(|r| {
        humantime::parse_duration(&r)
            .with_context(|| format!("config key {field}: '{r}' is not a duration"))
    })
    .transpose()
}

impl PlatformArgs {
    /// Merges flags, environment, file and defaults into the platform's configuration.
    pub fn resolve(self) -> anyhow::Result<PlatformConfig> {
        let file: PlatformFile = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => PlatformFile::default(),
        };
        let d = PlatformConfig::default();
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both tls-cert and tls-key"),
        };
        let capabilities = if self.disable_capability.is_empty() {
            file.disable_capability.unwrap_or_default()
        } else {
            self.disable_capability
        };
        for c in &capabilities {
            if !gatehouse_platform::config::CAPABILITIES.contains(&c.as_str()) {
                anyhow::bail!(
                    "unknown capability '{c}'; known: {}",
                    gatehouse_platform::config::CAPABILITIES.join(", ")
                );
            }
        }
        Ok(PlatformConfig {
            listen: self.listen.or(file.listen).unwrap_or(d.listen),
            database: self.database.or(file.database).unwrap_or(d.database),
            admin_password: self.admin_password.or(file.admin_password),
            tls,
            deployment_timeout: self
                .deployment_timeout
                .or(duration("deployment-timeout", file.deployment_timeout)?)
                .unwrap_or(d.deployment_timeout),
            event_retention: self
                .event_retention
                .or(duration("event-retention", file.event_retention)?)
                .unwrap_or(d.event_retention),
            body_limit: self.body_limit.or(file.body_limit).unwrap_or(d.body_limit),
            token_ttl: self
                .token_ttl
                .or(duration("token-ttl", file.token_ttl)?)
                .unwrap_or(d.token_ttl),
            max_archived_deployments: self
                .max_archived_deployments
                .or(file.max_archived_deployments)
                .unwrap_or(d.max_archived_deployments),
            disabled_capabilities: capabilities,
            signing_key: self.signing_key.or(file.signing_key),
            encryption_key: self.encryption_key.or(file.encryption_key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("gh-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("platform.toml");
        std::fs::write(&path, "database = \"sqlite://./x.db\"\ndeployment-timeout = \"5s\"\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let args = PlatformArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.database, "sqlite://./x.db");
        assert_eq!(c.deployment_timeout, Duration::from_secs(5));
        assert_eq!(c.event_retention, Duration::from_secs(7 * 86_400));
        std::fs::write(&path, "colour = \"red\"\n").unwrap();
        let err = PlatformArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{err:#}").contains("colour"));
        let err = PlatformArgs {
            disable_capability: vec!["teleport".into()],
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("teleport"));
    }
}

/// Flags of `gatehouse gateway`.
#[derive(Debug, Args, Default)]
pub struct GatewayArgs {
    /// TOML file with any of the settings below (keys as the flags, with '_' or '-').
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Address traffic is served on [default: 127.0.0.1:8080].
    #[arg(long, env = "GATEHOUSE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address of the management API and /metrics [default: 127.0.0.1:9090].
    #[arg(long, env = "GATEHOUSE_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Password of the management API's user 'admin' (generated and printed once when unset).
    #[arg(long, env = "GATEHOUSE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Directory of the local store [default: ./data/gateway].
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Upstream connect timeout; past it the answer is 503 [default: 5s].
    #[arg(long, env = "GATEHOUSE_UPSTREAM_CONNECT_TIMEOUT", value_parser = humantime::parse_duration)]
    upstream_connect_timeout: Option<Duration>,
    /// Time for an upstream to send its response headers; past it the answer is 504 [default: 60s].
    #[arg(long, env = "GATEHOUSE_UPSTREAM_TIMEOUT", value_parser = humantime::parse_duration)]
    upstream_timeout: Option<Duration>,
    /// Largest management API body in bytes [default: 1048576].
    #[arg(long, env = "GATEHOUSE_ADMIN_BODY_LIMIT")]
    admin_body_limit: Option<usize>,
    /// Threads serving traffic, each with its own listener and upstream pool [default: one per core].
    #[arg(long, env = "GATEHOUSE_WORKERS")]
    workers: Option<usize>,
    /// Control plane base URL, e.g. http://127.0.0.1:9243 (absent: standalone).
    #[arg(long, env = "GATEHOUSE_CONTROL_PLANE")]
    control_plane: Option<String>,
    /// Gateway registration token (from POST /api/v1/gateways/{id}/tokens).
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Period of the full reconcile with the control plane [default: 10m].
    #[arg(long, env = "GATEHOUSE_SYNC_INTERVAL", value_parser = humantime::parse_duration)]
    sync_interval: Option<Duration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GatewayFile {
    listen: Option<SocketAddr>,
    #[serde(alias = "admin_listen")]
    admin_listen: Option<SocketAddr>,
    #[serde(alias = "admin_password")]
    admin_password: Option<String>,
    #[serde(alias = "data_dir")]
    data_dir: Option<PathBuf>,
    #[serde(alias = "upstream_connect_timeout")]
    upstream_connect_timeout: Option<String>,
    #[serde(alias = "upstream_timeout")]
    upstream_timeout: Option<String>,
    #[serde(alias = "admin_body_limit")]
    admin_body_limit: Option<usize>,
    workers: Option<usize>,
    #[serde(alias = "control_plane")]
    control_plane: Option<String>,
    token: Option<String>,
    #[serde(alias = "sync_interval")]
    sync_interval: Option<String>,
}

impl GatewayArgs {
    /// Merges flags, environment, file and defaults into the gateway's configuration.
    pub fn resolve(self) -> anyhow::Result<gatehouse_gateway::GatewayConfig> {
        let file: GatewayFile = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => GatewayFile::default(),
        };
        let d = gatehouse_gateway::GatewayConfig::default();
        Ok(gatehouse_gateway::GatewayConfig {
            listen: self.listen.or(file.listen).unwrap_or(d.listen),
            admin_listen: self
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or(d.admin_listen),
            admin_password: self.admin_password.or(file.admin_password),
            data_dir: self.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            connect_timeout: self
                .upstream_connect_timeout
                .or(duration(
                    "upstream-connect-timeout",
                    file.upstream_connect_timeout,
                )?)
                .unwrap_or(d.connect_timeout),
            upstream_timeout: self
                .upstream_timeout
                .or(duration("upstream-timeout", file.upstream_timeout)?)
                .unwrap_or(d.upstream_timeout),
            admin_body_limit: self
                .admin_body_limit
                .or(file.admin_body_limit)
                .unwrap_or(d.admin_body_limit),
            workers: self.workers.or(file.workers).unwrap_or(d.workers),
            control_plane: self.control_plane.or(file.control_plane),
            token: self.token.or(file.token),
            sync_interval: self
                .sync_interval
                .or(duration("sync-interval", file.sync_interval)?)
                .unwrap_or(d.sync_interval),
        })
    }
}
