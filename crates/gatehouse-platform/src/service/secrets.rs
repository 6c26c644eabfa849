//! Secrets of an organization: values artifacts are to reference by id, so that a credential
//! lives in one place and is rotated there. A value is write-only: it is sealed with the
//! platform's key when stored and never returned; the API shows a fingerprint instead, keyed by
//! the platform's key so that it tells nothing of the value to whoever lacks the key.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use gatehouse_core::crypto::Sealer;
use gatehouse_core::handle::Handle;
use gatehouse_core::protocol::{Event, SecretChange, SecretPayload};
use gatehouse_core::FieldError;

use crate::auth::Caller;
use crate::changelog::{ChangeTx, NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::{secret_refs, List, Page};
use crate::state::AppState;
use crate::store::{format_ms, is_unique_violation, now_ms, Db};

/// Longest secret value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Longest display name accepted, in characters.
const MAX_NAME_CHARS: usize = 128;

/// A secret as the API shows it: never its value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    pub id: String,
    pub display_name: String,
    /// Tells two values apart (`hmac-sha256:` and 16 hex digits, keyed by the platform's key).
    pub fingerprint: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A new secret.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSecret {
    /// Lower-case letters, digits and dashes; what artifacts reference.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: String,
    /// Defaults to the id.
    #[serde(default)]
    #[schema(pattern = "\\S", max_length = 128)]
    pub display_name: Option<String>,
    /// The value (write-only).
    #[schema(min_length = 1)]
    pub value: String,
}

/// A change to a secret: a new value (rotation), a new display name, or both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretUpdate {
    /// Must be the secret's own id when given (ids are immutable).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Option<String>,
    #[serde(default)]
    #[schema(pattern = "\\S", max_length = 128)]
    pub display_name: Option<String>,
    /// The new value (write-only).
    #[serde(default)]
    #[schema(min_length = 1)]
    pub value: Option<String>,
}

fn check_value(value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new("value", "must not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(FieldError::new(
            "value",
            format!("is longer than {MAX_VALUE_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new("displayName", "must not be blank"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "displayName",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The fingerprint of `value`: a keyed hash, the same for equal values under one key.
pub fn fingerprint(sealer: &Sealer, value: &str) -> String {
    let mut mac = sealer.keyed_hash("secret-fingerprint", value.as_bytes());
    mac.truncate(8);
    format!("hmac-sha256:{}", hex::encode(mac))
}

const COLUMNS: &str = "handle, display_name, fingerprint, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> ApiResult<SecretView> {
    Ok(SecretView {
        id: row.try_get(0)?,
        display_name: row.try_get(1)?,
        fingerprint: row.try_get(2)?,
        created_at: format_ms(row.try_get(3)?),
        updated_at: format_ms(row.try_get(4)?),
    })
}

/// Creates a secret; 409 when the id is taken.
pub async fn create(
    db: &Db,
    sealer: &Sealer,
    caller: &Caller,
    new: NewSecret,
) -> ApiResult<SecretView> {
    let id = Handle::parse("id", &new.id)?;
    let name = new.display_name.unwrap_or_else(|| id.as_str().to_owned());
    check_name(&name)?;
    check_value(&new.value)?;
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO secrets (org_id, handle, display_name, sealed_value, fingerprint, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&caller.org_id)
    .bind(id.as_str())
    .bind(&name)
    .bind(sealer.seal(&new.value))
    .bind(fingerprint(sealer, &new.value))
    .bind(now)
    .execute(db.pool())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Err(ApiError::Conflict(format!(
            "secret '{}' already exists; rotate it with PUT /api/v1/secrets/{}",
            id.as_str(),
            id.as_str()
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => get(db, caller, id.as_str()).await,
    }
}

/// Lists the organization's secrets by id, one page of them.
pub async fn list(db: &Db, caller: &Caller, page: Page) -> ApiResult<List<SecretView>> {
    let (limit, offset) = page.bounds()?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE org_id = $1")
        .bind(&caller.org_id)
        .fetch_one(db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM secrets WHERE org_id = $1 ORDER BY handle LIMIT $2 OFFSET $3"
    ))
    .bind(&caller.org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?;
    let list = rows.iter().map(from_row).collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(list, total, (limit, offset)))
}

/// Reads one secret (without its value).
pub async fn get(db: &Db, caller: &Caller, id: &str) -> ApiResult<SecretView> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM secrets WHERE org_id = $1 AND handle = $2"
    ))
    .bind(&caller.org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("secret", id))?;
    from_row(&row)
}

/// Appends `secret.<change>` for every gateway of the organization: the id, never the value.
async fn announce(
    tx: &mut ChangeTx,
    org_id: &str,
    id: &str,
    change: SecretChange,
    updated_at: Option<i64>,
) -> ApiResult<()> {
    let payload = SecretPayload {
        secret_id: id.to_owned(),
        updated_at: updated_at.map(format_ms),
    };
    let event = NewEvent::new(Event::Secret(change, payload), Target::AllGateways);
    tx.append(org_id, &[event]).await?;
    Ok(())
}

/// Changes a secret's value (rotation) or display name. A new value is announced to the
/// gateways (`secret.updated`), in the same transaction.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: SecretUpdate,
) -> ApiResult<SecretView> {
    let (db, sealer) = (&state.db, &state.sealer);
    if change.id.as_deref().is_some_and(|given| given != id) {
        return Err(ApiError::Immutable(FieldError::new(
            "id",
            format!("is immutable: it must be '{id}'"),
        )));
    }
    if let Some(name) = &change.display_name {
        check_name(name)?;
    }
    if let Some(value) = &change.value {
        check_value(value)?;
    }
    let mut tx = state.begin_change().await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT display_name FROM secrets WHERE org_id = $1 AND handle = $2")
            .bind(&caller.org_id)
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let Some(current) = current else {
        return Err(ApiError::not_found("secret", id));
    };
    let name = change.display_name.unwrap_or(current);
    let now = now_ms();
    match &change.value {
        Some(value) => {
            sqlx::query(
                "UPDATE secrets SET display_name = $1, sealed_value = $2, fingerprint = $3, updated_at = $4 \
                 WHERE org_id = $5 AND handle = $6",
            )
            .bind(&name)
            .bind(sealer.seal(value))
            .bind(fingerprint(sealer, value))
            .bind(now)
            .bind(&caller.org_id)
            .bind(id)
            .execute(tx.conn())
            .await?;
            announce(
                &mut tx,
                &caller.org_id,
                id,
                SecretChange::Updated,
                Some(now),
            )
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE secrets SET display_name = $1, updated_at = $2 WHERE org_id = $3 AND handle = $4",
            )
            .bind(&name)
            .bind(now)
            .bind(&caller.org_id)
            .bind(id)
            .execute(tx.conn())
            .await?;
        }
    }
    tx.commit().await?;
    get(db, caller, id).await
}

/// Deletes a secret, unless an artifact or a served deployment references it (409 naming
/// them); gateways are told to forget it (`secret.deleted`).
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let mut tx = state.begin_change().await?;
    let users = secret_refs::users(tx.conn(), &caller.org_id, id).await?;
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "secret '{id}' is referenced by {}; remove the references (and redeploy) first",
            users.join(", ")
        )));
    }
    let n = sqlx::query("DELETE FROM secrets WHERE org_id = $1 AND handle = $2")
        .bind(&caller.org_id)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("secret", id));
    }
    announce(&mut tx, &caller.org_id, id, SecretChange::Deleted, None).await?;
    tx.commit().await?;
    Ok(())
}
