//! The specs of the four artifact kinds, one file each, and their validation.
//!
//! Parsing a spec validates it completely; a value of these types is always servable.

mod credentials;
mod endpoint;
mod llm_provider;
mod llm_proxy;
mod mcp;
mod rest_api;
mod rules;
mod size;

use serde_json::Value;

use crate::handle::Handle;
use crate::kind::ArtifactKind;
use crate::validate::{from_value, FieldError};

pub use crate::policy::{parse_window, Policy, PolicyName};
pub use credentials::{
    redact_credentials, remove_credential_marks, strip_credentials, CredentialSlot,
};
pub use endpoint::{EndpointTls, HealthCheck, RestEndpoint, WeightedUrl};
pub use llm_provider::{
    AccessControl, AccessException, AccessMode, LlmProviderSpec, LlmUpstream, UpstreamAuth,
};
pub use llm_proxy::{
    Failover, FailoverOn, LlmProxySpec, ProviderRef, WeightedProvider, DEFAULT_FAILOVER_ON,
};
pub use mcp::{McpSpec, McpUpstream};
pub use rest_api::{Endpoint, Operation, RestApiSpec, RestUpstream};
pub use size::ByteSize;

/// HTTP methods an operation may name.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Path prefix the gateway keeps for itself.
pub const RESERVED_PREFIX: &str = "/_gateway-health";

fn default_version() -> String {
    "v1.0".to_owned()
}

/// A validated spec of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactSpec {
    RestApi(RestApiSpec),
    LlmProvider(LlmProviderSpec),
    LlmProxy(LlmProxySpec),
    Mcp(McpSpec),
}

impl ArtifactSpec {
    /// Parses and validates `value` as the spec of `kind`. Error fields are relative to the spec.
    pub fn parse(kind: ArtifactKind, value: Value) -> Result<Self, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new("", "must be an object"));
        }
        let spec = match kind {
            ArtifactKind::RestApi => ArtifactSpec::RestApi(from_value(value)?),
            ArtifactKind::LlmProvider => ArtifactSpec::LlmProvider(from_value(value)?),
            ArtifactKind::LlmProxy => ArtifactSpec::LlmProxy(from_value(value)?),
            ArtifactKind::Mcp => ArtifactSpec::Mcp(from_value(value)?),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The kind of this spec.
    pub fn kind(&self) -> ArtifactKind {
        match self {
            ArtifactSpec::RestApi(_) => ArtifactKind::RestApi,
            ArtifactSpec::LlmProvider(_) => ArtifactKind::LlmProvider,
            ArtifactSpec::LlmProxy(_) => ArtifactKind::LlmProxy,
            ArtifactSpec::Mcp(_) => ArtifactKind::Mcp,
        }
    }

    /// The spec as JSON.
    pub fn to_value(&self) -> Value {
        let v = match self {
            ArtifactSpec::RestApi(s) => serde_json::to_value(s),
            ArtifactSpec::LlmProvider(s) => serde_json::to_value(s),
            ArtifactSpec::LlmProxy(s) => serde_json::to_value(s),
            ArtifactSpec::Mcp(s) => serde_json::to_value(s),
        };
        // Serializing plain structs of strings, vectors and maps cannot fail.
        v.unwrap_or(Value::Null)
    }

    /// `displayName`.
    pub fn display_name(&self) -> &str {
        match self {
            ArtifactSpec::RestApi(s) => &s.display_name,
            ArtifactSpec::LlmProvider(s) => &s.display_name,
            ArtifactSpec::LlmProxy(s) => &s.display_name,
            ArtifactSpec::Mcp(s) => &s.display_name,
        }
    }

    /// `version`.
    pub fn version(&self) -> &str {
        match self {
            ArtifactSpec::RestApi(s) => &s.version,
            ArtifactSpec::LlmProvider(s) => &s.version,
            ArtifactSpec::LlmProxy(s) => &s.version,
            ArtifactSpec::Mcp(s) => &s.version,
        }
    }

    /// `context` as written (may hold `$version`).
    pub fn context(&self) -> &str {
        match self {
            ArtifactSpec::RestApi(s) => &s.context,
            ArtifactSpec::LlmProvider(s) => &s.context,
            ArtifactSpec::LlmProxy(s) => &s.context,
            ArtifactSpec::Mcp(s) => &s.context,
        }
    }

    /// The context with `$version` replaced: the path prefix the gateway serves.
    pub fn resolved_context(&self) -> String {
        self.context().replace("$version", self.version())
    }

    /// The providers an LLM proxy forwards through, in the order written (none for other kinds).
    pub fn providers(&self) -> Vec<&Handle> {
        match self {
            ArtifactSpec::LlmProxy(s) => match &s.provider {
                Some(p) => vec![&p.id],
                None => s.providers.iter().map(|p| &p.id).collect(),
            },
            _ => vec![],
        }
    }

    /// The policies at API level.
    pub fn policies(&self) -> &[Policy] {
        match self {
            ArtifactSpec::RestApi(s) => &s.policies,
            ArtifactSpec::LlmProvider(s) => &s.policies,
            ArtifactSpec::LlmProxy(s) => &s.policies,
            ArtifactSpec::Mcp(s) => &s.policies,
        }
    }

    /// Handles of the subscription plans the artifact offers.
    pub fn subscription_plans(&self) -> &[String] {
        match self {
            ArtifactSpec::RestApi(s) => &s.subscription_plans,
            ArtifactSpec::LlmProvider(s) => &s.subscription_plans,
            ArtifactSpec::LlmProxy(s) => &s.subscription_plans,
            ArtifactSpec::Mcp(s) => &s.subscription_plans,
        }
    }

    fn validate(&self) -> Result<(), FieldError> {
        rules::validate_display_name(self.display_name())?;
        rules::validate_version(self.version())?;
        rules::validate_context(self.context(), self.version())?;
        validate_policies(self.kind(), self.policies(), "policies")?;
        for (i, p) in self.subscription_plans().iter().enumerate() {
            Handle::parse(&format!("subscriptionPlans[{i}]"), p)?;
        }
        match self {
            ArtifactSpec::RestApi(s) => s.validate(),
            ArtifactSpec::LlmProvider(s) => s.validate(),
            ArtifactSpec::LlmProxy(s) => s.validate(),
            ArtifactSpec::Mcp(s) => s.validate(),
        }
    }
}

/// Policies are validated as they parse; what is left is whether each applies to `kind`.
fn validate_policies(kind: ArtifactKind, policies: &[Policy], at: &str) -> Result<(), FieldError> {
    for (i, p) in policies.iter().enumerate() {
        let name = p.name();
        if !name.applies_to(kind) {
            let to = if name == PolicyName::McpAuthz {
                "MCP proxies"
            } else {
                "LLM providers and LLM proxies"
            };
            return Err(FieldError::new(
                format!("{at}[{i}].name"),
                format!("{name} applies only to {to}"),
            ));
        }
        if name == PolicyName::McpAuthz && !policies.iter().any(|p| p.name() == PolicyName::JwtAuth)
        {
            return Err(FieldError::new(
                format!("{at}[{i}].name"),
                "mcp-authz reads the caller's token: add jwt-auth to the same policies",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
