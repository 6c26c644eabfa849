//! The local store's schema as a numbered, ordered list of migrations. Each is applied once,
//! in its own transaction, and recorded in `schema_migrations`, so that a gateway upgraded in
//! place keeps its data; a store written by a newer build is refused.

use sqlx::SqlitePool;

use super::{now_ms, StoreError, Tx};

/// One step of the schema.
pub(super) struct Migration {
    /// Its number: migrations run in increasing order, each once.
    pub(super) version: i64,
    /// What it does, recorded next to the version.
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

/// The schema as the gateway first shipped it. Its statements are `IF NOT EXISTS`, the way that
/// build ran them at every start; a store written before versioning is recorded as this version.
const INITIAL: Migration = Migration {
    version: 1,
    name: "initial schema",
    sql: r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    handle TEXT NOT NULL,
    context TEXT NOT NULL,
    document TEXT NOT NULL,
    state TEXT NOT NULL,
    origin TEXT NOT NULL,
    artifact_uuid TEXT,
    deployment_id TEXT,
    deployed_at TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (kind, handle)
);
CREATE UNIQUE INDEX IF NOT EXISTS artifacts_uuid ON artifacts(artifact_uuid) WHERE artifact_uuid IS NOT NULL;
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    masked TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (artifact_id, key_hash)
);
CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    limits TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
    subscriber_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    plan_id TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (artifact_id, token_hash)
);
"#,
};

/// Subscription and plan statuses are spelled lowercase (`active`, `inactive`), like key
/// statuses; rows stored with the old uppercase spelling are rewritten.
const LOWERCASE_STATUSES: Migration = Migration {
    version: 2,
    name: "lowercase subscription and plan statuses",
    sql: r#"
UPDATE subscriptions SET status = lower(status) WHERE status IN ('ACTIVE', 'INACTIVE');
UPDATE plans SET status = lower(status) WHERE status IN ('ACTIVE', 'INACTIVE');
"#,
};

/// Every migration, in order.
pub(super) const MIGRATIONS: &[Migration] = &[INITIAL, LOWERCASE_STATUSES];

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

/// The schema version this build writes.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the store to the latest schema version; refuses a store newer than this build.
pub(super) async fn apply(pool: &SqlitePool) -> Result<(), StoreError> {
    let current = adopt(pool).await?;
    let known = latest_version();
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(
            version = m.version,
            name = m.name,
            "applying gateway store migration"
        );
        let failed = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        record(&mut tx, m).await.map_err(failed)?;
        tx.commit().await.map_err(failed)?;
    }
    Ok(())
}

/// Creates the version table and returns the store's schema version. A store written before
/// versioning (its tables exist, the version table does not) is recorded as version 1.
async fn adopt(pool: &SqlitePool) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    if !table_exists(&mut tx, "schema_migrations").await? {
        let legacy = table_exists(&mut tx, "artifacts").await?;
        sqlx::raw_sql(VERSION_TABLE).execute(&mut *tx).await?;
        if legacy {
            tracing::info!("gateway store written before schema versioning: recorded as version 1");
            // The build that wrote it ran these statements at every start; running them again
            // creates only what is missing and touches no row.
            sqlx::raw_sql(INITIAL.sql).execute(&mut *tx).await?;
            record(&mut tx, &INITIAL).await?;
        }
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(current.unwrap_or(0))
}

async fn table_exists(tx: &mut Tx<'_>, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

async fn record(tx: &mut Tx<'_>, m: &Migration) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .bind(m.version)
        .bind(m.name)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
#[path = "migrations_tests.rs"]
mod tests;
