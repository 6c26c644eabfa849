//! Domain operations of the control plane. Each write is one store transaction that also
//! appends what gateways must learn to the change log.

pub mod api_keys;
pub mod api_tokens;
pub mod artifacts;
pub mod audit;
pub mod credentials;
pub mod deployments;
pub mod gateway_artifacts;
pub mod gateways;
pub mod identity;
pub mod internal;
pub mod llm_templates;
pub mod projects;
pub mod secret_refs;
pub mod secrets;
pub mod subscriptions;
pub mod throttle;
pub mod users;

use serde::{Deserialize, Serialize};

use gatehouse_core::{FieldError, Handle};

use crate::error::{ApiError, ApiResult};

/// `?limit=&offset=` of list routes.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// At most this many items (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Skip this many items.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl Page {
    /// Validated `(limit, offset)`.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) {
            return Err(FieldError::new("limit", "must be between 1 and 1000").into());
        }
        if offset < 0 {
            return Err(FieldError::new("offset", "must not be negative").into());
        }
        Ok((limit, offset))
    }
}

/// The list envelope of every collection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub count: usize,
    pub list: Vec<T>,
    pub pagination: Pagination,
}

/// Where a page sits in its collection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
}

impl<T> List<T> {
    /// A page of `list` out of `total`.
    pub fn new(list: Vec<T>, total: i64, (limit, offset): (i64, i64)) -> Self {
        Self {
            count: list.len(),
            list,
            pagination: Pagination {
                total,
                offset,
                limit,
            },
        }
    }
}

/// The handle of a new resource: the given `id`, or one derived from `displayName`.
pub fn new_handle(id: Option<&str>, display_name: &str) -> Result<Handle, ApiError> {
    Ok(match id {
        Some(id) => Handle::parse("id", id)?,
        // A name with no letter or digit to keep (`日本`, `!!`) gets a handle from its digest.
        None => Handle::derive("displayName", display_name).or_else(|_| {
            let digest = crate::crypto::sha256_hex(display_name);
            Handle::parse("displayName", &format!("h-{}", &digest[..12]))
        })?,
    })
}

/// Validates a display name field.
pub fn display_name(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty").into());
    }
    if v.chars().count() > 128 {
        return Err(FieldError::new(field, "must be at most 128 characters").into());
    }
    Ok(v.to_owned())
}

/// Reads a value stored as text (a kind, a status, a state); one the code does not know is an
/// internal error naming the column and the value, never a default.
pub fn parse_stored<T>(column: &str, value: &str) -> ApiResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored {column} is unreadable: {e}")))
}

/// A new time-ordered uuid.
pub fn new_uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}
