//! API keys of artifacts: shown once, stored as hashes, delivered to every gateway that holds
//! the artifact (deployed or undeployed) through the change log.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use gatehouse_core::crypto::{mask, random_token, sha256_hex};
use gatehouse_core::{ArtifactKind, FieldError};

use crate::auth::{Caller, GatewayCaller};
use crate::changelog::{self, NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::artifacts::{self, ArtifactRow};
use crate::service::{new_handle, new_uuid, List};
use crate::state::AppState;
use crate::store::{format_ms, is_unique_violation, now_ms, parse_rfc3339_ms};

/// Body of `POST /{kind}/{id}/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    /// The key's handle; derived from `displayName` when omitted.
    pub id: Option<String>,
    pub display_name: String,
    /// A key to register (e.g. issued by a portal); generated when omitted.
    pub api_key: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub uuid: String,
    pub display_name: String,
    pub masked_api_key: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A new key: its plaintext, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub api_key: String,
}

const COLUMNS: &str =
    "handle, uuid, display_name, masked, status, expires_at, created_at, revoked_at";

fn from_row(r: &AnyRow) -> ApiResult<ApiKey> {
    Ok(ApiKey {
        id: r.try_get(0)?,
        uuid: r.try_get(1)?,
        display_name: r.try_get(2)?,
        masked_api_key: r.try_get(3)?,
        status: r.try_get(4)?,
        expires_at: r.try_get::<Option<i64>, _>(5)?.map(format_ms),
        created_at: format_ms(r.try_get(6)?),
        revoked_at: r.try_get::<Option<i64>, _>(7)?.map(format_ms),
    })
}

/// The payload gateways get for a key (its hash, never the key).
fn payload(
    art: &ArtifactRow,
    key_uuid: &str,
    handle: &str,
    hash: &str,
    masked: &str,
    status: &str,
    expires: Option<i64>,
) -> Value {
    json!({
        "artifactId": art.uuid, "kind": art.kind, "handle": art.handle,
        "keyId": key_uuid, "name": handle, "apiKeyHash": hash, "maskedApiKey": masked,
        "status": status, "expiresAt": expires,
    })
}

/// One event per gateway that holds the artifact.
async fn events_for_holders(
    conn: &mut sqlx::AnyConnection,
    art: &ArtifactRow,
    event_type: &str,
    payload: Value,
) -> ApiResult<Vec<NewEvent>> {
    let gateways: Vec<String> = sqlx::query_scalar(
        "SELECT gateway_id FROM artifact_gateways WHERE artifact_id = $1 ORDER BY gateway_id",
    )
    .bind(&art.uuid)
    .fetch_all(conn)
    .await?;
    Ok(gateways
        .into_iter()
        .map(|g| NewEvent {
            event_type: event_type.to_owned(),
            target: Target::Gateway(g),
            payload: payload.clone(),
        })
        .collect())
}

/// Creates a key for an artifact; the plaintext is returned once.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    req: NewApiKey,
) -> ApiResult<CreatedApiKey> {
    let name = crate::service::display_name("displayName", &req.display_name)?;
    let key_handle = new_handle(req.id.as_deref(), &name)?;
    let plain = match req.api_key {
        Some(k) if k.len() < 16 || k.chars().any(char::is_whitespace) => {
            return Err(
                FieldError::new("apiKey", "must be at least 16 characters without spaces").into(),
            )
        }
        Some(k) => k,
        None => random_token("ghk_"),
    };
    let expires = match &req.expires_at {
        Some(t) => Some(parse_rfc3339_ms(t).ok_or_else(|| {
            FieldError::new("expiresAt", format!("'{t}' is not an RFC 3339 time"))
        })?),
        None => None,
    };
    let mut tx = state.db.write().await?;
    let art = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let (uuid, hash, masked) = (new_uuid(), sha256_hex(&plain), mask(&plain));
    let res = sqlx::query(
        "INSERT INTO api_keys (uuid, org_id, artifact_id, handle, display_name, key_hash, masked, status, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9)",
    )
    .bind(&uuid)
    .bind(&caller.org_id)
    .bind(&art.uuid)
    .bind(key_handle.as_str())
    .bind(&name)
    .bind(&hash)
    .bind(&masked)
    .bind(expires)
    .bind(now_ms())
    .execute(tx.conn())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "an API key '{key_handle}' (or the same key) already exists for {} '{handle}'",
                kind.label()
            )))
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let events = events_for_holders(
        tx.conn(),
        &art,
        "apikey.created",
        payload(
            &art,
            &uuid,
            key_handle.as_str(),
            &hash,
            &masked,
            "active",
            expires,
        ),
    )
    .await?;
    let rev = changelog::append(tx.conn(), &caller.org_id, &events).await?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE uuid = $1"))
        .bind(&uuid)
        .fetch_one(tx.conn())
        .await?;
    let key = from_row(&row)?;
    tx.commit().await?;
    if let Some(rev) = rev {
        state.feed.notify(&caller.org_id, rev);
    }
    Ok(CreatedApiKey {
        key,
        api_key: plain,
    })
}

/// Lists an artifact's keys, masked.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
) -> ApiResult<List<ApiKey>> {
    let mut conn = state.db.pool().acquire().await?;
    let art = artifacts::load(&mut conn, &caller.org_id, kind, handle).await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE artifact_id = $1 ORDER BY created_at, uuid"
    ))
    .bind(&art.uuid)
    .fetch_all(&mut *conn)
    .await?;
    let list = rows.iter().map(from_row).collect::<ApiResult<Vec<_>>>()?;
    let n = list.len() as i64;
    Ok(List::new(list, n, (n.max(1), 0)))
}

/// Revokes a key; every gateway holding the artifact stops accepting it.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    key: &str,
) -> ApiResult<()> {
    let mut tx = state.db.write().await?;
    let art = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    let row: Option<(String, String, String, String)> =
        sqlx::query_as("SELECT uuid, handle, key_hash, status FROM api_keys WHERE artifact_id = $1 AND (handle = $2 OR uuid = $2)")
            .bind(&art.uuid)
            .bind(key)
            .fetch_optional(tx.conn())
            .await?;
    let Some((uuid, key_handle, hash, status)) = row else {
        return Err(ApiError::not_found("API key", key));
    };
    if status == "revoked" {
        return Ok(());
    }
    sqlx::query("UPDATE api_keys SET status = 'revoked', revoked_at = $1 WHERE uuid = $2")
        .bind(now_ms())
        .bind(&uuid)
        .execute(tx.conn())
        .await?;
    let events = events_for_holders(
        tx.conn(),
        &art,
        "apikey.revoked",
        payload(&art, &uuid, &key_handle, &hash, "", "revoked", None),
    )
    .await?;
    let rev = changelog::append(tx.conn(), &caller.org_id, &events).await?;
    tx.commit().await?;
    if let Some(rev) = rev {
        state.feed.notify(&caller.org_id, rev);
    }
    Ok(())
}

/// `?artifactId=` of the internal key listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct KeysQuery {
    /// Only this artifact's keys (uuid).
    pub artifact_id: Option<String>,
}

/// The keys (hashes) of the artifacts this gateway holds, in the event payload's shape.
pub async fn for_gateway(state: &AppState, gw: &GatewayCaller, q: KeysQuery) -> ApiResult<Value> {
    let rows = sqlx::query(
        "SELECT a.uuid, a.kind, a.handle, k.uuid, k.handle, k.key_hash, k.masked, k.status, k.expires_at \
         FROM api_keys k JOIN artifacts a ON a.uuid = k.artifact_id \
         JOIN artifact_gateways ag ON ag.artifact_id = a.uuid AND ag.gateway_id = $1 \
         WHERE ($2 = '' OR a.uuid = $2) ORDER BY a.uuid, k.created_at",
    )
    .bind(&gw.gateway_id)
    .bind(q.artifact_id.unwrap_or_default())
    .fetch_all(state.db.pool())
    .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get(1)?;
        keys.push(json!({
            "artifactId": r.try_get::<String, _>(0)?, "kind": kind, "handle": r.try_get::<String, _>(2)?,
            "keyId": r.try_get::<String, _>(3)?, "name": r.try_get::<String, _>(4)?, "apiKeyHash": r.try_get::<String, _>(5)?,
            "maskedApiKey": r.try_get::<String, _>(6)?, "status": r.try_get::<String, _>(7)?, "expiresAt": r.try_get::<Option<i64>, _>(8)?,
        }));
    }
    Ok(json!({"apiKeys": keys}))
}
