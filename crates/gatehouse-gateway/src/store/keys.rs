//! API keys of held artifacts (hashes only).

use gatehouse_core::protocol::ApiKeyStatus;

use super::rows::{key_from_row, StoredKey};
use super::{now_ms, Store, StoreError, Tx};

impl Store {
    /// Every key of every artifact.
    pub async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        // In pages: all rows at once would hold every row's buffers at the peak, and one row at
        // a time is slow.
        let mut out = Vec::new();
        let mut after = i64::MIN;
        loop {
            let rows =
                sqlx::query("SELECT rowid, * FROM api_keys WHERE rowid > ? ORDER BY rowid LIMIT ?")
                    .bind(after)
                    .bind(super::PAGE)
                    .fetch_all(&self.pool)
                    .await?;
            for row in &rows {
                out.push(key_from_row(row)?);
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == super::PAGE => {
                    after = sqlx::Row::try_get(last, 0)?
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// The keys of one artifact.
    pub async fn keys_of(&self, artifact_id: &str) -> Result<Vec<StoredKey>, StoreError> {
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
        .bind(key.status.as_str())
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
        let n = sqlx::query("UPDATE api_keys SET status = ? WHERE artifact_id = ? AND id = ?")
            .bind(ApiKeyStatus::Revoked.as_str())
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
}

/// Adds or replaces (by id) a key of artifact `artifact_id`.
pub(super) async fn upsert_key(
    tx: &mut Tx<'_>,
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
    .bind(key.status.as_str())
    .bind(key.expires_at)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
