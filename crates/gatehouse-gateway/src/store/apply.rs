//! Applying control-plane changes: each change and the revision it brings the gateway to are
//! written in one transaction, so that a crash never leaves the two apart.

use super::artifacts::check_context_free;
use super::keys::upsert_key;
use super::rows::{Origin, State, StoredArtifact, StoredKey, StoredPlan, StoredSubscription};
use super::subscriptions::{upsert_plan, upsert_subscription};
use super::{now_ms, Store, StoreError, Tx, APPLIED_REVISION};
use gatehouse_core::protocol::Revision;

/// One change the control plane asks for.
#[derive(Debug, Clone, Copy)]
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
    /// Hold this secret's value (sealed).
    Secret(&'a SealedSecret),
    /// Forget a secret's value.
    SecretDeleted { id: &'a str },
    /// Make the held secret values exactly these.
    Secrets(&'a [SealedSecret]),
    /// Nothing to change; only the revision advances.
    Nothing,
}

/// A secret's value as the store holds it: sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub id: String,
    pub sealed_value: String,
    pub updated_at: String,
}

impl Store {
    /// Applies one control-plane change and, in the same transaction, records `revision` as
    /// applied (when given), so that a crash never leaves the two apart.
    pub async fn apply_control_plane(
        &self,
        change: ControlPlaneChange<'_>,
        revision: Option<Revision>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        self.apply_in(&mut tx, change).await?;
        if let Some(rev) = revision {
            record_revision(&mut tx, rev).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies many changes in one transaction (a full sync writes thousands: one commit each
    /// would cost more than the writes). Each change runs in its own savepoint, so one refused
    /// change is undone alone and reported in its place of the returned list; an error of the
    /// database itself fails the whole batch.
    pub async fn apply_control_plane_batch(
        &self,
        changes: &[ControlPlaneChange<'_>],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        use sqlx::Acquire;
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let mut savepoint = (&mut tx).begin().await?;
            match self.apply_in(&mut savepoint, *change).await {
                Ok(()) => {
                    savepoint.commit().await?;
                    results.push(Ok(()));
                }
                Err(StoreError::Db(e)) if !refusal(&e) => return Err(StoreError::Db(e)),
                Err(e) => {
                    savepoint.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn apply_in(
        &self,
        tx: &mut Tx<'_>,
        change: ControlPlaneChange<'_>,
    ) -> Result<(), StoreError> {
        match change {
            ControlPlaneChange::Upsert(art) => self.upsert_from_control_plane(tx, art).await?,
            ControlPlaneChange::SetState {
                uuid,
                state,
                deployment_id,
                deployed_at,
            } => set_state(tx, uuid, state, deployment_id, deployed_at).await?,
            ControlPlaneChange::Delete { uuid } => {
                sqlx::query("DELETE FROM artifacts WHERE artifact_uuid = ?")
                    .bind(uuid)
                    .execute(&mut **tx)
                    .await?;
            }
            ControlPlaneChange::Key { artifact_uuid, key } => {
                if let Some(id) = local_id(tx, artifact_uuid).await? {
                    upsert_key(tx, &id, key).await?;
                }
            }
            ControlPlaneChange::Keys {
                artifact_uuid,
                keys,
            } => {
                if let Some(id) = local_id(tx, artifact_uuid).await? {
                    sqlx::query("DELETE FROM api_keys WHERE artifact_id = ?")
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    for key in keys {
                        upsert_key(tx, &id, key).await?;
                    }
                }
            }
            ControlPlaneChange::Plan(plan) => upsert_plan(tx, plan).await?,
            ControlPlaneChange::PlanDeleted { id } => {
                sqlx::query("DELETE FROM plans WHERE id = ?")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            ControlPlaneChange::Plans(plans) => {
                sqlx::query("DELETE FROM plans").execute(&mut **tx).await?;
                for plan in plans {
                    upsert_plan(tx, plan).await?;
                }
            }
            ControlPlaneChange::Subscription { artifact_uuid, sub } => {
                if let Some(id) = local_id(tx, artifact_uuid).await? {
                    upsert_subscription(tx, &id, sub).await?;
                }
            }
            ControlPlaneChange::SubscriptionDeleted { id } => {
                sqlx::query("DELETE FROM subscriptions WHERE id = ?")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            ControlPlaneChange::Subscriptions {
                artifact_uuid,
                subs,
            } => {
                if let Some(id) = local_id(tx, artifact_uuid).await? {
                    sqlx::query("DELETE FROM subscriptions WHERE artifact_id = ?")
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    for sub in subs {
                        upsert_subscription(tx, &id, sub).await?;
                    }
                }
            }
            ControlPlaneChange::Secret(secret) => upsert_secret(tx, secret).await?,
            ControlPlaneChange::SecretDeleted { id } => {
                sqlx::query("DELETE FROM secrets WHERE id = ?")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            ControlPlaneChange::Secrets(secrets) => {
                sqlx::query("DELETE FROM secrets")
                    .execute(&mut **tx)
                    .await?;
                for secret in secrets {
                    upsert_secret(tx, secret).await?;
                }
            }
            ControlPlaneChange::Nothing => {}
        }
        Ok(())
    }

    /// Holds (or replaces) a control-plane artifact. A handle held by a management-API artifact
    /// is refused; one held by another control-plane artifact (deleted and recreated there) is
    /// taken over by the newer one.
    async fn upsert_from_control_plane(
        &self,
        tx: &mut Tx<'_>,
        art: &StoredArtifact,
    ) -> Result<(), StoreError> {
        let context = art.document.spec.resolved_context();
        let existing: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, origin, artifact_uuid FROM artifacts WHERE kind = ? AND handle = ?",
        )
        .bind(art.kind().as_str())
        .bind(art.handle())
        .fetch_optional(&mut **tx)
        .await?;
        let id = match existing {
            Some((id, origin, uuid)) => match Origin::from_column(&id, origin)? {
                Origin::GatewayApi => {
                    return Err(StoreError::AlreadyExists(format!(
                        "{} '{}' is held by an artifact created through the gateway's \
                         management API",
                        art.kind().label(),
                        art.handle()
                    )))
                }
                Origin::ControlPlane if uuid.as_deref() == art.artifact_uuid.as_deref() => Some(id),
                Origin::ControlPlane => {
                    sqlx::query("DELETE FROM artifacts WHERE id = ?")
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    None
                }
            },
            None => None,
        };
        // The same uuid under another handle cannot happen (handles are immutable), but a stale
        // row must not block the insert.
        let by_uuid: Option<String> =
            sqlx::query_scalar("SELECT id FROM artifacts WHERE artifact_uuid = ?")
                .bind(&art.artifact_uuid)
                .fetch_optional(&mut **tx)
                .await?;
        let id = id.or(by_uuid).unwrap_or_else(|| art.id.clone());
        if art.state == State::Deployed {
            check_context_free(tx, &context, Some(&id)).await?;
        }
        sqlx::query(
            "INSERT INTO artifacts (id, kind, handle, context, document, state, origin, artifact_uuid, deployment_id, deployed_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET handle = excluded.handle, context = excluded.context, document = excluded.document, \
               state = excluded.state, deployment_id = excluded.deployment_id, deployed_at = excluded.deployed_at, updated_at = excluded.updated_at",
        )
        .bind(&id)
        .bind(art.kind().as_str())
        .bind(art.handle())
        .bind(&context)
        .bind(self.seal(&art.document))
        .bind(art.state.as_str())
        .bind(Origin::ControlPlane.as_str())
        .bind(&art.artifact_uuid)
        .bind(&art.deployment_id)
        .bind(&art.deployed_at)
        .bind(now_ms())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Changes the state of the artifact with platform uuid `uuid`; deploying it is refused when
/// another deployed artifact serves its context.
async fn set_state(
    tx: &mut Tx<'_>,
    uuid: &str,
    state: State,
    deployment_id: &str,
    deployed_at: &str,
) -> Result<(), StoreError> {
    if state == State::Deployed {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, context FROM artifacts WHERE artifact_uuid = ?")
                .bind(uuid)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((id, context)) = row {
            check_context_free(tx, &context, Some(&id)).await?;
        }
    }
    sqlx::query("UPDATE artifacts SET state = ?, deployment_id = ?, deployed_at = ?, updated_at = ? WHERE artifact_uuid = ?")
        .bind(state.as_str())
        .bind(deployment_id)
        .bind(deployed_at)
        .bind(now_ms())
        .bind(uuid)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The gateway's id of the artifact with platform uuid `artifact_uuid`, when held.
async fn local_id(tx: &mut Tx<'_>, artifact_uuid: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM artifacts WHERE artifact_uuid = ?")
            .bind(artifact_uuid)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Records `revision` as applied; the recorded revision never goes back.
async fn record_revision(tx: &mut Tx<'_>, revision: Revision) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = CASE WHEN CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER) THEN excluded.value ELSE meta.value END",
    )
    .bind(APPLIED_REVISION)
    .bind(revision.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether a database error refuses one change (a constraint it breaks) rather than failing
/// the database itself.
fn refusal(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() != sqlx::error::ErrorKind::Other)
}

async fn upsert_secret(tx: &mut Tx<'_>, secret: &SealedSecret) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO secrets (id, sealed_value, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET sealed_value = excluded.sealed_value, updated_at = excluded.updated_at",
    )
    .bind(&secret.id)
    .bind(&secret.sealed_value)
    .bind(&secret.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The held secret values, sealed.
    pub async fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, sealed_value, updated_at FROM secrets ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, sealed_value, updated_at)| SealedSecret {
                id,
                sealed_value,
                updated_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::{ArtifactDocument, ArtifactKind};
    use serde_json::json;

    fn api(uuid: &str, context: &str) -> StoredArtifact {
        let document = ArtifactDocument::from_value(json!({
            "apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": uuid},
            "spec": {"displayName": uuid, "context": context,
                     "upstream": {"main": {"url": "http://127.0.0.1:9"}},
                     "operations": [{"method": "GET", "path": "/*"}]}
        }))
        .unwrap();
        StoredArtifact {
            id: format!("local-{uuid}"),
            document,
            state: State::Deployed,
            origin: Origin::ControlPlane,
            artifact_uuid: Some(uuid.to_owned()),
            deployment_id: Some(format!("d-{uuid}")),
            deployed_at: Some("2026-11-28T00:00:00Z".to_owned()),
        }
    }

    #[tokio::test]
    async fn a_batch_undoes_a_refused_change_alone_and_keeps_the_others() {
        let dir = std::env::temp_dir().join(format!("gh-batch-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).await.unwrap();
        let (a, clash, c) = (api("a", "/a"), api("b", "/a"), api("c", "/c"));
        let results = store
            .apply_control_plane_batch(&[
                ControlPlaneChange::Upsert(&a),
                ControlPlaneChange::Upsert(&clash),
                ControlPlaneChange::Upsert(&c),
            ])
            .await
            .unwrap();
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(
            matches!(&results[1], Err(StoreError::Conflict(m)) if m.contains("'/a'")),
            "{results:?}"
        );
        let held: Vec<String> = store
            .artifacts()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|a| a.artifact_uuid)
            .collect();
        assert_eq!(held, ["a", "c"]);
        assert_eq!(
            store.artifact_counts().await.unwrap(),
            [(ArtifactKind::RestApi, State::Deployed, 2)]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
