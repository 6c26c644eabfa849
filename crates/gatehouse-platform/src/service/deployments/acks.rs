//! What moves a deployment without a person: the gateway's acks and the timeout sweeper. Both
//! read the current row, ask [`transition`] where it goes, and write it back only if the row is
//! still what they read (same deployment, same `performed_at`, same status), so a newer action
//! taken meanwhile is never overridden.

use sqlx::Row;

use gatehouse_core::protocol::{AckStatus, DeploymentAck, DeploymentStatus};
use gatehouse_core::FieldError;

use super::lifecycle::{transition, Input, Phase, Transition};
use super::{current, stored_phase};
use crate::error::{ApiError, ApiResult};
use crate::store::{now_ms, parse_rfc3339_ms, Db};

/// Reason recorded when an ack says `failed` without a code.
const GATEWAY_ERROR: &str = "GATEWAY_PROCESSING_ERROR";
/// Reason and message recorded when the ack did not come in time.
const TIMEOUT_REASON: &str = "DEPLOYMENT_TIMEOUT";
const TIMEOUT_MESSAGE: &str = "the gateway did not acknowledge in time";

/// The row a transition was computed from, and where it goes.
struct Move<'a> {
    artifact: &'a str,
    gateway: &'a str,
    deployment: &'a str,
    performed_at: i64,
    from: Phase,
    to: Phase,
    reason: Option<&'a str>,
    message: Option<&'a str>,
}

/// Writes `m.to` if the row is still at `m.from` for the same action; returns whether it did.
async fn compare_and_set(db: &Db, m: Move<'_>) -> ApiResult<bool> {
    let n = sqlx::query(
        "UPDATE deployment_status SET status = $1, status_reason = $2, status_message = $3, updated_at = $4 \
         WHERE artifact_id = $5 AND gateway_id = $6 AND deployment_id = $7 AND performed_at = $8 AND status = $9",
    )
    .bind(m.to.status().as_str())
    .bind(m.reason)
    .bind(m.message)
    .bind(now_ms())
    .bind(m.artifact)
    .bind(m.gateway)
    .bind(m.deployment)
    .bind(m.performed_at)
    .bind(m.from.status().as_str())
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
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
    let mut conn = db.pool().acquire().await?;
    let Some(cur) = current(&mut conn, &ack.artifact_id, gateway_id).await? else {
        return Ok(false);
    };
    drop(conn);
    let for_current_action =
        cur.deployment_id == ack.deployment_id && cur.performed_at == performed_at;
    let input = Input::Ack {
        action: ack.action,
        status: ack.status,
        for_current_action,
    };
    let to = match transition(cur.phase, input) {
        Ok(Transition::To(to)) => to,
        Ok(_) => return Ok(false),
        Err(e) => return Err(ApiError::Internal(e.into())),
    };
    let (reason, message) = match ack.status {
        AckStatus::Success => (None, None),
        AckStatus::Failed => (
            Some(ack.error_code.as_deref().unwrap_or(GATEWAY_ERROR)),
            ack.message.as_deref(),
        ),
    };
    compare_and_set(
        db,
        Move {
            artifact: &ack.artifact_id,
            gateway: gateway_id,
            deployment: &cur.deployment_id,
            performed_at: cur.performed_at,
            from: cur.phase,
            to,
            reason,
            message,
        },
    )
    .await
}

/// Moves deploys and undeploys that waited longer than `timeout_ms` for their ack to `FAILED`
/// (`DEPLOYMENT_TIMEOUT`). An action taken meanwhile (a newer `performed_at`) is never swept.
/// Returns how many timed out.
pub async fn sweep_timeouts(db: &Db, timeout_ms: i64) -> ApiResult<u64> {
    let cutoff = now_ms() - timeout_ms;
    let rows = sqlx::query(
        "SELECT artifact_id, gateway_id, deployment_id, performed_at, status, desired FROM deployment_status \
         WHERE status IN ($1, $2) AND performed_at < $3",
    )
    .bind(DeploymentStatus::Deploying.as_str())
    .bind(DeploymentStatus::Undeploying.as_str())
    .bind(cutoff)
    .fetch_all(db.pool())
    .await?;
    let mut timed_out = 0;
    for r in rows {
        let (artifact, gateway, deployment): (String, String, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let from = stored_phase(&r.try_get::<String, _>(4)?, &r.try_get::<String, _>(5)?)?;
        let Ok(Transition::To(to)) = transition(from, Input::Timeout) else {
            continue;
        };
        let moved = compare_and_set(
            db,
            Move {
                artifact: &artifact,
                gateway: &gateway,
                deployment: &deployment,
                performed_at: r.try_get(3)?,
                from,
                to,
                reason: Some(TIMEOUT_REASON),
                message: Some(TIMEOUT_MESSAGE),
            },
        )
        .await?;
        timed_out += u64::from(moved);
    }
    if timed_out > 0 {
        metrics::counter!("gatehouse_deployment_timeouts_total").increment(timed_out);
    }
    Ok(timed_out)
}
