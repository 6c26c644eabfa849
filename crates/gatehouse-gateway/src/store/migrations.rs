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

/// Artifacts are looked up by context (a deployed artifact's context must be free): an index,
/// so that a store of thousands does not scan them all on each change.
const CONTEXT_INDEX: Migration = Migration {
    version: 3,
    name: "index artifacts by context",
    sql: "CREATE INDEX IF NOT EXISTS artifacts_context ON artifacts(context);",
};

/// The values of the secrets the held artifacts reference, sealed under a key derived from the
/// gateway's control-plane token (never in plaintext).
const SECRETS: Migration = Migration {
    version: 4,
    name: "sealed secret values",
    sql: "CREATE TABLE IF NOT EXISTS secrets (id TEXT PRIMARY KEY, sealed_value TEXT NOT NULL, updated_at TEXT NOT NULL);",
};

/// Every migration, in order.
pub(super) const MIGRATIONS: &[Migration] = &[INITIAL, LOWERCASE_STATUSES, CONTEXT_INDEX, SECRETS];

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
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;
    use sqlx::sqlite::SqliteConnectOptions;

    use gatehouse_core::crypto::Sealer;
    use gatehouse_core::protocol::Revision;
    use gatehouse_core::{ArtifactDocument, ArtifactKind};

    use super::super::{data_key, State, Store, StoreError};
    use super::*;

    /// The schema the gateway wrote before its store was versioned, frozen.
    const SCHEMA_V1: &str = include_str!("testdata/schema_v1.sql");

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()))
    }

    async fn connect(dir: &Path) -> SqlitePool {
        std::fs::create_dir_all(dir).unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("gateway.db"))
            .create_if_missing(true);
        SqlitePool::connect_with(opts).await.unwrap()
    }

    async fn versions(store: &Store) -> Vec<i64> {
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    fn provider() -> ArtifactDocument {
        ArtifactDocument::from_value(json!({
            "apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": "openai"},
            "spec": {"displayName": "openai", "template": "openai", "context": "/openai",
                     "upstream": {"url": "http://127.0.0.1:9", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-1"}}}
        }))
        .unwrap()
    }

    #[test]
    fn migrations_are_numbered_in_order_and_the_first_is_the_unversioned_schema() {
        let numbers: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(numbers, expected);
        assert_eq!(latest_version(), 4);
        assert_eq!(INITIAL.sql.trim(), SCHEMA_V1.trim());
    }

    /// A data directory as the unversioned gateway left it: its key, the version-1 schema, and
    /// one row of each kind.
    async fn write_unversioned_store(dir: &Path) {
        let pool = connect(dir).await;
        sqlx::raw_sql(SCHEMA_V1).execute(&pool).await.unwrap();
        let sealer = Sealer::new(&data_key(dir).unwrap()).unwrap();
        let mut sealed = provider();
        for (_, cred) in sealed.spec.credentials_mut() {
            *cred = cred.take().map(|plain| sealer.seal(&plain));
        }
        sqlx::query(
            "INSERT INTO artifacts (id, kind, handle, context, document, state, origin, artifact_uuid, deployment_id, deployed_at, created_at, updated_at) \
             VALUES ('a', 'LlmProvider', 'openai', '/openai', ?, 'deployed', 'control_plane', 'uuid-a', 'dep-1', '2026-11-28T00:00:00.000Z', 1, 1)",
        )
        .bind(sealed.to_value().to_string())
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(
            r#"
INSERT INTO api_keys (id, artifact_id, display_name, key_hash, masked, status, expires_at, created_at)
    VALUES ('k1', 'a', 'app', 'hash-k1', '***t-key', 'active', NULL, 1),
           ('k2', 'a', 'old', 'hash-k2', '***d-key', 'revoked', 1700000000000, 2);
INSERT INTO plans (id, handle, limits, status)
    VALUES ('p1', 'gold', '[{"limitCount":10,"timeUnit":"MINUTE","stopOnQuotaReach":true}]', 'ACTIVE'),
           ('p2', 'legacy', '[]', 'INACTIVE');
INSERT INTO subscriptions (id, artifact_id, subscriber_id, token_hash, plan_id, status, created_at)
    VALUES ('s1', 'a', 'team-a', 'hash-s1', 'p1', 'ACTIVE', 1),
           ('s2', 'a', 'team-b', 'hash-s2', NULL, 'INACTIVE', 2);
INSERT INTO meta (key, value) VALUES ('applied_revision', '42'), ('admin_password', 'argon-hash');
"#,
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    async fn assert_everything_kept(store: &Store) {
        let held = store
            .artifact(ArtifactKind::LlmProvider, "openai")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(held.id, "a");
        assert_eq!(held.state, State::Deployed);
        assert_eq!(held.artifact_uuid.as_deref(), Some("uuid-a"));
        assert_eq!(held.deployment_id.as_deref(), Some("dep-1"));
        assert_eq!(
            held.deployed_at.as_deref(),
            Some("2026-11-28T00:00:00.000Z")
        );
        assert_eq!(held.document, provider(), "the credential opens again");
        assert_eq!(store.artifacts().await.unwrap().len(), 1);

        let keys = store.keys_of("a").await.unwrap();
        let keys: Vec<(&str, &str, &str, Option<i64>)> = keys
            .iter()
            .map(|k| {
                (
                    k.id.as_str(),
                    k.masked_api_key.as_str(),
                    k.status.as_str(),
                    k.expires_at,
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                ("k1", "***t-key", "active", None),
                ("k2", "***d-key", "revoked", Some(1_700_000_000_000)),
            ]
        );

        let plans = store.plans().await.unwrap();
        let plans: Vec<(&str, &str, &str, usize)> = plans
            .iter()
            .map(|p| {
                (
                    p.id.as_str(),
                    p.handle.as_str(),
                    p.status.as_str(),
                    p.limits.len(),
                )
            })
            .collect();
        assert_eq!(
            plans,
            vec![("p1", "gold", "active", 1), ("p2", "legacy", "inactive", 0)],
            "plan statuses are lowercased"
        );

        let subs = store.subscriptions_of("a").await.unwrap();
        let subs: Vec<(&str, &str, Option<&str>, &str)> = subs
            .iter()
            .map(|s| {
                (
                    s.id.as_str(),
                    s.subscriber_id.as_str(),
                    s.plan_id.as_deref(),
                    s.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            subs,
            vec![
                ("s1", "team-a", Some("p1"), "active"),
                ("s2", "team-b", None, "inactive"),
            ],
            "subscription statuses are lowercased"
        );

        assert_eq!(store.applied_revision().await.unwrap(), Revision(42));
        assert_eq!(
            store.meta("admin_password").await.unwrap().as_deref(),
            Some("argon-hash")
        );
        assert_eq!(versions(store).await, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_store_written_before_versioning_opens_as_version_1_and_migrates() {
        let dir = temp_dir();
        write_unversioned_store(&dir).await;

        let store = Store::open(&dir).await.unwrap();
        assert_everything_kept(&store).await;
        drop(store);

        // Opening again changes nothing.
        let store = Store::open(&dir).await.unwrap();
        assert_everything_kept(&store).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_new_store_is_at_the_latest_version() {
        let dir = temp_dir();
        let store = Store::open(&dir).await.unwrap();
        assert_eq!(versions(&store).await, vec![1, 2, 3, 4]);
        drop(store);
        let store = Store::open(&dir).await.unwrap();
        assert_eq!(versions(&store).await, vec![1, 2, 3, 4]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_store_newer_than_the_build_is_refused_naming_both_versions() {
        let dir = temp_dir();
        let store = Store::open(&dir).await.unwrap();
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (7, 'from the future', 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        drop(store);

        let err = match Store::open(&dir).await {
            Ok(_) => panic!("a store at version 7 was opened"),
            Err(e) => e,
        };
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 7, known: 4 }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the gateway store's schema is version 7, newer than this build knows (4); upgrade gatehouse"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
