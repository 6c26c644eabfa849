//! LLM provider templates: the built-in ones and the organization's own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use gatehouse_core::llm::LlmTemplate;

use crate::api::{JsonBody, Params};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service::llm_templates::{self, TemplateView};
use crate::service::{List, Page};
use crate::state::AppState;

/// List the built-in templates, then the organization's own.
#[utoipa::path(get, path = "/api/v1/llm-provider-templates", tag = "llm-provider-templates", params(Page), security(("bearer" = [])),
    responses((status = 200, body = List<TemplateView>)))]
pub async fn list(
    State(st): State<AppState>,
    c: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<List<TemplateView>>> {
    Ok(Json(llm_templates::list(&st.db, &c, page).await?))
}

/// Read a template.
#[utoipa::path(get, path = "/api/v1/llm-provider-templates/{id}", tag = "llm-provider-templates", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(llm_templates::get(&st.db, &c, &id).await?))
}

/// Create a template of the organization (an id not built in).
#[utoipa::path(post, path = "/api/v1/llm-provider-templates", tag = "llm-provider-templates", request_body = LlmTemplate,
    security(("bearer" = [])),
    responses((status = 201, body = TemplateView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    Ok((
        StatusCode::CREATED,
        Json(llm_templates::create(&st.db, &c, b).await?),
    ))
}

/// Replace a template of the organization; providers using it take the change at their next
/// deployment. Built-in templates cannot be replaced (409).
#[utoipa::path(put, path = "/api/v1/llm-provider-templates/{id}", tag = "llm-provider-templates", params(("id" = String, Path)),
    request_body = LlmTemplate, security(("bearer" = [])),
    responses((status = 200, body = TemplateView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn replace(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Value>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(llm_templates::replace(&st.db, &c, &id, b).await?))
}

/// Delete a template of the organization; refused (409) while a provider names it, and for
/// built-in templates.
#[utoipa::path(delete, path = "/api/v1/llm-provider-templates/{id}", tag = "llm-provider-templates", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    llm_templates::delete(&st.db, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
