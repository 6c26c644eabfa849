//! Secrets: created, listed, read and rotated without their values ever coming back.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::api::{JsonBody, Params};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service::secrets::{self, NewSecret, SecretUpdate, SecretView};
use crate::service::{List, Page};
use crate::state::AppState;

/// Create a secret. The value is sealed at rest and never returned; the answer shows its
/// fingerprint.
#[utoipa::path(post, path = "/api/v1/secrets", tag = "secrets", request_body = NewSecret, security(("bearer" = [])),
    responses((status = 201, body = SecretView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<NewSecret>,
) -> ApiResult<(StatusCode, Json<SecretView>)> {
    let view = secrets::create(&st.db, &st.sealer, &c, b).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// List the organization's secrets (ids, names, fingerprints; no values).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<SecretView>)))]
pub async fn list(
    State(st): State<AppState>,
    c: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<List<SecretView>>> {
    Ok(Json(secrets::list(&st.db, &c, page).await?))
}

/// Read a secret (no value).
#[utoipa::path(get, path = "/api/v1/secrets/{id}", tag = "secrets", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = SecretView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretView>> {
    Ok(Json(secrets::get(&st.db, &c, &id).await?))
}

/// Rotate a secret (a new `value`) or rename it (`displayName`).
#[utoipa::path(put, path = "/api/v1/secrets/{id}", tag = "secrets", params(("id" = String, Path)),
    request_body = SecretUpdate, security(("bearer" = [])),
    responses((status = 200, body = SecretView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<SecretUpdate>,
) -> ApiResult<Json<SecretView>> {
    Ok(Json(secrets::update(&st, &c, &id, b).await?))
}

/// Delete a secret.
#[utoipa::path(delete, path = "/api/v1/secrets/{id}", tag = "secrets", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    secrets::delete(&st, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
