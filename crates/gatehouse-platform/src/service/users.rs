//! People of an organization and their roles. Usernames are unique across the platform; a
//! membership gives a user a role in one organization. Passwords are stored as Argon2 hashes.
//! The organization always keeps an admin: the last one cannot be demoted or removed.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use gatehouse_core::FieldError;

use crate::access::Role;
use crate::auth::Caller;
use crate::crypto::{hash_password, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::service::{new_uuid, parse_stored, List, Page};
use crate::store::{format_ms, is_unique_violation, now_ms, Db};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A member as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub username: String,
    pub role: Role,
    /// The platform's own administrator (manages organizations).
    pub platform_admin: bool,
    pub created_at: String,
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    /// Letters, digits, `.`, `_`, `-` and `@`; 3 to 64 characters.
    #[schema(pattern = "^[A-Za-z0-9._@-]{3,64}$")]
    pub username: String,
    /// At least 10 characters (write-only).
    #[schema(min_length = 10)]
    pub password: String,
    pub role: Role,
}

/// Body of `PUT /users/{username}`: a new role, a new password, or both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    #[schema(min_length = 10)]
    pub password: Option<String>,
}

/// Body of `PUT /users/me/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    #[schema(min_length = 10)]
    pub new_password: String,
}

fn check_username(name: &str) -> Result<(), FieldError> {
    let ok = (3..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "username",
            "must be 3 to 64 characters of letters, digits, '.', '_', '-' and '@'",
        ))
    }
}

fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(FieldError::new(field, "must be at most 1024 bytes"));
    }
    Ok(())
}

async fn hash(password: String) -> ApiResult<String> {
    Ok(
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| ApiError::Internal(e.into()))??,
    )
}

const SELECT: &str = "SELECT u.username, m.role, u.platform_admin, u.created_at, u.uuid \
     FROM memberships m JOIN users u ON u.uuid = m.user_id";

fn view(r: &sqlx::any::AnyRow) -> ApiResult<UserView> {
    Ok(UserView {
        username: r.try_get(0)?,
        role: parse_stored("role", &r.try_get::<String, _>(1)?)?,
        platform_admin: r.try_get::<i64, _>(2)? != 0,
        created_at: format_ms(r.try_get(3)?),
    })
}

/// The role of user `user_id` in `org_id`, if a member.
pub async fn role_in(
    conn: &mut AnyConnection,
    user_id: &str,
    org_id: &str,
) -> ApiResult<Option<Role>> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2")
            .bind(user_id)
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?;
    role.map(|r| parse_stored("role", &r)).transpose()
}

/// Adds a user to the caller's organization.
pub async fn create(db: &Db, caller: &Caller, new: NewUser) -> ApiResult<UserView> {
    check_username(&new.username)?;
    check_password("password", &new.password)?;
    let password_hash = hash(new.password).await?;
    let mut tx = db.write().await?;
    let uuid = new_uuid();
    let res = sqlx::query(
        "INSERT INTO users (uuid, username, password_hash, platform_admin, created_at) VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(&uuid)
    .bind(&new.username)
    .bind(password_hash)
    .bind(now_ms())
    .execute(tx.conn())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "username '{}' is taken",
                new.username
            )))
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    sqlx::query("INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3)")
        .bind(&uuid)
        .bind(&caller.org_id)
        .bind(new.role.as_str())
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    get(db, caller, &new.username).await
}

/// The organization's members by username.
pub async fn list(db: &Db, caller: &Caller, page: Page) -> ApiResult<List<UserView>> {
    let (limit, offset) = page.bounds()?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1")
        .bind(&caller.org_id)
        .fetch_one(db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE m.org_id = $1 ORDER BY u.username LIMIT $2 OFFSET $3"
    ))
    .bind(&caller.org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?;
    let list = rows.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(list, total, (limit, offset)))
}

/// One member.
pub async fn get(db: &Db, caller: &Caller, username: &str) -> ApiResult<UserView> {
    let row = sqlx::query(&format!("{SELECT} WHERE m.org_id = $1 AND u.username = $2"))
        .bind(&caller.org_id)
        .bind(username)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("user", username))?;
    view(&row)
}

/// The caller as a member, with the role this login or API token acts with (the platform
/// admin without a membership shows as admin).
pub async fn me(db: &Db, caller: &Caller) -> ApiResult<UserView> {
    let found = get(db, caller, &caller.username).await.map(|mut v| {
        v.role = caller.role;
        v
    });
    match found {
        Err(ApiError::NotFound(_)) if caller.platform_admin => Ok(UserView {
            username: caller.username.clone(),
            role: Role::Admin,
            platform_admin: true,
            created_at: String::new(),
        }),
        other => other,
    }
}

/// 409 when `user_id` is the organization's last admin.
async fn keep_an_admin(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    what: &str,
) -> ApiResult<()> {
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'admin' AND user_id <> $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    if others == 0 {
        return Err(ApiError::Conflict(format!(
            "this is the organization's last admin and cannot be {what}; make another admin first"
        )));
    }
    Ok(())
}

async fn member_id(
    conn: &mut AnyConnection,
    org_id: &str,
    username: &str,
) -> ApiResult<(String, Role)> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT u.uuid, m.role FROM memberships m JOIN users u ON u.uuid = m.user_id WHERE m.org_id = $1 AND u.username = $2",
    )
    .bind(org_id)
    .bind(username)
    .fetch_optional(&mut *conn)
    .await?;
    let (id, role) = row.ok_or_else(|| ApiError::not_found("user", username))?;
    Ok((id, parse_stored("role", &role)?))
}

/// Changes a member's role or resets their password (admin).
pub async fn update(
    db: &Db,
    caller: &Caller,
    username: &str,
    change: UserChange,
) -> ApiResult<UserView> {
    if let Some(p) = &change.password {
        check_password("password", p)?;
    }
    let password_hash = match change.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let mut tx = db.write().await?;
    let (user_id, current) = member_id(tx.conn(), &caller.org_id, username).await?;
    if let Some(role) = change.role {
        if current == Role::Admin && role != Role::Admin {
            keep_an_admin(tx.conn(), &caller.org_id, &user_id, "demoted").await?;
        }
        sqlx::query("UPDATE memberships SET role = $1 WHERE user_id = $2 AND org_id = $3")
            .bind(role.as_str())
            .bind(&user_id)
            .bind(&caller.org_id)
            .execute(tx.conn())
            .await?;
    }
    if let Some(h) = password_hash {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE uuid = $2")
            .bind(h)
            .bind(&user_id)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    get(db, caller, username).await
}

/// Removes a member (and the user, when it belongs to no other organization); their API tokens
/// for the organization stop working.
pub async fn delete(db: &Db, caller: &Caller, username: &str) -> ApiResult<()> {
    if username == caller.username {
        return Err(ApiError::Conflict(
            "you cannot remove yourself; ask another admin".into(),
        ));
    }
    let mut tx = db.write().await?;
    let (user_id, role) = member_id(tx.conn(), &caller.org_id, username).await?;
    if role == Role::Admin {
        keep_an_admin(tx.conn(), &caller.org_id, &user_id, "removed").await?;
    }
    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
        .bind(&user_id)
        .bind(&caller.org_id)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND org_id = $3 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(&user_id)
        .bind(&caller.org_id)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "DELETE FROM users WHERE uuid = $1 AND platform_admin = 0 \
         AND NOT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)",
    )
    .bind(&user_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the caller's own password, given the current one.
pub async fn change_password(db: &Db, caller: &Caller, change: PasswordChange) -> ApiResult<()> {
    check_password("newPassword", &change.new_password)?;
    let current: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE uuid = $1")
        .bind(&caller.user_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ApiError::Unauthorized("your user no longer exists".into()))?;
    let given = change.current_password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&given, &current))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if !ok {
        return Err(ApiError::Forbidden(
            "currentPassword is not your current password".into(),
        ));
    }
    let h = hash(change.new_password).await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE uuid = $2")
        .bind(h)
        .bind(&caller.user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}
