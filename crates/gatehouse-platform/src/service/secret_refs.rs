//! Which secrets artifacts and deployments reference, and the values gateways may read.
//!
//! Two records are kept, both written in the transaction of the change that makes them:
//! - `artifact_secret_refs`: the secrets an artifact's current spec references;
//! - `deployment_secret_refs`: the secrets a deployment's content (the snapshot a gateway
//!   serves) references. A deployment keeps its references after the artifact moves on, so a
//!   secret that a gateway still serves cannot be deleted, and a gateway may read exactly the
//!   secrets its current deployments reference.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use gatehouse_core::crypto::Sealer;
use gatehouse_core::protocol::{SecretValue, SecretValues};
use gatehouse_core::references;
use gatehouse_core::ArtifactKind;

use crate::auth::GatewayCaller;
use crate::error::{ApiError, ApiResult};
use crate::service::credentials::open_credentials;
use crate::state::AppState;
use crate::store::format_ms;

/// The ids of the secrets `spec` (as stored: credentials sealed) references, sorted, once each.
pub fn referenced(sealer: &Sealer, kind: ArtifactKind, spec: &Value) -> ApiResult<Vec<String>> {
    let mut spec = spec.clone();
    open_credentials(sealer, kind, &mut spec)?;
    Ok(references::secret_ids(&references::find(&spec)?))
}

/// Records the secrets an artifact's current spec references.
pub async fn store_for_artifact(
    conn: &mut AnyConnection,
    org_id: &str,
    artifact: &str,
    ids: &[String],
) -> ApiResult<()> {
    sqlx::query("DELETE FROM artifact_secret_refs WHERE artifact_id = $1")
        .bind(artifact)
        .execute(&mut *conn)
        .await?;
    for id in ids {
        sqlx::query(
            "INSERT INTO artifact_secret_refs (artifact_id, org_id, secret_handle) VALUES ($1, $2, $3)",
        )
        .bind(artifact)
        .bind(org_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Records the secrets a deployment's content references, after checking that each still
/// exists (a restored deployment may name one deleted since): 409 naming the first missing.
pub async fn store_for_deployment(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    org_id: &str,
    kind: ArtifactKind,
    deployment: &str,
    content: &Value,
) -> ApiResult<()> {
    let ids = match content.get("spec") {
        Some(spec) => referenced(sealer, kind, spec)?,
        None => vec![],
    };
    for id in &ids {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM secrets WHERE org_id = $1 AND handle = $2")
                .bind(org_id)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if found.is_none() {
            return Err(ApiError::Conflict(format!(
                "the deployment references secret '{id}', which does not exist; create it first"
            )));
        }
    }
    sqlx::query("DELETE FROM deployment_secret_refs WHERE deployment_id = $1")
        .bind(deployment)
        .execute(&mut *conn)
        .await?;
    for id in &ids {
        sqlx::query(
            "INSERT INTO deployment_secret_refs (deployment_id, org_id, secret_handle) VALUES ($1, $2, $3)",
        )
        .bind(deployment)
        .bind(org_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What references secret `id`, as `collection/handle` names (at most 20): artifacts whose
/// spec does, and artifacts a gateway is meant to serve in a deployment that does.
pub async fn users(conn: &mut AnyConnection, org_id: &str, id: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT a.kind, a.handle, NULL FROM artifact_secret_refs r JOIN artifacts a ON a.uuid = r.artifact_id \
         WHERE r.org_id = $1 AND r.secret_handle = $2 \
         UNION \
         SELECT a.kind, a.handle, g.handle FROM deployment_secret_refs r \
         JOIN deployment_status s ON s.deployment_id = r.deployment_id AND s.desired = 'DEPLOYED' \
         JOIN artifacts a ON a.uuid = s.artifact_id JOIN gateways g ON g.uuid = s.gateway_id \
         WHERE r.org_id = $1 AND r.secret_handle = $2 \
         ORDER BY 1, 2, 3 LIMIT 20",
    )
    .bind(org_id)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut names = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get(0)?;
        let handle: String = r.try_get(1)?;
        let gateway: Option<String> = r.try_get(2)?;
        let kind = kind
            .parse::<ArtifactKind>()
            .map_or(kind.clone(), |k| k.collection().to_owned());
        names.push(match gateway {
            Some(g) => format!("{kind}/{handle} (deployed on gateway '{g}')"),
            None => format!("{kind}/{handle}"),
        });
    }
    Ok(names)
}

/// The values of the secrets this gateway's current deployments reference (all, or the one
/// named); a secret they do not reference is not answered.
pub async fn values_for_gateway(
    state: &AppState,
    gw: &GatewayCaller,
    only: Option<&str>,
) -> ApiResult<SecretValues> {
    if let Some(id) = only {
        gatehouse_core::Handle::parse("id", id)?;
    }
    let rows = sqlx::query(
        "SELECT DISTINCT sc.handle, sc.sealed_value, sc.updated_at FROM deployment_secret_refs r \
         JOIN deployment_status s ON s.deployment_id = r.deployment_id AND s.desired = 'DEPLOYED' \
         JOIN secrets sc ON sc.org_id = r.org_id AND sc.handle = r.secret_handle \
         WHERE s.gateway_id = $1 AND sc.org_id = $2 AND ($3 = '' OR sc.handle = $3) ORDER BY sc.handle",
    )
    .bind(&gw.gateway_id)
    .bind(&gw.org_id)
    .bind(only.unwrap_or_default())
    .fetch_all(state.db.pool())
    .await?;
    let mut secrets = Vec::with_capacity(rows.len());
    for r in rows {
        let sealed: String = r.try_get(1)?;
        secrets.push(SecretValue {
            id: r.try_get(0)?,
            value: state.sealer.open(&sealed)?,
            updated_at: format_ms(r.try_get(2)?),
        });
    }
    Ok(SecretValues { secrets })
}
