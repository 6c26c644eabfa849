//! Platform settings, from flags, `GATEHOUSE_*` environment variables or a TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Capabilities a platform can advertise to gateways.
pub const CAPABILITIES: [&str; 2] = ["artifacts.exists", "replay"];

/// Everything `gatehouse platform` needs to run.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Where the public and internal APIs listen.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    pub database: String,
    /// Bootstrap password of `admin`; generated and printed once when unset on first start.
    pub admin_password: Option<String>,
    /// TLS certificate and key (PEM); plain HTTP when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How long a deploy or undeploy may wait for its ack before it is `FAILED`.
    pub deployment_timeout: Duration,
    /// How long change-log events are kept before compaction.
    pub event_retention: Duration,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Lifetime of login tokens.
    pub token_ttl: Duration,
    /// Archived deployments kept per (artifact, gateway); older ones are removed.
    pub max_archived_deployments: i64,
    /// Capabilities switched off (e.g. `artifacts.exists`).
    pub disabled_capabilities: Vec<String>,
    /// Base64 key (32 bytes) signing login tokens; generated and stored when absent.
    pub signing_key: Option<String>,
    /// Base64 key (32 bytes) sealing stored credentials; generated and stored when absent.
    pub encryption_key: Option<String>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9243)),
            database: "sqlite://./data/platform.db".to_owned(),
            admin_password: None,
            tls: None,
            deployment_timeout: Duration::from_secs(60),
            event_retention: Duration::from_secs(7 * 86_400),
            body_limit: 1024 * 1024,
            token_ttl: Duration::from_secs(12 * 3600),
            max_archived_deployments: 20,
            disabled_capabilities: Vec::new(),
            signing_key: None,
            encryption_key: None,
        }
    }
}

impl PlatformConfig {
    /// The capabilities this platform advertises.
    pub fn capabilities(&self) -> Vec<&'static str> {
        CAPABILITIES
            .into_iter()
            .filter(|c| !self.disabled_capabilities.iter().any(|d| d == c))
            .collect()
    }

    /// Whether `capability` is advertised.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities().contains(&capability)
    }
}
