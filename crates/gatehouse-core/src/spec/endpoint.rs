//! The upstream of a REST API (`upstream.main`, `upstream.sandbox`): one `url`, or several
//! `urls` the gateway balances per request by weight, with an optional active health check.

use serde::{Deserialize, Serialize};

use super::rules::validate_url;
use crate::policy::Window;
use crate::validate::FieldError;

/// Largest weight of one URL.
pub const MAX_WEIGHT: u32 = 100;
/// Most URLs in one upstream.
pub const MAX_URLS: usize = 64;

/// One upstream of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestEndpoint {
    /// The one URL (or give `urls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Several URLs, each a string or `{url, weight}` (weight 1 to 100, default 1), balanced
    /// per request by weight; one that fails to connect or times out is left out for a while.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<WeightedUrl>,
    /// Checks each URL actively; one that fails is left out until it passes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// A URL of an upstream with its weight, as written: `"http://a"` or `{url, weight}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WeightedUrl {
    Plain(String),
    Weighted {
        url: String,
        #[serde(default = "one")]
        weight: u32,
    },
}

fn one() -> u32 {
    1
}

/// An active health check: `GET <url><path>` every `interval`; a 2xx or 3xx answer within
/// the interval passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    pub path: String,
    /// `500ms`, `5s`, `1m`...
    #[schema(value_type = String)]
    pub interval: Window,
}

impl WeightedUrl {
    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            WeightedUrl::Plain(u) | WeightedUrl::Weighted { url: u, .. } => u,
        }
    }

    /// Its weight.
    pub fn weight(&self) -> u32 {
        match self {
            WeightedUrl::Plain(_) => 1,
            WeightedUrl::Weighted { weight, .. } => *weight,
        }
    }
}

impl RestEndpoint {
    /// An upstream of one URL.
    pub fn single(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            urls: vec![],
            health_check: None,
        }
    }

    /// Every URL with its weight.
    pub fn endpoints(&self) -> Vec<(&str, u32)> {
        match &self.url {
            Some(u) => vec![(u.as_str(), 1)],
            None => self.urls.iter().map(|u| (u.url(), u.weight())).collect(),
        }
    }

    /// The URLs are valid and weighted sensibly; `field` is where this upstream is
    /// (`upstream.main`).
    pub(super) fn validate(&self, field: &str) -> Result<(), FieldError> {
        match (&self.url, self.urls.is_empty()) {
            (Some(u), true) => validate_url(&format!("{field}.url"), u)?,
            (Some(_), false) => {
                return Err(FieldError::new(
                    format!("{field}.urls"),
                    "give either url or urls, not both",
                ))
            }
            (None, true) => {
                return Err(FieldError::new(
                    format!("{field}.url"),
                    "is required (or urls, for several)",
                ))
            }
            (None, false) => {
                if self.urls.len() > MAX_URLS {
                    return Err(FieldError::new(
                        format!("{field}.urls"),
                        format!("at most {MAX_URLS} URLs"),
                    ));
                }
                for (i, u) in self.urls.iter().enumerate() {
                    validate_url(&format!("{field}.urls[{i}]"), u.url())?;
                    if !(1..=MAX_WEIGHT).contains(&u.weight()) {
                        return Err(FieldError::new(
                            format!("{field}.urls[{i}].weight"),
                            format!("must be 1 to {MAX_WEIGHT}"),
                        ));
                    }
                }
            }
        }
        if let Some(h) = &self.health_check {
            if !h.path.starts_with('/') {
                return Err(FieldError::new(
                    format!("{field}.healthCheck.path"),
                    "must start with '/'",
                ));
            }
        }
        Ok(())
    }
}
