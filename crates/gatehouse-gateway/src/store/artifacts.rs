//! Held artifacts: reading them back (credentials opened), and the management API's writes.

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use gatehouse_core::{ArtifactDocument, ArtifactKind};

use super::rows::{Origin, State, StoredArtifact};
use super::{now_ms, Store, StoreError, Tx};

impl Store {
    /// The document as stored: its credentials sealed.
    pub(super) fn seal(&self, doc: &ArtifactDocument) -> String {
        let mut doc = doc.clone();
        for (_, cred) in doc.spec.credentials_mut() {
            if let Some(plain) = cred.take() {
                *cred = Some(self.sealer.seal(&plain));
            }
        }
        doc.to_value().to_string()
    }

    /// Reads back a stored document of artifact `id`, opening its credentials.
    fn open_doc(&self, id: &str, text: &str) -> Result<ArtifactDocument, StoreError> {
        let unreadable = |reason: String| StoreError::UnreadablePayload {
            table: "artifacts",
            id: id.to_owned(),
            column: "document",
            reason,
        };
        let value = serde_json::from_str::<Value>(text).map_err(|e| unreadable(e.to_string()))?;
        let mut doc = ArtifactDocument::from_value(value).map_err(|e| unreadable(e.to_string()))?;
        for (_, cred) in doc.spec.credentials_mut() {
            if let Some(sealed) = cred.take() {
                let plain = self
                    .sealer
                    .open(&sealed)
                    .map_err(|e| unreadable(format!("the sealed credential: {e:#}")))?;
                *cred = Some(plain);
            }
        }
        Ok(doc)
    }

    /// Maps an `artifacts` row; an unknown state or origin, or an unreadable document, is an
    /// error naming the row.
    fn artifact_from_row(&self, row: &SqliteRow) -> Result<StoredArtifact, StoreError> {
        let id: String = row.try_get("id")?;
        let state: String = row.try_get("state")?;
        let state = State::parse(&state).ok_or_else(|| StoreError::UnknownValue {
            table: "artifacts",
            id: id.clone(),
            column: "state",
            value: state,
        })?;
        let origin = Origin::from_column(&id, row.try_get("origin")?)?;
        Ok(StoredArtifact {
            document: self.open_doc(&id, &row.try_get::<String, _>("document")?)?,
            state,
            origin,
            artifact_uuid: row.try_get("artifact_uuid")?,
            deployment_id: row.try_get("deployment_id")?,
            deployed_at: row.try_get("deployed_at")?,
            id,
        })
    }

    /// Every artifact held.
    pub async fn artifacts(&self) -> Result<Vec<StoredArtifact>, StoreError> {
        let rows = sqlx::query("SELECT * FROM artifacts ORDER BY kind, handle")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.artifact_from_row(r)).collect()
    }

    /// How many artifacts the store holds, by kind and state (counted by the database, without
    /// reading documents: the status page stays cheap at any size).
    pub async fn artifact_counts(&self) -> Result<Vec<(ArtifactKind, State, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT kind, state, COUNT(*) FROM artifacts GROUP BY kind, state")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(kind, state, n)| {
                let unknown = |column: &'static str, value: String| StoreError::UnknownValue {
                    table: "artifacts",
                    id: "(counted)".to_owned(),
                    column,
                    value,
                };
                let k = kind
                    .parse::<ArtifactKind>()
                    .map_err(|_| unknown("kind", kind.clone()))?;
                let st = State::parse(&state).ok_or_else(|| unknown("state", state.clone()))?;
                Ok((k, st, n.max(0) as u64))
            })
            .collect()
    }

    /// One artifact of `kind` by handle.
    pub async fn artifact(
        &self,
        kind: ArtifactKind,
        handle: &str,
    ) -> Result<Option<StoredArtifact>, StoreError> {
        let row = sqlx::query("SELECT * FROM artifacts WHERE kind = ? AND handle = ?")
            .bind(kind.as_str())
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.artifact_from_row(&r)).transpose()
    }

    /// The artifacts that came from the control plane.
    pub async fn control_plane_artifacts(&self) -> Result<Vec<StoredArtifact>, StoreError> {
        Ok(self
            .artifacts()
            .await?
            .into_iter()
            .filter(|a| a.origin == Origin::ControlPlane)
            .collect())
    }

    /// The artifact with local id `id`.
    pub async fn by_id(&self, id: &str) -> Result<Option<StoredArtifact>, StoreError> {
        let row = sqlx::query("SELECT * FROM artifacts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.artifact_from_row(&r)).transpose()
    }

    /// The control-plane artifact with platform uuid `uuid`.
    pub async fn by_uuid(&self, uuid: &str) -> Result<Option<StoredArtifact>, StoreError> {
        let row = sqlx::query("SELECT * FROM artifacts WHERE artifact_uuid = ?")
            .bind(uuid)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.artifact_from_row(&r)).transpose()
    }

    /// Stores a new artifact; a held handle of the same kind, or a context another deployed
    /// artifact serves, is refused.
    pub async fn insert(&self, art: &StoredArtifact) -> Result<(), StoreError> {
        let already_held = || {
            StoreError::AlreadyExists(format!(
                "{} '{}' is already held",
                art.kind().label(),
                art.handle()
            ))
        };
        let mut tx = self.pool.begin().await?;
        let held: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM artifacts WHERE kind = ? AND handle = ?")
                .bind(art.kind().as_str())
                .bind(art.handle())
                .fetch_optional(&mut *tx)
                .await?;
        if held.is_some() {
            return Err(already_held());
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
                return Err(already_held())
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

    /// Deletes an artifact with its keys and subscriptions.
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
}

/// Refuses `context` when a deployed artifact other than `except` serves it.
pub(super) async fn check_context_free(
    tx: &mut Tx<'_>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()))
    }

    fn document() -> ArtifactDocument {
        ArtifactDocument::from_value(json!({
            "apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": "openai"},
            "spec": {"displayName": "openai", "template": "openai", "context": "/openai",
                     "upstream": {"url": "http://127.0.0.1:9", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-1"}}}
        }))
        .unwrap()
    }

    async fn store_with_one_artifact(dir: &std::path::Path) -> Store {
        let store = Store::open(dir).await.unwrap();
        store
            .insert(&StoredArtifact {
                id: "a".into(),
                document: document(),
                state: State::Deployed,
                origin: Origin::GatewayApi,
                artifact_uuid: None,
                deployment_id: None,
                deployed_at: None,
            })
            .await
            .unwrap();
        store
    }

    async fn set_column(store: &Store, column: &str, value: &str) {
        sqlx::query(&format!("UPDATE artifacts SET {column} = ? WHERE id = 'a'"))
            .bind(value)
            .execute(&store.pool)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unknown_state_or_origin_is_an_error_naming_the_value_and_the_row() {
        let dir = temp_dir();
        let store = store_with_one_artifact(&dir).await;
        set_column(&store, "state", "paused").await;
        let err = store.artifacts().await.unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownValue { column: "state", id, value, .. } if id == "a" && value == "paused"),
            "{err}"
        );
        assert_eq!(err.to_string(), "artifacts row 'a': unknown state 'paused'");

        set_column(&store, "state", "deployed").await;
        set_column(&store, "origin", "elsewhere").await;
        let err = store
            .artifact(ArtifactKind::LlmProvider, "openai")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "artifacts row 'a': unknown origin 'elsewhere'"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_unreadable_document_is_an_error_naming_the_row() {
        let dir = temp_dir();
        let store = store_with_one_artifact(&dir).await;
        set_column(&store, "document", "{not json").await;
        let err = store.artifacts().await.unwrap_err();
        assert!(
            matches!(&err, StoreError::UnreadablePayload { column: "document", id, .. } if id == "a"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("artifacts row 'a': unreadable document"),
            "{err}"
        );

        // A credential sealed with another data directory's key does not open.
        let other_dir = temp_dir();
        let other = Store::open(&other_dir).await.unwrap();
        set_column(&store, "document", &other.seal(&document())).await;
        let err = store.artifacts().await.unwrap_err();
        assert!(err.to_string().contains("the sealed credential"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other_dir);
    }
}
