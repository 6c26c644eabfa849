//! Gateways and their registration tokens.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use gatehouse_core::protocol::{Revision, UnknownValue};
use gatehouse_core::FieldError;

use crate::auth::Caller;
use crate::changelog;
use crate::crypto::{random_token, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::hub::Hub;
use crate::service::{display_name, new_handle, new_uuid, parse_stored, List, Page};
use crate::store::{format_ms, is_unique_violation, now_ms, Db};

/// Active registration tokens a gateway may have at once (one in use, one being rolled out).
pub const MAX_ACTIVE_TOKENS: i64 = 2;

/// How recently a gateway must have been heard (heartbeats come every 10 s) to count as
/// connected through another replica.
const CONNECTED_WINDOW_MS: i64 = 30_000;

/// A gateway as the public API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    pub id: String,
    pub uuid: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub status: GatewayStatus,
    /// Artifacts this gateway created locally but could not publish: their handle is taken
    /// by a control-plane artifact or another gateway's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish_conflicts: Vec<crate::service::gateway_artifacts::PublishConflict>,
}

/// Whether a gateway is connected and caught up with the change log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    pub connected: bool,
    /// The last change-log revision the gateway reported as applied.
    pub applied_revision: Revision,
    /// The organization's current revision.
    pub org_revision: Revision,
    /// True when the gateway has applied every event meant for it.
    pub in_sync: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// Body of `POST /gateways` and `PUT /gateways/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayBody {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
}

/// A freshly minted registration token, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = NewGatewayToken)]
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub created_at: String,
}

/// A registration token as listed (never the token itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub status: TokenStatus,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// Whether a registration token still authenticates its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Revoked,
}

impl TokenStatus {
    /// The spelling in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "active" => Ok(TokenStatus::Active),
            "revoked" => Ok(TokenStatus::Revoked),
            other => Err(UnknownValue::new(
                "token status",
                other,
                &["active", "revoked"],
            )),
        }
    }
}

/// `?force=` of gateway deletion.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteGatewayParams {
    /// Delete even while artifacts are deployed to it.
    pub force: Option<bool>,
}

const COLUMNS: &str = "handle, uuid, display_name, description, created_at, updated_at, applied_revision, last_seen_at";

async fn from_row(
    db: &Db,
    hub: &Hub,
    org_id: &str,
    org_revision: Revision,
    row: &sqlx::any::AnyRow,
) -> ApiResult<Gateway> {
    let uuid: String = row.try_get(1)?;
    let applied = Revision(row.try_get(6)?);
    let last_seen: Option<i64> = row.try_get(7)?;
    let needed = changelog::last_targeting(db, org_id, &uuid).await?;
    let mut conn = db.pool().acquire().await?;
    let publish_conflicts =
        crate::service::gateway_artifacts::conflicts_of(&mut conn, &uuid).await?;
    drop(conn);
    Ok(Gateway {
        publish_conflicts,
        id: row.try_get(0)?,
        display_name: row.try_get(2)?,
        description: row.try_get(3)?,
        created_at: format_ms(row.try_get(4)?),
        updated_at: format_ms(row.try_get(5)?),
        status: GatewayStatus {
            connected: hub.is_connected(&uuid)
                || last_seen.is_some_and(|t| now_ms() - t < CONNECTED_WINDOW_MS),
            applied_revision: applied,
            org_revision,
            in_sync: applied >= needed,
            last_seen: last_seen.map(format_ms),
        },
        uuid,
    })
}

async fn org_revision(db: &Db, org_id: &str) -> ApiResult<Revision> {
    let mut conn = db.pool().acquire().await?;
    Ok(changelog::current_revision(&mut conn, org_id).await?)
}

/// Registers a gateway (no token yet: mint one with [`create_token`]).
pub async fn create(db: &Db, hub: &Hub, caller: &Caller, body: GatewayBody) -> ApiResult<Gateway> {
    let name = display_name("displayName", &body.display_name)?;
    let handle = new_handle(body.id.as_deref(), &name)?;
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO gateways (uuid, org_id, handle, display_name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
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
            "gateway '{handle}' already exists"
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => get(db, hub, caller, handle.as_str()).await,
    }
}

/// Reads a gateway with its status.
pub async fn get(db: &Db, hub: &Hub, caller: &Caller, handle: &str) -> ApiResult<Gateway> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM gateways WHERE org_id = $1 AND handle = $2"
    ))
    .bind(&caller.org_id)
    .bind(handle)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("gateway", handle))?;
    let rev = org_revision(db, &caller.org_id).await?;
    from_row(db, hub, &caller.org_id, rev, &row).await
}

/// Lists gateways with their status.
pub async fn list(db: &Db, hub: &Hub, caller: &Caller, page: Page) -> ApiResult<List<Gateway>> {
    let bounds = page.bounds()?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gateways WHERE org_id = $1")
        .bind(&caller.org_id)
        .fetch_one(db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM gateways WHERE org_id = $1 ORDER BY handle LIMIT $2 OFFSET $3"
    ))
    .bind(&caller.org_id)
    .bind(bounds.0)
    .bind(bounds.1)
    .fetch_all(db.pool())
    .await?;
    let rev = org_revision(db, &caller.org_id).await?;
    let mut list = Vec::with_capacity(rows.len());
    for row in &rows {
        list.push(from_row(db, hub, &caller.org_id, rev, row).await?);
    }
    Ok(List::new(list, total, bounds))
}

/// Replaces a gateway's name and description.
pub async fn update(
    db: &Db,
    hub: &Hub,
    caller: &Caller,
    handle: &str,
    body: GatewayBody,
) -> ApiResult<Gateway> {
    if let Some(id) = &body.id {
        if id != handle {
            return Err(ApiError::Immutable(FieldError::new(
                "id",
                format!("is immutable: '{id}' differs from '{handle}'"),
            )));
        }
    }
    let name = display_name("displayName", &body.display_name)?;
    let n = sqlx::query("UPDATE gateways SET display_name = $1, description = $2, updated_at = $3 WHERE org_id = $4 AND handle = $5")
        .bind(&name)
        .bind(&body.description)
        .bind(now_ms())
        .bind(&caller.org_id)
        .bind(handle)
        .execute(db.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("gateway", handle));
    }
    get(db, hub, caller, handle).await
}

/// The uuid of gateway `handle` in the caller's organization.
pub async fn resolve(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    handle: &str,
) -> ApiResult<String> {
    let uuid: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM gateways WHERE org_id = $1 AND handle = $2")
            .bind(org_id)
            .bind(handle)
            .fetch_optional(conn)
            .await?;
    uuid.ok_or_else(|| ApiError::not_found("gateway", handle))
}

/// Deletes a gateway, its tokens and its deployments. While artifacts are meant to be served
/// by it, deletion needs `force`, so that no one removes a serving gateway by accident.
pub async fn delete(db: &Db, caller: &Caller, handle: &str, force: bool) -> ApiResult<String> {
    let mut tx = db.write().await?;
    let uuid = resolve(tx.conn(), &caller.org_id, handle).await?;
    if !force {
        let serving: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.kind, a.handle FROM deployment_status s JOIN artifacts a ON a.uuid = s.artifact_id \
             WHERE s.gateway_id = $1 AND s.desired = 'DEPLOYED' ORDER BY a.kind, a.handle LIMIT 20",
        )
        .bind(&uuid)
        .fetch_all(tx.conn())
        .await?;
        if !serving.is_empty() {
            let names: Vec<String> = serving.iter().map(|(k, h)| format!("{k} '{h}'")).collect();
            return Err(ApiError::Conflict(format!(
                "gateway '{handle}' still serves {}; undeploy them or delete with ?force=true",
                names.join(", ")
            )));
        }
    }
    // The artifacts it published go with it.
    sqlx::query("DELETE FROM artifacts WHERE origin_gateway_id = $1")
        .bind(&uuid)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM gateways WHERE uuid = $1")
        .bind(&uuid)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(uuid)
}

/// Mints a registration token (at most [`MAX_ACTIVE_TOKENS`] active); the plaintext is
/// returned once and only its hash is kept.
pub async fn create_token(db: &Db, caller: &Caller, handle: &str) -> ApiResult<NewToken> {
    let mut tx = db.write().await?;
    let gateway = resolve(tx.conn(), &caller.org_id, handle).await?;
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM gateway_tokens WHERE gateway_id = $1 AND status = $2",
    )
    .bind(&gateway)
    .bind(TokenStatus::Active.as_str())
    .fetch_one(tx.conn())
    .await?;
    if active >= MAX_ACTIVE_TOKENS {
        return Err(ApiError::Conflict(format!(
            "gateway '{handle}' already has {MAX_ACTIVE_TOKENS} active tokens; revoke one first"
        )));
    }
    let token = random_token("ghgw_");
    let id = new_uuid();
    let now = now_ms();
    sqlx::query("INSERT INTO gateway_tokens (uuid, gateway_id, token_hash, status, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&id)
        .bind(&gateway)
        .bind(sha256_hex(&token))
        .bind(TokenStatus::Active.as_str())
        .bind(now)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(NewToken {
        id,
        token,
        created_at: format_ms(now),
    })
}

/// Lists a gateway's tokens, newest first.
pub async fn list_tokens(db: &Db, caller: &Caller, handle: &str) -> ApiResult<Vec<TokenInfo>> {
    let mut conn = db.pool().acquire().await?;
    let gateway = resolve(&mut conn, &caller.org_id, handle).await?;
    let rows = sqlx::query("SELECT uuid, status, created_at, revoked_at FROM gateway_tokens WHERE gateway_id = $1 ORDER BY created_at DESC, uuid DESC")
        .bind(&gateway)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.try_get(0)?,
                status: parse_stored("token status", &r.try_get::<String, _>(1)?)?,
                created_at: format_ms(r.try_get(2)?),
                revoked_at: r.try_get::<Option<i64>, _>(3)?.map(format_ms),
            })
        })
        .collect()
}

/// Revokes a token; the gateway can no longer authenticate with it.
pub async fn revoke_token(
    db: &Db,
    caller: &Caller,
    handle: &str,
    token_id: &str,
) -> ApiResult<String> {
    let mut tx = db.write().await?;
    let gateway = resolve(tx.conn(), &caller.org_id, handle).await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM gateway_tokens WHERE uuid = $1 AND gateway_id = $2")
            .bind(token_id)
            .bind(&gateway)
            .fetch_optional(tx.conn())
            .await?;
    let Some(status) = status else {
        return Err(ApiError::not_found("token", token_id));
    };
    if parse_stored::<TokenStatus>("token status", &status)? == TokenStatus::Revoked {
        return Ok(gateway);
    }
    sqlx::query("UPDATE gateway_tokens SET status = $1, revoked_at = $2 WHERE uuid = $3")
        .bind(TokenStatus::Revoked.as_str())
        .bind(now_ms())
        .bind(token_id)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(gateway)
}

/// Whether registration token `token_id` is still active.
pub async fn token_is_active(db: &Db, token_id: &str) -> ApiResult<bool> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM gateway_tokens WHERE uuid = $1")
            .bind(token_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(match status {
        Some(s) => parse_stored::<TokenStatus>("token status", &s)? == TokenStatus::Active,
        None => false,
    })
}

/// Records that a gateway called in, having applied `applied` (when it says so).
pub async fn touch(db: &Db, gateway_id: &str, applied: Option<Revision>) -> ApiResult<()> {
    match applied {
        Some(rev) => {
            sqlx::query(
                "UPDATE gateways SET last_seen_at = $1, applied_revision = $2 WHERE uuid = $3",
            )
            .bind(now_ms())
            .bind(rev.0)
            .bind(gateway_id)
            .execute(db.pool())
            .await?
        }
        None => {
            sqlx::query("UPDATE gateways SET last_seen_at = $1 WHERE uuid = $2")
                .bind(now_ms())
                .bind(gateway_id)
                .execute(db.pool())
                .await?
        }
    };
    Ok(())
}
