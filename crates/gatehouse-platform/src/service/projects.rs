//! Projects: groups of REST APIs, LLM proxies and MCP proxies within an organization.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{display_name, new_handle, new_uuid, List, Page};
use crate::store::{format_ms, is_unique_violation, now_ms, Db};

/// A project.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub uuid: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Body of `POST /projects` and `PUT /projects/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectBody {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
}

const COLUMNS: &str = "handle, uuid, display_name, description, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> ApiResult<Project> {
    Ok(Project {
        id: row.try_get(0)?,
        uuid: row.try_get(1)?,
        display_name: row.try_get(2)?,
        description: row.try_get(3)?,
        created_at: format_ms(row.try_get(4)?),
        updated_at: format_ms(row.try_get(5)?),
    })
}

/// Creates a project.
pub async fn create(db: &Db, caller: &Caller, body: ProjectBody) -> ApiResult<Project> {
    let name = display_name("displayName", &body.display_name)?;
    let handle = new_handle(body.id.as_deref(), &name)?;
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO projects (uuid, org_id, handle, display_name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(new_uuid())
    .bind(&caller.org_id)
    .bind(handle.as_str())
    .bind(&name)
    .bind(&body.description)
    .bind(now)
    .execute(db.pool())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Err(ApiError::Conflict(format!(
            "project '{handle}' already exists"
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => get(db, caller, handle.as_str()).await,
    }
}

/// Reads a project by handle.
pub async fn get(db: &Db, caller: &Caller, handle: &str) -> ApiResult<Project> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM projects WHERE org_id = $1 AND handle = $2"
    ))
    .bind(&caller.org_id)
    .bind(handle)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("project", handle))?;
    from_row(&row)
}

/// Lists projects.
pub async fn list(db: &Db, caller: &Caller, page: Page) -> ApiResult<List<Project>> {
    let bounds = page.bounds()?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE org_id = $1")
        .bind(&caller.org_id)
        .fetch_one(db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM projects WHERE org_id = $1 ORDER BY handle LIMIT $2 OFFSET $3"
    ))
    .bind(&caller.org_id)
    .bind(bounds.0)
    .bind(bounds.1)
    .fetch_all(db.pool())
    .await?;
    let list = rows.iter().map(from_row).collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(list, total, bounds))
}

/// Replaces a project's name and description; its handle is immutable.
pub async fn update(
    db: &Db,
    caller: &Caller,
    handle: &str,
    body: ProjectBody,
) -> ApiResult<Project> {
    if let Some(id) = &body.id {
        if id != handle {
            return Err(ApiError::Immutable(gatehouse_core::FieldError::new(
                "id",
                format!("is immutable: '{id}' differs from '{handle}'"),
            )));
        }
    }
    let name = display_name("displayName", &body.display_name)?;
    let n = sqlx::query("UPDATE projects SET display_name = $1, description = $2, updated_at = $3 WHERE org_id = $4 AND handle = $5")
        .bind(&name)
        .bind(&body.description)
        .bind(now_ms())
        .bind(&caller.org_id)
        .bind(handle)
        .execute(db.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("project", handle));
    }
    get(db, caller, handle).await
}

/// Deletes an empty project; one that still holds artifacts is a 409 naming them.
pub async fn delete(db: &Db, caller: &Caller, handle: &str) -> ApiResult<()> {
    let mut tx = db.write().await?;
    let uuid: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM projects WHERE org_id = $1 AND handle = $2")
            .bind(&caller.org_id)
            .bind(handle)
            .fetch_optional(tx.conn())
            .await?;
    let uuid = uuid.ok_or_else(|| ApiError::not_found("project", handle))?;
    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, handle FROM artifacts WHERE project_id = $1 ORDER BY kind, handle LIMIT 20",
    )
    .bind(&uuid)
    .fetch_all(tx.conn())
    .await?;
    if !members.is_empty() {
        let names: Vec<String> = members.iter().map(|(k, h)| format!("{k} '{h}'")).collect();
        return Err(ApiError::Conflict(format!(
            "project '{handle}' still holds {}; delete them first",
            names.join(", ")
        )));
    }
    sqlx::query("DELETE FROM projects WHERE uuid = $1")
        .bind(&uuid)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The uuid of project `handle`, or a 400 naming `field`.
pub async fn resolve(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    field: &str,
    handle: &str,
) -> ApiResult<String> {
    let uuid: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM projects WHERE org_id = $1 AND handle = $2")
            .bind(org_id)
            .bind(handle)
            .fetch_optional(conn)
            .await?;
    uuid.ok_or_else(|| {
        ApiError::UnknownReference(gatehouse_core::FieldError::new(
            field,
            format!("project '{handle}' does not exist"),
        ))
    })
}
