//! `spec` of an `Mcp` proxy: one upstream MCP server, or several behind one endpoint, and
//! optional allow-lists of the tools, resources and prompts clients may see and use (enforced by
//! the gateway's `proxy/mcp`).

use serde::{Deserialize, Serialize};

use super::default_version;
use super::rest_api::Endpoint;
use super::rules::validate_url;
use crate::policy::Policy;
use crate::validate::FieldError;

/// Most servers one proxy multiplexes.
pub const MAX_UPSTREAMS: usize = 16;

/// Shortest `sessionKey` accepted.
pub const MIN_SESSION_KEY: usize = 32;

/// `spec` of an `Mcp` proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,30}$")]
    pub version: String,
    #[schema(
        pattern = "^((/[A-Za-z0-9._~-]+)+|(/[A-Za-z0-9._~-]+)*/[A-Za-z0-9._~-]*[$]version[A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*)$",
        max_length = 232
    )]
    pub context: String,
    /// The one MCP server behind the proxy (or give `upstreams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Endpoint>,
    /// Several MCP servers behind one endpoint: the gateway answers `initialize` itself and
    /// names each server's tools, resources and prompts with the server's name as prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<McpUpstream>,
    /// The tools clients may list and call: exact names or `*` globs (absent: all). With
    /// `upstreams`, the prefixed names.
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
    #[schema(value_type = Vec<crate::policy::HandleText>)]
    pub subscription_plans: Vec<String>,
    /// The secret the gateways seal session ids with, for a proxy with `upstreams` (at least
    /// 32 characters). The control plane sets it when it delivers the proxy (the same for every
    /// gateway of the organization) and refuses it from users; on a gateway's own API it is
    /// optional, and without it the gateway uses a key of its own process. Never read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
}

/// One of the servers of a multiplexing MCP proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpUpstream {
    /// The prefix of the server's names: lowercase letters, digits and `-`, starting with a
    /// letter (`_` separates it from tool and prompt names, `+` from resource URI schemes).
    #[schema(pattern = "^[a-z][a-z0-9-]{0,31}$")]
    pub name: String,
    /// The server's streamable HTTP endpoint.
    pub url: String,
}

impl McpSpec {
    /// The rules particular to MCP proxies: one upstream or several well named, valid URLs
    /// and non-empty allow-list entries.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        match (&self.upstream, self.upstreams.is_empty()) {
            (Some(_), false) => {
                return Err(FieldError::new(
                    "upstreams",
                    "give either upstream (one server) or upstreams (several), not both",
                ))
            }
            (None, true) => {
                return Err(FieldError::new(
                    "upstream",
                    "is required (or upstreams, for several servers)",
                ))
            }
            (Some(u), true) => validate_url("upstream.url", &u.url)?,
            (None, false) => self.validate_upstreams()?,
        }
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
        if let Some(k) = &self.session_key {
            if k.chars().count() < MIN_SESSION_KEY {
                return Err(FieldError::new(
                    "sessionKey",
                    format!("must be at least {MIN_SESSION_KEY} characters"),
                ));
            }
        }
        Ok(())
    }

    fn validate_upstreams(&self) -> Result<(), FieldError> {
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(FieldError::new(
                "upstreams",
                format!("at most {MAX_UPSTREAMS} servers"),
            ));
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            let ok = u.name.len() <= 32
                && u.name.starts_with(|c: char| c.is_ascii_lowercase())
                && u.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(FieldError::new(
                    format!("upstreams[{i}].name"),
                    "must be 1 to 32 lowercase letters, digits or '-', starting with a letter (it prefixes the server's tool and prompt names with '_' and its resource URIs' schemes with '+')",
                ));
            }
            if self.upstreams[..i].iter().any(|o| o.name == u.name) {
                return Err(FieldError::new(
                    format!("upstreams[{i}].name"),
                    format!("'{}' names two servers", u.name),
                ));
            }
            validate_url(&format!("upstreams[{i}].url"), &u.url)?;
        }
        Ok(())
    }
}
