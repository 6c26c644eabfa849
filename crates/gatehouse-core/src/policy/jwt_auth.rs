//! `jwt-auth` parameters (every kind). Enforced by the gateway's `proxy/policies/jwt_auth.rs`:
//! a request needs `Authorization: Bearer <JWT>` signed by a key of `jwksUrl` (RS256, ES256 or
//! EdDSA families; `none` and HMAC are refused), issued by `issuer` for one of `audiences`,
//! unexpired (give or take `clockSkew`) and holding `requiredScopes`; else 401 with
//! `WWW-Authenticate: Bearer`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::params::{HeaderNameParam, Window};

/// `params` of `jwt-auth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuthParams {
    /// The `iss` tokens must carry.
    #[serde(deserialize_with = "non_empty")]
    #[schema(pattern = "\\S")]
    pub issuer: String,
    /// Tokens must be for one of these (`aud`); at least one.
    #[serde(deserialize_with = "audiences")]
    #[schema(min_items = 1, value_type = Vec<Audience>)]
    pub audiences: Vec<String>,
    /// Where the issuer publishes its keys (a JWKS document over http or https).
    #[serde(deserialize_with = "jwks_url")]
    #[schema(pattern = "^https?://[^/?#\\s]+")]
    pub jwks_url: String,
    /// Scopes every token must hold (in `scope`, space-separated, or `scp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    /// Leeway for `exp` and `nbf` (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::WindowText>, example = "30s")]
    pub clock_skew: Option<Window>,
    /// Claims passed upstream, by claim name to request header (`sub: X-User`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, super::HeaderNameText>)]
    pub forward_claims: BTreeMap<String, HeaderNameParam>,
}

/// One audience: not blank.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "\\S")]
#[allow(dead_code)]
struct Audience(String);

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn audiences<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() || v.iter().any(|a| a.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "must be a list of one or more audiences",
        ));
    }
    Ok(v)
}

fn jwks_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s),
        _ => Err(serde::de::Error::custom(format_args!(
            "'{s}' is not an http(s) URL"
        ))),
    }
}
