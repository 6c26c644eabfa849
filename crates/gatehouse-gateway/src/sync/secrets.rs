//! Secret values from the control plane: fetched over the internal API for the secrets this
//! gateway's deployments reference, held sealed in the store with the revision that brought
//! them and opened in memory; a change recompiles only the artifacts that reference the secret.

use std::collections::HashSet;

use gatehouse_core::protocol::{Revision, SecretChange, SecretPayload, SecretValue};

use super::api::InternalApi;
use super::SyncError;
use crate::runtime::Runtime;
use crate::store::{ControlPlaneChange, SealedSecret};

fn sealed(rt: &Runtime, v: &SecretValue) -> Result<SealedSecret, SyncError> {
    Ok(SealedSecret {
        id: v.id.clone(),
        sealed_value: rt.secrets.seal(&v.value)?,
        updated_at: v.updated_at.clone(),
    })
}

/// Fetches secret `id` and holds its value, or forgets it when the platform no longer answers
/// it for this gateway; records `revision` with the change. Whether the value held changed.
async fn refetch(
    rt: &Runtime,
    api: &InternalApi,
    id: &str,
    revision: Option<Revision>,
) -> Result<bool, SyncError> {
    let fetched = api.secrets(Some(id)).await?;
    match fetched.iter().find(|v| v.id == id) {
        Some(v) => {
            let s = sealed(rt, v)?;
            rt.store
                .apply_control_plane(ControlPlaneChange::Secret(&s), revision)
                .await?;
            Ok(rt.secrets.put(id, &v.value))
        }
        None => {
            rt.store
                .apply_control_plane(ControlPlaneChange::SecretDeleted { id }, revision)
                .await?;
            Ok(rt.secrets.remove(id))
        }
    }
}

/// Applies `secret.updated` / `secret.deleted` at `revision`, then recompiles the artifacts
/// that reference the secret. An update of a secret nothing here references only advances
/// the revision.
pub async fn apply_event(
    rt: &Runtime,
    api: &InternalApi,
    change: SecretChange,
    p: &SecretPayload,
    revision: Revision,
) -> Result<(), SyncError> {
    let id = p.secret_id.as_str();
    let changed = match change {
        SecretChange::Updated => {
            let used = !rt.proxy.table().referencing(id).is_empty();
            if !used && rt.secrets.get(id).is_none() {
                rt.store
                    .apply_control_plane(ControlPlaneChange::Nothing, Some(revision))
                    .await?;
                return Ok(());
            }
            refetch(rt, api, id, Some(revision)).await?
        }
        SecretChange::Deleted => {
            let change = ControlPlaneChange::SecretDeleted { id };
            rt.store.apply_control_plane(change, Some(revision)).await?;
            rt.secrets.remove(id)
        }
    };
    if changed {
        tracing::info!(secret = id, %change, "secret value changed; recompiling the artifacts that reference it");
        rt.secrets_changed(&[id.to_owned()]).await?;
    }
    Ok(())
}

/// Fetches the secrets in `ids` that are not held yet (a newly deployed artifact's).
pub async fn pull_missing(
    rt: &Runtime,
    api: &InternalApi,
    ids: &[String],
) -> Result<(), SyncError> {
    for id in ids {
        if rt.secrets.get(id).is_none() {
            refetch(rt, api, id, None).await?;
        }
    }
    Ok(())
}

/// Makes the held secret values exactly those the platform answers for this gateway; returns
/// the ids whose value changed or went.
pub async fn reconcile(rt: &Runtime, api: &InternalApi) -> Result<Vec<String>, SyncError> {
    let values = api.secrets(None).await?;
    let all = values
        .iter()
        .map(|v| sealed(rt, v))
        .collect::<Result<Vec<_>, _>>()?;
    rt.store
        .apply_control_plane(ControlPlaneChange::Secrets(&all), None)
        .await?;
    let answered: HashSet<&str> = values.iter().map(|v| v.id.as_str()).collect();
    let mut changed = vec![];
    for id in rt.secrets.ids() {
        if !answered.contains(id.as_str()) && rt.secrets.remove(&id) {
            changed.push(id);
        }
    }
    for v in &values {
        if rt.secrets.put(&v.id, &v.value) {
            changed.push(v.id.clone());
        }
    }
    Ok(changed)
}
