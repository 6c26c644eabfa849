//! Login and organizations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::{JsonBody, Params};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service::identity::{
    self, CreateOrganization, LoginRequest, LoginResponse, Organization,
};
use crate::service::{List, Page};
use crate::state::AppState;

/// Log in and receive a bearer token for an organization.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let ttl = st.config.token_ttl.as_secs() as i64;
    let address = Some(peer.ip());
    Ok(Json(
        identity::login(&st.db, &st.jwt, ttl, req, address).await?,
    ))
}

/// End this login token now (an API token is revoked with `DELETE /api/v1/tokens/{id}`).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn logout(State(st): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    identity::logout(&st.db, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an organization (platform admin).
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", request_body = CreateOrganization,
    security(("bearer" = [])),
    responses((status = 201, body = Organization), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_org(
    State(st): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateOrganization>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    Ok((
        StatusCode::CREATED,
        Json(identity::create_org(&st.db, &caller, req).await?),
    ))
}

/// List organizations (platform admin).
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<Organization>), (status = 403, body = ErrorBody)))]
pub async fn list_orgs(
    State(st): State<AppState>,
    caller: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<List<Organization>>> {
    Ok(Json(identity::list_orgs(&st.db, &caller, page).await?))
}
