//! `spec` of an `LlmProvider`: a template, the upstream and its credential, access control.

use serde::{Deserialize, Serialize};

use super::default_version;
use super::rules::{validate_header_name, validate_method, validate_operation_path, validate_url};
use crate::llm::{self, LlmTemplate};
use crate::policy::Policy;
use crate::validate::FieldError;

/// The kinds of credential an LLM upstream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamAuthType {
    /// A key sent in a header (`header`, or the template's).
    ApiKey,
}

/// How the gateway authenticates to an LLM upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamAuth {
    #[serde(rename = "type")]
    pub auth_type: UpstreamAuthType,
    /// The header that carries the credential; default the template's (`Authorization` with
    /// `Bearer ` for OpenAI, `x-api-key` for Anthropic, ...). When given, `value` is sent as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The credential. Absent in what the public API returns; sealed at rest in the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The upstream of an LLM provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmUpstream {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<UpstreamAuth>,
}

/// Access control mode of an LLM provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    #[default]
    AllowAll,
    DenyAll,
}

/// A path (and optionally methods) excepted from the access mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessException {
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// Which provider paths are reachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessControl {
    #[serde(default)]
    pub mode: AccessMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<AccessException>,
}

/// `spec` of an `LlmProvider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmProviderSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,30}$")]
    pub version: String,
    /// A built-in template (`openai`, `azure-openai`, `anthropic`, `gemini`, `mistral`,
    /// `openai-compatible`) or one of the organization's own.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub template: String,
    /// The template's definition when it is not built in. The control plane fills it in when it
    /// delivers the provider to a gateway; a gateway managed on its own takes it as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<LlmTemplate>)]
    pub template_definition: Option<Box<LlmTemplate>>,
    #[schema(
        pattern = "^((/[A-Za-z0-9._~-]+)+|(/[A-Za-z0-9._~-]+)*/[A-Za-z0-9._~-]*[$]version[A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*)$",
        max_length = 232
    )]
    pub context: String,
    pub upstream: LlmUpstream,
    #[serde(default)]
    pub access_control: AccessControl,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::policy::HandleText>)]
    pub subscription_plans: Vec<String>,
}

impl LlmProviderSpec {
    /// The rules particular to providers: a known template, the upstream and its credential,
    /// well-formed access-control exceptions.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        crate::handle::Handle::parse("template", &self.template)?;
        if let Some(def) = &self.template_definition {
            def.validate()
                .map_err(|e| e.prefixed("templateDefinition"))?;
            if def.id != self.template {
                return Err(FieldError::new(
                    "templateDefinition.id",
                    format!(
                        "must be the template named in template ('{}')",
                        self.template
                    ),
                ));
            }
            if llm::builtin(&self.template).is_some() {
                return Err(FieldError::new(
                    "templateDefinition",
                    format!(
                        "'{}' is built in; leave templateDefinition out",
                        self.template
                    ),
                ));
            }
        }
        validate_url("upstream.url", &self.upstream.url)?;
        if let Some(auth) = &self.upstream.auth {
            if let Some(h) = &auth.header {
                validate_header_name("upstream.auth.header", h)?;
            }
            if auth.value.as_deref().is_some_and(str::is_empty) {
                return Err(FieldError::new("upstream.auth.value", "must not be empty"));
            }
        }
        for (i, ex) in self.access_control.exceptions.iter().enumerate() {
            let at = format!("accessControl.exceptions[{i}]");
            validate_operation_path(&format!("{at}.path"), &ex.path)?;
            for (j, m) in ex.methods.iter().enumerate() {
                validate_method(&format!("{at}.methods[{j}]"), m)?;
            }
        }
        Ok(())
    }
}

impl LlmProviderSpec {
    /// The template this provider uses: built in, or the definition carried along. `None` for a
    /// template of an organization that was not resolved (the control plane resolves it).
    pub fn resolved_template(&self) -> Option<&LlmTemplate> {
        llm::builtin(&self.template).or(self.template_definition.as_deref())
    }

    /// Why the template cannot be used without an organization's templates at hand.
    pub fn unresolved_template_error(&self) -> FieldError {
        FieldError::new(
            "template",
            format!(
                "unknown template '{}'; expected one of {} or a template of the organization",
                self.template,
                llm::builtin_ids()
            ),
        )
    }
}
