//! `set-headers` parameters. Enforced by the gateway's `proxy/policies/set_headers.rs`: request
//! headers are rewritten before the upstream sees them, response headers before the client does.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::params::{HeaderNameParam, HeaderValueParam};

/// Header edits of one side: removals first, then sets (which replace).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderEdits {
    /// Headers to set, by name.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "header_map"
    )]
    #[schema(value_type = BTreeMap<String, String>)]
    pub set: BTreeMap<HeaderNameParam, HeaderValueParam>,
    /// Header names to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<super::HeaderNameText>)]
    pub remove: Vec<HeaderNameParam>,
}

/// `params` of `set-headers`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetHeadersParams {
    /// Edits of the request, towards the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderEdits>,
    /// Edits of the response, towards the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderEdits>,
}

/// A map of header name to header value, every pair checked.
fn header_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<HeaderNameParam, HeaderValueParam>, D::Error> {
    use serde::de::Error;
    const SHAPE: &str = "set is a map of header to value, remove a list of header names";
    let Value::Object(map) = Value::deserialize(d)? else {
        return Err(D::Error::custom(SHAPE));
    };
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(D::Error::custom(SHAPE));
        };
        let value = HeaderValueParam::new(&name, &value).map_err(D::Error::custom)?;
        out.insert(name.parse().map_err(D::Error::custom)?, value);
    }
    Ok(out)
}
