//! Organizations, users and login.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::access::Role;
use crate::auth::Caller;
use crate::crypto::{hash_password, random_token, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::service::{display_name, new_handle, new_uuid, List, Page};
use crate::store::{format_ms, is_unique_violation, now_ms, Db};

/// The organization every platform starts with.
pub const DEFAULT_ORG: &str = "default";
/// The project every organization starts with.
pub const DEFAULT_PROJECT: &str = "default";

/// An organization (tenant).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub uuid: String,
    pub display_name: String,
    pub created_at: String,
}

/// Body of `POST /organizations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrganization {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Option<String>,
    pub display_name: String,
}

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Organization handle; `default` when omitted.
    pub organization: Option<String>,
}

/// Answer of `POST /auth/login`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: String,
    pub organization: String,
}

/// Creates the `default` organization and the `admin` user on first start. Returns the
/// generated admin password when one had to be made up.
pub async fn bootstrap(db: &Db, admin_password: Option<&str>) -> anyhow::Result<Option<String>> {
    let mut tx = db.write().await?;
    let org: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM organizations WHERE handle = $1")
            .bind(DEFAULT_ORG)
            .fetch_optional(tx.conn())
            .await?;
    let org_id = match org {
        Some(id) => id,
        None => insert_org(tx.conn(), DEFAULT_ORG, "Default").await?,
    };
    let admin: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM users WHERE username = 'admin'")
            .fetch_optional(tx.conn())
            .await?;
    let mut generated = None;
    if admin.is_none() {
        let password = match admin_password {
            Some(p) if !p.is_empty() => p.to_owned(),
            _ => {
                let p = random_token("");
                generated = Some(p.clone());
                p
            }
        };
        let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
        let user_id = new_uuid();
        sqlx::query("INSERT INTO users (uuid, username, password_hash, platform_admin, created_at) VALUES ($1, 'admin', $2, 1, $3)")
            .bind(&user_id)
            .bind(hash)
            .bind(now_ms())
            .execute(tx.conn())
            .await?;
        sqlx::query("INSERT INTO memberships (user_id, org_id) VALUES ($1, $2)")
            .bind(&user_id)
            .bind(&org_id)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    Ok(generated)
}

async fn insert_org(
    conn: &mut sqlx::AnyConnection,
    handle: &str,
    name: &str,
) -> Result<String, sqlx::Error> {
    let id = new_uuid();
    let now = now_ms();
    sqlx::query("INSERT INTO organizations (uuid, handle, display_name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(handle)
        .bind(name)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO org_revisions (org_id, revision, compacted_through) VALUES ($1, 0, 0)",
    )
    .bind(&id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO projects (uuid, org_id, handle, display_name, description, created_at, updated_at) \
         VALUES ($1, $2, $3, 'Default', 'Created with the organization', $4, $4)",
    )
    .bind(new_uuid())
    .bind(&id)
    .bind(DEFAULT_PROJECT)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Checks credentials and issues a token for the named (or default) organization.
pub async fn login(
    db: &Db,
    jwt: &crate::auth::JwtKeys,
    ttl_secs: i64,
    req: LoginRequest,
    address: Option<std::net::IpAddr>,
) -> ApiResult<LoginResponse> {
    let (caller, organization) =
        check_password(db, &req.username, req.password, req.organization, address).await?;
    let (token, exp) = jwt.issue(&caller, ttl_secs)?;
    Ok(LoginResponse {
        token,
        expires_at: format_ms(exp),
        organization,
    })
}

/// The caller a username and password stand for in the named (or default) organization, with
/// the organization's handle: 401 for a bad username or password (in the same time either
/// way), 403 for an organization the user does not belong to.
pub async fn check_password(
    db: &Db,
    username: &str,
    password: String,
    organization: Option<String>,
    address: Option<std::net::IpAddr>,
) -> ApiResult<(Caller, String)> {
    let keys = crate::service::throttle::Keys::new(username, address);
    crate::service::throttle::check(db, &keys).await?;
    let bad = || ApiError::Unauthorized("invalid username or password".into());
    let row =
        sqlx::query("SELECT uuid, password_hash, platform_admin FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(db.pool())
            .await?;
    let Some(row) = row else {
        // Spend the same time as a real check so usernames cannot be probed by timing.
        let _ = tokio::task::spawn_blocking(move || verify_password(&password, dummy_hash())).await;
        crate::service::throttle::failed(db, &keys).await?;
        return Err(bad());
    };
    let user_id: String = row.try_get(0)?;
    let hash: String = row.try_get(1)?;
    let admin = row.try_get::<i64, _>(2)? != 0;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if !ok {
        crate::service::throttle::failed(db, &keys).await?;
        return Err(bad());
    }
    crate::service::throttle::succeeded(db, &keys).await?;
    let org_handle = organization.unwrap_or_else(|| DEFAULT_ORG.to_owned());
    let org_id: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM organizations WHERE handle = $1")
            .bind(&org_handle)
            .fetch_optional(db.pool())
            .await?;
    let no_access = || ApiError::Forbidden(format!("no access to organization '{org_handle}'"));
    let org_id = org_id.ok_or_else(no_access)?;
    let mut conn = db.pool().acquire().await?;
    let member = crate::service::users::role_in(&mut conn, &user_id, &org_id).await?;
    drop(conn);
    // The platform admin is an admin of every organization.
    let role = match (admin, member) {
        (true, _) => Role::Admin,
        (false, Some(role)) => role,
        (false, None) => return Err(no_access()),
    };
    let caller = Caller {
        user_id,
        username: username.to_owned(),
        org_id,
        platform_admin: admin,
        role,
        token_id: None,
        login: None,
    };
    Ok((caller, org_handle))
}

/// Ends a login token before it expires: its id is kept until then, and refused.
pub async fn logout(db: &Db, caller: &Caller) -> ApiResult<()> {
    let Some(login) = &caller.login else {
        return Err(ApiError::Invalid(
            "this is an API token, not a login: revoke it with DELETE /api/v1/tokens/{id}".into(),
        ));
    };
    sqlx::query(
        "INSERT INTO revoked_logins (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(&login.id)
    .bind(login.expires_at_ms)
    .execute(db.pool())
    .await?;
    sqlx::query("DELETE FROM revoked_logins WHERE expires_at < $1")
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A real argon2 hash to verify against when the user does not exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-user").unwrap_or_default())
}

fn require_admin(caller: &Caller) -> ApiResult<()> {
    if caller.platform_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the platform admin manages organizations".into(),
        ))
    }
}

/// Creates an organization (platform admin only).
pub async fn create_org(
    db: &Db,
    caller: &Caller,
    req: CreateOrganization,
) -> ApiResult<Organization> {
    require_admin(caller)?;
    let name = display_name("displayName", &req.display_name)?;
    let handle = new_handle(req.id.as_deref(), &name)?;
    let mut tx = db.write().await?;
    match insert_org(tx.conn(), handle.as_str(), &name).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "organization '{handle}' already exists"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    get_org(db, handle.as_str()).await
}

async fn get_org(db: &Db, handle: &str) -> ApiResult<Organization> {
    let row = sqlx::query(
        "SELECT handle, uuid, display_name, created_at FROM organizations WHERE handle = $1",
    )
    .bind(handle)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("organization", handle))?;
    org_from_row(&row)
}

fn org_from_row(row: &sqlx::any::AnyRow) -> ApiResult<Organization> {
    Ok(Organization {
        id: row.try_get(0)?,
        uuid: row.try_get(1)?,
        display_name: row.try_get(2)?,
        created_at: format_ms(row.try_get(3)?),
    })
}

/// Lists organizations (platform admin only).
pub async fn list_orgs(db: &Db, caller: &Caller, page: Page) -> ApiResult<List<Organization>> {
    require_admin(caller)?;
    let (limit, offset) = page.bounds()?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
        .fetch_one(db.pool())
        .await?;
    let rows = sqlx::query("SELECT handle, uuid, display_name, created_at FROM organizations ORDER BY handle LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(db.pool())
        .await?;
    let list = rows
        .iter()
        .map(org_from_row)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(list, total, (limit, offset)))
}
