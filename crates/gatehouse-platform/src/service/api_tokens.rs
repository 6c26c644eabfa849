//! API tokens for automation: made by a user for one organization, with a role no higher than
//! the user's, shown once, stored as a SHA-256 hash (they are long random strings, so a fast
//! hash is enough), listed without their value, revoked. Accepted as `Authorization: Bearer`
//! like a login token.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::access::Role;
use crate::auth::Caller;
use crate::crypto::{random_token, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::service::{display_name, new_uuid, parse_stored};
use crate::state::AppState;
use crate::store::{format_ms, now_ms, Db};

/// What every API token begins with (how a bearer token is told from a login token).
pub const PREFIX: &str = "ght_";
/// Lifetime of a token made without `expiresIn`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Longest lifetime accepted.
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// How often `lastUsedAt` is written at most.
const USE_RECORDED_EVERY_MS: i64 = 60_000;

/// Body of `POST /tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (`ci`, `terraform`).
    #[schema(pattern = "\\S", max_length = 128)]
    pub name: String,
    /// At most the creator's role; the creator's when omitted.
    #[serde(default)]
    pub role: Option<Role>,
    /// How long it is valid: whole days (`30d`, 1 to 366) or hours (`12h`, 1 to 8784); 90 days
    /// when omitted.
    #[serde(default)]
    #[schema(
        pattern = "^((36[0-6]|3[0-5][0-9]|[12][0-9]{2}|[1-9][0-9]?)d|(878[0-4]|87[0-7][0-9]|8[0-6][0-9]{2}|[1-7][0-9]{3}|[1-9][0-9]{0,2})h)$"
    )]
    pub expires_in: Option<String>,
}

/// A token as listed: never its value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Who made it.
    pub username: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// Answer of `POST /tokens`: the token, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The token: keep it now, it is not shown again.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

fn lifetime(given: Option<&str>) -> ApiResult<Duration> {
    let Some(text) = given else {
        return Ok(DEFAULT_LIFETIME);
    };
    let refuse = || {
        gatehouse_core::FieldError::new(
            "expiresIn",
            format!("'{text}' is not whole days (1d to 366d) or hours (1h to 8784h)"),
        )
    };
    let (number, hours) = match (text.strip_suffix('d'), text.strip_suffix('h')) {
        (Some(n), _) => (n, 24),
        (_, Some(n)) => (n, 1),
        _ => return Err(refuse().into()),
    };
    if number.starts_with('0') || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse().into());
    }
    let d = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(hours * 3600))
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_LIFETIME)
        .ok_or_else(refuse)?;
    Ok(d)
}

/// Makes a token for the caller.
pub async fn create(db: &Db, caller: &Caller, new: NewToken) -> ApiResult<CreatedToken> {
    let name = display_name("name", &new.name)?;
    let role = new.role.unwrap_or(caller.role);
    if role > caller.role {
        return Err(ApiError::Forbidden(format!(
            "your role '{}' cannot make a token with role '{role}'",
            caller.role
        )));
    }
    if caller.token_id.is_some() {
        return Err(ApiError::Forbidden(
            "an API token cannot make other tokens; log in as a user".into(),
        ));
    }
    let lifetime = lifetime(new.expires_in.as_deref())?;
    let token = random_token(PREFIX);
    let id = new_uuid();
    let now = now_ms();
    let expires = now + lifetime.as_millis() as i64;
    sqlx::query(
        "INSERT INTO api_tokens (uuid, org_id, user_id, name, role, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&caller.org_id)
    .bind(&caller.user_id)
    .bind(&name)
    .bind(role.as_str())
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(expires)
    .execute(db.pool())
    .await?;
    Ok(CreatedToken {
        token,
        view: TokenView {
            id,
            name,
            role,
            username: caller.username.clone(),
            created_at: format_ms(now),
            expires_at: Some(format_ms(expires)),
            revoked_at: None,
            last_used_at: None,
        },
    })
}

const COLUMNS: &str =
    "t.uuid, t.name, t.role, u.username, t.created_at, t.expires_at, t.revoked_at, t.last_used_at";

fn view(r: &sqlx::any::AnyRow) -> ApiResult<TokenView> {
    Ok(TokenView {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: parse_stored("role", &r.try_get::<String, _>(2)?)?,
        username: r.try_get(3)?,
        created_at: format_ms(r.try_get(4)?),
        expires_at: r.try_get::<Option<i64>, _>(5)?.map(format_ms),
        revoked_at: r.try_get::<Option<i64>, _>(6)?.map(format_ms),
        last_used_at: r.try_get::<Option<i64>, _>(7)?.map(format_ms),
    })
}

/// The caller's tokens in this organization (an admin sees everyone's).
pub async fn list(db: &Db, caller: &Caller) -> ApiResult<Vec<TokenView>> {
    let everyone = caller.role == Role::Admin;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.uuid = t.user_id \
         WHERE t.org_id = $1 AND ($2 = 1 OR t.user_id = $3) ORDER BY t.created_at DESC, t.uuid"
    ))
    .bind(&caller.org_id)
    .bind(i64::from(everyone))
    .bind(&caller.user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(view).collect()
}

/// Revokes a token: the caller's own, or anyone's for an admin.
pub async fn revoke(db: &Db, caller: &Caller, id: &str) -> ApiResult<()> {
    let everyone = caller.role == Role::Admin;
    let n = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE uuid = $2 AND org_id = $3 AND ($4 = 1 OR user_id = $5) AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .bind(&caller.org_id)
    .bind(i64::from(everyone))
    .bind(&caller.user_id)
    .execute(db.pool())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("API token", id));
    }
    Ok(())
}

/// The caller an API token stands for, if it is active and its user still belongs to the
/// organization; the role is the lower of the token's and the user's current one.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let row = sqlx::query(
        "SELECT t.uuid, t.org_id, t.user_id, u.username, t.role, m.role, u.platform_admin, t.expires_at, t.last_used_at \
         FROM api_tokens t JOIN users u ON u.uuid = t.user_id \
         LEFT JOIN memberships m ON m.user_id = t.user_id AND m.org_id = t.org_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(sha256_hex(token))
    .fetch_optional(state.db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let now = now_ms();
    if r.try_get::<Option<i64>, _>(7)?
        .is_some_and(|exp| exp <= now)
    {
        return Ok(None);
    }
    let platform_admin = r.try_get::<i64, _>(6)? != 0;
    let member: Option<Role> = r
        .try_get::<Option<String>, _>(5)?
        .map(|m| parse_stored("role", &m))
        .transpose()?;
    let Some(member) = member.or(platform_admin.then_some(Role::Admin)) else {
        return Ok(None);
    };
    let granted: Role = parse_stored("role", &r.try_get::<String, _>(4)?)?;
    let id: String = r.try_get(0)?;
    if r.try_get::<Option<i64>, _>(8)?
        .is_none_or(|at| now - at > USE_RECORDED_EVERY_MS)
    {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE uuid = $2")
            .bind(now)
            .bind(&id)
            .execute(state.db.pool())
            .await?;
    }
    Ok(Some(Caller {
        org_id: r.try_get(1)?,
        user_id: r.try_get(2)?,
        username: r.try_get(3)?,
        platform_admin: false,
        role: granted.min(member),
        token_id: Some(id),
        login: None,
    }))
}
