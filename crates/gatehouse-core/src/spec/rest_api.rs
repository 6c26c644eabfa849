//! `spec` of a `RestApi`: upstreams, operations and their policies.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::endpoint::RestEndpoint;
use super::rules::{normalized_path, validate_method, validate_operation_path};
use super::{default_version, validate_policies};
use crate::kind::ArtifactKind;
use crate::policy::Policy;
use crate::validate::FieldError;

/// An upstream endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
}

/// Main and optional sandbox upstreams of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestUpstream {
    pub main: RestEndpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<RestEndpoint>,
}

/// One operation of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
}

/// `spec` of a `RestApi`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestApiSpec {
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
    pub upstream: RestUpstream,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::policy::HandleText>)]
    pub subscription_plans: Vec<String>,
    /// Largest request body forwarded, in bytes or with a unit (`10MiB`); past it, 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::size::ByteSizeText>)]
    pub max_request_body: Option<super::ByteSize>,
}

impl RestApiSpec {
    /// The rules particular to REST APIs: upstream URLs and unique, well-formed operations.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        self.upstream.main.validate("upstream.main")?;
        if let Some(sb) = &self.upstream.sandbox {
            sb.validate("upstream.sandbox")?;
        }
        let mut seen = HashSet::new();
        for (i, op) in self.operations.iter().enumerate() {
            let at = format!("operations[{i}]");
            validate_method(&format!("{at}.method"), &op.method)?;
            validate_operation_path(&format!("{at}.path"), &op.path)?;
            validate_policies(
                ArtifactKind::RestApi,
                &op.policies,
                &format!("{at}.policies"),
            )?;
            if !seen.insert((op.method.as_str(), normalized_path(&op.path))) {
                return Err(FieldError::new(
                    at,
                    format!("duplicate operation {} {}", op.method, op.path),
                ));
            }
        }
        Ok(())
    }
}
