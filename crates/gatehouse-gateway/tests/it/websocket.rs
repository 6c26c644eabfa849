//! WebSocket through a REST API: the upgrade passes the API's policies (a key is needed), then
//! messages flow both ways and a close from either side reaches the other.

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::{create, gateway, issue_key, rest_doc};

/// A WebSocket server echoing each message with `echo: ` before it; `bye` makes it close.
async fn echo_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Text(t) if t.as_str() == "bye" => {
                            let _ = ws.close(None).await;
                        }
                        Message::Text(t) => {
                            let _ = ws.send(Message::text(format!("echo: {t}"))).await;
                        }
                        Message::Binary(b) => {
                            let _ = ws.send(Message::Binary(b)).await;
                        }
                        // tungstenite answers the close on the next read, then ends.
                        _ => {}
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_flow_both_ways_behind_the_apis_policies() {
    let upstream = echo_server().await;
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    create(
        &admin,
        "rest-apis",
        &rest_doc(
            "chat",
            "/chat",
            &upstream,
            json!([{"method": "GET", "path": "/*"}]),
            json!([{"name": "api-key-auth", "params": {"header": "X-Key"}}]),
        ),
    )
    .await;
    let key = issue_key(&admin, "chat", "ws").await;
    let key = key.as_str();
    let url = format!("ws://{}/chat/socket", gw.addr);

    // The upgrade is refused like any request without a key.
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }

    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("x-key", key.parse().unwrap());
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(res.status(), 101);
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let got = ws.next().await.unwrap().unwrap();
        assert_eq!(got, Message::text(format!("echo: hello {i}")));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    // The server closes; the close frame comes through.
    ws.send(Message::text("bye")).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(frame) => {
            assert!(frame.is_none_or(|f| f.code == CloseCode::Normal));
        }
        other => panic!("expected a close, got {other:?}"),
    }

    // And a close from the client reaches the server, which ends cleanly.
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("x-key", key.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("echo: ping")
    );
    ws.close(None).await.unwrap();
    let after = ws.next().await;
    assert!(
        matches!(after, None | Some(Ok(Message::Close(_)))),
        "{after:?}"
    );
}
