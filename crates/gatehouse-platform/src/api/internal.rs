//! The gateway internal API: every call is authenticated by the gateway's token (`api-key`).

use axum::extract::{Path, State};
use axum::{Extension, Json};

use gatehouse_core::protocol::{
    AckResult, ApiKeyList, DeploymentAck, DeploymentContent, DesiredStateResponse, EventsQuery,
    EventsResponse, ExistsRequest, ExistsResponse, FetchBatchRequest, FetchBatchResponse,
    PublishRequest, PublishResponse, SecretValues, SecretsQuery,
};
use gatehouse_core::ArtifactKind;

use crate::api::{JsonBody, Params};
use crate::auth::GatewayCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::api_keys::{self, KeysQuery};
use crate::service::{deployments, gateway_artifacts, internal, secret_refs};
use crate::state::AppState;

/// This gateway's desired state and the revision it reflects.
#[utoipa::path(get, path = "/api/internal/v1/deployments", tag = "internal", security(("api-key" = [])),
    responses((status = 200, body = DesiredStateResponse), (status = 401, body = ErrorBody)))]
pub async fn desired_state(
    State(st): State<AppState>,
    gw: GatewayCaller,
) -> ApiResult<Json<DesiredStateResponse>> {
    Ok(Json(internal::desired_state(&st, &gw).await?))
}

/// The contents of deployments bound to this gateway; unknown or foreign ids are omitted.
#[utoipa::path(post, path = "/api/internal/v1/deployments/fetch-batch", tag = "internal", request_body = FetchBatchRequest,
    security(("api-key" = [])), responses((status = 200, body = FetchBatchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn fetch_batch(
    State(st): State<AppState>,
    gw: GatewayCaller,
    JsonBody(req): JsonBody<FetchBatchRequest>,
) -> ApiResult<Json<FetchBatchResponse>> {
    Ok(Json(
        internal::fetch_batch(&st, &gw, req.deployment_ids).await?,
    ))
}

/// The current deployment's content of one artifact on this gateway.
#[utoipa::path(get, path = "/api/internal/v1/apis/{artifact_id}", tag = "internal", params(("artifact_id" = String, Path)),
    security(("api-key" = [])), responses((status = 200, body = DeploymentContent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn current_content(
    State(st): State<AppState>,
    Extension(kind): Extension<ArtifactKind>,
    gw: GatewayCaller,
    Path(artifact): Path<String>,
) -> ApiResult<Json<DeploymentContent>> {
    Ok(Json(
        internal::current_content(&st, &gw, kind, &artifact).await?,
    ))
}

/// Which of the given artifact uuids still exist in this gateway's organization.
#[utoipa::path(post, path = "/api/internal/v1/artifacts/exists", tag = "internal", request_body = ExistsRequest,
    security(("api-key" = [])), responses((status = 200, body = ExistsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn exists(
    State(st): State<AppState>,
    gw: GatewayCaller,
    JsonBody(req): JsonBody<ExistsRequest>,
) -> ApiResult<Json<ExistsResponse>> {
    if !st.config.has_capability("artifacts.exists") {
        return Err(ApiError::NotFound(
            "this platform does not offer artifacts.exists".into(),
        ));
    }
    Ok(Json(internal::exists(&st, &gw, req.artifact_ids).await?))
}

/// The change-log events after `after` that target this gateway, in revision order.
#[utoipa::path(get, path = "/api/internal/v1/events", tag = "internal", params(EventsQuery), security(("api-key" = [])),
    responses((status = 200, body = EventsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(st): State<AppState>,
    gw: GatewayCaller,
    Params(q): Params<EventsQuery>,
) -> ApiResult<Json<EventsResponse>> {
    Ok(Json(internal::events(&st, &gw, q).await?))
}

/// Acknowledge an applied (or refused) deploy or undeploy; the same message the WebSocket carries.
#[utoipa::path(post, path = "/api/internal/v1/deployment-acks", tag = "internal", request_body = DeploymentAck,
    security(("api-key" = [])), responses((status = 200, body = AckResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn ack(
    State(st): State<AppState>,
    gw: GatewayCaller,
    JsonBody(ack): JsonBody<DeploymentAck>,
) -> ApiResult<Json<AckResult>> {
    let applied = deployments::apply_ack(&st.db, &gw.gateway_id, &ack).await?;
    Ok(Json(AckResult { applied }))
}

/// The API keys (hashes) of the artifacts this gateway holds, deployed or undeployed.
#[utoipa::path(get, path = "/api/internal/v1/api-keys", tag = "internal", params(KeysQuery),
    security(("api-key" = [])), responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody)))]
pub async fn api_keys(
    State(st): State<AppState>,
    gw: GatewayCaller,
    Params(q): Params<KeysQuery>,
) -> ApiResult<Json<ApiKeyList>> {
    Ok(Json(api_keys::for_gateway(&st, &gw, q).await?))
}

/// The values of the secrets this gateway's current deployments reference (all, or `id`);
/// secrets they do not reference are not answered.
#[utoipa::path(get, path = "/api/internal/v1/secrets", tag = "internal", params(SecretsQuery),
    security(("api-key" = [])), responses((status = 200, body = SecretValues), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn secrets(
    State(st): State<AppState>,
    gw: GatewayCaller,
    Params(q): Params<SecretsQuery>,
) -> ApiResult<Json<SecretValues>> {
    Ok(Json(
        secret_refs::values_for_gateway(&st, &gw, q.id.as_deref()).await?,
    ))
}

/// Publish the artifacts created through this gateway's management API (created or changed,
/// removed, or the whole set with `present`). Idempotent; a handle taken by another artifact is
/// answered `conflict` and never taken over.
#[utoipa::path(post, path = "/api/internal/v1/gateway-artifacts", tag = "internal", request_body = PublishRequest,
    security(("api-key" = [])), responses((status = 200, body = PublishResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn publish(
    State(st): State<AppState>,
    gw: GatewayCaller,
    JsonBody(req): JsonBody<PublishRequest>,
) -> ApiResult<Json<PublishResponse>> {
    Ok(Json(gateway_artifacts::publish(&st, &gw, req).await?))
}
