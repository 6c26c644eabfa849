//! Publishing gateway-origin artifacts: what is created, changed or deleted through this
//! gateway's management API is sent to the control plane (`POST /gateway-artifacts`), so that it
//! lists everything this gateway serves. Every (re)connect sends the whole set, with `present`,
//! so that what was changed while the control plane was away is caught up. A failed send is
//! kept and retried with back-off; publishing is idempotent, so a repeat changes nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Notify};

use gatehouse_core::protocol::{
    ArtifactKey, DesiredState, PublishOutcome, PublishRequest, PublishResult, PublishedArtifact,
};
use gatehouse_core::ArtifactKind;

use super::api::InternalApi;
use super::SyncError;
use crate::runtime::Runtime;
use crate::store::{Origin, State, StoredArtifact};

/// Artifacts per publish call.
const CHUNK: usize = 200;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// What became of a local artifact on the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Published {
    /// Not sent yet (or being retried).
    Pending,
    /// Listed by the control plane under this uuid.
    Published {
        #[serde(rename = "artifactId")]
        artifact_id: String,
    },
    /// Its handle belongs to another artifact on the control plane.
    Conflict { message: String },
    /// The control plane refused the document.
    Invalid { message: String },
}

#[derive(Default)]
struct Pending {
    everything: bool,
    changed: BTreeSet<(ArtifactKind, String)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.everything && self.changed.is_empty()
    }
}

/// The queue of local changes to publish and what the control plane answered.
#[derive(Default)]
pub struct Publish {
    pending: Mutex<Pending>,
    wake: Notify,
    results: Mutex<HashMap<(ArtifactKind, String), Published>>,
}

impl Publish {
    /// A local artifact was created, changed or deleted.
    pub fn changed(&self, kind: ArtifactKind, handle: &str) {
        self.lock_pending()
            .changed
            .insert((kind, handle.to_owned()));
        self.lock_results()
            .insert((kind, handle.to_owned()), Published::Pending);
        self.wake.notify_one();
    }

    /// Sends every local artifact (on each connect).
    pub fn everything(&self) {
        self.lock_pending().everything = true;
        self.wake.notify_one();
    }

    /// A control-plane artifact was deleted: a local one that conflicted with it may now be
    /// published.
    pub fn handle_freed(&self, kind: ArtifactKind, handle: &str) {
        let conflicted = matches!(
            self.lock_results().get(&(kind, handle.to_owned())),
            Some(Published::Conflict { .. })
        );
        if conflicted {
            self.changed(kind, handle);
        }
    }

    /// What the control plane answered for a local artifact.
    pub fn state_of(&self, kind: ArtifactKind, handle: &str) -> Option<Published> {
        self.lock_results().get(&(kind, handle.to_owned())).cloned()
    }

    /// The local artifacts the control plane did not take, with why.
    pub fn refused(&self) -> Vec<serde_json::Value> {
        let mut out: Vec<_> = self
            .lock_results()
            .iter()
            .filter(|(_, p)| matches!(p, Published::Conflict { .. } | Published::Invalid { .. }))
            .map(|((kind, handle), p)| serde_json::json!({"kind": kind, "id": handle, "published": p}))
            .collect();
        out.sort_by_key(|v| v.to_string());
        out
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_results(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(ArtifactKind, String), Published>> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock_pending())
    }

    /// Puts back what a failed send did not deliver.
    fn restore(&self, failed: Pending) {
        let mut pending = self.lock_pending();
        pending.everything |= failed.everything;
        pending.changed.extend(failed.changed);
    }

    fn record(&self, results: &[PublishResult]) {
        let mut map = self.lock_results();
        for r in results {
            let key = (r.kind, r.handle.clone());
            let message = r.message.clone().unwrap_or_default();
            match r.outcome {
                PublishOutcome::Removed => {
                    map.remove(&key);
                }
                PublishOutcome::Published => {
                    map.insert(
                        key,
                        Published::Published {
                            artifact_id: r.artifact_id.clone().unwrap_or_default(),
                        },
                    );
                }
                PublishOutcome::Conflict => {
                    tracing::warn!(kind = %r.kind, handle = %r.handle, %message, "the control plane did not take a local artifact: its handle is taken there");
                    map.insert(key, Published::Conflict { message });
                }
                PublishOutcome::Invalid => {
                    tracing::warn!(kind = %r.kind, handle = %r.handle, %message, "the control plane refused a local artifact");
                    map.insert(key, Published::Invalid { message });
                }
            }
        }
    }
}

fn published(a: &StoredArtifact) -> PublishedArtifact {
    PublishedArtifact {
        document: a.document.to_value(),
        state: match a.state {
            State::Deployed => DesiredState::Deployed,
            State::Undeployed => DesiredState::Undeployed,
        },
    }
}

fn key_of(a: &StoredArtifact) -> ArtifactKey {
    ArtifactKey {
        kind: a.kind(),
        handle: a.handle().to_owned(),
    }
}

/// Sends one batch of pending changes.
async fn send(rt: &Runtime, api: &InternalApi, batch: &Pending) -> Result<(), SyncError> {
    let mut artifacts = vec![];
    let mut removed = vec![];
    let mut present = None;
    if batch.everything {
        let local: Vec<StoredArtifact> = rt
            .store
            .artifacts()
            .await?
            .into_iter()
            .filter(|a| a.origin == Origin::GatewayApi)
            .collect();
        present = Some(local.iter().map(key_of).collect::<Vec<_>>());
        artifacts = local.iter().map(published).collect();
    } else {
        for (kind, handle) in &batch.changed {
            match rt.store.artifact(*kind, handle).await? {
                Some(a) if a.origin == Origin::GatewayApi => artifacts.push(published(&a)),
                _ => removed.push(ArtifactKey {
                    kind: *kind,
                    handle: handle.clone(),
                }),
            }
        }
    }
    let mut chunks: Vec<PublishRequest> = artifacts
        .chunks(CHUNK)
        .map(|c| PublishRequest {
            artifacts: c.to_vec(),
            ..Default::default()
        })
        .collect();
    if !removed.is_empty() || present.is_some() || chunks.is_empty() {
        chunks.push(PublishRequest {
            removed,
            present,
            ..Default::default()
        });
    }
    for request in chunks {
        let answer = api.publish(&request).await?;
        rt.publish.record(&answer.results);
    }
    Ok(())
}

/// Publishes local changes until shutdown.
pub async fn run(rt: Arc<Runtime>, api: InternalApi, mut shutdown: watch::Receiver<bool>) {
    let mut retry = FIRST_RETRY;
    loop {
        if rt.publish.lock_pending().is_empty() {
            tokio::select! {
                _ = rt.publish.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
        let batch = rt.publish.take();
        if batch.is_empty() {
            continue;
        }
        match send(&rt, &api, &batch).await {
            Ok(()) => retry = FIRST_RETRY,
            Err(e) => {
                tracing::warn!(error = %e.with_causes(), retry_in = ?retry, "publishing local artifacts to the control plane failed");
                rt.publish.restore(batch);
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = rt.publish.wake.notified() => {}
                    _ = shutdown.changed() => return,
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}
