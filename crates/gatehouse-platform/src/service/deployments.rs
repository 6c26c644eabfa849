//! The deployment lifecycle, written once for every artifact kind.
//!
//! A deployment is an immutable snapshot of an artifact document bound to one gateway. Each
//! (artifact, gateway) has at most one current deployment, recorded in `deployment_status` with
//! its status, the desired state gateways are told, and `performed_at`: the concurrency token of
//! the last action, echoed by acks so that a stale ack or timeout never overrides a newer action.
//!
//! ```text
//! deploy/restore ──▶ DEPLOYING ──ack ok──▶ DEPLOYED          (desired DEPLOYED)
//!                        │ ack failed / timeout ──▶ FAILED ──late ack ok──▶ DEPLOYED
//! undeploy ──▶ UNDEPLOYING ──ack ok──▶ UNDEPLOYED           (desired UNDEPLOYED)
//!                        │ ack failed / timeout ──▶ FAILED
//! a newer deployment of the same (artifact, gateway) ──▶ the old one is ARCHIVED
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;
use sqlx::Row;

use gatehouse_core::protocol::{
    artifact_event_type, AckAction, AckStatus, ArtifactChange, DeployPayload, DeploymentAck,
    DeploymentStatus, DesiredState,
};
use gatehouse_core::{ArtifactKind, FieldError, API_VERSION};

use crate::auth::Caller;
use crate::changelog::{self, NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::artifacts::{self, ArtifactRow};
use crate::service::{gateways, new_uuid};
use crate::state::AppState;
use crate::store::{format_ms, now_ms, parse_rfc3339_ms, Db};

/// Body of `POST /{kind}/{id}/deployments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    /// Handle of the target gateway.
    pub gateway_id: String,
    /// `current` (the artifact as it is now, the default) or a deployment id to deploy again.
    pub base: Option<String>,
    /// A label for the deployment.
    pub name: Option<String>,
}

/// `?gatewayId=&status=` filters of deployment lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentFilter {
    pub gateway_id: Option<String>,
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

/// The current-deployment record of one (artifact, gateway).
struct Current {
    deployment_id: String,
    status: DeploymentStatus,
    desired: DesiredState,
    performed_at: i64,
}

async fn current(
    conn: &mut AnyConnection,
    artifact: &str,
    gateway: &str,
) -> ApiResult<Option<Current>> {
    let row = sqlx::query(
        "SELECT deployment_id, status, desired, performed_at FROM deployment_status WHERE artifact_id = $1 AND gateway_id = $2",
    )
    .bind(artifact)
    .bind(gateway)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: String = row.try_get(1)?;
    let desired: String = row.try_get(2)?;
    Ok(Some(Current {
        deployment_id: row.try_get(0)?,
        status: status
            .parse()
            .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?,
        desired: desired
            .parse()
            .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?,
        performed_at: row.try_get(3)?,
    }))
}

/// A `performed_at` strictly after the previous action's, so that every action has its own token.
fn next_performed_at(previous: Option<&Current>) -> i64 {
    let now = now_ms();
    match previous {
        Some(p) if p.performed_at >= now => p.performed_at + 1,
        _ => now,
    }
}

/// Renders the document a deployment snapshots: the artifact as it is now.
fn render(row: &ArtifactRow) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": row.kind.as_str(),
        "metadata": {"name": row.handle, "uid": row.uuid},
        "spec": row.spec,
    })
}

/// The served context of a deployment's content.
fn content_context(kind: ArtifactKind, content: &Value) -> ApiResult<String> {
    let spec = content.get("spec").cloned().unwrap_or(Value::Null);
    // Stored content was validated when written; credentials may be sealed, which parses fine.
    let spec = gatehouse_core::spec::ArtifactSpec::parse(kind, spec).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("stored deployment content is invalid: {e}"))
    })?;
    Ok(spec.resolved_context())
}

/// Checks that `content` may be served by `gateway`: its context is free there, and an LLM
/// proxy's provider is deployed there.
async fn check_servable(
    conn: &mut AnyConnection,
    row: &ArtifactRow,
    gateway: &str,
    gateway_handle: &str,
    context: &str,
) -> ApiResult<()> {
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT a.kind, a.handle FROM deployment_status s JOIN artifacts a ON a.uuid = s.artifact_id \
         WHERE s.gateway_id = $1 AND s.desired = 'DEPLOYED' AND s.context = $2 AND s.artifact_id <> $3",
    )
    .bind(gateway)
    .bind(context)
    .bind(&row.uuid)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((kind, handle)) = clash {
        return Err(ApiError::Conflict(format!(
            "context '{context}' is already served on gateway '{gateway_handle}' by {kind} '{handle}'"
        )));
    }
    if row.kind == ArtifactKind::LlmProxy {
        let provider: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT p.handle, s.desired FROM artifacts x JOIN artifacts p ON p.uuid = x.provider_id \
             LEFT JOIN deployment_status s ON s.artifact_id = p.uuid AND s.gateway_id = $2 WHERE x.uuid = $1",
        )
        .bind(&row.uuid)
        .bind(gateway)
        .fetch_optional(&mut *conn)
        .await?;
        match provider {
            Some((_, Some(d))) if d == "DEPLOYED" => {}
            Some((p, _)) => {
                return Err(ApiError::Conflict(format!(
                    "LLM provider '{p}' is not deployed to gateway '{gateway_handle}'; deploy it there first"
                )))
            }
            None => return Err(ApiError::Internal(anyhow::anyhow!("LLM proxy without provider"))),
        }
    }
    Ok(())
}

/// Points (artifact, gateway) at `deployment` with a deploy or undeploy action, and appends the
/// matching event. The one place a deployment's status pointer moves.
#[allow(clippy::too_many_arguments)]
async fn set_current(
    conn: &mut AnyConnection,
    org_id: &str,
    row: &ArtifactRow,
    gateway: &str,
    deployment: &str,
    desired: DesiredState,
    context: &str,
    previous: Option<&Current>,
) -> ApiResult<Option<gatehouse_core::protocol::Revision>> {
    let performed_at = next_performed_at(previous);
    let status = match desired {
        DesiredState::Deployed => DeploymentStatus::Deploying,
        DesiredState::Undeployed => DeploymentStatus::Undeploying,
    };
    sqlx::query(
        "INSERT INTO deployment_status (artifact_id, gateway_id, org_id, deployment_id, status, desired, status_reason, status_message, performed_at, context, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8, $9) \
         ON CONFLICT (artifact_id, gateway_id) DO UPDATE SET deployment_id = excluded.deployment_id, status = excluded.status, \
           desired = excluded.desired, status_reason = NULL, status_message = NULL, performed_at = excluded.performed_at, \
           context = excluded.context, updated_at = excluded.updated_at",
    )
    .bind(&row.uuid)
    .bind(gateway)
    .bind(org_id)
    .bind(deployment)
    .bind(status.as_str())
    .bind(desired.as_str())
    .bind(performed_at)
    .bind(context)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO artifact_gateways (artifact_id, gateway_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&row.uuid)
        .bind(gateway)
        .execute(&mut *conn)
        .await?;
    let change = match desired {
        DesiredState::Deployed => ArtifactChange::Deployed,
        DesiredState::Undeployed => ArtifactChange::Undeployed,
    };
    let payload = DeployPayload {
        artifact_id: row.uuid.clone(),
        kind: row.kind,
        handle: row.handle.clone(),
        deployment_id: deployment.to_owned(),
        performed_at: format_ms(performed_at),
    };
    let event = NewEvent {
        event_type: artifact_event_type(row.kind, change),
        target: Target::Gateway(gateway.to_owned()),
        payload: serde_json::to_value(payload).map_err(|e| ApiError::Internal(e.into()))?,
    };
    Ok(changelog::append(conn, org_id, &[event]).await?)
}

/// Deploys an artifact to a gateway: snapshots it, makes the snapshot current and tells the
/// gateway. Answers `DEPLOYING`; the gateway's ack completes it.
pub async fn deploy(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    req: DeployRequest,
) -> ApiResult<Deployment> {
    let mut tx = state.db.write().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let gateway = gateways::resolve(tx.conn(), &caller.org_id, &req.gateway_id).await?;
    let (content, base) = match req.base.as_deref() {
        None | Some("current") => (render(&row), None),
        Some(base_id) => {
            let content: Option<String> = sqlx::query_scalar(
                "SELECT content FROM deployments WHERE uuid = $1 AND artifact_id = $2",
            )
            .bind(base_id)
            .bind(&row.uuid)
            .fetch_optional(tx.conn())
            .await?;
            let content = content.ok_or_else(|| {
                FieldError::new(
                    "base",
                    format!(
                        "'{base_id}' is not a deployment of {} '{handle}'",
                        kind.label()
                    ),
                )
            })?;
            let content =
                serde_json::from_str(&content).map_err(|e| ApiError::Internal(e.into()))?;
            (content, Some(base_id.to_owned()))
        }
    };
    let context = content_context(kind, &content)?;
    check_servable(tx.conn(), &row, &gateway, &req.gateway_id, &context).await?;
    let previous = current(tx.conn(), &row.uuid, &gateway).await?;
    let deployment = new_uuid();
    let name = match req.name {
        Some(n) if !n.trim().is_empty() => n,
        Some(_) => return Err(FieldError::new("name", "must not be empty").into()),
        None => format!("{handle}-{}", &deployment[deployment.len() - 8..]),
    };
    sqlx::query(
        "INSERT INTO deployments (uuid, org_id, artifact_id, gateway_id, name, base_deployment_id, content, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&deployment)
    .bind(&caller.org_id)
    .bind(&row.uuid)
    .bind(&gateway)
    .bind(&name)
    .bind(&base)
    .bind(content.to_string())
    .bind(now_ms())
    .execute(tx.conn())
    .await?;
    let rev = set_current(
        tx.conn(),
        &caller.org_id,
        &row,
        &gateway,
        &deployment,
        DesiredState::Deployed,
        &context,
        previous.as_ref(),
    )
    .await?;
    prune_archived(
        tx.conn(),
        &row.uuid,
        &gateway,
        state.config.max_archived_deployments,
    )
    .await?;
    let out = load_deployment(tx.conn(), &row, &deployment).await?;
    tx.commit().await?;
    notify(state, &caller.org_id, rev);
    Ok(out)
}

/// Undeploys the current deployment: the gateway keeps the artifact (and its keys) but stops
/// serving it.
pub async fn undeploy(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    deployment: &str,
) -> ApiResult<Deployment> {
    let mut tx = state.db.write().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let (gateway, gateway_handle) = deployment_gateway(tx.conn(), &row, deployment).await?;
    let cur = current(tx.conn(), &row.uuid, &gateway).await?;
    let status = status_of(cur.as_ref(), deployment);
    match &cur {
        Some(c) if c.deployment_id == deployment && c.desired == DesiredState::Deployed => {}
        _ => {
            return Err(ApiError::Conflict(format!(
                "deployment '{deployment}' is {status}; only a deployment that is deployed, deploying or failed to deploy can be undeployed"
            )))
        }
    }
    if kind == ArtifactKind::LlmProvider {
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT a.handle FROM artifacts a JOIN deployment_status s ON s.artifact_id = a.uuid \
             WHERE a.provider_id = $1 AND s.gateway_id = $2 AND s.desired = 'DEPLOYED' ORDER BY a.handle",
        )
        .bind(&row.uuid)
        .bind(&gateway)
        .fetch_all(tx.conn())
        .await?;
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "LLM proxies {} on gateway '{gateway_handle}' forward through LLM provider '{handle}'; undeploy them first",
                users.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let context: String = sqlx::query_scalar(
        "SELECT context FROM deployment_status WHERE artifact_id = $1 AND gateway_id = $2",
    )
    .bind(&row.uuid)
    .bind(&gateway)
    .fetch_one(tx.conn())
    .await?;
    let rev = set_current(
        tx.conn(),
        &caller.org_id,
        &row,
        &gateway,
        deployment,
        DesiredState::Undeployed,
        &context,
        cur.as_ref(),
    )
    .await?;
    let out = load_deployment(tx.conn(), &row, deployment).await?;
    tx.commit().await?;
    notify(state, &caller.org_id, rev);
    Ok(out)
}

/// Makes an earlier (archived, undeployed or failed) deployment current again and deploys it.
pub async fn restore(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    deployment: &str,
) -> ApiResult<Deployment> {
    let mut tx = state.db.write().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let (gateway, gateway_handle) = deployment_gateway(tx.conn(), &row, deployment).await?;
    let cur = current(tx.conn(), &row.uuid, &gateway).await?;
    if let Some(c) = &cur {
        if c.deployment_id == deployment
            && matches!(
                c.status,
                DeploymentStatus::Deployed | DeploymentStatus::Deploying
            )
        {
            return Err(ApiError::Conflict(format!(
                "deployment '{deployment}' is already {}; nothing to restore",
                c.status
            )));
        }
    }
    let content: String = sqlx::query_scalar("SELECT content FROM deployments WHERE uuid = $1")
        .bind(deployment)
        .fetch_one(tx.conn())
        .await?;
    let content: Value =
        serde_json::from_str(&content).map_err(|e| ApiError::Internal(e.into()))?;
    let context = content_context(kind, &content)?;
    check_servable(tx.conn(), &row, &gateway, &gateway_handle, &context).await?;
    let rev = set_current(
        tx.conn(),
        &caller.org_id,
        &row,
        &gateway,
        deployment,
        DesiredState::Deployed,
        &context,
        cur.as_ref(),
    )
    .await?;
    let out = load_deployment(tx.conn(), &row, deployment).await?;
    tx.commit().await?;
    notify(state, &caller.org_id, rev);
    Ok(out)
}

/// Deletes a deployment that no gateway is meant to serve. Sends nothing: a gateway holding the
/// artifact keeps it (undeployed) for as long as the artifact exists.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    deployment: &str,
) -> ApiResult<()> {
    let mut tx = state.db.write().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let (gateway, _) = deployment_gateway(tx.conn(), &row, deployment).await?;
    let cur = current(tx.conn(), &row.uuid, &gateway).await?;
    if let Some(c) = &cur {
        if c.deployment_id == deployment && c.desired == DesiredState::Deployed {
            return Err(ApiError::Conflict(format!(
                "deployment '{deployment}' is {}; undeploy it before deleting it",
                c.status
            )));
        }
    }
    // The status row, when this deployment is current, goes with it (ON DELETE CASCADE).
    sqlx::query("DELETE FROM deployments WHERE uuid = $1")
        .bind(deployment)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
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
                .map_err(|m| FieldError::new("status", m))?,
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

const DEPLOYMENT_SELECT: &str =
    "SELECT d.uuid, d.name, g.handle, d.base_deployment_id, d.created_at, \
     s.status, s.status_reason, s.status_message, s.performed_at, s.updated_at \
     FROM deployments d JOIN gateways g ON g.uuid = d.gateway_id \
     LEFT JOIN deployment_status s ON s.deployment_id = d.uuid";

fn deployment_from_row(r: &sqlx::any::AnyRow, artifact: &ArtifactRow) -> ApiResult<Deployment> {
    let status: Option<String> = r.try_get(5)?;
    let status = match status {
        Some(s) => s
            .parse()
            .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?,
        None => DeploymentStatus::Archived,
    };
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

async fn load_deployment(
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

/// The gateway (uuid, handle) a deployment of `artifact` is bound to; 404 when it is not one.
async fn deployment_gateway(
    conn: &mut AnyConnection,
    artifact: &ArtifactRow,
    deployment: &str,
) -> ApiResult<(String, String)> {
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT d.gateway_id, g.handle FROM deployments d JOIN gateways g ON g.uuid = d.gateway_id WHERE d.uuid = $1 AND d.artifact_id = $2",
    )
    .bind(deployment)
    .bind(&artifact.uuid)
    .fetch_optional(&mut *conn)
    .await?;
    found.ok_or_else(|| ApiError::not_found("deployment", deployment))
}

fn status_of(cur: Option<&Current>, deployment: &str) -> DeploymentStatus {
    match cur {
        Some(c) if c.deployment_id == deployment => c.status,
        _ => DeploymentStatus::Archived,
    }
}

/// Keeps at most `keep` archived deployments of (artifact, gateway), removing the oldest.
async fn prune_archived(
    conn: &mut AnyConnection,
    artifact: &str,
    gateway: &str,
    keep: i64,
) -> ApiResult<()> {
    sqlx::query(
        "DELETE FROM deployments WHERE uuid IN ( \
           SELECT d.uuid FROM deployments d LEFT JOIN deployment_status s ON s.deployment_id = d.uuid \
           WHERE d.artifact_id = $1 AND d.gateway_id = $2 AND s.deployment_id IS NULL \
           ORDER BY d.created_at DESC, d.uuid DESC LIMIT 1000000000 OFFSET $3)",
    )
    .bind(artifact)
    .bind(gateway)
    .bind(keep)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn notify(state: &AppState, org_id: &str, rev: Option<gatehouse_core::protocol::Revision>) {
    if let Some(rev) = rev {
        state.feed.notify(org_id, rev);
    }
}

/// Applies a gateway's ack to the deployment it names. Returns whether it changed anything: an
/// ack for an older action (another `performedAt`) is stale and ignored; a success that comes
/// after a timeout still lands.
pub async fn apply_ack(db: &Db, gateway_id: &str, ack: &DeploymentAck) -> ApiResult<bool> {
    let performed_at = parse_rfc3339_ms(&ack.performed_at).ok_or_else(|| {
        FieldError::new(
            "performedAt",
            format!("'{}' is not an RFC 3339 time", ack.performed_at),
        )
    })?;
    let (to, desired, from): (DeploymentStatus, DesiredState, &[&str]) =
        match (ack.status, ack.action) {
            (AckStatus::Success, AckAction::Deploy) => (
                DeploymentStatus::Deployed,
                DesiredState::Deployed,
                &["DEPLOYING", "FAILED"],
            ),
            (AckStatus::Success, AckAction::Undeploy) => (
                DeploymentStatus::Undeployed,
                DesiredState::Undeployed,
                &["UNDEPLOYING", "FAILED"],
            ),
            (AckStatus::Failed, AckAction::Deploy) => (
                DeploymentStatus::Failed,
                DesiredState::Deployed,
                &["DEPLOYING", "DEPLOYED", "FAILED"],
            ),
            (AckStatus::Failed, AckAction::Undeploy) => (
                DeploymentStatus::Failed,
                DesiredState::Undeployed,
                &["UNDEPLOYING", "UNDEPLOYED", "FAILED"],
            ),
        };
    let (reason, message) = match ack.status {
        AckStatus::Success => (None, None),
        AckStatus::Failed => (
            Some(
                ack.error_code
                    .clone()
                    .unwrap_or_else(|| "GATEWAY_PROCESSING_ERROR".to_owned()),
            ),
            ack.message.clone(),
        ),
    };
    let n = sqlx::query(
        "UPDATE deployment_status SET status = $1, status_reason = $2, status_message = $3, updated_at = $4 \
         WHERE artifact_id = $5 AND gateway_id = $6 AND deployment_id = $7 AND performed_at = $8 AND desired = $9 \
           AND status IN ($10, $11, $12)",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(message)
    .bind(now_ms())
    .bind(&ack.artifact_id)
    .bind(gateway_id)
    .bind(&ack.deployment_id)
    .bind(performed_at)
    .bind(desired.as_str())
    .bind(from[0])
    .bind(from[1])
    .bind(from.get(2).copied().unwrap_or(from[1]))
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Moves deploys and undeploys that waited longer than `timeout_ms` for their ack to `FAILED`
/// (`DEPLOYMENT_TIMEOUT`). One statement, so an action taken meanwhile (a newer
/// `performed_at`) is never swept. Returns how many timed out.
pub async fn sweep_timeouts(db: &Db, timeout_ms: i64) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE deployment_status SET status = 'FAILED', status_reason = 'DEPLOYMENT_TIMEOUT', \
           status_message = 'the gateway did not acknowledge in time', updated_at = $1 \
         WHERE status IN ('DEPLOYING', 'UNDEPLOYING') AND performed_at < $2",
    )
    .bind(now)
    .bind(now - timeout_ms)
    .execute(db.pool())
    .await?
    .rows_affected();
    if n > 0 {
        metrics::counter!("gatehouse_deployment_timeouts_total").increment(n);
    }
    Ok(n)
}
