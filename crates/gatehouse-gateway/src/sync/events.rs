//! Applying one change-log event: each in one local transaction together with its revision,
//! followed by a route-table rebuild; deploys and undeploys answer with an ack.

use gatehouse_core::protocol::{
    AckAction, AckStatus, DeployPayload, DeploymentAck, Event, EventEnvelope, EventType,
    RecordChange, Revision,
};

use super::api::{stored_key, stored_plan, stored_subscription, InternalApi};
use super::{full, ApplyRefusal, SyncError};
use crate::runtime::Runtime;
use crate::store::{ControlPlaneChange, State};

/// A text frame from the control plane, read.
pub enum Incoming {
    /// An event of a type this gateway knows.
    Event(EventEnvelope),
    /// An event of a type this gateway does not know (a newer platform).
    UnknownType {
        revision: Revision,
        event_type: String,
        previous_revision: Option<Revision>,
    },
    /// Not an event at all.
    Unreadable(serde_json::Error),
}

/// The parts of an envelope that every event type has.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(rename = "type")]
    event_type: String,
    revision: Revision,
    #[serde(default)]
    previous_revision: Option<Revision>,
}

impl Incoming {
    /// Reads a frame.
    pub fn read(text: &str) -> Incoming {
        match serde_json::from_str::<EventEnvelope>(text) {
            Ok(env) => Incoming::Event(env),
            Err(e) => match serde_json::from_str::<Head>(text) {
                Ok(head) if head.event_type.parse::<EventType>().is_err() => {
                    Incoming::UnknownType {
                        revision: head.revision,
                        event_type: head.event_type,
                        previous_revision: head.previous_revision,
                    }
                }
                _ => Incoming::Unreadable(e),
            },
        }
    }
}

/// Applies one event; returns the ack to send, if the event asks for one.
pub async fn apply_event(
    rt: &Runtime,
    api: &InternalApi,
    env: &EventEnvelope,
) -> Result<Option<DeploymentAck>, SyncError> {
    let rev = Some(env.revision);
    // The artifact the event changes, refreshed alone; plans touch many, so the whole table.
    let event = env.event()?;
    if let Event::Secret(change, p) = &event {
        super::secrets::apply_event(rt, api, *change, p, env.revision).await?;
        return Ok(None);
    }
    let uuid_of = |e: &Event| -> Option<String> {
        match e {
            Event::Subscription(_, sub) => Some(sub.artifact_id.clone()),
            Event::ApiKey(_, key) => Some(key.artifact_id.clone()),
            Event::Deleted(p) => Some(p.artifact_id.clone()),
            Event::Deployed(p) | Event::Undeployed(p) => Some(p.artifact_id.clone()),
            _ => None,
        }
    };
    let uuid = uuid_of(&event);
    // Read before the change: a deleted artifact is gone after it.
    let before = match &uuid {
        Some(u) => rt.store.by_uuid(u).await?.map(|a| a.id),
        None => None,
    };
    let ack = match event {
        Event::PlanSaved(_, plan) => {
            let plan = stored_plan(&plan);
            rt.store
                .apply_control_plane(ControlPlaneChange::Plan(&plan), rev)
                .await?;
            None
        }
        Event::PlanDeleted(plan) => {
            let change = ControlPlaneChange::PlanDeleted { id: &plan.plan_id };
            rt.store.apply_control_plane(change, rev).await?;
            None
        }
        Event::Subscription(RecordChange::Deleted, sub) => {
            let change = ControlPlaneChange::SubscriptionDeleted {
                id: &sub.subscription_id,
            };
            rt.store.apply_control_plane(change, rev).await?;
            None
        }
        Event::Subscription(_, sub) => {
            let stored = stored_subscription(&sub);
            let change = ControlPlaneChange::Subscription {
                artifact_uuid: &sub.artifact_id,
                sub: &stored,
            };
            rt.store.apply_control_plane(change, rev).await?;
            None
        }
        Event::ApiKey(_, key) => {
            let stored = stored_key(&key);
            let change = ControlPlaneChange::Key {
                artifact_uuid: &key.artifact_id,
                key: &stored,
            };
            rt.store.apply_control_plane(change, rev).await?;
            None
        }
        Event::Deleted(p) => {
            let change = ControlPlaneChange::Delete {
                uuid: &p.artifact_id,
            };
            rt.store.apply_control_plane(change, rev).await?;
            rt.publish.handle_freed(p.kind, &p.handle);
            None
        }
        Event::Deployed(p) => apply_deploy(rt, api, p, State::Deployed, rev).await?,
        Event::Undeployed(p) => apply_deploy(rt, api, p, State::Undeployed, rev).await?,
        // Applied above.
        Event::Secret(..) => None,
    };
    let after = match &uuid {
        Some(u) => rt.store.by_uuid(u).await?.map(|a| a.id),
        None => None,
    };
    match (before, after) {
        (None, None) if uuid.is_none() => rt.rebuild().await?,
        (None, None) => {}
        (Some(old), Some(new)) if old != new => {
            rt.refresh(&old).await?;
            rt.refresh(&new).await?;
        }
        (Some(id), _) | (None, Some(id)) => rt.refresh(&id).await?,
    }
    Ok(ack)
}

/// Applies `<kind>.deployed` (`state` deployed) or `<kind>.undeployed`; returns the ack, or
/// none when the deployment was superseded or deleted since (a later event carries what
/// replaced it).
async fn apply_deploy(
    rt: &Runtime,
    api: &InternalApi,
    p: DeployPayload,
    state: State,
    rev: Option<Revision>,
) -> Result<Option<DeploymentAck>, SyncError> {
    let action = match state {
        State::Deployed => AckAction::Deploy,
        State::Undeployed => AckAction::Undeploy,
    };
    let held = rt.store.by_uuid(&p.artifact_id).await?;
    let result = match held {
        // Undeploying the deployment held: only the state changes.
        Some(h)
            if state == State::Undeployed
                && h.deployment_id.as_deref() == Some(p.deployment_id.as_str()) =>
        {
            let change = ControlPlaneChange::SetState {
                uuid: &p.artifact_id,
                state,
                deployment_id: &p.deployment_id,
                deployed_at: &p.performed_at,
            };
            rt.store
                .apply_control_plane(change, rev)
                .await
                .map_err(ApplyRefusal::from)
        }
        _ => {
            let mut contents = api.fetch(std::slice::from_ref(&p.deployment_id)).await?;
            let Some(c) = contents.pop() else {
                rt.store
                    .apply_control_plane(ControlPlaneChange::Nothing, rev)
                    .await?;
                return Ok(None);
            };
            let stored = full::store_content(
                rt,
                &p.artifact_id,
                &p.deployment_id,
                &p.performed_at,
                state,
                c.content,
                rev,
            )
            .await;
            if let Ok(art) = &stored {
                // Newly held: bring its keys and the values of its secrets along.
                full::pull_keys(rt, api, Some(&p.artifact_id)).await?;
                full::pull_subscriptions(rt, api, Some(&p.artifact_id)).await?;
                if state == State::Deployed {
                    let ids = crate::secrets::referenced(&art.document.spec);
                    super::secrets::pull_missing(rt, api, &ids).await?;
                }
            }
            stored.map(|_| ())
        }
    };
    if result.is_err() {
        // The event is handled (refused); the revision still advances.
        rt.store
            .apply_control_plane(ControlPlaneChange::Nothing, rev)
            .await?;
    }
    let (status, error_code, message) = match result {
        Ok(()) => (AckStatus::Success, None, None),
        Err(refusal) => {
            tracing::warn!(artifact = %p.handle, code = refusal.as_code(), msg = %refusal, "deployment refused");
            (
                AckStatus::Failed,
                Some(refusal.as_code().to_owned()),
                Some(refusal.to_string()),
            )
        }
    };
    Ok(Some(DeploymentAck {
        artifact_id: p.artifact_id,
        deployment_id: p.deployment_id,
        performed_at: p.performed_at,
        action,
        status,
        error_code,
        message,
    }))
}
