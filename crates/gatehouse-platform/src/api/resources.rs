//! Projects and gateways.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::api::{JsonBody, Params};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service::gateways::{
    self, DeleteGatewayParams, Gateway, GatewayBody, NewToken, TokenInfo,
};
use crate::service::projects::{self, Project, ProjectBody};
use crate::service::{List, Page};
use crate::state::AppState;

/// Create a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = ProjectBody, security(("bearer" = [])),
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_project(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<ProjectBody>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    Ok((
        StatusCode::CREATED,
        Json(projects::create(&st.db, &c, b).await?),
    ))
}

/// List projects.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<Project>)))]
pub async fn list_projects(
    State(st): State<AppState>,
    c: Caller,
    Params(p): Params<Page>,
) -> ApiResult<Json<List<Project>>> {
    Ok(Json(projects::list(&st.db, &c, p).await?))
}

/// Read a project.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    Ok(Json(projects::get(&st.db, &c, &id).await?))
}

/// Replace a project's name and description.
#[utoipa::path(put, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)), request_body = ProjectBody,
    security(("bearer" = [])), responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_project(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ProjectBody>,
) -> ApiResult<Json<Project>> {
    Ok(Json(projects::update(&st.db, &c, &id, b).await?))
}

/// Delete an empty project.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_project(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    projects::delete(&st.db, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Register a gateway.
#[utoipa::path(post, path = "/api/v1/gateways", tag = "gateways", request_body = GatewayBody, security(("bearer" = [])),
    responses((status = 201, body = Gateway), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_gateway(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<GatewayBody>,
) -> ApiResult<(StatusCode, Json<Gateway>)> {
    Ok((
        StatusCode::CREATED,
        Json(gateways::create(&st.db, &st.hub, &c, b).await?),
    ))
}

/// List gateways with their sync status.
#[utoipa::path(get, path = "/api/v1/gateways", tag = "gateways", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<Gateway>)))]
pub async fn list_gateways(
    State(st): State<AppState>,
    c: Caller,
    Params(p): Params<Page>,
) -> ApiResult<Json<List<Gateway>>> {
    Ok(Json(gateways::list(&st.db, &st.hub, &c, p).await?))
}

/// Read a gateway with its sync status.
#[utoipa::path(get, path = "/api/v1/gateways/{id}", tag = "gateways", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Gateway), (status = 404, body = ErrorBody)))]
pub async fn get_gateway(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Gateway>> {
    Ok(Json(gateways::get(&st.db, &st.hub, &c, &id).await?))
}

/// Replace a gateway's name and description.
#[utoipa::path(put, path = "/api/v1/gateways/{id}", tag = "gateways", params(("id" = String, Path)), request_body = GatewayBody,
    security(("bearer" = [])), responses((status = 200, body = Gateway), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_gateway(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<GatewayBody>,
) -> ApiResult<Json<Gateway>> {
    Ok(Json(gateways::update(&st.db, &st.hub, &c, &id, b).await?))
}

/// Delete a gateway (409 while it serves artifacts, unless `force=true`).
#[utoipa::path(delete, path = "/api/v1/gateways/{id}", tag = "gateways", params(("id" = String, Path), DeleteGatewayParams),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_gateway(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Params(p): Params<DeleteGatewayParams>,
) -> ApiResult<StatusCode> {
    let uuid = gateways::delete(&st.db, &c, &id, p.force.unwrap_or(false)).await?;
    st.close_gateway(&uuid).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Mint a registration token; the token is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/gateways/{id}/tokens", tag = "gateways", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 201, body = NewToken), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_token(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(gateways::create_token(&st.db, &c, &id).await?),
    ))
}

/// List a gateway's tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/gateways/{id}/tokens", tag = "gateways", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenInfo>), (status = 404, body = ErrorBody)))]
pub async fn list_tokens(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(gateways::list_tokens(&st.db, &c, &id).await?))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/api/v1/gateways/{id}/tokens/{token_id}", tag = "gateways",
    params(("id" = String, Path), ("token_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(st): State<AppState>,
    c: Caller,
    Path((id, token)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let uuid = gateways::revoke_token(&st.db, &c, &id, &token).await?;
    st.close_gateway(&uuid).await;
    Ok(StatusCode::NO_CONTENT)
}
