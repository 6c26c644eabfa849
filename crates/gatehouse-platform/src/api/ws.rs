//! The gateway WebSocket: `connection.ack`, then the change-log events meant for the gateway,
//! in revision order, from the revision it says it applied; acks and heartbeats back.
//!
//! One task owns each socket and is its only writer. It drains the log whenever this replica
//! appends to it, another replica notifies it, or a one-second tick passes, so a missed wake-up
//! delays an event by a second at most and never loses it: the cursor is a revision.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use sqlx::Row;

use gatehouse_core::protocol::{ConnectionAck, GatewayMessage, Resume, Revision, CONNECTION_ACK};

use crate::api::Params;
use crate::auth::GatewayCaller;
use crate::changelog;
use crate::service::{deployments, gateways};
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(20);
const DEAD_AFTER: Duration = Duration::from_secs(45);
const PAGE: i64 = 500;

/// `?appliedRevision=` of the connect call.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ConnectQuery {
    /// The last revision the gateway applied (0: none, e.g. an empty store).
    #[param(value_type = Option<i64>)]
    pub applied_revision: Option<Revision>,
}

/// Upgrades an authenticated gateway to the event stream.
#[utoipa::path(get, path = "/api/internal/v1/ws/gateways/connect", tag = "internal", params(ConnectQuery),
    security(("api-key" = [])), responses((status = 101, description = "WebSocket: connection.ack, then events"), (status = 401)))]
pub async fn connect(
    State(st): State<AppState>,
    gw: GatewayCaller,
    Params(q): Params<ConnectQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let applied = q
        .applied_revision
        .unwrap_or(Revision::ZERO)
        .max(Revision::ZERO);
    ws.on_upgrade(move |socket| async move {
        let gateway = gw.gateway_id.clone();
        let (conn_id, closed) = st.hub.register(&gateway);
        if let Err(e) = session(&st, &gw, &conn_id, applied, socket, closed).await {
            tracing::debug!(gateway = %gw.gateway_handle, error = %e, "gateway connection ended");
        }
        st.hub.unregister(&gateway, &conn_id);
        let _ = gateways::touch(&st.db, &gateway, None).await;
    })
}

async fn send_json<T: serde::Serialize>(socket: &mut WebSocket, value: &T) -> anyhow::Result<()> {
    socket
        .send(Message::Text(serde_json::to_string(value)?.into()))
        .await?;
    Ok(())
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn session(
    st: &AppState,
    gw: &GatewayCaller,
    conn_id: &str,
    applied: Revision,
    mut socket: WebSocket,
    mut closed: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Subscribe before reading the revision, so no append between the two goes unnoticed.
    let mut feed = st.feed.subscribe();
    let row =
        sqlx::query("SELECT revision, compacted_through FROM org_revisions WHERE org_id = $1")
            .bind(&gw.org_id)
            .fetch_one(st.db.pool())
            .await?;
    let (revision, compacted) = (Revision(row.try_get(0)?), Revision(row.try_get(1)?));
    let resume = if applied == Revision::ZERO || applied < compacted || applied > revision {
        Resume::FullSync
    } else {
        Resume::Replay
    };
    // A full sync reads the desired state at some revision ≥ this one and skips the events it
    // covers; the stream starts here so that none after it is missed.
    let mut cursor = if resume == Resume::Replay {
        applied
    } else {
        revision
    };
    // Each event names the one sent before it (or where the stream started), so that the
    // gateway notices one it did not get.
    let mut last_sent = cursor;
    let ack = ConnectionAck {
        message_type: CONNECTION_ACK.to_owned(),
        gateway_id: gw.gateway_id.clone(),
        organization_id: gw.org_id.clone(),
        connection_id: conn_id.to_owned(),
        revision,
        capabilities: st
            .config
            .capabilities()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        resume,
    };
    send_json(&mut socket, &ack).await?;
    gateways::touch(&st.db, &gw.gateway_id, None).await.ok();
    tracing::info!(gateway = %gw.gateway_handle, %applied, %revision, ?resume, "gateway connected");

    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    let mut last_heard = Instant::now();
    loop {
        // Send everything after the cursor.
        loop {
            let page =
                changelog::read_for_gateway(&st.db, &gw.org_id, &gw.gateway_id, cursor, PAGE)
                    .await?;
            if page.full_sync_required {
                close(
                    &mut socket,
                    4000,
                    "behind the retained change log; reconnect for a full sync",
                )
                .await;
                return Ok(());
            }
            let n = page.events.len();
            for e in page.events {
                let previous = std::mem::replace(&mut last_sent, e.revision);
                let e = gatehouse_core::protocol::EventEnvelope {
                    previous_revision: Some(previous),
                    ..e
                };
                send_json(&mut socket, &e).await?;
            }
            cursor = page.next_after;
            if (n as i64) < PAGE {
                break;
            }
        }
        tokio::select! {
            msg = socket.recv() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if !handle_message(st, gw, text.as_str()).await? {
                            close(&mut socket, 4001, "gateway token revoked").await;
                            return Ok(());
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            }
            notice = feed.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = notice {
                    return Ok(());
                }
            }
            _ = poll.tick() => {}
            _ = ping.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    tracing::info!(gateway = %gw.gateway_handle, "gateway connection silent for too long; dropping it");
                    return Ok(());
                }
                socket.send(Message::Ping(Vec::new().into())).await?;
            }
            changed = closed.changed() => {
                let stop = changed.is_err() || *closed.borrow();
                if stop {
                    close(&mut socket, 4001, "gateway token revoked or gateway deleted").await;
                    return Ok(());
                }
            }
        }
    }
}

/// Handles one gateway message; false when the gateway's token is no longer valid.
async fn handle_message(st: &AppState, gw: &GatewayCaller, text: &str) -> anyhow::Result<bool> {
    let msg: GatewayMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "unreadable gateway message ignored");
            return Ok(true);
        }
    };
    match msg {
        GatewayMessage::DeploymentAck(ack) => {
            match deployments::apply_ack(&st.db, &gw.gateway_id, &ack).await {
                Ok(applied) => {
                    tracing::debug!(deployment = %ack.deployment_id, applied, "deployment ack")
                }
                Err(e) => tracing::warn!(error = %e, "deployment ack refused"),
            }
        }
        GatewayMessage::Heartbeat(hb) => {
            if !gateways::token_is_active(&st.db, &gw.token_id).await? {
                return Ok(false);
            }
            gateways::touch(&st.db, &gw.gateway_id, Some(hb.applied_revision))
                .await
                .ok();
        }
    }
    Ok(true)
}
