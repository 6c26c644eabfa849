//! The audit log: every change made through the public API, who made it (and with which token),
//! when, from which address, on what (method and path) and with what outcome (the status). Bodies
//! are never recorded, so no secret, password or key can land in it.

use axum::http::Method;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{new_uuid, List, Page};
use crate::store::{format_ms, now_ms, parse_rfc3339_ms, Db};

/// One change about to be recorded.
pub struct Entry {
    org_id: String,
    user_id: String,
    username: String,
    via: String,
    method: String,
    path: String,
    address: Option<String>,
}

impl Entry {
    /// A change by `caller`.
    pub fn new(caller: &Caller, method: &Method, path: &str, address: Option<String>) -> Self {
        Self {
            org_id: caller.org_id.clone(),
            user_id: caller.user_id.clone(),
            username: caller.username.clone(),
            via: match &caller.token_id {
                Some(id) => format!("api-token:{id}"),
                None => "login".into(),
            },
            method: method.as_str().to_owned(),
            path: path.to_owned(),
            address,
        }
    }
}

impl Entry {
    /// The same change, made through another door (`console`).
    pub fn via(mut self, via: &str) -> Self {
        self.via = via.to_owned();
        self
    }
}

/// Records a change with its outcome. A failure to record is logged, not answered: the change
/// itself has already happened.
pub async fn record(db: &Db, e: Entry, status: u16) {
    let res = sqlx::query(
        "INSERT INTO audit_log (uuid, org_id, at, user_id, username, via, method, path, status, address) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_uuid())
    .bind(&e.org_id)
    .bind(now_ms())
    .bind(&e.user_id)
    .bind(&e.username)
    .bind(&e.via)
    .bind(&e.method)
    .bind(&e.path)
    .bind(i64::from(status))
    .bind(&e.address)
    .execute(db.pool())
    .await;
    if let Err(err) = res {
        tracing::error!(error = %err, method = %e.method, path = %e.path, "could not write the audit log");
    }
}

/// One recorded change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    /// RFC 3339, milliseconds.
    pub at: String,
    pub username: String,
    /// `login`, `console`, or `api-token:<token id>`.
    pub via: String,
    pub method: String,
    pub path: String,
    /// The answer's status: 2xx done, 4xx refused (403: the role did not allow it).
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Filters of `GET /audit-log`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditFilter {
    /// Only changes by this user.
    pub username: Option<String>,
    /// Only this method (`POST`, `PUT`, `DELETE`).
    pub method: Option<String>,
    /// Only paths starting with this (`/api/v1/rest-apis`).
    pub path: Option<String>,
    /// Only at or after this time (RFC 3339).
    #[param(
        pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub since: Option<String>,
    /// Only refused (`true`) or done (`false`) changes.
    pub failed: Option<bool>,
    /// At most this many entries (1 to 1000, default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Skip this many entries.
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// The organization's audit log, newest first.
pub async fn list(db: &Db, caller: &Caller, f: AuditFilter) -> ApiResult<List<AuditEntry>> {
    let page = Page {
        limit: f.limit,
        offset: f.offset,
    };
    let (limit, offset) = page.bounds()?;
    let since = match &f.since {
        Some(t) => parse_rfc3339_ms(t).ok_or_else(|| {
            gatehouse_core::FieldError::new("since", format!("'{t}' is not an RFC 3339 time"))
        })?,
        None => 0,
    };
    let method = f.method.as_deref().map(str::to_ascii_uppercase);
    let failed = match f.failed {
        None => -1,
        Some(false) => 0,
        Some(true) => 1,
    };
    let filter =
        "org_id = $1 AND at >= $2 AND ($3 = '' OR username = $3) AND ($4 = '' OR method = $4) \
         AND ($5 = '' OR path LIKE $5 || '%') AND ($6 < 0 OR ($6 = 1) = (status >= 400))";
    let username = f.username.unwrap_or_default();
    let method = method.unwrap_or_default();
    let path = f.path.unwrap_or_default();
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE {filter}"))
        .bind(&caller.org_id)
        .bind(since)
        .bind(&username)
        .bind(&method)
        .bind(&path)
        .bind(failed)
        .fetch_one(db.pool())
        .await?;
    let select = format!(
        "SELECT uuid, at, username, via, method, path, status, address FROM audit_log WHERE {filter} \
         ORDER BY at DESC, uuid DESC LIMIT $7 OFFSET $8"
    );
    let rows = sqlx::query(&select)
        .bind(&caller.org_id)
        .bind(since)
        .bind(&username)
        .bind(&method)
        .bind(&path)
        .bind(failed)
        .bind(limit)
        .bind(offset)
        .fetch_all(db.pool())
        .await?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at: format_ms(r.try_get(1)?),
                username: r.try_get(2)?,
                via: r.try_get(3)?,
                method: r.try_get(4)?,
                path: r.try_get(5)?,
                status: u16::try_from(r.try_get::<i64, _>(6)?)
                    .map_err(|e| ApiError::Internal(e.into()))?,
                address: r.try_get(7)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(list, total, (limit, offset)))
}
