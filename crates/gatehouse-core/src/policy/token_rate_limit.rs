//! `token-rate-limit` parameters (LLM providers and LLM proxies only). Enforced by the gateway's
//! `llm/` module: tokens reported by responses are counted per window; the request that crosses
//! the limit completes, later ones get 429 in the provider API's error shape until the window
//! moves on.

use serde::{Deserialize, Serialize};

use super::params::{positive, Window};

/// Which tokens of an LLM exchange count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenCount {
    Prompt,
    Completion,
    #[default]
    Total,
}

/// Whose tokens a token limit counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenLimitScope {
    /// Every caller of the artifact together.
    #[default]
    Artifact,
    /// Each API key apart (callers without a key share the artifact's count).
    Key,
    /// Each subscription apart (callers without one share the artifact's count).
    Subscription,
}

/// `params` of `token-rate-limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRateLimitParams {
    /// Tokens allowed per window (at least 1).
    #[serde(deserialize_with = "positive")]
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub tokens: u64,
    /// The window: a whole number and `ms`, `s`, `m`, `h` or `d` (`1h`).
    #[schema(value_type = super::WindowText, example = "1h")]
    pub window: Window,
    /// Which tokens count (default total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<TokenCount>,
    /// Count per artifact (default), per API key or per subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<TokenLimitScope>,
    /// With a shared rate-limit store (`--rate-limit-store`) that is unreachable: answer 503
    /// (`true`) rather than count on the gateway's own counters (`false`, the default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_closed: bool,
}
