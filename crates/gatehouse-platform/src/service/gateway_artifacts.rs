//! Gateway-origin artifacts: a connected gateway publishes the artifacts created through its
//! own management API, so that the control plane lists everything that is served. They are
//! stored beside the organization's artifacts with the publishing gateway as their origin,
//! read-only here (`artifacts::ensure_editable`), and never deployed by the control plane.
//!
//! A handle already held by a control-plane artifact (or another gateway's) is never taken
//! over: the publish answers `conflict`, the conflict is recorded for the gateway's view, and
//! both artifacts stay as they are.

use sqlx::{AnyConnection, Row};

use gatehouse_core::protocol::{
    ArtifactKey, PublishOutcome, PublishRequest, PublishResponse, PublishResult, PublishedArtifact,
};
use gatehouse_core::{ArtifactDocument, ArtifactKind, FieldError};

use crate::auth::GatewayCaller;
use crate::error::ApiResult;
use crate::service::artifacts::stored_spec;
use crate::service::new_uuid;
use crate::state::AppState;
use crate::store::{format_ms, now_ms};

/// Most artifacts one publish may carry.
pub const MAX_PER_CALL: usize = 1000;

fn result(key: &ArtifactKey, outcome: PublishOutcome) -> PublishResult {
    PublishResult {
        kind: key.kind,
        handle: key.handle.clone(),
        outcome,
        artifact_id: None,
        message: None,
    }
}

/// Applies what a gateway publishes, in one transaction.
pub async fn publish(
    state: &AppState,
    gw: &GatewayCaller,
    req: PublishRequest,
) -> ApiResult<PublishResponse> {
    if req.artifacts.len() + req.removed.len() > MAX_PER_CALL {
        return Err(FieldError::new(
            "artifacts",
            format!("at most {MAX_PER_CALL} artifacts and removals per call"),
        )
        .into());
    }
    let mut tx = state.db.write().await?;
    let mut results = Vec::with_capacity(req.artifacts.len() + req.removed.len());
    for published in req.artifacts {
        results.push(upsert(state, tx.conn(), gw, published).await?);
    }
    for key in &req.removed {
        remove(tx.conn(), gw, key).await?;
        results.push(result(key, PublishOutcome::Removed));
    }
    if let Some(present) = &req.present {
        let held: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, handle FROM artifacts WHERE origin_gateway_id = $1 \
             UNION SELECT kind, handle FROM gateway_artifact_conflicts WHERE gateway_id = $1",
        )
        .bind(&gw.gateway_id)
        .fetch_all(tx.conn())
        .await?;
        for (kind, handle) in held {
            let gone = !present
                .iter()
                .any(|k| k.kind.as_str() == kind && k.handle == handle);
            if let (true, Ok(kind)) = (gone, kind.parse::<ArtifactKind>()) {
                let key = ArtifactKey { kind, handle };
                remove(tx.conn(), gw, &key).await?;
                results.push(result(&key, PublishOutcome::Removed));
            }
        }
    }
    tx.commit().await?;
    Ok(PublishResponse { results })
}

async fn remove(conn: &mut AnyConnection, gw: &GatewayCaller, key: &ArtifactKey) -> ApiResult<()> {
    sqlx::query("DELETE FROM artifacts WHERE origin_gateway_id = $1 AND kind = $2 AND handle = $3")
        .bind(&gw.gateway_id)
        .bind(key.kind.as_str())
        .bind(&key.handle)
        .execute(&mut *conn)
        .await?;
    forget_conflict(conn, gw, key).await?;
    Ok(())
}

async fn upsert(
    state: &AppState,
    conn: &mut AnyConnection,
    gw: &GatewayCaller,
    published: PublishedArtifact,
) -> ApiResult<PublishResult> {
    let kind_hint = published
        .document
        .get("kind")
        .and_then(|k| k.as_str())
        .and_then(|k| k.parse().ok())
        .unwrap_or(ArtifactKind::RestApi);
    let handle_hint = published
        .document
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_owned();
    let doc = match ArtifactDocument::from_value(published.document) {
        Ok(doc) => doc,
        Err(e) => {
            let key = ArtifactKey {
                kind: kind_hint,
                handle: handle_hint,
            };
            let mut r = result(&key, PublishOutcome::Invalid);
            r.message = Some(format!("{}: {}", e.field, e.message));
            return Ok(r);
        }
    };
    let key = ArtifactKey {
        kind: doc.kind,
        handle: doc.metadata.name.as_str().to_owned(),
    };
    let holder: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT a.uuid, a.origin_gateway_id, g.handle FROM artifacts a LEFT JOIN gateways g ON g.uuid = a.origin_gateway_id \
         WHERE a.org_id = $1 AND a.kind = $2 AND a.handle = $3",
    )
    .bind(&gw.org_id)
    .bind(key.kind.as_str())
    .bind(&key.handle)
    .fetch_optional(&mut *conn)
    .await?;
    let display = doc.spec.display_name().to_owned();
    let spec = stored_spec(state, doc.spec, None)?;
    let now = now_ms();
    let uuid = match holder {
        Some((uuid, Some(owner), _)) if owner == gw.gateway_id => {
            sqlx::query(
                "UPDATE artifacts SET display_name = $1, spec = $2, origin_state = $3, updated_at = $4 WHERE uuid = $5",
            )
            .bind(display)
            .bind(spec)
            .bind(published.state.as_str())
            .bind(now)
            .bind(&uuid)
            .execute(&mut *conn)
            .await?;
            uuid
        }
        Some((_, owner, owner_handle)) => {
            let message = match (owner, owner_handle) {
                (None, _) => format!(
                    "{} '{}' already exists in the control plane; rename one of them",
                    key.kind.label(),
                    key.handle
                ),
                (Some(_), h) => format!(
                    "{} '{}' is already published by gateway '{}'; rename one of them",
                    key.kind.label(),
                    key.handle,
                    h.unwrap_or_default()
                ),
            };
            tracing::warn!(gateway = %gw.gateway_id, kind = %key.kind, handle = %key.handle, %message, "gateway-origin artifact conflicts");
            record_conflict(conn, gw, &key, &message, now).await?;
            let mut r = result(&key, PublishOutcome::Conflict);
            r.message = Some(message);
            return Ok(r);
        }
        None => {
            let uuid = new_uuid();
            sqlx::query(
                "INSERT INTO artifacts (uuid, org_id, kind, handle, display_name, spec, created_at, updated_at, origin_gateway_id, origin_state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
            )
            .bind(&uuid)
            .bind(&gw.org_id)
            .bind(key.kind.as_str())
            .bind(&key.handle)
            .bind(display)
            .bind(spec)
            .bind(now)
            .bind(&gw.gateway_id)
            .bind(published.state.as_str())
            .execute(&mut *conn)
            .await?;
            uuid
        }
    };
    forget_conflict(conn, gw, &key).await?;
    let mut r = result(&key, PublishOutcome::Published);
    r.artifact_id = Some(uuid);
    Ok(r)
}

async fn forget_conflict(
    conn: &mut AnyConnection,
    gw: &GatewayCaller,
    key: &ArtifactKey,
) -> ApiResult<()> {
    sqlx::query(
        "DELETE FROM gateway_artifact_conflicts WHERE gateway_id = $1 AND kind = $2 AND handle = $3",
    )
    .bind(&gw.gateway_id)
    .bind(key.kind.as_str())
    .bind(&key.handle)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn record_conflict(
    conn: &mut AnyConnection,
    gw: &GatewayCaller,
    key: &ArtifactKey,
    message: &str,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO gateway_artifact_conflicts (gateway_id, org_id, kind, handle, message, reported_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (gateway_id, kind, handle) DO UPDATE SET message = excluded.message, reported_at = excluded.reported_at",
    )
    .bind(&gw.gateway_id)
    .bind(&gw.org_id)
    .bind(key.kind.as_str())
    .bind(&key.handle)
    .bind(message)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An artifact a gateway could not publish because its handle is taken.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishConflict {
    pub kind: ArtifactKind,
    /// The handle both artifacts claim.
    pub id: String,
    pub message: String,
    pub reported_at: String,
}

/// The artifacts gateway `gateway` (uuid) could not publish, as the gateway view shows them.
pub async fn conflicts_of(
    conn: &mut AnyConnection,
    gateway: &str,
) -> ApiResult<Vec<PublishConflict>> {
    let rows = sqlx::query(
        "SELECT kind, handle, message, reported_at FROM gateway_artifact_conflicts WHERE gateway_id = $1 ORDER BY kind, handle",
    )
    .bind(gateway)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(PublishConflict {
            kind: crate::service::parse_stored("artifact kind", &r.try_get::<String, _>(0)?)?,
            id: r.try_get(1)?,
            message: r.try_get(2)?,
            reported_at: format_ms(r.try_get(3)?),
        });
    }
    Ok(out)
}
