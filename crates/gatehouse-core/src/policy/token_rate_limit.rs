//! `token-rate-limit` parameters (LLM providers and LLM proxies only).
//!
//! NOT ENFORCED YET: the gateway accepts and stores this policy but does not count tokens.
//! `Policy::is_enforced` says so, and docs/policies.md says it to users.

use serde::{Deserialize, Serialize};

use super::params::{positive, LimitScope, Window};

/// Which tokens of an LLM exchange count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenCount {
    Prompt,
    Completion,
    Total,
}

/// `params` of `token-rate-limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRateLimitParams {
    /// Tokens allowed per window (at least 1).
    #[serde(deserialize_with = "positive")]
    #[schema(minimum = 1)]
    pub tokens: u64,
    /// The window: a whole number and `ms`, `s`, `m`, `h` or `d` (`1h`).
    #[schema(value_type = String, example = "1h")]
    pub window: Window,
    /// Which tokens count (default total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<TokenCount>,
    /// Count per artifact (default) or per API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<LimitScope>,
}
