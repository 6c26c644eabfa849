//! The gateway's local store (embedded SQLite in `--data-dir`): the artifacts it holds with
//! their state and origin, their API keys (hashes only), and the last applied control-plane
//! revision. Every change is one transaction; upstream credentials are sealed at rest.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use gatehouse_core::crypto::Sealer;
use gatehouse_core::protocol::Revision;
use gatehouse_core::{ArtifactDocument, ArtifactKind};

/// Whether a held artifact is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Deployed,
    Undeployed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Deployed => "deployed",
            State::Undeployed => "undeployed",
        }
    }
}

/// Who put an artifact on the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ControlPlane,
    GatewayApi,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::ControlPlane => "control_plane",
            Origin::GatewayApi => "gateway_api",
        }
    }
}

/// An artifact the gateway holds.
#[derive(Debug, Clone)]
pub struct StoredArtifact {
    /// The gateway's own id for it.
    pub id: String,
    pub document: ArtifactDocument,
    pub state: State,
    pub origin: Origin,
    /// The control plane's uuid (`metadata.uid`), for control-plane artifacts.
    pub artifact_uuid: Option<String>,
    pub deployment_id: Option<String>,
    pub deployed_at: Option<String>,
}

impl StoredArtifact {
    /// The artifact's kind.
    pub fn kind(&self) -> ArtifactKind {
        self.document.kind
    }

    /// The artifact's handle.
    pub fn handle(&self) -> &str {
        self.document.metadata.name.as_str()
    }
}

/// An API key as the gateway keeps it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredKey {
    pub id: String,
    #[serde(skip)]
    pub artifact_id: String,
    pub display_name: String,
    #[serde(skip)]
    pub key_hash: String,
    pub masked_api_key: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A subscription to an artifact, as the gateway keeps it (the token only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: String,
    pub artifact_id: String,
    pub subscriber_id: String,
    pub token_hash: String,
    pub plan_id: Option<String>,
    pub status: String,
}

/// One change the control plane asks for.
#[derive(Debug)]
pub enum ControlPlaneChange<'a> {
    /// Hold (or replace) this artifact.
    Upsert(&'a StoredArtifact),
    /// Change the state of the artifact with this platform uuid.
    SetState {
        uuid: &'a str,
        state: State,
        deployment_id: &'a str,
        deployed_at: &'a str,
    },
    /// Forget the artifact with this platform uuid, with its keys and subscriptions.
    Delete { uuid: &'a str },
    /// Add or replace one key (by its id) of the artifact with this platform uuid.
    Key {
        artifact_uuid: &'a str,
        key: &'a StoredKey,
    },
    /// Make the artifact's keys exactly these.
    Keys {
        artifact_uuid: &'a str,
        keys: &'a [StoredKey],
    },
    /// Add or replace a subscription plan.
    Plan(&'a StoredPlan),
    /// Forget a plan.
    PlanDeleted { id: &'a str },
    /// Make the plans exactly these.
    Plans(&'a [StoredPlan]),
    /// Add or replace a subscription of the artifact with this platform uuid.
    Subscription {
        artifact_uuid: &'a str,
        sub: &'a StoredSubscription,
    },
    /// Forget a subscription.
    SubscriptionDeleted { id: &'a str },
    /// Make the artifact's subscriptions exactly these.
    Subscriptions {
        artifact_uuid: &'a str,
        subs: &'a [StoredSubscription],
    },
    /// Nothing to change; only the revision advances.
    Nothing,
}

/// A subscription plan: its quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan {
    #[serde(rename = "planId")]
    pub id: String,
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub limits: Vec<PlanLimit>,
    #[serde(default)]
    pub status: String,
}

/// One quota of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanLimit {
    pub limit_count: u64,
    pub time_unit: String,
    pub stop_on_quota_reach: bool,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("configuration already exists: {0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The local store.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    sealer: Sealer,
}

const SCHEMA: &str = r#"
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
"#;

/// Now, as RFC 3339 with milliseconds (the format the control plane uses).
pub fn now_rfc3339() -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The sealing key of a data directory: created once (mode 0600), then reused.
fn data_key(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join("secret.key");
    if let Ok(bytes) = std::fs::read(&path) {
        anyhow::ensure!(bytes.len() == 32, "{} is not a 32-byte key", path.display());
        return Ok(bytes);
    }
    let key = gatehouse_core::crypto::random_bytes(32);
    std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(key)
}

impl Store {
    /// Opens (creating when missing) the store in `dir`.
    pub async fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
        let sealer = Sealer::new(&data_key(dir)?)?;
        let opts = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            dir.join("gateway.db").display()
        ))?
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
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .context("creating the local schema")?;
        Ok(Self { pool, sealer })
    }

    fn seal(&self, doc: &ArtifactDocument) -> String {
        let mut doc = doc.clone();
        if let Some(cred) = doc.spec.credential_mut() {
            if let Some(plain) = cred.take() {
                *cred = Some(self.sealer.seal(&plain));
            }
        }
        doc.to_value().to_string()
    }

    fn open_doc(&self, text: &str) -> anyhow::Result<ArtifactDocument> {
        let mut doc = ArtifactDocument::from_value(serde_json::from_str::<Value>(text)?)?;
        if let Some(cred) = doc.spec.credential_mut() {
            if let Some(sealed) = cred.take() {
                *cred = Some(self.sealer.open(&sealed)?);
            }
        }
        Ok(doc)
    }

    fn artifact_from_row(&self, row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<StoredArtifact> {
        let state: String = row.try_get("state")?;
        let origin: String = row.try_get("origin")?;
        Ok(StoredArtifact {
            id: row.try_get("id")?,
            document: self.open_doc(&row.try_get::<String, _>("document")?)?,
            state: if state == "deployed" {
                State::Deployed
            } else {
                State::Undeployed
            },
            origin: if origin == "control_plane" {
                Origin::ControlPlane
            } else {
                Origin::GatewayApi
            },
            artifact_uuid: row.try_get("artifact_uuid")?,
            deployment_id: row.try_get("deployment_id")?,
            deployed_at: row.try_get("deployed_at")?,
        })
    }

    /// Every artifact held.
    pub async fn artifacts(&self) -> anyhow::Result<Vec<StoredArtifact>> {
        let rows = sqlx::query("SELECT * FROM artifacts ORDER BY kind, handle")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.artifact_from_row(r)).collect()
    }

    /// One artifact of `kind` by handle.
    pub async fn artifact(
        &self,
        kind: ArtifactKind,
        handle: &str,
    ) -> anyhow::Result<Option<StoredArtifact>> {
        let row = sqlx::query("SELECT * FROM artifacts WHERE kind = ? AND handle = ?")
            .bind(kind.as_str())
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.artifact_from_row(&r)).transpose()
    }

    /// Stores a new artifact; a held handle of the same kind, or a context another deployed
    /// artifact serves, is refused.
    pub async fn insert(&self, art: &StoredArtifact) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let held: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM artifacts WHERE kind = ? AND handle = ?")
                .bind(art.kind().as_str())
                .bind(art.handle())
                .fetch_optional(&mut *tx)
                .await?;
        if held.is_some() {
            return Err(StoreError::AlreadyExists(format!(
                "{} '{}' is already held",
                art.kind().label(),
                art.handle()
            )));
        }
        let context = art.document.spec.resolved_context();
        if art.state == State::Deployed {
            check_context_free(&mut tx, &context, None).await?;
        }
        let res = sqlx::query(
            "INSERT INTO artifacts (id, kind, handle, context, document, state, origin, artifact_uuid, deployment_id, deployed_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&art.id)
        .bind(art.kind().as_str())
        .bind(art.handle())
        .bind(&context)
        .bind(self.seal(&art.document))
        .bind(art.state.as_str())
        .bind(art.origin.as_str())
        .bind(&art.artifact_uuid)
        .bind(&art.deployment_id)
        .bind(&art.deployed_at)
        .bind(now_ms())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        match res {
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                return Err(StoreError::AlreadyExists(format!(
                    "{} '{}' is already held",
                    art.kind().label(),
                    art.handle()
                )))
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a held artifact's document (and state fields) by its id.
    pub async fn replace(&self, art: &StoredArtifact) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let context = art.document.spec.resolved_context();
        if art.state == State::Deployed {
            check_context_free(&mut tx, &context, Some(&art.id)).await?;
        }
        let n = sqlx::query(
            "UPDATE artifacts SET document = ?, context = ?, state = ?, deployment_id = ?, deployed_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(self.seal(&art.document))
        .bind(&context)
        .bind(art.state.as_str())
        .bind(&art.deployment_id)
        .bind(&art.deployed_at)
        .bind(now_ms())
        .bind(&art.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an artifact with its keys.
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let n = sqlx::query("DELETE FROM artifacts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every key of every artifact.
    pub async fn keys(&self) -> anyhow::Result<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The keys of one artifact.
    pub async fn keys_of(&self, artifact_id: &str) -> anyhow::Result<Vec<StoredKey>> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE artifact_id = ? ORDER BY created_at, id")
                .bind(artifact_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Adds a key (its hash) to an artifact; the same key twice on one artifact is refused.
    pub async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let res = sqlx::query(
            "INSERT INTO api_keys (id, artifact_id, display_name, key_hash, masked, status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.artifact_id)
        .bind(&key.display_name)
        .bind(&key.key_hash)
        .bind(&key.masked_api_key)
        .bind(&key.status)
        .bind(key.expires_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match res {
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(StoreError::Conflict(
                    "this API key is already registered for the artifact".into(),
                ))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Revokes a key of an artifact.
    pub async fn revoke_key(&self, artifact_id: &str, key_id: &str) -> Result<(), StoreError> {
        let n =
            sqlx::query("UPDATE api_keys SET status = 'revoked' WHERE artifact_id = ? AND id = ?")
                .bind(artifact_id)
                .bind(key_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records (or replaces) a subscription of an artifact.
    pub async fn upsert_subscription(&self, sub: &StoredSubscription) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        upsert_subscription_tx(&mut tx, &sub.artifact_id, sub).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The subscriptions of one artifact.
    pub async fn subscriptions_of(
        &self,
        artifact_id: &str,
    ) -> anyhow::Result<Vec<StoredSubscription>> {
        let rows = sqlx::query(
            "SELECT * FROM subscriptions WHERE artifact_id = ? ORDER BY created_at, id",
        )
        .bind(artifact_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    /// The artifacts that came from the control plane.
    pub async fn control_plane_artifacts(&self) -> anyhow::Result<Vec<StoredArtifact>> {
        Ok(self
            .artifacts()
            .await?
            .into_iter()
            .filter(|a| a.origin == Origin::ControlPlane)
            .collect())
    }

    /// The control-plane artifact with platform uuid `uuid`.
    pub async fn by_uuid(&self, uuid: &str) -> anyhow::Result<Option<StoredArtifact>> {
        let row = sqlx::query("SELECT * FROM artifacts WHERE artifact_uuid = ?")
            .bind(uuid)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.artifact_from_row(&r)).transpose()
    }

    /// Applies one control-plane change and, in the same transaction, records `revision` as
    /// applied (when given), so that a crash never leaves the two apart.
    pub async fn apply_control_plane(
        &self,
        change: ControlPlaneChange<'_>,
        revision: Option<Revision>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        match change {
            ControlPlaneChange::Upsert(art) => {
                let context = art.document.spec.resolved_context();
                let existing: Option<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT id, origin, artifact_uuid FROM artifacts WHERE kind = ? AND handle = ?",
                )
                .bind(art.kind().as_str())
                .bind(art.handle())
                .fetch_optional(&mut *tx)
                .await?;
                let id = match existing {
                    Some((_, origin, _)) if origin == "gateway_api" => {
                        return Err(StoreError::AlreadyExists(format!(
                            "{} '{}' is held by an artifact created through the gateway's management API",
                            art.kind().label(),
                            art.handle()
                        )))
                    }
                    Some((id, _, uuid)) if uuid.as_deref() == art.artifact_uuid.as_deref() => Some(id),
                    Some((id, _, _)) => {
                        // Another control-plane artifact held this handle (deleted and recreated
                        // there): the newer one replaces it.
                        sqlx::query("DELETE FROM artifacts WHERE id = ?").bind(&id).execute(&mut *tx).await?;
                        None
                    }
                    None => None,
                };
                // The same uuid under another handle cannot happen (handles are immutable),
                // but a stale row must not block the insert.
                let by_uuid: Option<String> =
                    sqlx::query_scalar("SELECT id FROM artifacts WHERE artifact_uuid = ?")
                        .bind(&art.artifact_uuid)
                        .fetch_optional(&mut *tx)
                        .await?;
                let id = id.or(by_uuid).unwrap_or_else(|| art.id.clone());
                if art.state == State::Deployed {
                    check_context_free(&mut tx, &context, Some(&id)).await?;
                }
                sqlx::query(
                    "INSERT INTO artifacts (id, kind, handle, context, document, state, origin, artifact_uuid, deployment_id, deployed_at, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, 'control_plane', ?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET handle = excluded.handle, context = excluded.context, document = excluded.document, \
                       state = excluded.state, deployment_id = excluded.deployment_id, deployed_at = excluded.deployed_at, updated_at = excluded.updated_at",
                )
                .bind(&id)
                .bind(art.kind().as_str())
                .bind(art.handle())
                .bind(&context)
                .bind(self.seal(&art.document))
                .bind(art.state.as_str())
                .bind(&art.artifact_uuid)
                .bind(&art.deployment_id)
                .bind(&art.deployed_at)
                .bind(now_ms())
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
            ControlPlaneChange::SetState {
                uuid,
                state,
                deployment_id,
                deployed_at,
            } => {
                if state == State::Deployed {
                    let row: Option<(String, String)> =
                        sqlx::query_as("SELECT id, context FROM artifacts WHERE artifact_uuid = ?")
                            .bind(uuid)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if let Some((id, context)) = row {
                        check_context_free(&mut tx, &context, Some(&id)).await?;
                    }
                }
                sqlx::query("UPDATE artifacts SET state = ?, deployment_id = ?, deployed_at = ?, updated_at = ? WHERE artifact_uuid = ?")
                    .bind(state.as_str())
                    .bind(deployment_id)
                    .bind(deployed_at)
                    .bind(now_ms())
                    .bind(uuid)
                    .execute(&mut *tx)
                    .await?;
            }
            ControlPlaneChange::Delete { uuid } => {
                sqlx::query("DELETE FROM artifacts WHERE artifact_uuid = ?")
                    .bind(uuid)
                    .execute(&mut *tx)
                    .await?;
            }
            ControlPlaneChange::Key { artifact_uuid, key } => {
                let id: Option<String> =
                    sqlx::query_scalar("SELECT id FROM artifacts WHERE artifact_uuid = ?")
                        .bind(artifact_uuid)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(id) = id {
                    upsert_key(&mut tx, &id, key).await?;
                }
            }
            ControlPlaneChange::Keys {
                artifact_uuid,
                keys,
            } => {
                let id: Option<String> =
                    sqlx::query_scalar("SELECT id FROM artifacts WHERE artifact_uuid = ?")
                        .bind(artifact_uuid)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(id) = id {
                    sqlx::query("DELETE FROM api_keys WHERE artifact_id = ?")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    for key in keys {
                        upsert_key(&mut tx, &id, key).await?;
                    }
                }
            }
            ControlPlaneChange::Plan(plan) => upsert_plan(&mut tx, plan).await?,
            ControlPlaneChange::PlanDeleted { id } => {
                sqlx::query("DELETE FROM plans WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            ControlPlaneChange::Plans(plans) => {
                sqlx::query("DELETE FROM plans").execute(&mut *tx).await?;
                for plan in plans {
                    upsert_plan(&mut tx, plan).await?;
                }
            }
            ControlPlaneChange::Subscription { artifact_uuid, sub } => {
                if let Some(id) = local_id(&mut tx, artifact_uuid).await? {
                    upsert_subscription_tx(&mut tx, &id, sub).await?;
                }
            }
            ControlPlaneChange::SubscriptionDeleted { id } => {
                sqlx::query("DELETE FROM subscriptions WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            ControlPlaneChange::Subscriptions {
                artifact_uuid,
                subs,
            } => {
                if let Some(id) = local_id(&mut tx, artifact_uuid).await? {
                    sqlx::query("DELETE FROM subscriptions WHERE artifact_id = ?")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    for sub in subs {
                        upsert_subscription_tx(&mut tx, &id, sub).await?;
                    }
                }
            }
            ControlPlaneChange::Nothing => {}
        }
        if let Some(rev) = revision {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('applied_revision', ?) \
                 ON CONFLICT (key) DO UPDATE SET value = CASE WHEN CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER) THEN excluded.value ELSE meta.value END",
            )
            .bind(rev.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The last control-plane revision applied (0: none).
    pub async fn applied_revision(&self) -> anyhow::Result<Revision> {
        Ok(Revision(
            self.meta("applied_revision")
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Every plan.
    pub async fn plans(&self) -> anyhow::Result<Vec<StoredPlan>> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, handle, limits, status FROM plans ORDER BY handle")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, handle, limits, status)| {
                Ok(StoredPlan {
                    id,
                    handle,
                    limits: serde_json::from_str(&limits)?,
                    status,
                })
            })
            .collect()
    }

    /// Every subscription of every artifact.
    pub async fn subscriptions(&self) -> anyhow::Result<Vec<StoredSubscription>> {
        let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    /// A value of the store's metadata.
    pub async fn meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a metadata value.
    pub async fn set_meta(&self, key: &str, value: &str) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn local_id(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    artifact_uuid: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM artifacts WHERE artifact_uuid = ?")
            .bind(artifact_uuid)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

async fn upsert_plan(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    plan: &StoredPlan,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plans (id, handle, limits, status) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET handle = excluded.handle, limits = excluded.limits, status = excluded.status",
    )
    .bind(&plan.id)
    .bind(&plan.handle)
    .bind(serde_json::to_string(&plan.limits).map_err(anyhow::Error::from)?)
    .bind(&plan.status)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_subscription_tx(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    artifact_id: &str,
    sub: &StoredSubscription,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscriptions (id, artifact_id, subscriber_id, token_hash, plan_id, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET subscriber_id = excluded.subscriber_id, token_hash = excluded.token_hash, \
           plan_id = excluded.plan_id, status = excluded.status",
    )
    .bind(&sub.id)
    .bind(artifact_id)
    .bind(&sub.subscriber_id)
    .bind(&sub.token_hash)
    .bind(&sub.plan_id)
    .bind(&sub.status)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    artifact_id: &str,
    key: &StoredKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, artifact_id, display_name, key_hash, masked, status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, expires_at = excluded.expires_at, display_name = excluded.display_name",
    )
    .bind(&key.id)
    .bind(artifact_id)
    .bind(&key.display_name)
    .bind(&key.key_hash)
    .bind(&key.masked_api_key)
    .bind(&key.status)
    .bind(key.expires_at)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn check_context_free(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    context: &str,
    except: Option<&str>,
) -> Result<(), StoreError> {
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT kind, handle FROM artifacts WHERE context = ? AND id <> ? AND state = 'deployed'",
    )
    .bind(context)
    .bind(except.unwrap_or(""))
    .fetch_optional(&mut **tx)
    .await?;
    match clash {
        Some((kind, handle)) => Err(StoreError::Conflict(format!(
            "context '{context}' is already served by {kind} '{handle}'"
        ))),
        None => Ok(()),
    }
}

fn subscription_from_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<StoredSubscription> {
    Ok(StoredSubscription {
        id: row.try_get("id")?,
        artifact_id: row.try_get("artifact_id")?,
        subscriber_id: row.try_get("subscriber_id")?,
        token_hash: row.try_get("token_hash")?,
        plan_id: row.try_get("plan_id")?,
        status: row.try_get("status")?,
    })
}

fn key_from_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<StoredKey> {
    Ok(StoredKey {
        id: row.try_get("id")?,
        artifact_id: row.try_get("artifact_id")?,
        display_name: row.try_get("display_name")?,
        key_hash: row.try_get("key_hash")?,
        masked_api_key: row.try_get("masked")?,
        status: row.try_get("status")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub use gatehouse_core::crypto::mask;

#[cfg(test)]
mod tests {
    use super::*;
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
            status: "active".into(),
            expires_at: None,
        };
        store.insert_key(&key).await.unwrap();
        let sub = StoredSubscription {
            id: "s1".into(),
            artifact_id: "a".into(),
            subscriber_id: "team-a".into(),
            token_hash: "h".into(),
            plan_id: None,
            status: "ACTIVE".into(),
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
}
