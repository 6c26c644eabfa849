//! Users of an organization, API tokens and the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::api::{JsonBody, Params};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service::api_tokens::{self, CreatedToken, NewToken, TokenView};
use crate::service::audit::{self, AuditEntry, AuditFilter};
use crate::service::users::{self, NewUser, PasswordChange, UserChange, UserView};
use crate::service::{List, Page};
use crate::state::AppState;

/// Add a user to the organization with a role (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    Ok((
        StatusCode::CREATED,
        Json(users::create(&st.db, &c, b).await?),
    ))
}

/// The organization's users with their roles (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<UserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(st): State<AppState>,
    c: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<List<UserView>>> {
    Ok(Json(users::list(&st.db, &c, page).await?))
}

/// Who the caller is, with their role.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(State(st): State<AppState>, c: Caller) -> ApiResult<Json<UserView>> {
    Ok(Json(users::me(&st.db, &c).await?))
}

/// Change your own password.
#[utoipa::path(put, path = "/api/v1/users/me/password", tag = "users", request_body = PasswordChange, security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn change_password(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<PasswordChange>,
) -> ApiResult<StatusCode> {
    users::change_password(&st.db, &c, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One user (admin).
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(st): State<AppState>,
    c: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(users::get(&st.db, &c, &username).await?))
}

/// Change a user's role or reset their password (admin).
#[utoipa::path(put, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), request_body = UserChange,
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_user(
    State(st): State<AppState>,
    c: Caller,
    Path(username): Path<String>,
    JsonBody(b): JsonBody<UserChange>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(users::update(&st.db, &c, &username, b).await?))
}

/// Remove a user from the organization (admin).
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(st): State<AppState>,
    c: Caller,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    users::delete(&st.db, &c, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make an API token (at most your role); its value is shown once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken, security(("bearer" = [])),
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(api_tokens::create(&st.db, &c, b).await?),
    ))
}

/// Your API tokens (an admin sees everyone's), without their values.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(State(st): State<AppState>, c: Caller) -> ApiResult<Json<Vec<TokenView>>> {
    Ok(Json(api_tokens::list(&st.db, &c).await?))
}

/// Revoke an API token (your own; an admin, anyone's).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    api_tokens::revoke(&st.db, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every change made through this API, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit", params(AuditFilter), security(("bearer" = [])),
    responses((status = 200, body = List<AuditEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(st): State<AppState>,
    c: Caller,
    Params(f): Params<AuditFilter>,
) -> ApiResult<Json<List<AuditEntry>>> {
    Ok(Json(audit::list(&st.db, &c, f).await?))
}
