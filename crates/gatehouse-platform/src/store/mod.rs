//! The platform's store: one sqlx `Any` pool over embedded SQLite or PostgreSQL, versioned
//! migrations, and write transactions.
//!
//! SQL is written once for both backends: `$N` placeholders (SQLite accepts them), integers as
//! BIGINT/INTEGER decoded as `i64`, times as milliseconds since the epoch, JSON as TEXT.

mod migrations;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database engine backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store handle, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer; serializing writers in-process avoids `SQLITE_BUSY` on
    /// lock upgrades. PostgreSQL writers serialize per organization on the revision row instead.
    write_gate: Option<Arc<Mutex<()>>>,
}

/// A write transaction. Dropping it without `commit` rolls back.
pub struct WriteTx {
    tx: Transaction<'static, sqlx::Any>,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`), creating a SQLite file and its
    /// directory when missing, and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, prepare_sqlite_url(url)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            anyhow::bail!("unsupported database URL '{url}': use sqlite://PATH or postgres://...");
        };
        let max = if backend == Backend::Sqlite { 8 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("connecting to the database ({})", redact_url(&url)))?;
        let db = Db {
            pool,
            backend,
            write_gate: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        };
        migrations::apply(&db)
            .await
            .context("applying database migrations")?;
        Ok(db)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for single-statement reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction.
    pub async fn write(&self) -> Result<WriteTx, sqlx::Error> {
        let gate = match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        // IMMEDIATE takes SQLite's write lock up front: a deferred transaction that read first
        // could not upgrade after another connection's write (SQLITE_BUSY_SNAPSHOT).
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _gate: gate })
    }

    /// Begins a read-only transaction whose statements all see one snapshot.
    pub async fn snapshot(&self) -> Result<Transaction<'static, sqlx::Any>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
        }
        Ok(tx)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("the platform needs a SQLite file path, e.g. sqlite://./data/platform.db");
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database directory {}", parent.display()))?;
        }
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => format!("sqlite://{path}?{q}"),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether `err` is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const RFC3339_MS: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// Formats milliseconds since the epoch as RFC 3339 with millisecond precision, in UTC.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(RFC3339_MS).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into milliseconds since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// `$from, $from+1, ...` placeholders for `n` values.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        let ms = 1_764_294_123_456;
        let s = format_ms(ms);
        assert_eq!(s, "2025-11-28T01:42:03.456Z");
        assert_eq!(parse_rfc3339_ms(&s), Some(ms));
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
