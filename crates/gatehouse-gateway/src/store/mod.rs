//! The gateway's local store (embedded SQLite in `--data-dir`): the artifacts it holds with
//! their state and origin, their API keys (hashes only), subscriptions and plans, and the last
//! applied control-plane revision. Every change is one transaction; upstream credentials are
//! sealed at rest; the schema is versioned (`migrations`) so a gateway upgraded in place keeps
//! its data.

mod apply;
mod artifacts;
mod error;
mod keys;
mod migrations;
mod rows;
mod subscriptions;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use gatehouse_core::crypto::Sealer;
use gatehouse_core::protocol::Revision;

pub use apply::{ControlPlaneChange, SealedSecret};
pub use error::StoreError;
pub use gatehouse_core::crypto::mask;
pub use rows::{Origin, State, StoredArtifact, StoredKey, StoredPlan, StoredSubscription};

/// A transaction on the store.
type Tx<'c> = sqlx::Transaction<'c, sqlx::Sqlite>;

/// The metadata key of the last applied control-plane revision.
const APPLIED_REVISION: &str = "applied_revision";

/// The local store: a handle on the database and the key that seals credentials in it.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    sealer: Sealer,
}

/// Now, as RFC 3339 with milliseconds (the format the control plane uses).
pub fn now_rfc3339() -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_default()
}

/// Now, in milliseconds since the Unix epoch (the store's `created_at`/`updated_at`).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The sealing key of a data directory: created once (mode 0600), then reused.
fn data_key(dir: &Path) -> Result<Vec<u8>, StoreError> {
    let path = dir.join("secret.key");
    let io_error = |source| StoreError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => return Ok(bytes),
        Ok(_) => {
            return Err(StoreError::DataKey {
                path,
                reason: "not a 32-byte key".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    let key = gatehouse_core::crypto::random_bytes(32);
    std::fs::write(&path, &key).map_err(io_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error)?;
    }
    Ok(key)
}

/// Rows read per query when a whole table is read.
const PAGE: i64 = 4096;

impl Store {
    /// Opens (creating when missing) the store in `dir`, and brings its schema to the latest
    /// version this build knows.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let key_path = dir.join("secret.key");
        let sealer = Sealer::new(&data_key(dir)?).map_err(|e| StoreError::DataKey {
            path: key_path,
            reason: format!("{e:#}"),
        })?;
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("gateway.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One connection: the gateway's writes are few and must be serialized anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        migrations::apply(&pool).await?;
        Ok(Self { pool, sealer })
    }

    /// The last control-plane revision applied (0: none).
    pub async fn applied_revision(&self) -> Result<Revision, StoreError> {
        let Some(value) = self.meta(APPLIED_REVISION).await? else {
            return Ok(Revision::ZERO);
        };
        value
            .parse()
            .map(Revision)
            .map_err(|e| StoreError::UnreadablePayload {
                table: "meta",
                id: APPLIED_REVISION.into(),
                column: "value",
                reason: format!("'{value}' is not a revision: {e}"),
            })
    }

    /// Records `revision` as the last applied even when it is lower: for a platform whose log
    /// went back (a database restored from a backup), after a full sync at `revision`.
    pub async fn reset_applied_revision(&self, revision: Revision) -> Result<(), StoreError> {
        self.set_meta(APPLIED_REVISION, &revision.to_string()).await
    }

    /// A value of the store's metadata.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a metadata value.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::protocol::{ApiKeyStatus, SubscriptionStatus};
    use gatehouse_core::{ArtifactDocument, ArtifactKind};
    use serde_json::json;

    fn doc(name: &str, context: &str) -> ArtifactDocument {
        ArtifactDocument::from_value(json!({
            "apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": name},
            "spec": {"displayName": name, "template": "openai", "context": context,
                     "upstream": {"url": "http://127.0.0.1:9", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-1"}}}
        }))
        .unwrap()
    }

    fn art(id: &str, name: &str, context: &str, state: State) -> StoredArtifact {
        StoredArtifact {
            id: id.into(),
            document: doc(name, context),
            state,
            origin: Origin::ControlPlane,
            artifact_uuid: Some(format!("uuid-{id}")),
            deployment_id: Some("dep-1".into()),
            deployed_at: Some("2026-11-28T00:00:00.000Z".into()),
        }
    }

    #[tokio::test]
    async fn artifacts_keys_and_subscriptions_survive_reopen_and_go_with_their_artifact() {
        let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).await.unwrap();
        store
            .insert(&art("a", "openai", "/openai", State::Deployed))
            .await
            .unwrap();
        assert!(matches!(
            store
                .insert(&art("b", "openai", "/other", State::Deployed))
                .await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            store
                .insert(&art("c", "other", "/openai", State::Deployed))
                .await,
            Err(StoreError::Conflict(_))
        ));
        // An undeployed artifact may share a context with a deployed one.
        store
            .insert(&art("d", "retained", "/openai", State::Undeployed))
            .await
            .unwrap();
        let key = StoredKey {
            id: "k1".into(),
            artifact_id: "a".into(),
            display_name: "app".into(),
            key_hash: gatehouse_core::crypto::sha256_hex("secret-key"),
            masked_api_key: mask("secret-key"),
            status: ApiKeyStatus::Active,
            expires_at: None,
        };
        store.insert_key(&key).await.unwrap();
        let sub = StoredSubscription {
            id: "s1".into(),
            artifact_id: "a".into(),
            subscriber_id: "team-a".into(),
            token_hash: "h".into(),
            plan_id: None,
            status: SubscriptionStatus::Active,
        };
        store.upsert_subscription(&sub).await.unwrap();
        store.set_meta("applied_revision", "42").await.unwrap();
        drop(store);

        let store = Store::open(&dir).await.unwrap();
        let held = store
            .artifact(ArtifactKind::LlmProvider, "openai")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(held.artifact_uuid.as_deref(), Some("uuid-a"));
        assert_eq!(held.deployment_id.as_deref(), Some("dep-1"));
        assert_eq!(held.state, State::Deployed);
        assert_eq!(
            held.document,
            doc("openai", "/openai"),
            "the credential opens again"
        );
        let raw = std::fs::read(dir.join("gateway.db")).unwrap();
        assert!(
            !String::from_utf8_lossy(&raw).contains("sk-1"),
            "sealed at rest"
        );
        assert_eq!(
            store.keys_of("a").await.unwrap()[0].masked_api_key,
            "***t-key"
        );
        assert_eq!(store.subscriptions_of("a").await.unwrap(), vec![sub]);
        assert_eq!(
            store.meta("applied_revision").await.unwrap().as_deref(),
            Some("42")
        );

        store.delete("a").await.unwrap();
        assert!(store.keys_of("a").await.unwrap().is_empty());
        assert!(store.subscriptions_of("a").await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_unreadable_applied_revision_is_an_error_not_zero() {
        let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).await.unwrap();
        assert_eq!(store.applied_revision().await.unwrap(), Revision(0));
        store.set_meta(APPLIED_REVISION, "forty-two").await.unwrap();
        let err = store.applied_revision().await.unwrap_err().to_string();
        assert!(
            err.contains("forty-two") && err.contains("applied_revision"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
