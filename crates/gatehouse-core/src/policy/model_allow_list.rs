//! `model-allow-list` parameters (LLM providers and LLM proxies only).
//!
//! NOT ENFORCED YET: the gateway accepts and stores this policy but forwards requests for any
//! model. `Policy::is_enforced` says so, and docs/policies.md says it to users.

use serde::{Deserialize, Deserializer, Serialize};

/// `params` of `model-allow-list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelAllowListParams {
    /// The models callers may name (at least one).
    #[serde(deserialize_with = "models")]
    pub models: Vec<String>,
}

fn models<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let models = Vec::<String>::deserialize(d)?;
    if models.is_empty() || models.iter().any(|m| m.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "must be a list of one or more model names",
        ));
    }
    Ok(models)
}
