//! Subscription plans and subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use gatehouse_core::protocol::{PlanList, SubscriptionList};

use crate::api::{JsonBody, Params};
use crate::auth::{Caller, GatewayCaller};
use crate::error::{ApiResult, ErrorBody};
use crate::service::subscriptions::{
    self, NewSubscription, Plan, PlanBody, Subscription, SubscriptionFilter, SubscriptionUpdate,
};
use crate::service::{List, Page};
use crate::state::AppState;

/// Create a subscription plan.
#[utoipa::path(post, path = "/api/v1/subscription-plans", tag = "subscriptions", request_body = PlanBody, security(("bearer" = [])),
    responses((status = 201, body = Plan), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_plan(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<PlanBody>,
) -> ApiResult<(StatusCode, Json<Plan>)> {
    Ok((
        StatusCode::CREATED,
        Json(subscriptions::create_plan(&st, &c, b).await?),
    ))
}

/// List subscription plans.
#[utoipa::path(get, path = "/api/v1/subscription-plans", tag = "subscriptions", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<Plan>)))]
pub async fn list_plans(
    State(st): State<AppState>,
    c: Caller,
    Params(p): Params<Page>,
) -> ApiResult<Json<List<Plan>>> {
    Ok(Json(subscriptions::list_plans(&st, &c, p).await?))
}

/// Read a subscription plan.
#[utoipa::path(get, path = "/api/v1/subscription-plans/{id}", tag = "subscriptions", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Plan), (status = 404, body = ErrorBody)))]
pub async fn get_plan(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Plan>> {
    Ok(Json(subscriptions::get_plan(&st, &c, &id).await?))
}

/// Replace a subscription plan.
#[utoipa::path(put, path = "/api/v1/subscription-plans/{id}", tag = "subscriptions", params(("id" = String, Path)),
    request_body = PlanBody, security(("bearer" = [])),
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_plan(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<PlanBody>,
) -> ApiResult<Json<Plan>> {
    Ok(Json(subscriptions::update_plan(&st, &c, &id, b).await?))
}

/// Delete a subscription plan no subscription uses.
#[utoipa::path(delete, path = "/api/v1/subscription-plans/{id}", tag = "subscriptions", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_plan(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    subscriptions::delete_plan(&st, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Subscribe to an artifact; the subscription token is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions", request_body = NewSubscription,
    security(("bearer" = [])), responses((status = 201, body = Subscription), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<NewSubscription>,
) -> ApiResult<(StatusCode, Json<Subscription>)> {
    Ok((
        StatusCode::CREATED,
        Json(subscriptions::create_subscription(&st, &c, b).await?),
    ))
}

/// List subscriptions.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions", params(SubscriptionFilter),
    security(("bearer" = [])), responses((status = 200, body = List<Subscription>)))]
pub async fn list(
    State(st): State<AppState>,
    c: Caller,
    Params(f): Params<SubscriptionFilter>,
) -> ApiResult<Json<List<Subscription>>> {
    Ok(Json(subscriptions::list_subscriptions(&st, &c, f).await?))
}

/// Read a subscription.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(subscriptions::get_subscription(&st, &c, &id).await?))
}

/// Change a subscription's status or plan.
#[utoipa::path(put, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    request_body = SubscriptionUpdate, security(("bearer" = [])),
    responses((status = 200, body = Subscription), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<SubscriptionUpdate>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(
        subscriptions::update_subscription(&st, &c, &id, b).await?,
    ))
}

/// Delete a subscription.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    subscriptions::delete_subscription(&st, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's subscription plans.
#[utoipa::path(get, path = "/api/internal/v1/subscription-plans", tag = "internal", security(("api-key" = [])),
    responses((status = 200, body = PlanList), (status = 401, body = ErrorBody)))]
pub async fn internal_plans(
    State(st): State<AppState>,
    gw: GatewayCaller,
) -> ApiResult<Json<PlanList>> {
    Ok(Json(subscriptions::plans_for_gateway(&st, &gw).await?))
}

/// The subscriptions (token hashes) of the artifacts this gateway holds.
#[utoipa::path(get, path = "/api/internal/v1/subscriptions", tag = "internal", security(("api-key" = [])),
    responses((status = 200, body = SubscriptionList), (status = 401, body = ErrorBody)))]
pub async fn internal_subscriptions(
    State(st): State<AppState>,
    gw: GatewayCaller,
) -> ApiResult<Json<SubscriptionList>> {
    Ok(Json(
        subscriptions::subscriptions_for_gateway(&st, &gw).await?,
    ))
}
