//! Console sessions: signing in sets an `HttpOnly`, `SameSite=Strict` cookie holding a random
//! id; the database keeps only its hash, with the user, organization, role and the session's
//! CSRF token, which every form carries back. Signing out deletes the row, so the cookie is
//! worthless from then on, wherever a copy of it is.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sqlx::Row;

use crate::access::Role;
use crate::auth::Caller;
use crate::crypto::{random_token, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::service::parse_stored;
use crate::state::AppState;
use crate::store::now_ms;

/// The cookie's name.
pub const COOKIE: &str = "gatehouse_console";
/// How long a session lasts.
const LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub org_handle: String,
    /// Must come back in every form.
    pub csrf: String,
}

impl Session {
    /// Whether this user's role lets them `method` the API path `path` (what the console
    /// shows as a button is what the API would allow).
    pub fn may(&self, method: &axum::http::Method, path: &str) -> bool {
        match crate::access::need(method, path) {
            crate::access::Need::Role(r) => self.caller.role >= r,
            _ => true,
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, given: &str) -> ApiResult<()> {
        if !given.is_empty() && constant_time_eq(given.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "the form is stale or did not come from this console; reload the page".into(),
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts a session for `caller`; returns the `Set-Cookie` value.
pub async fn start(state: &AppState, caller: &Caller, org_handle: &str) -> ApiResult<String> {
    let id = random_token("");
    let now = now_ms();
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, user_id, username, org_id, org_handle, role, platform_admin, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(sha256_hex(&id))
    .bind(&caller.user_id)
    .bind(&caller.username)
    .bind(&caller.org_id)
    .bind(org_handle)
    .bind(caller.role.as_str())
    .bind(i64::from(caller.platform_admin))
    .bind(random_token(""))
    .bind(now)
    .bind(now + LIFETIME_MS)
    .execute(state.db.pool())
    .await?;
    // Expired sessions go when someone signs in.
    sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
        .bind(now)
        .execute(state.db.pool())
        .await?;
    Ok(cookie(state, &id, LIFETIME_MS / 1000))
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> String {
    let secure = if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// Ends the session the request carries; returns the `Set-Cookie` value that clears it.
pub async fn end(state: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if let Some(id) = cookie_value(headers) {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(sha256_hex(&id))
            .execute(state.db.pool())
            .await?;
    }
    Ok(cookie(state, "", 0))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// The session a request carries, if it is live. The role is read again from the membership
/// each time, so a demotion takes effect at once.
pub async fn load(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Session>> {
    let Some(id) = cookie_value(headers) else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT s.user_id, s.username, s.org_id, s.org_handle, s.platform_admin, s.csrf, m.role \
         FROM console_sessions s LEFT JOIN memberships m ON m.user_id = s.user_id AND m.org_id = s.org_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2",
    )
    .bind(sha256_hex(&id))
    .bind(now_ms())
    .fetch_optional(state.db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let platform_admin = r.try_get::<i64, _>(4)? != 0;
    let role: Option<Role> = r
        .try_get::<Option<String>, _>(6)?
        .map(|m| parse_stored("role", &m))
        .transpose()?;
    let Some(role) = (if platform_admin {
        Some(Role::Admin)
    } else {
        role
    }) else {
        return Ok(None);
    };
    Ok(Some(Session {
        caller: Caller {
            user_id: r.try_get(0)?,
            username: r.try_get(1)?,
            org_id: r.try_get(2)?,
            platform_admin,
            role,
            token_id: None,
            login: None,
        },
        org_handle: r.try_get(3)?,
        csrf: r.try_get(5)?,
    }))
}

/// A page that needs a session: without one, the browser is sent to sign in.
pub struct Signed(pub Session);

/// Why a console request has no session.
pub struct SignInFirst;

impl axum::response::IntoResponse for SignInFirst {
    fn into_response(self) -> axum::response::Response {
        axum::response::Redirect::to("/console/login").into_response()
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        match load(state, &parts.headers).await {
            Ok(Some(s)) => Ok(Signed(s)),
            Ok(None) => Err(SignInFirst.into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}
