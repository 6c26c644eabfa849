//! Helpers for Gatehouse's tests: a database of its own per test (SQLite file or a fresh
//! PostgreSQL database), the real `gatehouse` binary spawned on a free port, and a small JSON
//! client for its APIs (over `gatehouse-client`).

pub mod binary;
mod client;
pub mod echo;
pub mod fake_llm;
pub mod private_pg;
pub mod private_redis;
pub mod relay;

pub use client::{Answer, Client};

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The environment variable naming the PostgreSQL server tests may use.
pub const PG_ENV: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that belongs to one test and is removed after it.
pub struct TestDatabase {
    /// The URL to hand to `gatehouse platform --database`.
    pub url: String,
    /// Directory holding the SQLite file (and anything else the test writes).
    pub dir: TempDir,
    pg: Option<(String, String)>,
}

impl TestDatabase {
    /// A database at `url` that this test owns by other means (nothing is dropped after it).
    pub fn at(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            url: url.to_owned(),
            dir: TempDir::new("db")?,
            pg: None,
        })
    }

    /// A fresh database of `backend`; `None` when PostgreSQL is asked for but not configured
    /// (the caller reports the test as skipped).
    pub async fn new(backend: Backend) -> anyhow::Result<Option<Self>> {
        let dir = TempDir::new("db")?;
        match backend {
            Backend::Sqlite => Ok(Some(Self {
                url: format!("sqlite://{}", dir.path().join("platform.db").display()),
                dir,
                pg: None,
            })),
            Backend::Postgres => {
                let Ok(base) = std::env::var(PG_ENV) else {
                    return Ok(None);
                };
                let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = pg_admin(&base).await?;
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .context("creating the test database")?;
                let url = replace_db_name(&base, &name);
                Ok(Some(Self {
                    url,
                    dir,
                    pg: Some((base, name)),
                }))
            }
        }
    }
}

async fn pg_admin(base: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    sqlx::PgConnection::connect(base)
        .await
        .with_context(|| format!("connecting to {PG_ENV}"))
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            // Drop runs outside any runtime guarantee; use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut conn) = pg_admin(&base).await {
                            let _ = sqlx::Executor::execute(
                                &mut conn,
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system temp dir.
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(format!(
            "gatehouse-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound, then released for the child to take).
///
/// The port is picked below the kernel's ephemeral range: the kernel never hands such a port to
/// an outgoing connection, so a process restarted on it (tests do that) finds it free again.
pub fn free_addr() -> SocketAddr {
    use std::hash::{BuildHasher, Hasher};
    const LOWEST: u16 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > LOWEST + 1_000 {
        let span = u64::from(ephemeral_low - LOWEST);
        for attempt in 0u64..1_000 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(attempt);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            let port = LOWEST + (h.finish() % span) as u16;
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                return l.local_addr().expect("local addr");
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    l.local_addr().expect("local addr")
}

/// A spawned `gatehouse` process, killed on drop.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Spawns `bin` with `args`, stdout and stderr going to a log file in `dir`.
    pub fn spawn(
        bin: &Path,
        args: &[String],
        dir: &Path,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("process-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .env_remove("RUST_LOG")
            .env("RUST_LOG", "info,sqlx=warn");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        Ok(Self { child, log })
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and with which status).
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        #[cfg(unix)]
        unsafe_free_sigterm(self.child.id());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

#[cfg(unix)]
fn unsafe_free_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A running control plane: the real binary on a free port with its own database.
pub struct Platform {
    pub base: String,
    pub addr: SocketAddr,
    pub process: Process,
    pub db: TestDatabase,
    pub admin_password: String,
    bin: PathBuf,
    extra: Vec<String>,
}

impl Platform {
    /// Starts `gatehouse platform` on `db` with extra flags, waiting until `/health` is 200.
    pub async fn start(bin: &Path, db: TestDatabase, extra: &[&str]) -> anyhow::Result<Self> {
        let addr = free_addr();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let process = spawn_platform(bin, &db, addr, &extra)?;
        let mut p = Self {
            base: format!("http://{addr}"),
            addr,
            process,
            db,
            admin_password: "test-admin-password".into(),
            bin: bin.to_owned(),
            extra,
        };
        p.wait_healthy().await?;
        Ok(p)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/health", self.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(status) = self.process.try_exit() {
                anyhow::bail!("platform exited ({status}):\n{}", self.process.output());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "platform did not become healthy:\n{}",
                    self.process.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the process and starts it again on the same address and database.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = spawn_platform(&self.bin, &self.db, self.addr, &self.extra)?;
        self.wait_healthy().await
    }

    /// Spawns another platform process on the same database and flags, listening on `addr`,
    /// without waiting for it (a replica the caller kills and starts again).
    pub fn spawn_on(&self, addr: SocketAddr) -> anyhow::Result<Process> {
        spawn_platform(&self.bin, &self.db, addr, &self.extra)
    }

    /// Starts another platform process on the same database (a replica).
    pub async fn replica(&self) -> anyhow::Result<Replica> {
        let addr = free_addr();
        let process = spawn_platform(&self.bin, &self.db, addr, &self.extra)?;
        let mut r = Replica {
            base: format!("http://{addr}"),
            addr,
            process,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(res) = client.get(format!("{}/health", r.base)).send().await {
                if res.status().is_success() {
                    return Ok(r);
                }
            }
            if let Some(status) = r.process.try_exit() {
                anyhow::bail!("replica exited ({status}):\n{}", r.process.output());
            }
            anyhow::ensure!(Instant::now() < deadline, "replica did not become healthy");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A client logged in as `admin` to organization `org`.
    pub async fn login(&self, org: &str) -> anyhow::Result<Client> {
        let anon = Client::anonymous(&self.base);
        let login = anon
            .api()
            .login("admin", &self.admin_password, Some(org))
            .await
            .context("logging in as admin")?;
        Ok(anon.with_bearer(&login.token))
    }
}

/// A second platform process on the same database.
pub struct Replica {
    pub base: String,
    pub addr: SocketAddr,
    pub process: Process,
}

fn spawn_platform(
    bin: &Path,
    db: &TestDatabase,
    addr: SocketAddr,
    extra: &[String],
) -> anyhow::Result<Process> {
    let mut args = vec![
        "platform".to_string(),
        "--listen".into(),
        addr.to_string(),
        "--database".into(),
        db.url.clone(),
        "--admin-password".into(),
        "test-admin-password".into(),
    ];
    args.extend(extra.iter().cloned());
    Process::spawn(bin, &args, db.dir.path(), &[])
}

/// A running gateway: the real binary on free ports with its own data directory.
pub struct Gateway {
    /// Traffic base URL.
    pub base: String,
    /// Management API base URL.
    pub admin_base: String,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub process: Process,
    pub dir: TempDir,
    bin: PathBuf,
    extra: Vec<String>,
}

/// The management password test gateways use.
pub const GATEWAY_ADMIN_PASSWORD: &str = "gateway-admin-pw";

impl Gateway {
    /// Starts `gatehouse gateway` with extra flags, waiting until it is ready.
    pub async fn start(bin: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let dir = TempDir::new("gateway")?;
        let (addr, admin_addr) = (free_addr(), free_addr());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let process = spawn_gateway(bin, dir.path(), addr, admin_addr, &extra)?;
        let mut g = Self {
            base: format!("http://{addr}"),
            admin_base: format!("http://{admin_addr}"),
            addr,
            admin_addr,
            process,
            dir,
            bin: bin.to_owned(),
            extra,
        };
        g.wait_ready().await?;
        Ok(g)
    }

    /// Waits until `/_gateway-health/ready` answers 200.
    pub async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/_gateway-health/ready", self.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(status) = self.process.try_exit() {
                anyhow::bail!("gateway exited ({status}):\n{}", self.process.output());
            }
            if Instant::now() > deadline {
                anyhow::bail!("gateway did not become ready:\n{}", self.process.output());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Kills the gateway with SIGKILL.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the gateway again on the same ports and data directory (after `kill`).
    pub fn respawn(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = spawn_gateway(
            &self.bin,
            self.dir.path(),
            self.addr,
            self.admin_addr,
            &self.extra,
        )?;
        Ok(())
    }

    /// A management API client (basic auth as admin).
    pub fn admin(&self) -> Client {
        use base64::Engine;
        let creds = base64::engine::general_purpose::STANDARD
            .encode(format!("admin:{GATEWAY_ADMIN_PASSWORD}"));
        Client::anonymous(&self.admin_base).with_header("authorization", &format!("Basic {creds}"))
    }

    /// A traffic client.
    pub fn traffic(&self) -> Client {
        Client::anonymous(&self.base)
    }
}

fn spawn_gateway(
    bin: &Path,
    dir: &Path,
    addr: SocketAddr,
    admin: SocketAddr,
    extra: &[String],
) -> anyhow::Result<Process> {
    let mut args = vec![
        "gateway".to_string(),
        "--listen".into(),
        addr.to_string(),
        "--admin-listen".into(),
        admin.to_string(),
        "--admin-password".into(),
        GATEWAY_ADMIN_PASSWORD.into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    Process::spawn(bin, &args, dir, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            replace_db_name("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_db_name("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_db_name("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
