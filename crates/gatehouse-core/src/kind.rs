//! The four artifact kinds. They differ in their spec and routes, never in their lifecycle.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::protocol::UnknownValue;

/// What kind of artifact a document or a row is.
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
pub enum ArtifactKind {
    RestApi,
    LlmProvider,
    LlmProxy,
    Mcp,
}

impl ArtifactKind {
    /// Every kind, in dependency order: a provider before the proxies that use it.
    pub const ALL: [ArtifactKind; 4] = [
        ArtifactKind::LlmProvider,
        ArtifactKind::LlmProxy,
        ArtifactKind::RestApi,
        ArtifactKind::Mcp,
    ];

    /// The document `kind` string (`RestApi`, `LlmProvider`, `LlmProxy`, `Mcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::RestApi => "RestApi",
            ArtifactKind::LlmProvider => "LlmProvider",
            ArtifactKind::LlmProxy => "LlmProxy",
            ArtifactKind::Mcp => "Mcp",
        }
    }

    /// The public API collection path segment (`rest-apis`, ...).
    pub fn collection(self) -> &'static str {
        match self {
            ArtifactKind::RestApi => "rest-apis",
            ArtifactKind::LlmProvider => "llm-providers",
            ArtifactKind::LlmProxy => "llm-proxies",
            ArtifactKind::Mcp => "mcp-proxies",
        }
    }

    /// The gateway internal API content path segment (`apis`, ...).
    pub fn internal_collection(self) -> &'static str {
        match self {
            ArtifactKind::RestApi => "apis",
            other => other.collection(),
        }
    }

    /// The change-log event type prefix (`api`, `llmprovider`, `llmproxy`, `mcpproxy`).
    pub fn event_prefix(self) -> &'static str {
        match self {
            ArtifactKind::RestApi => "api",
            ArtifactKind::LlmProvider => "llmprovider",
            ArtifactKind::LlmProxy => "llmproxy",
            ArtifactKind::Mcp => "mcpproxy",
        }
    }

    /// A human name for messages ("REST API", ...).
    pub fn label(self) -> &'static str {
        match self {
            ArtifactKind::RestApi => "REST API",
            ArtifactKind::LlmProvider => "LLM provider",
            ArtifactKind::LlmProxy => "LLM proxy",
            ArtifactKind::Mcp => "MCP proxy",
        }
    }

    /// Whether artifacts of this kind belong to a project (LLM providers are organization-wide).
    pub fn has_project(self) -> bool {
        !matches!(self, ArtifactKind::LlmProvider)
    }

    /// The kind whose collection path is `segment`.
    pub fn from_collection(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.collection() == segment)
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArtifactKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                UnknownValue::new("kind", s, &["RestApi", "LlmProvider", "LlmProxy", "Mcp"])
            })
    }
}
