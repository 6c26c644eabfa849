//! REST APIs, LLM providers, LLM proxies and MCP proxies, and their deployments: one set of
//! handlers for the four kinds. The OpenAPI annotations name the `rest-apis` routes; the spec
//! builder repeats them for the other collections.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::Value;

use gatehouse_core::ArtifactKind;

use crate::api::{JsonBody, Params};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service::api_keys::{self, ApiKey, CreatedApiKey, NewApiKey};
use crate::service::artifacts::{self, ArtifactFilter};
use crate::service::deployments::{self, DeployRequest, Deployment, DeploymentFilter};
use crate::service::{List, Page};
use crate::state::AppState;

/// Create an artifact: the fields of its kind's spec plus `id?`, `projectId` and `displayName`.
#[utoipa::path(post, path = "/api/v1/rest-apis", tag = "artifacts", request_body(content = Object, description = "spec fields plus id?, projectId"),
    security(("bearer" = [])),
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        Json(artifacts::create(&st, &c, kind, body).await?),
    ))
}

/// List artifacts of the kind.
#[utoipa::path(get, path = "/api/v1/rest-apis", tag = "artifacts", params(Page, ArtifactFilter), security(("bearer" = [])),
    responses((status = 200, body = List<Object>)))]
pub async fn list(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Params(page): Params<Page>,
    Params(filter): Params<ArtifactFilter>,
) -> ApiResult<Json<List<Value>>> {
    Ok(Json(artifacts::list(&st, &c, kind, page, filter).await?))
}

/// Read an artifact (credentials are never returned).
#[utoipa::path(get, path = "/api/v1/rest-apis/{id}", tag = "artifacts", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(artifacts::get(&st, &c, kind, &id).await?))
}

/// Replace an artifact's spec; gateways see it when it is deployed again.
#[utoipa::path(put, path = "/api/v1/rest-apis/{id}", tag = "artifacts", params(("id" = String, Path)), request_body = Object,
    security(("bearer" = [])), responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(artifacts::update(&st, &c, kind, &id, body).await?))
}

/// Delete an artifact; every gateway of the organization is told.
#[utoipa::path(delete, path = "/api/v1/rest-apis/{id}", tag = "artifacts", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    artifacts::delete(&st, &c, kind, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deploy the artifact (or an earlier deployment of it, `base`) to a gateway.
#[utoipa::path(post, path = "/api/v1/rest-apis/{id}/deployments", tag = "artifacts", params(("id" = String, Path)),
    request_body = DeployRequest, security(("bearer" = [])),
    responses((status = 201, body = Deployment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deploy(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<DeployRequest>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    Ok((
        StatusCode::CREATED,
        Json(deployments::deploy(&st, &c, kind, &id, req).await?),
    ))
}

/// List the artifact's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/rest-apis/{id}/deployments", tag = "artifacts", params(("id" = String, Path), DeploymentFilter),
    security(("bearer" = [])), responses((status = 200, body = List<Deployment>), (status = 404, body = ErrorBody)))]
pub async fn list_deployments(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
    Params(filter): Params<DeploymentFilter>,
) -> ApiResult<Json<List<Deployment>>> {
    let list = deployments::list(&st, &c, kind, &id, filter).await?;
    let total = list.len() as i64;
    Ok(Json(List::new(list, total, (total, 0))))
}

/// Read one deployment.
#[utoipa::path(get, path = "/api/v1/rest-apis/{id}/deployments/{deployment_id}", tag = "artifacts",
    params(("id" = String, Path), ("deployment_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
pub async fn get_deployment(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path((id, dep)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(deployments::get(&st, &c, kind, &id, &dep).await?))
}

/// Undeploy the current deployment (409 unless it is deployed, deploying or failed to deploy).
#[utoipa::path(post, path = "/api/v1/rest-apis/{id}/deployments/{deployment_id}/undeploy", tag = "artifacts",
    params(("id" = String, Path), ("deployment_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn undeploy(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path((id, dep)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(deployments::undeploy(&st, &c, kind, &id, &dep).await?))
}

/// Restore an earlier deployment: make it current and deploy it again.
#[utoipa::path(post, path = "/api/v1/rest-apis/{id}/deployments/{deployment_id}/restore", tag = "artifacts",
    params(("id" = String, Path), ("deployment_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn restore(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path((id, dep)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(deployments::restore(&st, &c, kind, &id, &dep).await?))
}

/// Delete a deployment that no gateway is meant to serve (409 while deployed or deploying).
#[utoipa::path(delete, path = "/api/v1/rest-apis/{id}/deployments/{deployment_id}", tag = "artifacts",
    params(("id" = String, Path), ("deployment_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_deployment(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path((id, dep)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    deployments::delete(&st, &c, kind, &id, &dep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an API key for the artifact; the key is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/rest-apis/{id}/api-keys", tag = "artifacts", params(("id" = String, Path)),
    request_body = NewApiKey, security(("bearer" = [])),
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_key(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(api_keys::create(&st, &c, kind, &id, req).await?),
    ))
}

/// List the artifact's API keys (masked).
#[utoipa::path(get, path = "/api/v1/rest-apis/{id}/api-keys", tag = "artifacts", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = List<ApiKey>), (status = 404, body = ErrorBody)))]
pub async fn list_keys(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<List<ApiKey>>> {
    Ok(Json(api_keys::list(&st, &c, kind, &id).await?))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api/v1/rest-apis/{id}/api-keys/{key_id}", tag = "artifacts",
    params(("id" = String, Path), ("key_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    api_keys::revoke(&st, &c, kind, &id, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
