//! The full sync: make the local control-plane artifacts equal to the platform's desired state
//! for this gateway (`docs/protocol.md` §5), and acknowledge what it applied.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use gatehouse_core::protocol::{
    AckAction, AckStatus, DeploymentAck, DeploymentStatus, DesiredDeployment, DesiredState,
    Revision,
};
use gatehouse_core::{ArtifactDocument, ArtifactKind};

use super::api::{stored_key, stored_plan, stored_subscription, InternalApi};
use super::{ApplyRefusal, SyncError};
use crate::runtime::Runtime;
use crate::store::{ControlPlaneChange, State, StoredArtifact};

/// What a full sync did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncCounts {
    pub fetched: usize,
    pub status_updated: usize,
    pub deleted: usize,
    pub retained: usize,
    pub unchanged: usize,
    pub failed: usize,
}

/// The outcome: counts, the revision the desired state reflects, and the acks to send.
pub struct SyncOutcome {
    pub counts: SyncCounts,
    pub revision: Revision,
    pub acks: Vec<DeploymentAck>,
}

fn kind_rank(kind: ArtifactKind) -> usize {
    match kind {
        ArtifactKind::LlmProvider => 0,
        ArtifactKind::LlmProxy => 1,
        ArtifactKind::RestApi | ArtifactKind::Mcp => 2,
    }
}

fn ack(d: &DesiredDeployment, refusal: Option<&ApplyRefusal>) -> DeploymentAck {
    DeploymentAck {
        artifact_id: d.artifact_id.clone(),
        deployment_id: d.deployment_id.clone(),
        performed_at: d.deployed_at.clone(),
        action: match d.state {
            DesiredState::Deployed => AckAction::Deploy,
            DesiredState::Undeployed => AckAction::Undeploy,
        },
        status: match refusal {
            None => AckStatus::Success,
            Some(_) => AckStatus::Failed,
        },
        error_code: refusal.map(|r| r.as_code().to_owned()),
        message: refusal.map(ToString::to_string),
    }
}

/// Whether the platform still waits for the ack of the action `d` is in.
fn awaits_ack(d: &DesiredDeployment) -> bool {
    let settled = match d.state {
        DesiredState::Deployed => DeploymentStatus::Deployed,
        DesiredState::Undeployed => DeploymentStatus::Undeployed,
    };
    d.status.is_some_and(|s| s != settled)
}

fn local_state(d: &DesiredDeployment) -> State {
    match d.state {
        DesiredState::Deployed => State::Deployed,
        DesiredState::Undeployed => State::Undeployed,
    }
}

/// Runs one full sync. `exists_capability` says whether the platform offers
/// `/artifacts/exists`.
pub async fn run(
    rt: &Runtime,
    api: &InternalApi,
    exists_capability: bool,
) -> Result<SyncOutcome, SyncError> {
    let desired = api.desired().await?;
    let local = rt.store.control_plane_artifacts().await?;
    let local_by_uuid: HashMap<&str, &StoredArtifact> = local
        .iter()
        .filter_map(|a| a.artifact_uuid.as_deref().map(|u| (u, a)))
        .collect();
    let desired_ids: HashSet<&str> = desired
        .deployments
        .iter()
        .map(|d| d.artifact_id.as_str())
        .collect();
    let mut counts = SyncCounts::default();
    let mut acks = vec![];

    // Decide, for each desired entry, whether to fetch, update the state, or leave it.
    let mut to_fetch: Vec<&DesiredDeployment> = vec![];
    let mut state_only: Vec<&DesiredDeployment> = vec![];
    for d in &desired.deployments {
        match local_by_uuid.get(d.artifact_id.as_str()) {
            None => to_fetch.push(d),
            Some(l) if l.deployment_id.as_deref() != Some(d.deployment_id.as_str()) => {
                to_fetch.push(d)
            }
            Some(l)
                if l.deployed_at.as_deref() != Some(d.deployed_at.as_str())
                    && d.state == DesiredState::Deployed =>
            {
                to_fetch.push(d)
            }
            Some(l)
                if l.state != local_state(d)
                    || l.deployed_at.as_deref() != Some(d.deployed_at.as_str()) =>
            {
                state_only.push(d)
            }
            Some(_) => {
                counts.unchanged += 1;
                // Held exactly as asked, but not settled on the platform: the ack of this
                // action was lost (sent while the socket broke, or by a sync that failed after
                // applying). Acknowledging again settles it; a repeated ack changes nothing.
                if awaits_ack(d) {
                    acks.push(ack(d, None));
                }
            }
        }
    }

    // Deletion candidates: held control-plane artifacts the platform no longer lists.
    let candidates: Vec<&StoredArtifact> = local
        .iter()
        .filter(|a| {
            a.artifact_uuid
                .as_deref()
                .is_some_and(|u| !desired_ids.contains(u))
        })
        .collect();
    let (mut delete, mut retain): (Vec<&StoredArtifact>, Vec<&StoredArtifact>) = (vec![], vec![]);
    if !candidates.is_empty() {
        if exists_capability {
            let ids: Vec<String> = candidates
                .iter()
                .filter_map(|a| a.artifact_uuid.clone())
                .collect();
            match api.existing(&ids).await {
                Ok(existing) => {
                    for a in candidates {
                        if a.artifact_uuid
                            .as_deref()
                            .is_some_and(|u| existing.contains(u))
                        {
                            retain.push(a);
                        } else {
                            delete.push(a);
                        }
                    }
                }
                Err(e) => {
                    // Without an answer, deleting could lose an artifact and its keys: keep all.
                    tracing::warn!(error = %e, candidates = candidates.len(), "existence check failed; deleting nothing");
                    counts.retained += candidates.len();
                }
            }
        } else {
            delete = candidates;
        }
    }

    // Deletions in reverse dependency order: REST/MCP, then proxies, then providers.
    delete.sort_by_key(|a| std::cmp::Reverse(kind_rank(a.kind())));
    for a in delete {
        if let Some(uuid) = &a.artifact_uuid {
            match rt
                .store
                .apply_control_plane(ControlPlaneChange::Delete { uuid }, None)
                .await
            {
                Ok(()) => counts.deleted += 1,
                Err(e) => {
                    counts.failed += 1;
                    tracing::warn!(handle = a.handle(), error = %e, "could not delete an orphan");
                }
            }
        }
    }
    for a in retain {
        counts.retained += 1;
        if a.state == State::Deployed {
            if let Some(uuid) = &a.artifact_uuid {
                let change = ControlPlaneChange::SetState {
                    uuid,
                    state: State::Undeployed,
                    deployment_id: a.deployment_id.as_deref().unwrap_or_default(),
                    deployed_at: a.deployed_at.as_deref().unwrap_or_default(),
                };
                if let Err(e) = rt.store.apply_control_plane(change, None).await {
                    tracing::warn!(handle = a.handle(), error = %e, "could not retain an artifact as undeployed");
                }
            }
        }
    }

    // State-only updates, in batches (one transaction each).
    for chunk in state_only.chunks(BATCH) {
        let changes: Vec<ControlPlaneChange> = chunk
            .iter()
            .map(|d| ControlPlaneChange::SetState {
                uuid: &d.artifact_id,
                state: local_state(d),
                deployment_id: &d.deployment_id,
                deployed_at: &d.deployed_at,
            })
            .collect();
        let results = rt.store.apply_control_plane_batch(&changes).await?;
        for (d, result) in chunk.iter().zip(results) {
            match result {
                Ok(()) => {
                    counts.status_updated += 1;
                    acks.push(ack(d, None));
                }
                Err(e) => {
                    counts.failed += 1;
                    acks.push(ack(d, Some(&ApplyRefusal::from(e))));
                }
            }
        }
    }

    // Fetches in dependency order: providers, then proxies, then REST and MCP.
    to_fetch.sort_by_key(|d| kind_rank(d.kind));
    let ids: Vec<String> = to_fetch.iter().map(|d| d.deployment_id.clone()).collect();
    let mut contents: HashMap<String, serde_json::Value> = api
        .fetch(&ids)
        .await?
        .into_iter()
        .map(|c| (c.deployment_id, c.content))
        .collect();
    // Validated first; then stored in batches, in order (a provider before the proxies on it).
    let mut valid: Vec<(&DesiredDeployment, StoredArtifact)> = vec![];
    for d in to_fetch {
        let Some(content) = contents.remove(&d.deployment_id) else {
            // Superseded or deleted since the list was read; a later event or sync covers it.
            continue;
        };
        match held(
            &d.artifact_id,
            &d.deployment_id,
            &d.deployed_at,
            local_state(d),
            content,
        ) {
            Ok(art) => valid.push((d, art)),
            Err(refusal) => refused(&mut counts, &mut acks, d, refusal),
        }
    }
    for chunk in valid.chunks(BATCH) {
        let changes: Vec<ControlPlaneChange> = chunk
            .iter()
            .map(|(_, art)| ControlPlaneChange::Upsert(art))
            .collect();
        let results = rt.store.apply_control_plane_batch(&changes).await?;
        for ((d, _), result) in chunk.iter().zip(results) {
            match result {
                Ok(()) => {
                    counts.fetched += 1;
                    acks.push(ack(d, None));
                }
                Err(e) => refused(&mut counts, &mut acks, d, ApplyRefusal::from(e)),
            }
        }
    }
    pull_keys(rt, api, None).await?;
    pull_subscriptions(rt, api, None).await?;
    let plans: Vec<_> = api.plans().await?.iter().map(stored_plan).collect();
    rt.store
        .apply_control_plane(ControlPlaneChange::Plans(&plans), None)
        .await?;
    // The caller compiles the whole table after a full sync.
    super::secrets::reconcile(rt, api).await?;
    rt.store
        .apply_control_plane(ControlPlaneChange::Nothing, Some(desired.revision))
        .await?;
    Ok(SyncOutcome {
        counts,
        revision: desired.revision,
        acks,
    })
}

/// Writes a full sync applies in one transaction.
const BATCH: usize = 1000;

fn refused(
    counts: &mut SyncCounts,
    acks: &mut Vec<DeploymentAck>,
    d: &DesiredDeployment,
    refusal: ApplyRefusal,
) {
    counts.failed += 1;
    tracing::warn!(artifact = %d.artifact_id, code = refusal.as_code(), message = %refusal, "could not apply a deployment");
    acks.push(ack(d, Some(&refusal)));
}

/// Stores fetched content for a desired entry.
pub async fn apply_content(
    rt: &Runtime,
    d: &DesiredDeployment,
    content: serde_json::Value,
) -> Result<(), ApplyRefusal> {
    store_content(
        rt,
        &d.artifact_id,
        &d.deployment_id,
        &d.deployed_at,
        local_state(d),
        content,
        None,
    )
    .await
    .map(|_| ())
}

/// Validates a deployment's document and holds it with the given state.
pub async fn store_content(
    rt: &Runtime,
    artifact_id: &str,
    deployment_id: &str,
    deployed_at: &str,
    state: State,
    content: serde_json::Value,
    revision: Option<Revision>,
) -> Result<StoredArtifact, ApplyRefusal> {
    let art = held(artifact_id, deployment_id, deployed_at, state, content)?;
    rt.store
        .apply_control_plane(ControlPlaneChange::Upsert(&art), revision)
        .await
        .map_err(ApplyRefusal::from)?;
    Ok(art)
}

/// A deployment's document, validated, as the store holds it.
fn held(
    artifact_id: &str,
    deployment_id: &str,
    deployed_at: &str,
    state: State,
    content: serde_json::Value,
) -> Result<StoredArtifact, ApplyRefusal> {
    let document =
        ArtifactDocument::from_value(content).map_err(ApplyRefusal::InvalidConfiguration)?;
    Ok(StoredArtifact {
        id: uuid::Uuid::now_v7().to_string(),
        document,
        state,
        origin: crate::store::Origin::ControlPlane,
        artifact_uuid: Some(artifact_id.to_owned()),
        deployment_id: Some(deployment_id.to_owned()),
        deployed_at: Some(deployed_at.to_owned()),
    })
}

/// The platform uuids of the held control-plane artifacts (all, or the one named).
async fn held_uuids(rt: &Runtime, artifact: Option<&str>) -> Result<Vec<String>, SyncError> {
    Ok(match artifact {
        Some(a) => vec![a.to_owned()],
        None => rt
            .store
            .control_plane_artifacts()
            .await?
            .into_iter()
            .filter_map(|a| a.artifact_uuid)
            .collect(),
    })
}

/// Groups `items` by artifact uuid and applies `change` for each held artifact (an artifact
/// without items gets an empty set, which removes what it had).
async fn replace_per_artifact<T>(
    rt: &Runtime,
    artifact: Option<&str>,
    items: impl IntoIterator<Item = (String, T)>,
    change: impl for<'a> Fn(&'a str, &'a [T]) -> ControlPlaneChange<'a>,
) -> Result<(), SyncError> {
    let mut by_artifact: HashMap<String, Vec<T>> = HashMap::new();
    for (uuid, item) in items {
        by_artifact.entry(uuid).or_default().push(item);
    }
    let uuids = held_uuids(rt, artifact).await?;
    let empty = vec![];
    for chunk in uuids.chunks(BATCH) {
        let changes: Vec<ControlPlaneChange> = chunk
            .iter()
            .map(|uuid| change(uuid, by_artifact.get(uuid).unwrap_or(&empty)))
            .collect();
        for result in rt.store.apply_control_plane_batch(&changes).await? {
            result?;
        }
    }
    Ok(())
}

/// Makes the keys of held control-plane artifacts (all, or one) equal to the platform's.
pub async fn pull_keys(
    rt: &Runtime,
    api: &InternalApi,
    artifact: Option<&str>,
) -> Result<(), SyncError> {
    let keys = api.keys(artifact).await?;
    let items = keys.iter().map(|k| (k.artifact_id.clone(), stored_key(k)));
    replace_per_artifact(rt, artifact, items, |artifact_uuid, keys| {
        ControlPlaneChange::Keys {
            artifact_uuid,
            keys,
        }
    })
    .await
}

/// Makes the subscriptions of held control-plane artifacts (all, or one) equal to the platform's.
pub async fn pull_subscriptions(
    rt: &Runtime,
    api: &InternalApi,
    artifact: Option<&str>,
) -> Result<(), SyncError> {
    let subs = api.subscriptions().await?;
    let items = subs
        .iter()
        .map(|s| (s.artifact_id.clone(), stored_subscription(s)));
    replace_per_artifact(rt, artifact, items, |artifact_uuid, subs| {
        ControlPlaneChange::Subscriptions {
            artifact_uuid,
            subs,
        }
    })
    .await
}
