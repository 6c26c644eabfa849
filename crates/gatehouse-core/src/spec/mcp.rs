//! `spec` of an `Mcp` proxy: one upstream MCP server and an optional tool allow-list.

use serde::{Deserialize, Serialize};

use super::default_version;
use super::rest_api::Endpoint;
use super::rules::validate_url;
use crate::policy::Policy;
use crate::validate::FieldError;

/// `spec` of an `Mcp` proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    pub context: String,
    pub upstream: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}

impl McpSpec {
    /// The rules particular to MCP proxies: the upstream URL and non-empty tool names.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        validate_url("upstream.url", &self.upstream.url)?;
        for (i, t) in self.tools.iter().flatten().enumerate() {
            if t.trim().is_empty() {
                return Err(FieldError::new(format!("tools[{i}]"), "must not be empty"));
            }
        }
        Ok(())
    }
}
