//! Password guessing, slowed: failed logins are counted per username and per client address.
//! After a handful of failures each further attempt waits, the wait doubling with each failure
//! (up to 15 minutes); an attempt made while waiting is answered 429 with `Retry-After`, without
//! the password being checked. A successful login clears its username's count. Failures older
//! than the longest wait are forgotten. The counts live in the database, so every replica sees
//! the same ones.

use crate::error::{ApiError, ApiResult};
use crate::store::{now_ms, Db};

/// Failures per username before attempts wait.
pub const FREE_USER_FAILURES: i64 = 5;
/// Failures per client address before attempts wait (several people may share one).
pub const FREE_ADDRESS_FAILURES: i64 = 20;
/// The longest wait, and how long a count is remembered.
const MAX_WAIT_MS: i64 = 15 * 60 * 1000;

/// The counters a login attempt touches.
pub struct Keys {
    user: String,
    address: Option<String>,
}

impl Keys {
    /// The counters of `username` from `address`.
    pub fn new(username: &str, address: Option<std::net::IpAddr>) -> Self {
        Self {
            user: format!("user:{}", username.to_lowercase()),
            address: address.map(|a| format!("addr:{a}")),
        }
    }

    fn all(&self) -> impl Iterator<Item = (&str, i64)> {
        std::iter::once((self.user.as_str(), FREE_USER_FAILURES))
            .chain(self.address.as_deref().map(|a| (a, FREE_ADDRESS_FAILURES)))
    }
}

/// 429 when any of the counters asks the caller to wait.
pub async fn check(db: &Db, keys: &Keys) -> ApiResult<()> {
    let now = now_ms();
    for (key, _) in keys.all() {
        let locked: Option<Option<i64>> =
            sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE key = $1")
                .bind(key)
                .fetch_optional(db.pool())
                .await?;
        if let Some(Some(until)) = locked {
            if until > now {
                let secs = ((until - now) + 999) / 1000;
                return Err(ApiError::Throttled {
                    message: format!("too many failed logins; try again in {secs} s"),
                    retry_after_secs: secs as u64,
                });
            }
        }
    }
    Ok(())
}

/// Counts a failed login.
pub async fn failed(db: &Db, keys: &Keys) -> ApiResult<()> {
    let now = now_ms();
    for (key, free) in keys.all() {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT failures, last_failure_at FROM login_failures WHERE key = $1")
                .bind(key)
                .fetch_optional(db.pool())
                .await?;
        let failures = match row {
            Some((n, last)) if now - last < MAX_WAIT_MS => n + 1,
            _ => 1,
        };
        let locked_until = (failures >= free).then(|| {
            let doublings = (failures - free).min(20) as u32;
            now + (1000i64 << doublings).min(MAX_WAIT_MS)
        });
        sqlx::query(
            "INSERT INTO login_failures (key, failures, last_failure_at, locked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at, \
             locked_until = excluded.locked_until",
        )
        .bind(key)
        .bind(failures)
        .bind(now)
        .bind(locked_until)
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// Clears the username's count after a successful login.
pub async fn succeeded(db: &Db, keys: &Keys) -> ApiResult<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(&keys.user)
        .execute(db.pool())
        .await?;
    Ok(())
}
