//! `rate-limit` parameters. Enforced by the gateway's `proxy/policies/rate_limit.rs`: at most
//! `requests` per `window`, then 429 with `RateLimit-*` and `Retry-After`.

use serde::{Deserialize, Serialize};

use super::params::{positive, LimitScope, Window};

/// `params` of `rate-limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitParams {
    /// Requests allowed per window (at least 1).
    #[serde(deserialize_with = "positive")]
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub requests: u64,
    /// The window: a whole number and `ms`, `s`, `m`, `h` or `d` (`1m`).
    #[schema(value_type = super::WindowText, example = "1m")]
    pub window: Window,
    /// Count per artifact (default) or per API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<LimitScope>,
    /// With a shared rate-limit store (`--rate-limit-store`) that is unreachable: answer 503
    /// (`true`) rather than count on the gateway's own counters (`false`, the default). Without
    /// a shared store the gateway's own counters always decide.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_closed: bool,
}
