//! The policy model: one variant per policy, each with a params type that validates while it
//! deserializes, so a parsed `Policy` is always one the gateway can enforce as written.
//!
//! Where each policy lives (see docs/policies.md):
//!
//! | policy | params, validation and schema | enforced by the gateway in |
//! |---|---|---|
//! | `api-key-auth` | `api_key_auth.rs` | `proxy/policies/api_key_auth.rs` |
//! | `rate-limit` | `rate_limit.rs` | `proxy/policies/rate_limit.rs` |
//! | `cors` | `cors.rs` | `proxy/policies/cors.rs` |
//! | `set-headers` | `set_headers.rs` | `proxy/policies/set_headers.rs` |
//! | `model-allow-list` | `model_allow_list.rs` | `llm/` (request checks) |
//! | `token-rate-limit` | `token_rate_limit.rs` | `llm/token_limit.rs` |
//! | `regex-guardrail` | `guardrails.rs` | `llm/guardrails.rs` |
//! | `pii-masking` | `guardrails.rs` | `llm/guardrails.rs` |
//! | `prompt-size-limit` | `guardrails.rs` | `llm/guardrails.rs` |
//! | `jwt-auth` | `jwt_auth.rs` | `proxy/policies/jwt_auth.rs` |
//! | `mcp-authz` | `mcp_authz.rs` | `proxy/mcp/filter.rs` |
//!
//! On the wire a policy is `{name, version: v1, params?}`.

pub mod api_key_auth;
pub mod cors;
pub mod guardrails;
pub mod jwt_auth;
pub mod mcp_authz;
pub mod model_allow_list;
pub mod params;
pub mod rate_limit;
pub mod set_headers;
pub mod token_rate_limit;
mod wire;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kind::ArtifactKind;

pub use api_key_auth::ApiKeyAuthParams;
pub use cors::CorsParams;
pub use guardrails::{
    GuardrailRule, GuardrailTarget, Pattern, PiiKind, PiiMaskingParams, PiiPattern,
    PromptSizeLimitParams, RegexGuardrailParams,
};
pub use jwt_auth::JwtAuthParams;
pub use mcp_authz::{McpAuthzParams, ToolRule};
pub use model_allow_list::{glob_match, ModelAllowListParams};
pub use params::{
    parse_window, HandleText, HeaderNameParam, HeaderNameText, LimitScope, Window, WindowError,
    WindowText,
};
pub use rate_limit::RateLimitParams;
pub use set_headers::{HeaderEdits, SetHeadersParams};
pub use token_rate_limit::{TokenCount, TokenLimitScope, TokenRateLimitParams};

/// A policy attached to an artifact or an operation, with its validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    ApiKeyAuth(ApiKeyAuthParams),
    RateLimit(RateLimitParams),
    Cors(CorsParams),
    SetHeaders(SetHeadersParams),
    ModelAllowList(ModelAllowListParams),
    TokenRateLimit(TokenRateLimitParams),
    RegexGuardrail(RegexGuardrailParams),
    PiiMasking(PiiMaskingParams),
    PromptSizeLimit(PromptSizeLimitParams),
    JwtAuth(JwtAuthParams),
    McpAuthz(McpAuthzParams),
}

/// The name of a policy, as written in `name`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    ApiKeyAuth,
    RateLimit,
    Cors,
    SetHeaders,
    ModelAllowList,
    TokenRateLimit,
    RegexGuardrail,
    PiiMasking,
    PromptSizeLimit,
    JwtAuth,
    McpAuthz,
}

impl PolicyName {
    /// Every policy.
    pub const ALL: [PolicyName; 11] = [
        PolicyName::ApiKeyAuth,
        PolicyName::RateLimit,
        PolicyName::Cors,
        PolicyName::SetHeaders,
        PolicyName::ModelAllowList,
        PolicyName::TokenRateLimit,
        PolicyName::RegexGuardrail,
        PolicyName::PiiMasking,
        PolicyName::PromptSizeLimit,
        PolicyName::JwtAuth,
        PolicyName::McpAuthz,
    ];

    /// The name as written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::ApiKeyAuth => "api-key-auth",
            PolicyName::RateLimit => "rate-limit",
            PolicyName::Cors => "cors",
            PolicyName::SetHeaders => "set-headers",
            PolicyName::ModelAllowList => "model-allow-list",
            PolicyName::TokenRateLimit => "token-rate-limit",
            PolicyName::RegexGuardrail => "regex-guardrail",
            PolicyName::PiiMasking => "pii-masking",
            PolicyName::PromptSizeLimit => "prompt-size-limit",
            PolicyName::JwtAuth => "jwt-auth",
            PolicyName::McpAuthz => "mcp-authz",
        }
    }

    /// Whether artifacts of `kind` may carry this policy.
    pub fn applies_to(self, kind: ArtifactKind) -> bool {
        match self {
            PolicyName::ModelAllowList
            | PolicyName::TokenRateLimit
            | PolicyName::RegexGuardrail
            | PolicyName::PiiMasking
            | PolicyName::PromptSizeLimit => {
                matches!(kind, ArtifactKind::LlmProvider | ArtifactKind::LlmProxy)
            }
            PolicyName::McpAuthz => kind == ArtifactKind::Mcp,
            _ => true,
        }
    }

    /// Whether the gateway enforces this policy today. A policy that is accepted but not
    /// enforced must be announced as such wherever it is accepted.
    pub fn is_enforced(self) -> bool {
        true
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy name that names no policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy '{0}'; expected one of api-key-auth, rate-limit, cors, set-headers, model-allow-list, token-rate-limit, regex-guardrail, pii-masking, prompt-size-limit, jwt-auth, mcp-authz")]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyName {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyName::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

impl Policy {
    /// Which policy this is.
    pub fn name(&self) -> PolicyName {
        match self {
            Policy::ApiKeyAuth(_) => PolicyName::ApiKeyAuth,
            Policy::RateLimit(_) => PolicyName::RateLimit,
            Policy::Cors(_) => PolicyName::Cors,
            Policy::SetHeaders(_) => PolicyName::SetHeaders,
            Policy::ModelAllowList(_) => PolicyName::ModelAllowList,
            Policy::TokenRateLimit(_) => PolicyName::TokenRateLimit,
            Policy::RegexGuardrail(_) => PolicyName::RegexGuardrail,
            Policy::PiiMasking(_) => PolicyName::PiiMasking,
            Policy::PromptSizeLimit(_) => PolicyName::PromptSizeLimit,
            Policy::JwtAuth(_) => PolicyName::JwtAuth,
            Policy::McpAuthz(_) => PolicyName::McpAuthz,
        }
    }
}

/// `policies` of an operation merged over those of its artifact: an operation-level policy
/// replaces the artifact-level one of the same name.
pub fn merged<'a>(artifact: &'a [Policy], operation: &'a [Policy]) -> Vec<&'a Policy> {
    let mut out: Vec<&Policy> = artifact
        .iter()
        .filter(|p| !operation.iter().any(|o| o.name() == p.name()))
        .collect();
    out.extend(operation.iter());
    out
}

#[cfg(test)]
mod tests;
