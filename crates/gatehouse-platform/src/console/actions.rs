//! The artifact page's actions: deploy, undeploy, restore, delete, create and revoke API keys.
//! Each is a form with the session's CSRF token, run only when the user's role allows what the
//! same API call needs, and written to the audit log (`via: console`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Extension;
use axum::Router;
use gatehouse_core::ArtifactKind;
use serde::Deserialize;

use super::artifacts::{artifact_page, respond, Shown};
use super::session::{Session, Signed};
use crate::error::{ApiError, ApiResult};
use crate::service::api_keys::{self, NewApiKey};
use crate::service::deployments::{self, DeployRequest};
use crate::service::{artifacts, audit};
use crate::state::AppState;

/// The action routes of one kind.
pub fn router(kind: ArtifactKind) -> Router<AppState> {
    let c = kind.collection();
    let k = Extension(kind);
    Router::new()
        .route(
            &format!("/console/{c}/{{id}}/deploy"),
            post(deploy).layer(k),
        )
        .route(
            &format!("/console/{c}/{{id}}/deployments/{{dep}}/{{action}}"),
            post(deployment_action).layer(k),
        )
        .route(
            &format!("/console/{c}/{{id}}/delete"),
            post(delete).layer(k),
        )
        .route(
            &format!("/console/{c}/{{id}}/keys"),
            post(create_key).layer(k),
        )
        .route(
            &format!("/console/{c}/{{id}}/keys/{{key}}/revoke"),
            post(revoke_key).layer(k),
        )
}

/// Runs `action` as `method api_path` would run through the API: refused when the role does
/// not allow it, and written to the audit log with its outcome.
pub(super) async fn audited<T>(
    state: &AppState,
    s: &Session,
    peer: SocketAddr,
    (method, api_path): (Method, String),
    action: impl std::future::Future<Output = ApiResult<T>>,
) -> ApiResult<T> {
    let entry = audit::Entry::new(&s.caller, &method, &api_path, Some(peer.ip().to_string()))
        .via("console");
    let result = if s.may(&method, &api_path) {
        action.await
    } else {
        Err(ApiError::Forbidden(format!(
            "your role '{}' may not {method} {api_path}",
            s.caller.role
        )))
    };
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.status().as_u16(),
    };
    audit::record(&state.db, entry, status).await;
    result
}

/// Runs a form's action the way the API would run the same call (CSRF token checked, then
/// [`audited`]) and sends the browser to `to`; a refusal is answered as the API answers it.
pub(super) async fn submit<T>(
    state: &AppState,
    s: &Session,
    peer: SocketAddr,
    csrf: &str,
    call: (Method, String),
    action: impl std::future::Future<Output = ApiResult<T>>,
    to: &str,
) -> Response {
    let done = match s.check_csrf(csrf) {
        Ok(()) => audited(state, s, peer, call, action).await.map(drop),
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => Redirect::to(to).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    name: String,
}

async fn deploy(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let c = kind.collection();
    let req = DeployRequest {
        gateway_id: f.gateway,
        base: None,
        name: None,
    };
    let call = (Method::POST, format!("/api/v1/{c}/{id}/deployments"));
    let action = deployments::deploy(&state, &s.caller, kind, &id, req);
    submit(
        &state,
        &s,
        peer,
        &f.csrf,
        call,
        action,
        &format!("/console/{c}/{id}"),
    )
    .await
}

async fn deployment_action(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Path((id, dep, action)): Path<(String, String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let c = kind.collection();
    let call = (
        Method::POST,
        format!("/api/v1/{c}/{id}/deployments/{dep}/{action}"),
    );
    let action = async {
        match action.as_str() {
            "undeploy" => deployments::undeploy(&state, &s.caller, kind, &id, &dep).await,
            "restore" => deployments::restore(&state, &s.caller, kind, &id, &dep).await,
            other => Err(ApiError::NotFound(format!(
                "no deployment action '{other}'"
            ))),
        }
    };
    submit(
        &state,
        &s,
        peer,
        &f.csrf,
        call,
        action,
        &format!("/console/{c}/{id}"),
    )
    .await
}

async fn delete(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let c = kind.collection();
    let call = (Method::DELETE, format!("/api/v1/{c}/{id}"));
    let action = artifacts::delete(&state, &s.caller, kind, &id);
    submit(
        &state,
        &s,
        peer,
        &f.csrf,
        call,
        action,
        &format!("/console/{c}"),
    )
    .await
}

async fn create_key(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    respond(
        async {
            s.check_csrf(&f.csrf)?;
            let c = kind.collection();
            let req = NewApiKey {
                id: None,
                display_name: f.name,
                api_key: None,
                expires_at: None,
            };
            let made = audited(
                &state,
                &s,
                peer,
                (Method::POST, format!("/api/v1/{c}/{id}/api-keys")),
                async { api_keys::create(&state, &s.caller, kind, &id, req).await },
            )
            .await?;
            let shown = Shown {
                created_key: Some((made.key.display_name.clone(), made.api_key)),
                ..Default::default()
            };
            artifact_page(&state, &s, kind, &id, shown).await
        }
        .await,
    )
}

async fn revoke_key(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Path((id, key)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let c = kind.collection();
    let call = (Method::DELETE, format!("/api/v1/{c}/{id}/api-keys/{key}"));
    let action = api_keys::revoke(&state, &s.caller, kind, &id, &key);
    submit(
        &state,
        &s,
        peer,
        &f.csrf,
        call,
        action,
        &format!("/console/{c}/{id}"),
    )
    .await
}
