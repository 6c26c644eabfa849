//! Settings of `gatehouse platform` and `gatehouse gateway`, each declared once: a field of
//! [`PlatformArgs`] or [`GatewayArgs`] whose clap attributes name its flag, its `GATEHOUSE_*`
//! environment variable and its default; its key in the `--config` TOML file is the flag's name
//! (with `-` or `_`). A flag wins over the environment, which wins over the file, which wins
//! over the default: [`parse`] reads the file first and makes its values the flags' defaults,
//! so clap applies that order and checks every value with the flag's own parser.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Command, Parser, ValueEnum};

use gatehouse_gateway::GatewayConfig;
use gatehouse_platform::config::CAPABILITIES;
use gatehouse_platform::PlatformConfig;

/// The id of the `--config` flag of commands that read a settings file.
const CONFIG: &str = "config";

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file cannot be read.
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not TOML.
    #[error("parsing {}", path.display())]
    Toml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A key of the file is no flag of the command.
    #[error("{}: unknown key '{key}'; the keys are the flags of `gatehouse {command}`", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        command: String,
    },
    /// A value of the file is a table (or a list of them).
    #[error("{}: key '{key}' must be a string, a number, a boolean or a list of them", path.display())]
    ValueType { path: PathBuf, key: String },
    /// A value of the file is not one its flag takes.
    #[error("{}: {message}", path.display())]
    Value { path: PathBuf, message: String },
    /// Only one of the TLS certificate and key is set.
    #[error("TLS needs both tls-cert and tls-key")]
    TlsPair,
    /// A command-line error, or `--help` and `--version` (which clap reports as errors).
    #[error(transparent)]
    Command(#[from] clap::Error),
}

/// Parses the command line into `P`, taking settings files named by `--config` into account.
/// A command-line error (or `--help`) prints and exits, as clap does.
pub fn parse<P: Parser>() -> Result<P, SettingsError> {
    match try_parse_from(std::env::args_os()) {
        Err(SettingsError::Command(e)) => e.exit(),
        other => other,
    }
}

/// [`parse`] from given arguments, without exiting.
pub fn try_parse_from<P: Parser>(
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<P, SettingsError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = P::command();
    if let Some((sub, path)) = config_file(&cmd, &args) {
        cmd = with_file_defaults(cmd, &sub, &path)?;
    }
    let matches = cmd.try_get_matches_from(args)?;
    Ok(P::from_arg_matches(&matches)?)
}

/// The subcommand given and the settings file it names (flag or environment), if any.
fn config_file(cmd: &Command, args: &[OsString]) -> Option<(String, PathBuf)> {
    // A first, lenient pass only to learn `--config`; the real parse reports any error.
    let matches = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    let (sub, sub_matches) = matches.subcommand()?;
    let path = sub_matches.try_get_one::<PathBuf>(CONFIG).ok()??;
    Some((sub.to_owned(), path.clone()))
}

/// `cmd` with the values of the TOML file at `path` as the defaults of subcommand `sub`'s flags.
fn with_file_defaults(cmd: Command, sub: &str, path: &Path) -> Result<Command, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|source| SettingsError::Toml {
        path: path.to_owned(),
        source,
    })?;
    let Some(sub_cmd) = cmd.find_subcommand(sub) else {
        return Ok(cmd);
    };
    let mut defaults = vec![];
    let mut as_flags = vec![];
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = sub_cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && a.get_id() != CONFIG)
            .ok_or_else(|| SettingsError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                command: sub.to_owned(),
            })?;
        let values = toml_values(&value).ok_or_else(|| SettingsError::ValueType {
            path: path.to_owned(),
            key: key.clone(),
        })?;
        for v in &values {
            as_flags.push(format!("--{long}"));
            as_flags.push(v.clone());
        }
        defaults.push((arg.get_id().clone(), values));
    }
    // Check the file's values with the flags' own parsers, as if the file were a command line
    // (without the environment), so that an error names the file.
    sub_cmd
        .clone()
        .no_binary_name(true)
        .mut_args(|a| a.env(None))
        .try_get_matches_from(as_flags)
        .map_err(|e| SettingsError::Value {
            path: path.to_owned(),
            message: one_line(&e),
        })?;
    Ok(cmd.mut_subcommand(sub, |s| {
        defaults.into_iter().fold(s, |s, (id, values)| {
            s.mut_arg(id, |a| a.default_values(values).hide_default_value(true))
        })
    }))
}

/// A TOML value as flag values: a scalar is one, a list of scalars is one each.
fn toml_values(value: &toml::Value) -> Option<Vec<String>> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|v| vec![v]),
    }
}

/// A clap error's message on one line, without its `error: ` prefix and the usage after it.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    message
        .strip_prefix("error: ")
        .unwrap_or(&message)
        .to_owned()
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A capability the platform can stop advertising.
fn capability(name: &str) -> Result<String, String> {
    if CAPABILITIES.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "unknown capability '{name}'; known: {}",
            CAPABILITIES.join(", ")
        ))
    }
}

/// Settings of `gatehouse platform`.
#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// TOML file with any of the settings below (keys as the flags, with '_' or '-').
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    #[allow(dead_code)] // read by `parse` before the other fields are filled
    config: Option<PathBuf>,
    /// Address of the public and internal APIs.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:9243")]
    listen: SocketAddr,
    /// sqlite://PATH or postgres://...
    #[arg(
        long,
        env = "GATEHOUSE_DATABASE",
        default_value = "sqlite://./data/platform.db"
    )]
    database: String,
    /// Password of user 'admin' on first start (generated and printed once when unset).
    #[arg(long, env = "GATEHOUSE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// TLS certificate (PEM); needs --tls-key.
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How long a deploy or undeploy waits for the gateway's ack before FAILED.
    #[arg(long, env = "GATEHOUSE_DEPLOYMENT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    deployment_timeout: Duration,
    /// How long change-log events are kept.
    #[arg(long, env = "GATEHOUSE_EVENT_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    event_retention: Duration,
    /// Largest request body in bytes.
    #[arg(long, env = "GATEHOUSE_BODY_LIMIT", default_value = "1048576")]
    body_limit: usize,
    /// Lifetime of login tokens.
    #[arg(long, env = "GATEHOUSE_TOKEN_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    token_ttl: Duration,
    /// Archived deployments kept per artifact and gateway.
    #[arg(long, env = "GATEHOUSE_MAX_ARCHIVED_DEPLOYMENTS", default_value = "20")]
    max_archived_deployments: i64,
    /// Do not advertise (or serve) a capability, e.g. artifacts.exists. Repeatable.
    #[arg(long, env = "GATEHOUSE_DISABLE_CAPABILITY", value_delimiter = ',', value_parser = capability)]
    disable_capability: Vec<String>,
    /// Base64 key (32 bytes) that signs login tokens; generated and stored when unset.
    #[arg(long, env = "GATEHOUSE_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// Base64 key (32 bytes) that seals stored credentials; generated and stored when unset.
    #[arg(long, env = "GATEHOUSE_ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
}

impl PlatformArgs {
    /// The platform's configuration.
    pub fn into_config(self) -> Result<PlatformConfig, SettingsError> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(SettingsError::TlsPair),
        };
        Ok(PlatformConfig {
            listen: self.listen,
            database: self.database,
            admin_password: self.admin_password,
            tls,
            deployment_timeout: self.deployment_timeout,
            event_retention: self.event_retention,
            body_limit: self.body_limit,
            token_ttl: self.token_ttl,
            max_archived_deployments: self.max_archived_deployments,
            disabled_capabilities: self.disable_capability,
            signing_key: self.signing_key,
            encryption_key: self.encryption_key,
        })
    }
}

/// A listen address, or none (`off`).
#[derive(Debug, Clone, Copy)]
pub struct Listen(Option<SocketAddr>);

fn listen_addr(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    s.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|e| format!("'{s}' is not an address or 'off': {e}"))
}

/// Settings of `gatehouse gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// TOML file with any of the settings below (keys as the flags, with '_' or '-').
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    #[allow(dead_code)] // read by `parse` before the other fields are filled
    config: Option<PathBuf>,
    /// Address plain HTTP traffic is served on ('off': none, with --tls-listen).
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080", value_parser = listen_addr)]
    listen: Listen,
    /// Address HTTPS traffic is served on (needs --tls-cert and --tls-key, or --tls-cert-dir).
    #[arg(long, env = "GATEHOUSE_TLS_LISTEN")]
    tls_listen: Option<SocketAddr>,
    /// Default certificate chain (PEM) of the HTTPS listener, for names no other certificate has.
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory of NAME.crt + NAME.key pairs, each served (by SNI) for the DNS names it holds.
    #[arg(long, env = "GATEHOUSE_TLS_CERT_DIR")]
    tls_cert_dir: Option<PathBuf>,
    /// How often the certificate files are checked; changed ones are loaded without a restart.
    #[arg(long, env = "GATEHOUSE_TLS_RELOAD_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    tls_reload_interval: Duration,
    /// Address of the management API and /metrics.
    #[arg(long, env = "GATEHOUSE_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Password of the management API's user 'admin' (generated and printed once when unset).
    #[arg(long, env = "GATEHOUSE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Directory of the local store.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "./data/gateway")]
    data_dir: PathBuf,
    /// Upstream connect timeout; past it the answer is 503.
    #[arg(long, env = "GATEHOUSE_UPSTREAM_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    upstream_connect_timeout: Duration,
    /// Time for an upstream to send its response headers; past it the answer is 504.
    #[arg(long, env = "GATEHOUSE_UPSTREAM_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    upstream_timeout: Duration,
    /// Largest management API body in bytes.
    #[arg(long, env = "GATEHOUSE_ADMIN_BODY_LIMIT", default_value = "1048576")]
    admin_body_limit: usize,
    /// Threads serving traffic, each with its own listener and upstream pool (0: one per core).
    #[arg(long, env = "GATEHOUSE_WORKERS", default_value = "0")]
    workers: usize,
    /// Control plane base URL, e.g. http://127.0.0.1:9243 (absent: standalone).
    #[arg(long, env = "GATEHOUSE_CONTROL_PLANE")]
    control_plane: Option<String>,
    /// Gateway registration token (from POST /api/v1/gateways/{id}/tokens).
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Period of the full reconcile with the control plane.
    #[arg(long, env = "GATEHOUSE_SYNC_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    sync_interval: Duration,
    /// JSON file of LLM prices in USD per million tokens, `{"model": {"input": 2.5, "output": 10}}`,
    /// over the built-in defaults (they feed gatehouse_llm_cost_usd_total).
    #[arg(long, env = "GATEHOUSE_LLM_PRICING")]
    llm_pricing: Option<PathBuf>,
    /// Largest request head (request line and headers) in bytes; past it the gateway answers
    /// 431 itself and nothing is forwarded.
    #[arg(long, env = "GATEHOUSE_MAX_HEADER_BYTES", default_value = "65536", value_parser = clap::value_parser!(u32).range(8192..))]
    max_header_bytes: u32,
    /// Most headers in a request; past it, 431.
    #[arg(long, env = "GATEHOUSE_MAX_HEADERS", default_value = "100", value_parser = clap::value_parser!(u16).range(1..))]
    max_headers: u16,
    /// Time a client has to send a request's headers (and longest idle time of a keep-alive
    /// connection between requests); then the connection is closed.
    #[arg(long, env = "GATEHOUSE_CLIENT_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    client_header_timeout: Duration,
    /// Open client connections per worker thread; past it new connections wait, and a line is
    /// logged.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Redis where rate-limit, token-rate-limit and plan quota counts are shared with every
    /// gateway using it: redis://[:PASSWORD@]HOST:PORT/DB (absent: each gateway counts alone).
    #[arg(long, env = "GATEHOUSE_RATE_LIMIT_STORE", hide_env_values = true, value_parser = rate_limit_store)]
    rate_limit_store: Option<String>,
}

/// A `redis://` address the shared quota store can use.
fn rate_limit_store(s: &str) -> Result<String, String> {
    gatehouse_gateway::quota_store::check_url(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

impl GatewayArgs {
    /// The gateway's configuration.
    pub fn into_config(self) -> GatewayConfig {
        GatewayConfig {
            listen: self.listen.0,
            tls: self.tls_listen.map(|listen| gatehouse_gateway::TlsListen {
                listen,
                files: gatehouse_gateway::proxy::tls::TlsFiles {
                    cert: self.tls_cert,
                    key: self.tls_key,
                    cert_dir: self.tls_cert_dir,
                },
                reload_every: self.tls_reload_interval,
            }),
            admin_listen: self.admin_listen,
            admin_password: self.admin_password,
            data_dir: self.data_dir,
            connect_timeout: self.upstream_connect_timeout,
            upstream_timeout: self.upstream_timeout,
            admin_body_limit: self.admin_body_limit,
            workers: self.workers,
            control_plane: self.control_plane,
            token: self.token,
            sync_interval: self.sync_interval,
            llm_pricing: self.llm_pricing,
            limits: gatehouse_gateway::proxy::ServeLimits {
                max_header_bytes: self.max_header_bytes as usize,
                max_headers: self.max_headers as usize,
                header_timeout: self.client_header_timeout,
                max_connections: self.max_connections as usize,
            },
            rate_limit_store: self.rate_limit_store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Subcommand;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Debug, Subcommand)]
    enum TestCommand {
        Platform(PlatformArgs),
        Gateway(GatewayArgs),
    }

    /// Every parse reads the process environment; the one test that sets a
    /// variable holds this for writing so no other parse sees it.
    static ENVIRONMENT: std::sync::RwLock<()> = std::sync::RwLock::new(());

    fn platform(args: &[&str]) -> Result<PlatformConfig, SettingsError> {
        let _reading = ENVIRONMENT.read().unwrap_or_else(|e| e.into_inner());
        platform_unlocked(args)
    }

    fn platform_unlocked(args: &[&str]) -> Result<PlatformConfig, SettingsError> {
        let argv = ["gatehouse", "platform"].iter().chain(args);
        match try_parse_from::<TestCli>(argv)?.command {
            TestCommand::Platform(p) => p.into_config(),
            TestCommand::Gateway(_) => unreachable!("asked for the platform"),
        }
    }

    fn gateway(args: &[&str]) -> Result<GatewayConfig, SettingsError> {
        let _reading = ENVIRONMENT.read().unwrap_or_else(|e| e.into_inner());
        let argv = ["gatehouse", "gateway"].iter().chain(args);
        match try_parse_from::<TestCli>(argv)?.command {
            TestCommand::Gateway(g) => Ok(g.into_config()),
            TestCommand::Platform(_) => unreachable!("asked for the gateway"),
        }
    }

    fn config_file(name: &str, text: &str) -> (TempFile, String) {
        let dir = std::env::temp_dir().join(format!("gh-settings-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        (TempFile(dir), shown)
    }

    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn gateway_listeners_tls_and_limits() {
        let c = gateway(&[
            "--listen",
            "off",
            "--tls-listen",
            "127.0.0.1:8443",
            "--tls-cert-dir",
            "/etc/certs",
            "--max-header-bytes",
            "16384",
            "--client-header-timeout",
            "3s",
        ])
        .unwrap();
        assert_eq!(c.listen, None);
        let tls = c.tls.unwrap();
        assert_eq!(tls.listen.port(), 8443);
        assert_eq!(tls.files.cert_dir.as_deref(), Some(Path::new("/etc/certs")));
        assert_eq!(c.limits.max_header_bytes, 16384);
        assert_eq!(c.limits.header_timeout, Duration::from_secs(3));
        let d = gateway(&[]).unwrap();
        assert_eq!(d.listen.map(|a| a.port()), Some(8080));
        assert_eq!(d.limits.max_header_bytes, 64 << 10);
        assert!(
            gateway(&["--tls-cert", "a.crt"]).is_err(),
            "a certificate needs its key"
        );
        assert!(
            gateway(&["--max-header-bytes", "100"]).is_err(),
            "hyper's floor is 8 KiB"
        );
        assert!(gateway(&["--listen", "nowhere"]).is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let (_dir, path) = config_file(
            "precedence",
            "database = \"sqlite://./x.db\"\ndeployment-timeout = \"5s\"\nlisten = \"127.0.0.1:1\"\n",
        );
        let c = platform(&["--config", &path, "--listen", "127.0.0.1:2"]).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.database, "sqlite://./x.db");
        assert_eq!(c.deployment_timeout, Duration::from_secs(5));
        assert_eq!(c.event_retention, Duration::from_secs(7 * 86_400));

        let (_dir, path) = config_file("unknown", "colour = \"red\"\n");
        let err = platform(&["--config", &path]).unwrap_err();
        assert!(format!("{err:#}").contains("colour"));
        let err = platform(&["--disable-capability", "teleport"]).unwrap_err();
        assert!(err.to_string().contains("teleport"));
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let (_dir, path) = config_file("env", "token_ttl = \"1h\"\nbody-limit = 100\n");
        let c = {
            let _writing = ENVIRONMENT.write().unwrap_or_else(|e| e.into_inner());
            std::env::set_var("GATEHOUSE_TOKEN_TTL", "2h");
            let c = platform_unlocked(&["--config", &path]);
            std::env::remove_var("GATEHOUSE_TOKEN_TTL");
            c
        };
        let c = c.unwrap();
        assert_eq!(c.token_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(c.body_limit, 100, "keys may be written with '_' or '-'");
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file_and_the_setting() {
        let (_dir, path) = config_file("bad", "sync-interval = \"soon\"\n");
        let err = gateway(&["--config", &path]).unwrap_err().to_string();
        assert!(
            err.contains(&path) && err.contains("sync-interval") && err.contains("soon"),
            "{err}"
        );
        let (_dir, path) = config_file("table", "[listen]\nport = 1\n");
        let err = gateway(&["--config", &path]).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let (_dir, path) = config_file("tls", "tls-cert = \"c.pem\"\n");
        let err = platform(&["--config", &path]).unwrap_err().to_string();
        assert!(err.contains("tls-key"), "{err}");
    }

    #[test]
    fn lists_in_the_file_are_repeated_flags() {
        let (_dir, path) = config_file("list", "disable_capability = [\"artifacts.exists\"]\n");
        let c = platform(&["--config", &path]).unwrap();
        assert_eq!(c.disabled_capabilities, ["artifacts.exists"]);
    }

    #[test]
    fn the_declared_defaults_are_the_libraries_defaults() {
        assert_eq!(
            format!("{:?}", platform(&[]).unwrap()),
            format!("{:?}", PlatformConfig::default())
        );
        assert_eq!(
            format!("{:?}", gateway(&[]).unwrap()),
            format!("{:?}", GatewayConfig::default())
        );
    }
}
