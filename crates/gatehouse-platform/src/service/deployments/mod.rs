//! The deployment lifecycle, written once for every artifact kind.
//!
//! A deployment is an immutable snapshot of an artifact document bound to one gateway. Each
//! (artifact, gateway) has at most one current deployment, recorded in `deployment_status` with
//! its status, the desired state gateways are told, and `performed_at`: the concurrency token of
//! the last action, echoed by acks so that a stale ack or timeout never overrides a newer action.
//! Which input moves a deployment where is decided in one place, [`lifecycle::transition`];
//! this module reads and writes the rows around it.

mod acks;
pub mod lifecycle;
mod view;

use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::AnyConnection;
use sqlx::Row;

use gatehouse_core::protocol::{DeployPayload, DeploymentStatus, DesiredState, Event, Revision};
use gatehouse_core::spec::ArtifactSpec;
use gatehouse_core::{ArtifactKind, FieldError, API_VERSION};

use crate::auth::Caller;
use crate::changelog::{ChangeTx, NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::artifacts::{self, ArtifactRow};
use crate::service::{gateways, llm_templates, new_uuid, parse_stored, secret_refs};
use crate::state::AppState;
use crate::store::{format_ms, now_ms};

pub use acks::{apply_ack, sweep_timeouts};
use lifecycle::{transition, Input, Phase, Transition};
use view::load_deployment;
pub use view::{get, list, Deployment, DeploymentFilter};

/// Body of `POST /{kind}/{id}/deployments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    /// Handle of the target gateway.
    pub gateway_id: String,
    /// `current` (the artifact as it is now, the default) or a deployment id to deploy again.
    pub base: Option<String>,
    /// A label for the deployment (not blank).
    #[schema(pattern = "\\S")]
    pub name: Option<String>,
}

/// The current-deployment record of one (artifact, gateway).
struct Current {
    deployment_id: String,
    phase: Phase,
    performed_at: i64,
}

impl Current {
    /// The phase of `deployment`: this record's when it is the current one.
    fn phase_of(cur: Option<&Current>, deployment: &str) -> Phase {
        match cur {
            Some(c) if c.deployment_id == deployment => c.phase,
            _ => Phase::NotCurrent,
        }
    }
}

/// Reads a stored (status, desired) pair as a phase; an unknown or inconsistent pair is an error.
fn stored_phase(status: &str, desired: &str) -> ApiResult<Phase> {
    let status: DeploymentStatus = parse_stored("deployment status", status)?;
    let desired: DesiredState = parse_stored("desired state", desired)?;
    Phase::of_current(status, desired).map_err(|e| ApiError::Internal(e.into()))
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
        phase: stored_phase(&status, &desired)?,
        performed_at: row.try_get(3)?,
    }))
}

/// Where `input` takes `deployment`, refusing it (409) where the lifecycle does.
fn next_phase(cur: Option<&Current>, deployment: &str, input: Input) -> ApiResult<Phase> {
    match transition(Current::phase_of(cur, deployment), input) {
        Ok(Transition::To(phase)) => Ok(phase),
        Ok(other) => Err(ApiError::Internal(anyhow::anyhow!(
            "{input:?} of deployment '{deployment}' gave {other:?}"
        ))),
        Err(e) => Err(ApiError::Conflict(format!("deployment '{deployment}' {e}"))),
    }
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

/// The spec of a deployment's content.
fn content_spec(kind: ArtifactKind, content: &Value) -> ApiResult<ArtifactSpec> {
    let spec = content.get("spec").cloned().ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("stored deployment content has no spec"))
    })?;
    // Stored content was validated when written; credentials may be sealed, which parses fine.
    ArtifactSpec::parse(kind, spec).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("stored deployment content is invalid: {e}"))
    })
}

/// Checks that `content` (a deployment's) may be served by the gateway (its uuid and handle) and
/// returns its context: the context must be free there, and every provider an LLM proxy's
/// content names deployed there. The content's providers, not the artifact's current ones: an
/// earlier deployment deployed again (`base`, restore) forwards through the providers it names.
async fn check_servable(
    conn: &mut AnyConnection,
    org_id: &str,
    row: &ArtifactRow,
    content: &Value,
    (gateway, gateway_handle): (&str, &str),
) -> ApiResult<String> {
    let spec = content_spec(row.kind, content)?;
    let context = spec.resolved_context();
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT a.kind, a.handle FROM deployment_status s JOIN artifacts a ON a.uuid = s.artifact_id \
         WHERE s.gateway_id = $1 AND s.desired = 'DEPLOYED' AND s.context = $2 AND s.artifact_id <> $3",
    )
    .bind(gateway)
    .bind(&context)
    .bind(&row.uuid)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((kind, handle)) = clash {
        return Err(ApiError::Conflict(format!(
            "context '{context}' is already served on gateway '{gateway_handle}' by {kind} '{handle}'"
        )));
    }
    for provider in spec.providers() {
        // No row: the provider was deleted since the content was written.
        let desired: Option<Option<String>> = sqlx::query_scalar(
            "SELECT s.desired FROM artifacts a \
             LEFT JOIN deployment_status s ON s.artifact_id = a.uuid AND s.gateway_id = $3 \
             WHERE a.org_id = $1 AND a.kind = 'LlmProvider' AND a.handle = $2",
        )
        .bind(org_id)
        .bind(provider.as_str())
        .bind(gateway)
        .fetch_optional(&mut *conn)
        .await?;
        let desired: Option<DesiredState> = desired
            .flatten()
            .map(|d| parse_stored("desired state", &d))
            .transpose()?;
        if desired != Some(DesiredState::Deployed) {
            return Err(ApiError::Conflict(format!(
                "LLM provider '{provider}' is not deployed to gateway '{gateway_handle}'; deploy it there first"
            )));
        }
    }
    Ok(context)
}

/// Which deployment of which (artifact, gateway) an action makes current.
struct Made<'a> {
    org_id: &'a str,
    row: &'a ArtifactRow,
    gateway: &'a str,
    deployment: &'a str,
}

/// Makes `made` current in `phase` (see [`set_current`]), commits, and answers the deployment.
async fn commit_current(
    mut tx: ChangeTx,
    made: Made<'_>,
    phase: Phase,
    context: &str,
    previous: Option<&Current>,
) -> ApiResult<Deployment> {
    let Made {
        org_id,
        row,
        gateway,
        deployment,
    } = made;
    set_current(
        &mut tx, org_id, row, gateway, deployment, phase, context, previous,
    )
    .await?;
    let out = load_deployment(tx.conn(), row, deployment).await?;
    tx.commit().await?;
    Ok(out)
}

/// Points (artifact, gateway) at `deployment` in `phase` (deploying or undeploying) and appends
/// the matching event. The one place a deployment's status pointer moves; the deployment it
/// replaces, if another, is thereby archived.
#[allow(clippy::too_many_arguments)]
async fn set_current(
    tx: &mut ChangeTx,
    org_id: &str,
    row: &ArtifactRow,
    gateway: &str,
    deployment: &str,
    phase: Phase,
    context: &str,
    previous: Option<&Current>,
) -> ApiResult<Option<Revision>> {
    let performed_at = next_performed_at(previous);
    let desired = phase.desired().ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "deployment '{deployment}' cannot be made current as {:?}",
            phase
        ))
    })?;
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
    .bind(phase.status().as_str())
    .bind(desired.as_str())
    .bind(performed_at)
    .bind(context)
    .bind(now_ms())
    .execute(tx.conn())
    .await?;
    sqlx::query("INSERT INTO artifact_gateways (artifact_id, gateway_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&row.uuid)
        .bind(gateway)
        .execute(tx.conn())
        .await?;
    let payload = DeployPayload {
        artifact_id: row.uuid.clone(),
        kind: row.kind,
        handle: row.handle.clone(),
        deployment_id: deployment.to_owned(),
        performed_at: format_ms(performed_at),
    };
    let event = match desired {
        DesiredState::Deployed => Event::Deployed(payload),
        DesiredState::Undeployed => Event::Undeployed(payload),
    };
    let event = NewEvent::new(event, Target::Gateway(gateway.to_owned()));
    Ok(tx.append(org_id, &[event]).await?)
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
    let mut tx = state.begin_change().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    artifacts::ensure_editable(&row, "deployed")?;
    let gateway = gateways::resolve(tx.conn(), &caller.org_id, &req.gateway_id).await?;
    let (content, base) = match req.base.as_deref() {
        None | Some("current") => {
            let mut content = render(&row);
            llm_templates::embed_definition(tx.conn(), &caller.org_id, &mut content).await?;
            (content, None)
        }
        Some(base_id) => {
            let content: Option<String> = sqlx::query_scalar(
                "SELECT content FROM deployments WHERE uuid = $1 AND artifact_id = $2",
            )
            .bind(base_id)
            .bind(&row.uuid)
            .fetch_optional(tx.conn())
            .await?;
            let content = content.ok_or_else(|| {
                ApiError::UnknownReference(FieldError::new(
                    "base",
                    format!(
                        "'{base_id}' is not a deployment of {} '{handle}'",
                        kind.label()
                    ),
                ))
            })?;
            let content =
                serde_json::from_str(&content).map_err(|e| ApiError::Internal(e.into()))?;
            (content, Some(base_id.to_owned()))
        }
    };
    let at = (gateway.as_str(), req.gateway_id.as_str());
    let context = check_servable(tx.conn(), &caller.org_id, &row, &content, at).await?;
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
    secret_refs::store_for_deployment(
        tx.conn(),
        &state.sealer,
        &caller.org_id,
        kind,
        &deployment,
        &content,
    )
    .await?;
    let phase = next_phase(None, &deployment, Input::Deploy)?;
    set_current(
        &mut tx,
        &caller.org_id,
        &row,
        &gateway,
        &deployment,
        phase,
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
    let mut tx = state.begin_change().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let (gateway, gateway_handle) = deployment_gateway(tx.conn(), &row, deployment).await?;
    let cur = current(tx.conn(), &row.uuid, &gateway).await?;
    let phase = next_phase(cur.as_ref(), deployment, Input::Undeploy)?;
    if kind == ArtifactKind::LlmProvider {
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT a.handle FROM llm_proxy_providers p JOIN artifacts a ON a.uuid = p.proxy_id \
             JOIN deployment_status s ON s.artifact_id = a.uuid \
             WHERE p.provider_id = $1 AND s.gateway_id = $2 AND s.desired = 'DEPLOYED' ORDER BY a.handle",
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
    let made = Made {
        org_id: &caller.org_id,
        row: &row,
        gateway: &gateway,
        deployment,
    };
    commit_current(tx, made, phase, &context, cur.as_ref()).await
}

/// Makes an earlier (archived, undeployed or failed) deployment current again and deploys it.
pub async fn restore(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    deployment: &str,
) -> ApiResult<Deployment> {
    let mut tx = state.begin_change().await?;
    let row = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let (gateway, gateway_handle) = deployment_gateway(tx.conn(), &row, deployment).await?;
    let cur = current(tx.conn(), &row.uuid, &gateway).await?;
    let phase = next_phase(cur.as_ref(), deployment, Input::Restore)?;
    let content: String = sqlx::query_scalar("SELECT content FROM deployments WHERE uuid = $1")
        .bind(deployment)
        .fetch_one(tx.conn())
        .await?;
    let content: Value =
        serde_json::from_str(&content).map_err(|e| ApiError::Internal(e.into()))?;
    let at = (gateway.as_str(), gateway_handle.as_str());
    let context = check_servable(tx.conn(), &caller.org_id, &row, &content, at).await?;
    secret_refs::store_for_deployment(
        tx.conn(),
        &state.sealer,
        &caller.org_id,
        kind,
        deployment,
        &content,
    )
    .await?;
    let made = Made {
        org_id: &caller.org_id,
        row: &row,
        gateway: &gateway,
        deployment,
    };
    commit_current(tx, made, phase, &context, cur.as_ref()).await
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
    let phase = Current::phase_of(cur.as_ref(), deployment);
    transition(phase, Input::Delete)
        .map_err(|e| ApiError::Conflict(format!("deployment '{deployment}' {e}")))?;
    // The status row, when this deployment is current, goes with it (ON DELETE CASCADE).
    sqlx::query("DELETE FROM deployments WHERE uuid = $1")
        .bind(deployment)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
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
