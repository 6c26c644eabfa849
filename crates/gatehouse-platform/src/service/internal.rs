//! What gateways read from the control plane: their desired state, deployment contents,
//! artifact existence and the change log.

use serde_json::Value;
use sqlx::Row;

use gatehouse_core::protocol::{
    ArtifactExistence, DeploymentContent, DesiredDeployment, DesiredStateResponse, EventsQuery,
    EventsResponse, ExistsResponse, FetchBatchResponse, Revision,
};
use gatehouse_core::ArtifactKind;

use crate::auth::GatewayCaller;
use crate::changelog;
use crate::error::{ApiError, ApiResult};
use crate::service::credentials::{add_session_key, open_credentials};
use crate::service::parse_stored;
use crate::state::AppState;
use crate::store::{format_ms, placeholders};

/// Most ids one `/artifacts/exists` or `/deployments/fetch-batch` call may carry.
pub const MAX_IDS: usize = 1000;

/// This gateway's desired state with the revision it reflects.
pub async fn desired_state(
    state: &AppState,
    gw: &GatewayCaller,
) -> ApiResult<DesiredStateResponse> {
    let mut tx = state.db.snapshot().await?;
    let revision = changelog::current_revision(&mut tx, &gw.org_id).await?;
    let rows = sqlx::query(
        "SELECT a.uuid, a.kind, a.handle, s.deployment_id, s.desired, s.performed_at, s.status \
         FROM deployment_status s JOIN artifacts a ON a.uuid = s.artifact_id WHERE s.gateway_id = $1 ORDER BY a.kind, a.handle",
    )
    .bind(&gw.gateway_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut deployments = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get(1)?;
        let desired: String = r.try_get(4)?;
        deployments.push(DesiredDeployment {
            artifact_id: r.try_get(0)?,
            kind: parse_stored("artifact kind", &kind)?,
            handle: r.try_get(2)?,
            deployment_id: r.try_get(3)?,
            state: parse_stored("desired state", &desired)?,
            deployed_at: format_ms(r.try_get(5)?),
            status: Some(parse_stored(
                "deployment status",
                &r.try_get::<String, _>(6)?,
            )?),
        });
    }
    Ok(DesiredStateResponse {
        revision,
        deployments,
    })
}

fn content_of(
    state: &AppState,
    gw: &GatewayCaller,
    deployment_id: String,
    artifact_id: String,
    kind: &str,
    content: &str,
) -> ApiResult<DeploymentContent> {
    let kind: ArtifactKind = parse_stored("artifact kind", kind)?;
    let mut content: Value = serde_json::from_str(content).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored content of deployment {deployment_id} is unreadable: {e}"
        ))
    })?;
    if let Some(spec) = content.get_mut("spec") {
        open_credentials(&state.sealer, kind, spec)?;
        add_session_key(&state.sealer, &gw.org_id, kind, spec);
    }
    Ok(DeploymentContent {
        deployment_id,
        artifact_id,
        kind,
        content,
    })
}

/// The contents of the named deployments bound to this gateway; others are omitted.
pub async fn fetch_batch(
    state: &AppState,
    gw: &GatewayCaller,
    ids: Vec<String>,
) -> ApiResult<FetchBatchResponse> {
    if ids.len() > MAX_IDS {
        return Err(gatehouse_core::FieldError::new(
            "deploymentIds",
            format!("at most {MAX_IDS} ids per call"),
        )
        .into());
    }
    if ids.is_empty() {
        return Ok(FetchBatchResponse {
            deployments: vec![],
        });
    }
    let sql = format!(
        "SELECT d.uuid, d.artifact_id, a.kind, d.content FROM deployments d JOIN artifacts a ON a.uuid = d.artifact_id \
         WHERE d.gateway_id = $1 AND d.uuid IN ({})",
        placeholders(2, ids.len())
    );
    let mut q = sqlx::query(&sql).bind(&gw.gateway_id);
    for id in &ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(state.db.pool()).await?;
    let mut deployments = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get(2)?;
        let content: String = r.try_get(3)?;
        deployments.push(content_of(
            state,
            gw,
            r.try_get(0)?,
            r.try_get(1)?,
            &kind,
            &content,
        )?);
    }
    Ok(FetchBatchResponse { deployments })
}

/// The current deployment's content of one artifact of `kind` on this gateway.
pub async fn current_content(
    state: &AppState,
    gw: &GatewayCaller,
    kind: ArtifactKind,
    artifact: &str,
) -> ApiResult<DeploymentContent> {
    let row = sqlx::query(
        "SELECT d.uuid, d.artifact_id, a.kind, d.content FROM deployment_status s \
         JOIN deployments d ON d.uuid = s.deployment_id JOIN artifacts a ON a.uuid = s.artifact_id \
         WHERE s.gateway_id = $1 AND s.artifact_id = $2 AND a.kind = $3",
    )
    .bind(&gw.gateway_id)
    .bind(artifact)
    .bind(kind.as_str())
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "no deployment of {} '{artifact}' on this gateway",
            kind.label()
        ))
    })?;
    let kind_s: String = row.try_get(2)?;
    let content: String = row.try_get(3)?;
    content_of(
        state,
        gw,
        row.try_get(0)?,
        row.try_get(1)?,
        &kind_s,
        &content,
    )
}

/// Which of `ids` are artifacts of this gateway's organization.
pub async fn exists(
    state: &AppState,
    gw: &GatewayCaller,
    ids: Vec<String>,
) -> ApiResult<ExistsResponse> {
    if ids.len() > MAX_IDS {
        return Err(gatehouse_core::FieldError::new(
            "artifactIds",
            format!(
                "{} ids given; at most {MAX_IDS} per call, send them in chunks",
                ids.len()
            ),
        )
        .into());
    }
    let found: std::collections::HashSet<String> = if ids.is_empty() {
        Default::default()
    } else {
        let sql = format!(
            "SELECT uuid FROM artifacts WHERE org_id = $1 AND uuid IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(&gw.org_id);
        for id in &ids {
            q = q.bind(id);
        }
        q.fetch_all(state.db.pool()).await?.into_iter().collect()
    };
    Ok(ExistsResponse {
        artifacts: ids
            .into_iter()
            .map(|id| ArtifactExistence {
                exists: found.contains(&id),
                artifact_id: id,
            })
            .collect(),
    })
}

/// The change-log events after `after` that target this gateway.
pub async fn events(
    state: &AppState,
    gw: &GatewayCaller,
    q: EventsQuery,
) -> ApiResult<EventsResponse> {
    let after = q.after.unwrap_or(Revision::ZERO);
    if after < Revision::ZERO {
        return Err(gatehouse_core::FieldError::new("after", "must not be negative").into());
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(gatehouse_core::FieldError::new("limit", "must be between 1 and 1000").into());
    }
    let page =
        changelog::read_for_gateway(&state.db, &gw.org_id, &gw.gateway_id, after, limit).await?;
    crate::service::gateways::touch(&state.db, &gw.gateway_id, Some(after)).await?;
    Ok(EventsResponse {
        events: page.events,
        revision: page.revision,
        next_after: page.next_after,
        full_sync_required: page.full_sync_required,
    })
}
