//! The gateway's reader of the control plane's WebSocket, fed by a hostile control plane (an
//! axum server scripted per connection): garbage frames, duplicated events, an event whose
//! payload does not fit its type, an event that follows one never sent, an unknown type and a
//! binary frame. The gateway never applies a bad event, never skips a missed one (it reconnects
//! and replays from what it applied), never stops serving, and ends where the log ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::gateway;
use gatehouse_testkit::eventually;

#[derive(Clone, Default)]
struct Fake {
    /// The `appliedRevision` each connection came with, in order.
    connections: Arc<Mutex<Vec<i64>>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectQuery {
    applied_revision: i64,
}

fn plan_event(revision: i64, previous: i64) -> String {
    json!({"type": "subscriptionPlan.created", "revision": revision, "previousRevision": previous,
           "timestamp": "2026-01-01T00:00:00.000Z", "correlationId": format!("c-{revision}"),
           "payload": {"planId": format!("p-{revision}"), "handle": format!("plan-{revision}"),
                       "limits": [], "status": "active"}})
    .to_string()
}

async fn connect(
    State(fake): State<Fake>,
    Query(q): Query<ConnectQuery>,
    ws: WebSocketUpgrade,
) -> impl IntoResponse {
    let n = {
        let mut c = fake.connections.lock().unwrap();
        c.push(q.applied_revision);
        c.len()
    };
    ws.on_upgrade(move |socket| script(socket, n))
}

async fn script(mut ws: WebSocket, n: usize) {
    let ack = json!({"type": "connection.ack", "gatewayId": "g-1", "organizationId": "o-1",
                     "connectionId": format!("conn-{n}"), "revision": 7,
                     "capabilities": ["artifacts.exists", "replay"], "resume": "replay"});
    let _ = ws.send(Message::Text(ack.to_string().into())).await;
    let frames: Vec<String> = match n {
        // Garbage: nothing applied, the gateway reconnects.
        1 => vec!["{not json".into()],
        2 => vec![
            plan_event(2, 0),
            // A duplicate: skipped.
            plan_event(2, 0),
            // A payload that does not fit its type: not applied, but handled.
            json!({"type": "api.deployed", "revision": 3, "previousRevision": 2,
                   "timestamp": "2026-01-01T00:00:00.000Z", "correlationId": "c-3",
                   "payload": {"nope": 1}})
            .to_string(),
            // Follows event 5, which was never sent: not applied; the gateway reconnects.
            plan_event(6, 5),
        ],
        _ => vec![
            plan_event(5, 3),
            plan_event(6, 5),
            json!({"type": "widget.made", "revision": 7, "previousRevision": 6,
                   "timestamp": "2026-01-01T00:00:00.000Z", "correlationId": "c-7", "payload": {}})
            .to_string(),
        ],
    };
    for f in frames {
        if ws.send(Message::Text(f.into())).await.is_err() {
            return;
        }
    }
    let _ = ws
        .send(Message::Binary(vec![0xff, 0x00, 0x13].into()))
        .await;
    // Stay open, reading heartbeats, until the gateway goes.
    while let Some(Ok(_)) = ws.recv().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_control_plane_never_gets_a_bad_event_applied_nor_wedges_the_gateway() {
    let fake = Fake::default();
    let app = Router::new()
        .route("/api/internal/v1/ws/gateways/connect", get(connect))
        .route(
            "/api/internal/v1/secrets",
            get(|| async { Json(json!({"secrets": []})) }),
        )
        .route(
            "/api/internal/v1/gateway-artifacts",
            post(|| async { Json(json!({"results": []})) }),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let gw = gateway(&["--control-plane", &url, "--token", "fake-token"]).await;
    let admin = gw.admin();
    let status = eventually(
        Duration::from_secs(30),
        "the gateway to reach revision 7",
        || async {
            let (_, s) = admin.get("/api/management/v1/status").await.ok()?;
            (s["appliedRevision"] == 7).then_some(s)
        },
    )
    .await
    .unwrap();
    let seen = fake.connections.lock().unwrap().clone();
    // Garbage: reconnected from 0. The gap after 3: reconnected from 3, so 5 and 6 came in
    // order; 6 was never applied ahead of 5.
    assert_eq!(&seen[..3], &[0, 0, 3], "connections came with {seen:?}");
    assert_eq!(status["controlPlane"]["connected"], true, "{status}");
    // Serving all along.
    let (s, _) = gw.traffic().get("/_gateway-health/ready").await.unwrap();
    assert_eq!(s, 200);
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", gw.admin_base))
        .basic_auth("admin", Some(gatehouse_testkit::GATEWAY_ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused: Value = metrics
        .lines()
        .find(|l| l.starts_with("gatehouse_gateway_events_refused_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(Value::from)
        .unwrap_or(Value::Null);
    assert_eq!(
        refused,
        json!(1.0),
        "the payload that did not fit was refused once"
    );
}
