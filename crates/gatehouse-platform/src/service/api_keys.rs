//! API keys of artifacts: shown once, stored as hashes, delivered to every gateway that holds
//! the artifact (deployed or undeployed) through the change log.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use gatehouse_core::crypto::{mask, random_token, sha256_hex};
use gatehouse_core::protocol::{ApiKeyChange, ApiKeyInfo, ApiKeyList, ApiKeyStatus, Event};
use gatehouse_core::{ArtifactKind, FieldError};

use crate::auth::{Caller, GatewayCaller};
use crate::changelog::{NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::artifacts::{self, ArtifactRow};
use crate::service::{new_handle, new_uuid, parse_stored, List};
use crate::state::AppState;
use crate::store::{format_ms, is_unique_violation, now_ms, parse_rfc3339_ms};

/// Body of `POST /{kind}/{id}/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    /// The key's handle; derived from `displayName` when omitted.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Option<String>,
    pub display_name: String,
    /// A key to register (e.g. issued by a portal); generated when omitted. At least 16
    /// characters, none of them white space.
    #[schema(
        pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]{16,}$"
    )]
    pub api_key: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
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
    pub status: ApiKeyStatus,
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
        status: parse_stored("API key status", &r.try_get::<String, _>(4)?)?,
        expires_at: r.try_get::<Option<i64>, _>(5)?.map(format_ms),
        created_at: format_ms(r.try_get(6)?),
        revoked_at: r.try_get::<Option<i64>, _>(7)?.map(format_ms),
    })
}

/// A key as gateways get it (its hash, never the key).
fn delivered(
    art: &ArtifactRow,
    key_uuid: &str,
    handle: &str,
    hash: &str,
    masked: &str,
    status: ApiKeyStatus,
    expires: Option<i64>,
) -> ApiKeyInfo {
    ApiKeyInfo {
        artifact_id: art.uuid.clone(),
        kind: art.kind,
        handle: art.handle.clone(),
        key_id: key_uuid.to_owned(),
        name: handle.to_owned(),
        api_key_hash: hash.to_owned(),
        masked_api_key: masked.to_owned(),
        status,
        expires_at: expires,
    }
}

/// One `apikey.<change>` event per gateway that holds the artifact.
async fn events_for_holders(
    conn: &mut sqlx::AnyConnection,
    art: &ArtifactRow,
    change: ApiKeyChange,
    key: ApiKeyInfo,
) -> ApiResult<Vec<NewEvent>> {
    let gateways: Vec<String> = sqlx::query_scalar(
        "SELECT gateway_id FROM artifact_gateways WHERE artifact_id = $1 ORDER BY gateway_id",
    )
    .bind(&art.uuid)
    .fetch_all(conn)
    .await?;
    Ok(gateways
        .into_iter()
        .map(|g| NewEvent::new(Event::ApiKey(change, key.clone()), Target::Gateway(g)))
        .collect())
}

/// Whether `c` may be part of a supplied key: no control character, no white space (the same
/// set the OpenAPI document's pattern names).
fn key_char(c: char) -> bool {
    !(c <= ' '
        || ('\u{7f}'..='\u{a0}').contains(&c)
        || matches!(
            c,
            '\u{1680}' | '\u{2000}'
                ..='\u{200a}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202f}'
                    | '\u{205f}'
                    | '\u{3000}'
                    | '\u{feff}'
        ))
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
        Some(k) if k.chars().count() < 16 || !k.chars().all(key_char) => {
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
    let mut tx = state.begin_change().await?;
    let art = artifacts::load(tx.conn(), &caller.org_id, kind, handle).await?;
    artifacts::ensure_editable(&art, "given API keys")?;
    let (uuid, hash, masked) = (new_uuid(), sha256_hex(&plain), mask(&plain));
    let res = sqlx::query(
        "INSERT INTO api_keys (uuid, org_id, artifact_id, handle, display_name, key_hash, masked, status, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&uuid)
    .bind(&caller.org_id)
    .bind(&art.uuid)
    .bind(key_handle.as_str())
    .bind(&name)
    .bind(&hash)
    .bind(&masked)
    .bind(ApiKeyStatus::Active.as_str())
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
        ApiKeyChange::Created,
        delivered(
            &art,
            &uuid,
            key_handle.as_str(),
            &hash,
            &masked,
            ApiKeyStatus::Active,
            expires,
        ),
    )
    .await?;
    tx.append(&caller.org_id, &events).await?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE uuid = $1"))
        .bind(&uuid)
        .fetch_one(tx.conn())
        .await?;
    let key = from_row(&row)?;
    tx.commit().await?;
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
    let mut tx = state.begin_change().await?;
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
    if parse_stored::<ApiKeyStatus>("API key status", &status)? == ApiKeyStatus::Revoked {
        return Ok(());
    }
    sqlx::query("UPDATE api_keys SET status = $1, revoked_at = $2 WHERE uuid = $3")
        .bind(ApiKeyStatus::Revoked.as_str())
        .bind(now_ms())
        .bind(&uuid)
        .execute(tx.conn())
        .await?;
    let revoked = delivered(
        &art,
        &uuid,
        &key_handle,
        &hash,
        "",
        ApiKeyStatus::Revoked,
        None,
    );
    let events = events_for_holders(tx.conn(), &art, ApiKeyChange::Revoked, revoked).await?;
    tx.append(&caller.org_id, &events).await?;
    tx.commit().await?;
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
pub async fn for_gateway(
    state: &AppState,
    gw: &GatewayCaller,
    q: KeysQuery,
) -> ApiResult<ApiKeyList> {
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
    let mut api_keys = Vec::with_capacity(rows.len());
    for r in rows {
        api_keys.push(ApiKeyInfo {
            artifact_id: r.try_get(0)?,
            kind: parse_stored("artifact kind", &r.try_get::<String, _>(1)?)?,
            handle: r.try_get(2)?,
            key_id: r.try_get(3)?,
            name: r.try_get(4)?,
            api_key_hash: r.try_get(5)?,
            masked_api_key: r.try_get(6)?,
            status: parse_stored("API key status", &r.try_get::<String, _>(7)?)?,
            expires_at: r.try_get(8)?,
        });
    }
    Ok(ApiKeyList { api_keys })
}
