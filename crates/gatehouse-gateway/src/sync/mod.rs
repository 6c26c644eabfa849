//! The gateway's connection to the control plane: one WebSocket from which it applies the
//! change-log events meant for it, in order, each with its revision in the same local
//! transaction; full syncs on first start, on `resume: full-sync` and every `--sync-interval`;
//! acks for what it applied; heartbeats; reconnects with jittered backoff.

pub mod api;
mod error;
mod events;
pub mod full;
pub mod publish;
mod secrets;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use gatehouse_core::protocol::{ConnectionAck, GatewayMessage, Heartbeat, Resume, Revision};

use crate::runtime::Runtime;
use crate::store::{now_rfc3339, ControlPlaneChange};
use api::InternalApi;
pub use error::{ApplyRefusal, SyncError};
use events::{apply_event, Incoming};
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
    pub revision: Revision,
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
                let why = e.with_causes();
                tracing::warn!(error = %why, "control-plane connection failed");
                rt.update_sync(|s| s.last_error = Some(why));
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

async fn send(ws: &mut Socket, msg: &GatewayMessage) -> Result<(), SyncError> {
    let text = serde_json::to_string(msg).map_err(|source| SyncError::Json {
        what: "encoding a message to the control plane",
        source,
    })?;
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}

/// A hash of what the gateway holds from the control plane, for the heartbeat.
async fn config_hash(rt: &Runtime) -> Result<String, SyncError> {
    let mut lines: Vec<String> = rt
        .store
        .control_plane_artifacts()
        .await?
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
    Ok(hex::encode(Sha256::digest(lines.join("\n").as_bytes())))
}

async fn full_sync(
    rt: &Runtime,
    api: &InternalApi,
    ws: &mut Socket,
    exists: bool,
    reason: &'static str,
) -> Result<Revision, SyncError> {
    let started = Instant::now();
    let outcome = match full::run(rt, api, exists).await {
        Ok(o) => o,
        Err(e) => {
            // What the sync applied before it failed is served at once, not at the next change.
            if let Err(r) = rt.rebuild().await {
                tracing::warn!(error = %r, "route table rebuild after a failed full sync");
            }
            return Err(e);
        }
    };
    rt.rebuild().await?;
    for ack in &outcome.acks {
        send(ws, &GatewayMessage::DeploymentAck(ack.clone())).await?;
    }
    tracing::info!(
        reason,
        revision = %outcome.revision,
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
) -> Result<Ended, SyncError> {
    let applied = rt.store.applied_revision().await?;
    let mut req = api.ws_url(applied).into_client_request()?;
    req.headers_mut()
        .insert("api-key", api.token().parse().map_err(SyncError::Token)?);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .map_err(|_| SyncError::Timeout("connecting to the control plane"))??;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| SyncError::Timeout("waiting for the connection acknowledgement"))?
        .ok_or_else(|| {
            SyncError::Protocol("connection closed before its acknowledgement".into())
        })??;
    let ack: ConnectionAck = match first {
        Message::Text(t) => serde_json::from_str(t.as_str()).map_err(|source| SyncError::Json {
            what: "reading the connection acknowledgement",
            source,
        })?,
        other => {
            return Err(SyncError::Protocol(format!(
                "unexpected first frame {other:?}"
            )))
        }
    };
    let exists = ack.capabilities.iter().any(|c| c == "artifacts.exists");
    tracing::info!(connection = %ack.connection_id, resume = ?ack.resume, revision = %ack.revision, %applied, "connected to the control plane");
    rt.update_sync(|s| {
        s.connected = true;
        s.connection_id = Some(ack.connection_id.clone());
        s.capabilities = ack.capabilities.clone();
        s.last_error = None;
    });
    // Events up to here are covered (by what was applied, or by the sync below).
    let mut covered = applied;
    if ack.resume == Resume::FullSync {
        // The platform's log is behind what this gateway applied: its database was restored
        // from a backup. Its revisions count again from there, so after the full sync this
        // gateway stands at the platform's revision, lower than before, and applies the
        // events that follow instead of skipping them as already seen.
        let went_back = ack.revision < applied;
        let reason = if applied == Revision::ZERO {
            "first start"
        } else if went_back {
            "the control plane's log went back"
        } else {
            "behind the retained log"
        };
        let synced = full_sync(rt, api, &mut ws, exists, reason).await?;
        covered = if went_back {
            rt.store.reset_applied_revision(synced).await?;
            synced
        } else {
            covered.max(synced)
        };
    }
    // What was created here while the control plane was away (or ever) is published again.
    rt.publish.everything();
    if ack.resume != Resume::FullSync {
        // A secret may have been rotated while this gateway was away, and its event dropped
        // from the retained log; the values are few, so they are all asked for again.
        let changed = secrets::reconcile(rt, api).await?;
        if !changed.is_empty() {
            rt.secrets_changed(&changed).await?;
        }
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut resync = tokio::time::interval(interval);
    resync.tick().await;
    let mut last_heard = Instant::now();
    let mut last_hash = config_hash(rt).await?;
    loop {
        tokio::select! {
            msg = ws.next() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(revision) = on_frame(rt, api, &mut ws, text.as_str(), covered).await? {
                            covered = revision;
                            // Report progress at once, so the platform's in-sync view does not
                            // wait for the next heartbeat (the configuration hash is the last computed).
                            let hb = Heartbeat { applied_revision: revision, config_hash: last_hash.clone() };
                            send(&mut ws, &GatewayMessage::Heartbeat(hb)).await?;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return Ok(Ended::Lost(format!("closed by the control plane: {reason}")));
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
                last_hash = config_hash(rt).await?;
                let applied_revision = rt.store.applied_revision().await?;
                let hb = Heartbeat { applied_revision, config_hash: last_hash.clone() };
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

/// Handles one text frame: applies an event after `covered` (acking deploys and undeploys) and
/// returns its revision; frames at or below `covered`, or unreadable ones, return `None`.
async fn on_frame(
    rt: &Runtime,
    api: &InternalApi,
    ws: &mut Socket,
    text: &str,
    covered: Revision,
) -> Result<Option<Revision>, SyncError> {
    // An event that follows one this gateway has not applied (missed, or sent out of order) is
    // not applied: the session ends and the reconnect replays from what was applied.
    let gap = |previous: Option<Revision>, revision: Revision| {
        match previous {
        Some(p) if p > covered => Err(SyncError::Protocol(format!(
            "event {revision} follows event {p}, which this gateway has not applied (it is at {covered}); reconnecting to replay"
        ))),
        _ => Ok(()),
    }
    };
    let (revision, ack) = match Incoming::read(text) {
        Incoming::Event(env) if env.revision > covered => {
            gap(env.previous_revision, env.revision)?;
            if let Err(e) = env.event() {
                // A payload that does not fit its type is never applied; it counts as handled
                // so that the events after it are not held up (the next full sync reconciles).
                tracing::error!(revision = %env.revision, error = %e, "event with an unreadable payload skipped");
                metrics::counter!("gatehouse_gateway_events_refused_total").increment(1);
                rt.store
                    .apply_control_plane(ControlPlaneChange::Nothing, Some(env.revision))
                    .await?;
                return Ok(Some(env.revision));
            }
            (env.revision, apply_event(rt, api, &env).await?)
        }
        Incoming::UnknownType {
            revision,
            event_type,
            previous_revision,
        } if revision > covered => {
            gap(previous_revision, revision)?;
            // From a newer platform: nothing to apply, but it counts as applied.
            tracing::warn!(%event_type, %revision, "event of an unknown type skipped");
            rt.store
                .apply_control_plane(ControlPlaneChange::Nothing, Some(revision))
                .await?;
            (revision, None)
        }
        // It may have been an event: skipping it could lose one, so replay from what was applied.
        Incoming::Unreadable(e) => {
            return Err(SyncError::Protocol(format!(
                "unreadable frame from the control plane ({e}); reconnecting to replay"
            )));
        }
        // Already covered by what was applied or by a full sync.
        _ => return Ok(None),
    };
    if let Some(ack) = ack {
        send(ws, &GatewayMessage::DeploymentAck(ack)).await?;
    }
    rt.update_sync(|s| s.events_applied += 1);
    Ok(Some(revision))
}
