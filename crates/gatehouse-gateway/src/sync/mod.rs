//! The gateway's connection to the control plane: one WebSocket from which it applies the
//! change-log events meant for it, in order, each with its revision in the same local
//! transaction; full syncs on first start, on `resume: full-sync` and every `--sync-interval`;
//! acks for what it applied; heartbeats; reconnects with jittered backoff.

pub mod api;
pub mod full;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use gatehouse_core::protocol::{
    parse_artifact_event_type, AckAction, AckStatus, ArtifactChange, ConnectionAck, DeletePayload,
    DeployPayload, DeploymentAck, EventEnvelope, GatewayMessage, Heartbeat, Resume,
};

use crate::runtime::Runtime;
use crate::store::now_rfc3339;
use crate::store::{ControlPlaneChange, State};
use api::InternalApi;
use full::SyncCounts;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const SILENT_FOR: Duration = Duration::from_secs(45);

/// What the management API's `/status` shows about the control plane.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub control_plane: Option<String>,
    pub connected: bool,
    pub connection_id: Option<String>,
    pub capabilities: Vec<String>,
    pub last_sync: Option<LastSync>,
    pub last_error: Option<String>,
    pub events_applied: u64,
}

/// The last full sync.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSync {
    pub at: String,
    pub revision: i64,
    pub reason: &'static str,
    #[serde(flatten)]
    pub counts: SyncCounts,
}

/// Settings of the control-plane connection.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub control_plane: String,
    pub token: String,
    pub interval: Duration,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Ended {
    Shutdown,
    Lost(String),
}

/// Keeps the gateway connected to the control plane until shutdown.
pub async fn run(rt: Arc<Runtime>, config: SyncConfig, mut shutdown: watch::Receiver<bool>) {
    let api = match InternalApi::new(&config.control_plane, &config.token) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "control-plane client");
            return;
        }
    };
    rt.update_sync(|s| s.control_plane = Some(config.control_plane.clone()));
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let mut stop = shutdown.clone();
        let ended = tokio::select! {
            r = session(&rt, &api, config.interval, &mut shutdown) => r,
            _ = stop.wait_for(|s| *s) => Ok(Ended::Shutdown),
        };
        rt.update_sync(|s| {
            s.connected = false;
            s.connection_id = None;
        });
        match ended {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::Lost(why)) => {
                tracing::warn!(reason = %why, "control-plane connection lost");
                rt.update_sync(|s| s.last_error = Some(why));
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "control-plane connection failed");
                rt.update_sync(|s| s.last_error = Some(format!("{e:#}")));
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        // Jitter spreads the reconnects of many gateways after a platform restart.
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        let wait = backoff.mul_f64(jitter);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

async fn send(ws: &mut Socket, msg: &GatewayMessage) -> anyhow::Result<()> {
    ws.send(Message::Text(serde_json::to_string(msg)?.into()))
        .await?;
    Ok(())
}

/// A hash of what the gateway holds from the control plane, for the heartbeat.
async fn config_hash(rt: &Runtime) -> String {
    let mut lines: Vec<String> = rt
        .store
        .control_plane_artifacts()
        .await
        .unwrap_or_default()
        .iter()
        .map(|a| {
            format!(
                "{}|{:?}|{}|{}",
                a.artifact_uuid.as_deref().unwrap_or_default(),
                a.state,
                a.deployment_id.as_deref().unwrap_or_default(),
                a.deployed_at.as_deref().unwrap_or_default()
            )
        })
        .collect();
    lines.sort();
    hex::encode(Sha256::digest(lines.join("\n").as_bytes()))
}

async fn full_sync(
    rt: &Runtime,
    api: &InternalApi,
    ws: &mut Socket,
    exists: bool,
    reason: &'static str,
) -> anyhow::Result<i64> {
    let started = Instant::now();
    let outcome = full::run(rt, api, exists).await?;
    rt.rebuild().await?;
    for ack in &outcome.acks {
        send(ws, &GatewayMessage::DeploymentAck(ack.clone())).await?;
    }
    tracing::info!(
        reason,
        revision = outcome.revision,
        fetched = outcome.counts.fetched,
        status_updated = outcome.counts.status_updated,
        deleted = outcome.counts.deleted,
        retained = outcome.counts.retained,
        unchanged = outcome.counts.unchanged,
        failed = outcome.counts.failed,
        took_ms = started.elapsed().as_millis() as u64,
        "full sync done"
    );
    for (name, n) in [
        ("fetched", outcome.counts.fetched),
        ("status_updated", outcome.counts.status_updated),
        ("deleted", outcome.counts.deleted),
        ("retained", outcome.counts.retained),
        ("unchanged", outcome.counts.unchanged),
        ("failed", outcome.counts.failed),
    ] {
        metrics::counter!("gatehouse_gateway_sync_artifacts_total", "outcome" => name)
            .increment(n as u64);
    }
    metrics::histogram!("gatehouse_gateway_sync_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    let revision = outcome.revision;
    rt.update_sync(|s| {
        s.last_sync = Some(LastSync {
            at: now_rfc3339(),
            revision,
            reason,
            counts: outcome.counts,
        })
    });
    Ok(revision)
}

async fn session(
    rt: &Runtime,
    api: &InternalApi,
    interval: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let applied = rt.store.applied_revision().await?;
    let mut req = api.ws_url(applied).into_client_request()?;
    req.headers_mut().insert("api-key", api.token().parse()?);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await??;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("connection closed before its acknowledgement"))??;
    let ack: ConnectionAck = match first {
        Message::Text(t) => serde_json::from_str(t.as_str())?,
        other => anyhow::bail!("unexpected first frame {other:?}"),
    };
    let exists = ack.capabilities.iter().any(|c| c == "artifacts.exists");
    tracing::info!(connection = %ack.connection_id, resume = ?ack.resume, revision = ack.revision, applied, "connected to the control plane");
    rt.update_sync(|s| {
        s.connected = true;
        s.connection_id = Some(ack.connection_id.clone());
        s.capabilities = ack.capabilities.clone();
        s.last_error = None;
    });
    // Events up to here are covered (by what was applied, or by the sync below).
    let mut covered = applied;
    if ack.resume == Resume::FullSync {
        let reason = if applied == 0 {
            "first start"
        } else {
            "behind the retained log"
        };
        covered = covered.max(full_sync(rt, api, &mut ws, exists, reason).await?);
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut resync = tokio::time::interval(interval);
    resync.tick().await;
    let mut last_heard = Instant::now();
    let mut last_hash = config_hash(rt).await;
    loop {
        tokio::select! {
                    msg = ws.next() => {
                        last_heard = Instant::now();
                        match msg {
                            Some(Ok(Message::Text(text))) => {
                                let env: EventEnvelope = match serde_json::from_str(text.as_str()) {
                                    Ok(e) => e,
                                    Err(e) => {
                                        tracing::warn!(error = %e, "unreadable event ignored");
                                        continue;
                                    }
                                };
                                if env.revision <= covered {
                                    continue;
                                }
                                if let Some(ack) = apply_event(rt, api, &env).await? {
                                    send(&mut ws, &GatewayMessage::DeploymentAck(ack)).await?;
                                }
                                covered = env.revision;
                                rt.update_sync(|s| s.events_applied += 1);
                                // Report progress at once, so the platform's in-sync view does not wait
                                // for the next heartbeat (the configuration hash is the last computed).
                                let hb = Heartbeat { applied_revision: env.revision, config_hash: last_hash.clone() };
                                send(&mut ws, &GatewayMessage::Heartbeat(hb)).await?;
                            }
                            Some(Ok(Message::Close(frame))) => {
                                return Ok(Ended::Lost(format!("closed by the control plane: {}", frame.map(|f| f.reason.to_string()).unwrap_or_default())));
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return Ok(Ended::Lost(e.to_string())),
                            None => return Ok(Ended::Lost("connection closed".into())),
                        }
                    }
                    _ = heartbeat.tick() => {
                        if last_heard.elapsed() > SILENT_FOR {
                            return Ok(Ended::Lost("no word from the control plane for 45 s".into()));
                        }
        last_hash = config_hash(rt).await;
                        let hb = Heartbeat { applied_revision: rt.store.applied_revision().await?, config_hash: last_hash.clone() };
                        send(&mut ws, &GatewayMessage::Heartbeat(hb)).await?;
                    }
                    _ = resync.tick() => {
                        covered = covered.max(full_sync(rt, api, &mut ws, exists, "periodic").await?);
                    }
                    changed = shutdown.changed() => {
                        let stop = changed.is_err() || *shutdown.borrow();
                        if stop {
                            let _ = ws.close(None).await;
                            return Ok(Ended::Shutdown);
                        }
                    }
                }
    }
}

/// Applies one event; returns the ack to send, if the event asks for one.
async fn apply_event(
    rt: &Runtime,
    api: &InternalApi,
    env: &EventEnvelope,
) -> anyhow::Result<Option<DeploymentAck>> {
    let rev = Some(env.revision);
    if let Some(action) = env.event_type.strip_prefix("subscriptionPlan.") {
        let plan: crate::store::StoredPlan = serde_json::from_value(env.payload.clone())?;
        let change = if action == "deleted" {
            ControlPlaneChange::PlanDeleted { id: &plan.id }
        } else {
            ControlPlaneChange::Plan(&plan)
        };
        rt.store.apply_control_plane(change, rev).await?;
        rt.rebuild().await?;
        return Ok(None);
    }
    if let Some(action) = env.event_type.strip_prefix("subscription.") {
        let sub: api::SubInfo = serde_json::from_value(env.payload.clone())?;
        let stored = sub.stored();
        let change = if action == "deleted" {
            ControlPlaneChange::SubscriptionDeleted {
                id: &sub.subscription_id,
            }
        } else {
            ControlPlaneChange::Subscription {
                artifact_uuid: &sub.artifact_id,
                sub: &stored,
            }
        };
        rt.store.apply_control_plane(change, rev).await?;
        rt.rebuild().await?;
        return Ok(None);
    }
    if env.event_type.starts_with("apikey.") {
        let key: api::KeyInfo = serde_json::from_value(env.payload.clone())?;
        let stored = key.stored();
        let change = ControlPlaneChange::Key {
            artifact_uuid: &key.artifact_id,
            key: &stored,
        };
        rt.store.apply_control_plane(change, rev).await?;
        rt.rebuild().await?;
        return Ok(None);
    }
    let Some((_kind, change)) = parse_artifact_event_type(&env.event_type) else {
        // Not an event this gateway acts on (yet); the revision still advances.
        rt.store
            .apply_control_plane(ControlPlaneChange::Nothing, rev)
            .await?;
        return Ok(None);
    };
    let ack = match change {
        ArtifactChange::Deleted => {
            let p: DeletePayload = serde_json::from_value(env.payload.clone())?;
            rt.store
                .apply_control_plane(
                    ControlPlaneChange::Delete {
                        uuid: &p.artifact_id,
                    },
                    rev,
                )
                .await?;
            None
        }
        ArtifactChange::Deployed | ArtifactChange::Undeployed => {
            let p: DeployPayload = serde_json::from_value(env.payload.clone())?;
            let (state, action) = if change == ArtifactChange::Deployed {
                (State::Deployed, AckAction::Deploy)
            } else {
                (State::Undeployed, AckAction::Undeploy)
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
                        .map_err(|e| (full::error_code(&e), e.to_string()))
                }
                _ => {
                    let mut contents = api.fetch(std::slice::from_ref(&p.deployment_id)).await?;
                    match contents.pop() {
                        Some(c) => {
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
                            if stored.is_ok() {
                                // Newly held: bring its keys along.
                                full::pull_keys(rt, api, Some(&p.artifact_id)).await?;
                                full::pull_subscriptions(rt, api, Some(&p.artifact_id)).await?;
                            }
                            stored
                        }
                        None => {
                            // Superseded or deleted since; a later event carries what replaced it.
                            rt.store
                                .apply_control_plane(ControlPlaneChange::Nothing, rev)
                                .await?;
                            rt.rebuild().await?;
                            return Ok(None);
                        }
                    }
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
                Err((code, msg)) => {
                    tracing::warn!(artifact = %p.handle, code, msg, "deployment refused");
                    (AckStatus::Failed, Some(code.to_owned()), Some(msg))
                }
            };
            Some(DeploymentAck {
                artifact_id: p.artifact_id,
                deployment_id: p.deployment_id,
                performed_at: p.performed_at,
                action,
                status,
                error_code,
                message,
            })
        }
    };
    rt.rebuild().await?;
    Ok(ack)
}
