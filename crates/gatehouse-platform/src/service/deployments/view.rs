//! Deployments as the public API shows them: one, or an artifact's list.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::Row;

use gatehouse_core::protocol::DeploymentStatus;
use gatehouse_core::{ArtifactKind, FieldError};

use super::lifecycle::Phase;
use super::stored_phase;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::artifacts::{self, ArtifactRow};
use crate::service::gateways;
use crate::state::AppState;
use crate::store::format_ms;

/// `?gatewayId=&status=` filters of deployment lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentFilter {
    pub gateway_id: Option<String>,
    /// Only deployments in this status.
    #[param(value_type = Option<gatehouse_core::protocol::DeploymentStatus>)]
    pub status: Option<String>,
}

/// A deployment as the public API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub deployment_id: String,
    pub name: String,
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub gateway_id: String,
    pub status: DeploymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_deployment_id: Option<String>,
    pub created_at: String,
    /// When the current action on this deployment was taken (absent for archived ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Reads one deployment of an artifact.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    deployment: &str,
) -> ApiResult<Deployment> {
    let mut conn = state.db.pool().acquire().await?;
    let row = artifacts::load(&mut conn, &caller.org_id, kind, handle).await?;
    load_deployment(&mut conn, &row, deployment).await
}

/// Lists an artifact's deployments, newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    filter: DeploymentFilter,
) -> ApiResult<Vec<Deployment>> {
    let status_filter = match filter.status.as_deref() {
        Some(s) => Some(
            s.parse::<DeploymentStatus>()
                .map_err(|e| FieldError::new("status", e.to_string()))?,
        ),
        None => None,
    };
    let mut conn = state.db.pool().acquire().await?;
    let row = artifacts::load(&mut conn, &caller.org_id, kind, handle).await?;
    let gateway = match &filter.gateway_id {
        Some(g) => Some(gateways::resolve(&mut conn, &caller.org_id, g).await?),
        None => None,
    };
    let rows = sqlx::query(&format!(
        "{DEPLOYMENT_SELECT} WHERE d.artifact_id = $1 AND ($2 = '' OR d.gateway_id = $2) ORDER BY d.created_at DESC, d.uuid DESC"
    ))
    .bind(&row.uuid)
    .bind(gateway.unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let d = deployment_from_row(r, &row)?;
        if status_filter.is_none_or(|s| s == d.status) {
            out.push(d);
        }
    }
    Ok(out)
}

/// The columns of a deployment with its status row, when it has one (it is current).
const DEPLOYMENT_SELECT: &str =
    "SELECT d.uuid, d.name, g.handle, d.base_deployment_id, d.created_at, \
     s.status, s.status_reason, s.status_message, s.performed_at, s.updated_at, s.desired \
     FROM deployments d JOIN gateways g ON g.uuid = d.gateway_id \
     LEFT JOIN deployment_status s ON s.deployment_id = d.uuid";

/// A deployment row (selected with `DEPLOYMENT_SELECT`) for the API.
fn deployment_from_row(r: &sqlx::any::AnyRow, artifact: &ArtifactRow) -> ApiResult<Deployment> {
    let status: Option<String> = r.try_get(5)?;
    let desired: Option<String> = r.try_get(10)?;
    let phase = match (status, desired) {
        (Some(status), Some(desired)) => stored_phase(&status, &desired)?,
        // No status row points at it: it is not (or no longer) the current deployment.
        (None, None) => Phase::NotCurrent,
        (status, desired) => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "deployment status row is incomplete: status {status:?}, desired {desired:?}"
            )))
        }
    };
    let status = phase.status();
    Ok(Deployment {
        deployment_id: r.try_get(0)?,
        name: r.try_get(1)?,
        artifact_id: artifact.handle.clone(),
        kind: artifact.kind,
        gateway_id: r.try_get(2)?,
        base_deployment_id: r.try_get(3)?,
        created_at: format_ms(r.try_get(4)?),
        status,
        status_reason: r.try_get(6)?,
        status_message: r.try_get(7)?,
        performed_at: r.try_get::<Option<i64>, _>(8)?.map(format_ms),
        updated_at: r.try_get::<Option<i64>, _>(9)?.map(format_ms),
    })
}

/// Reads one deployment of `artifact`; 404 when it is not one.
pub(super) async fn load_deployment(
    conn: &mut AnyConnection,
    artifact: &ArtifactRow,
    deployment: &str,
) -> ApiResult<Deployment> {
    let r = sqlx::query(&format!(
        "{DEPLOYMENT_SELECT} WHERE d.uuid = $1 AND d.artifact_id = $2"
    ))
    .bind(deployment)
    .bind(&artifact.uuid)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found("deployment", deployment))?;
    deployment_from_row(&r, artifact)
}
