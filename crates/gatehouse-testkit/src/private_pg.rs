//! A PostgreSQL server of one test's own (initdb into a temporary directory, on a free port),
//! for tests that stop or restart the database under a running platform without disturbing the
//! shared server other tests use. Needs Debian's PostgreSQL server binaries and root (the
//! server runs as the `postgres` user); `start` says why when it cannot.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::TempDir;

/// A running private server; stopped when dropped.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: TempDir,
}

fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_postgres(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .context("running runuser")?;
    if !out.status.success() {
        bail!(
            "{}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl PrivatePostgres {
    /// Starts a server; `Err` says why it cannot here (the caller skips, saying so).
    pub fn start() -> anyhow::Result<Self> {
        let bin =
            server_bin().context("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let root = Command::new("id").arg("-u").output()?.stdout;
        if String::from_utf8_lossy(&root).trim() != "0" {
            bail!("starting a private PostgreSQL server needs root (to run it as postgres)");
        }
        let dir = TempDir::new("private-pg")?;
        let status = Command::new("chown")
            .args(["-R", "postgres", &dir.path().display().to_string()])
            .status()?;
        if !status.success() {
            bail!("could not give the directory to the postgres user");
        }
        let data = dir.path().join("data");
        let port = crate::free_addr().port();
        let initdb = bin.join("initdb");
        as_postgres(&[
            initdb.to_str().unwrap_or_default(),
            "-D",
            data.to_str().unwrap_or_default(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        let pg = Self {
            port,
            bin,
            data,
            _dir: dir,
        };
        pg.ctl(&["start"])?;
        Ok(pg)
    }

    fn ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        let mut args = vec![
            pg_ctl.to_str().unwrap_or_default(),
            "-D",
            self.data.to_str().unwrap_or_default(),
            "-o",
            &opts,
            "-w",
            "-m",
            "fast",
            "-l",
        ];
        let log = self.data.join("server.log");
        let log = log.display().to_string();
        args.push(&log);
        args.extend_from_slice(action);
        as_postgres(&args)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it (fast: open connections are cut).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.ctl(&["stop"])
    }

    /// Starts it again after `stop`.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.ctl(&["start"])
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
    }
}
