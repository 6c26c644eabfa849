//! `cors` parameters. Enforced by the gateway's `proxy/policies/cors.rs`: preflights are answered
//! at the gateway, other responses get `Access-Control-Allow-*` for allowed origins.

use serde::{Deserialize, Deserializer, Serialize};

use super::params::HeaderNameParam;

/// `params` of `cors`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsParams {
    /// Allowed origins; empty or `*` allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    /// Allowed methods (default: all common ones).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "methods"
    )]
    pub allow_methods: Vec<String>,
    /// Allowed request headers (default: what the preflight asks for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<super::HeaderNameText>)]
    pub allow_headers: Vec<HeaderNameParam>,
    /// Response headers the browser may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<super::HeaderNameText>)]
    pub expose_headers: Vec<HeaderNameParam>,
    /// Seconds a browser may cache a preflight answer: at most 86400 (a day; browsers keep
    /// it no longer).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "max_age"
    )]
    #[schema(maximum = 86400)]
    pub max_age: Option<u64>,
    /// Whether credentials (cookies, authorization) may be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
}

fn methods<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let methods = Vec::<String>::deserialize(d)?;
    if let Some(bad) = methods
        .iter()
        .find(|m| http::Method::from_bytes(m.as_bytes()).is_err())
    {
        return Err(serde::de::Error::custom(format!(
            "'{bad}' is not an HTTP method"
        )));
    }
    Ok(methods)
}

fn max_age<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = <Option<u64> as serde::Deserialize>::deserialize(d)?;
    if v.is_some_and(|s| s > 86_400) {
        return Err(serde::de::Error::custom("must be at most 86400 seconds"));
    }
    Ok(v)
}
