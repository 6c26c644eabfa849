//! The client against a small stand-in server: statuses and messages, bodies of every shape.

use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use gatehouse_client::{Client, ClientError, Method, NewArtifact};
use gatehouse_core::{ArtifactDocument, ArtifactKind, Handle};

async fn serve(router: Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Client::new(&format!("http://{addr}/"))
}

fn provider_document() -> ArtifactDocument {
    ArtifactDocument::from_value(json!({
        "apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider",
        "metadata": {"name": "openai"},
        "spec": {"displayName": "OpenAI", "template": "openai", "context": "/openai",
                 "upstream": {"url": "http://127.0.0.1:9/v1",
                              "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk-1"}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn typed_calls_decode_answers_and_errors_carry_the_servers_message() {
    let router = Router::new()
        .route(
            "/api/v1/auth/login",
            post(|Json(b): Json<Value>| async move {
                assert_eq!(b, json!({"username": "admin", "password": "pw"}));
                Json(json!({"token": "t1", "expiresAt": "later", "organization": "default"}))
            }),
        )
        .route(
            "/api/v1/gateways",
            get(|headers: axum::http::HeaderMap| async move {
                assert_eq!(headers["authorization"], "Bearer t1");
                Json(json!({"count": 1, "pagination": {"total": 1, "offset": 0, "limit": 20},
                    "list": [{"id": "edge", "uuid": "u", "displayName": "Edge", "createdAt": "a", "updatedAt": "b",
                              "status": {"connected": true, "appliedRevision": 7, "orgRevision": 9, "inSync": false}}]}))
            }),
        )
        .route(
            "/api/v1/rest-apis/{id}",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    Json(json!({"code": "NOT_FOUND", "message": "REST API 'nope' not found"})),
                )
            }),
        )
        .route(
            "/api/v1/rest-apis/{id}/api-keys/{key}",
            delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/api/v1/projects", get(|| async { "not json" }))
        .route("/api/v1/mcp-proxies", get(|| async { Json(json!({"list": 3})) }))
        .route("/empty", get(|| async { StatusCode::NO_CONTENT }));
    let anon = serve(router).await;

    let login = anon.login("admin", "pw", None).await.unwrap();
    assert_eq!(login.token, "t1");
    let client = anon.with_token(&login.token);
    assert!(!format!("{client:?}").contains("t1"), "Debug hides tokens");

    let gateways = client.gateways().await.unwrap();
    assert_eq!(gateways.list[0].id.as_str(), "edge");
    assert_eq!(gateways.list[0].status.applied_revision.0, 7);
    assert!(gateways.list[0].status.connected);

    let nope = Handle::parse("id", "nope").unwrap();
    let err = client
        .artifact(ArtifactKind::RestApi, &nope)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(
        err.to_string().contains("REST API 'nope' not found"),
        "{err}"
    );
    match &err {
        ClientError::Status { code, .. } => assert_eq!(code.as_deref(), Some("NOT_FOUND")),
        other => panic!("{other:?}"),
    }
    client
        .revoke_api_key(ArtifactKind::RestApi, &nope, &nope)
        .await
        .unwrap();

    // A success answer of the wrong shape is a decode error naming the path.
    let err = client.list_artifacts(ArtifactKind::Mcp).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("/api/v1/mcp-proxies"), "{err}");
    assert_eq!(
        client.read_json("/projects").await.unwrap(),
        json!("not json")
    );

    // The escape hatch answers whatever the status, whatever the body.
    let (s, b) = client
        .request(Method::GET, "/api/v1/projects", None)
        .await
        .unwrap();
    assert_eq!((s.as_u16(), b), (200, json!("not json")));
    let (s, b) = client.request(Method::GET, "/empty", None).await.unwrap();
    assert_eq!((s.as_u16(), b), (204, Value::Null));
    let (s, b) = client
        .request(Method::GET, "/api/v1/rest-apis/nope", None)
        .await
        .unwrap();
    assert_eq!(s.as_u16(), 404);
    assert_eq!(b["code"], "NOT_FOUND");
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Client::new(&format!("http://127.0.0.1:{port}"))
        .gateways()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[test]
fn artifact_bodies_carry_the_handle_and_project_and_compare_without_credentials() {
    let doc = provider_document();
    let new = NewArtifact::from_document(&doc);
    let body = new.to_value();
    assert_eq!(body["id"], "openai");
    assert!(body.get("projectId").is_none(), "providers have no project");
    assert_eq!(body["upstream"]["auth"]["value"], "Bearer sk-1");

    // What the platform shows back: identity fields, the credential replaced by valueSet.
    let mut shown = body.clone();
    shown["upstream"]["auth"]
        .as_object_mut()
        .unwrap()
        .remove("value");
    shown["upstream"]["auth"]["valueSet"] = json!(true);
    for (k, v) in [
        ("uuid", "u"),
        ("kind", "LlmProvider"),
        ("createdAt", "a"),
        ("updatedAt", "b"),
    ] {
        shown[k] = json!(v);
    }
    let artifact: gatehouse_client::Artifact = serde_json::from_value(shown.clone()).unwrap();
    assert!(artifact.matches(&new.spec));
    shown["displayName"] = json!("OpenAI v2");
    let changed: gatehouse_client::Artifact = serde_json::from_value(shown).unwrap();
    assert!(!changed.matches(&new.spec));

    let mut rest = doc.to_value();
    rest["kind"] = json!("Mcp");
    rest["spec"] =
        json!({"displayName": "Tools", "context": "/tools", "upstream": {"url": "http://x"}});
    rest["metadata"]["labels"] = json!({"project": "team-a"});
    let rest = NewArtifact::from_document(&ArtifactDocument::from_value(rest).unwrap());
    assert_eq!(rest.to_value()["projectId"], "team-a");
}
