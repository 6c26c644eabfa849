//! `mcp-authz` parameters (MCP proxies, with `jwt-auth`). Enforced by the gateway's
//! `proxy/mcp/`: a tool matched by a rule may be called, and is listed, only for a caller whose
//! token holds the rule's scopes and claim values; others get a JSON-RPC error naming the tool.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One rule of `mcp-authz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolRule {
    /// The tools the rule covers: exact names or `*` globs (at least one).
    #[serde(deserialize_with = "names")]
    pub tools: Vec<String>,
    /// Scopes the caller's token must hold (in `scope` or `scp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    /// Claims the token must carry, each with one of the listed values (a list claim such as
    /// `groups` needs one of them among its items).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Vec<String>>,
}

fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() || v.iter().any(|t| t.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "must be a list of one or more tool names",
        ));
    }
    Ok(v)
}

/// `params` of `mcp-authz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpAuthzParams {
    /// Every rule covering a tool applies to it (at least one rule).
    #[serde(deserialize_with = "rules")]
    pub rules: Vec<ToolRule>,
}

fn rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ToolRule>, D::Error> {
    let v = Vec::<ToolRule>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom("must hold one or more rules"));
    }
    Ok(v)
}
