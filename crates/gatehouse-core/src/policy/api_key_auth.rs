//! `api-key-auth` parameters. Enforced by the gateway's `proxy/policies/api_key_auth.rs`: a request
//! needs an active, unexpired key of the artifact it calls, else 401.

use serde::{Deserialize, Serialize};

use super::params::HeaderNameParam;

/// The header clients put their key in unless `header` says otherwise.
pub const DEFAULT_HEADER: &str = "API-Key";

/// `params` of `api-key-auth`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyAuthParams {
    /// The request header that carries the key (default `API-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::HeaderNameText>)]
    pub header: Option<HeaderNameParam>,
}
