//! A Redis server of one test's own (Debian's `redis-server` on a free port, nothing kept on
//! disk), for tests that stop and restart Redis under a running gateway without disturbing the
//! shared server other tests use; and the address of that shared server.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The Redis tests share (`GATEHOUSE_TEST_REDIS_URL`, which `.ci/run` sets), if any.
pub fn shared_redis_url() -> Option<String> {
    std::env::var("GATEHOUSE_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A running private server; stopped when dropped.
pub struct PrivateRedis {
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server; `Err` says why it cannot here (the caller skips, saying so).
    pub fn start() -> anyhow::Result<Self> {
        let mut r = Self {
            addr: crate::free_addr(),
            child: None,
        };
        r.restart()?;
        Ok(r)
    }

    /// `redis://` address of database `db`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://{}/{db}", self.addr)
    }

    /// Kills the server (SIGKILL); its counts are gone with it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("no redis-server here (Debian package redis-server)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not listen on {} within 10 s", self.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
