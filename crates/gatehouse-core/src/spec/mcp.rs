//! `spec` of an `Mcp` proxy: one upstream MCP server and optional allow-lists of the tools,
//! resources and prompts clients may see and use (enforced by the gateway's `proxy/mcp`).

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
    /// The tools clients may list and call: exact names or `*` globs (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// The resources clients may list and read, by URI: exact or `*` globs (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// The prompts clients may list and get: exact names or `*` globs (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}

impl McpSpec {
    /// The rules particular to MCP proxies: the upstream URL and non-empty allow-list entries.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        validate_url("upstream.url", &self.upstream.url)?;
        for (field, list) in [
            ("tools", &self.tools),
            ("resources", &self.resources),
            ("prompts", &self.prompts),
        ] {
            for (i, t) in list.iter().flatten().enumerate() {
                if t.trim().is_empty() {
                    return Err(FieldError::new(
                        format!("{field}[{i}]"),
                        "must not be empty",
                    ));
                }
            }
        }
        Ok(())
    }
}
