//! `spec` of an `LlmProxy`: its own context in front of a provider.

use serde::{Deserialize, Serialize};

use super::default_version;
use crate::handle::Handle;
use crate::policy::Policy;

/// Reference from an LLM proxy to its provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    #[schema(value_type = String)]
    pub id: Handle,
}

/// `spec` of an `LlmProxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmProxySpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    pub context: String,
    pub provider: ProviderRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}
