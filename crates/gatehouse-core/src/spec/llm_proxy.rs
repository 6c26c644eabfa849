//! `spec` of an `LlmProxy`: its own context in front of one provider, or of several with
//! failover between them, optionally speaking another provider API than theirs.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::default_version;
use crate::handle::Handle;
use crate::llm::ApiFamily;
use crate::policy::{Policy, Window};
use crate::validate::FieldError;

/// Reference from an LLM proxy to its provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Handle,
}

/// One of several providers of an LLM proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedProvider {
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Handle,
    /// Share of the requests among providers of the same priority (default 1, at least 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schema(minimum = 1, default = 1)]
    pub weight: u32,
    /// Lower is tried first (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What moves a request on to the next provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailoverOn {
    /// The provider could not be connected to.
    ConnectError,
    /// The provider's response headers did not come in time.
    Timeout,
    /// The provider answered this status.
    Status(u16),
}

impl Serialize for FailoverOn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FailoverOn::ConnectError => s.serialize_str("connect-error"),
            FailoverOn::Timeout => s.serialize_str("timeout"),
            FailoverOn::Status(code) => s.serialize_u16(*code),
        }
    }
}

impl<'de> Deserialize<'de> for FailoverOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Word(String),
        }
        let bad = |what: &str| {
            serde::de::Error::custom(format_args!(
                "'{what}' is not a failover condition: write connect-error, timeout or a status from 400 to 599"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Code(c) if (400..=599).contains(&c) => Ok(FailoverOn::Status(c)),
            Raw::Code(c) => Err(bad(&c.to_string())),
            Raw::Word(w) => match w.as_str() {
                "connect-error" => Ok(FailoverOn::ConnectError),
                "timeout" => Ok(FailoverOn::Timeout),
                _ => match w.parse::<u16>() {
                    Ok(c) if (400..=599).contains(&c) => Ok(FailoverOn::Status(c)),
                    _ => Err(bad(&w)),
                },
            },
        }
    }
}

/// The conditions that move a request on when `failover.on` is not given.
pub const DEFAULT_FAILOVER_ON: [FailoverOn; 7] = [
    FailoverOn::ConnectError,
    FailoverOn::Timeout,
    FailoverOn::Status(429),
    FailoverOn::Status(500),
    FailoverOn::Status(502),
    FailoverOn::Status(503),
    FailoverOn::Status(504),
];

/// How an LLM proxy moves a request between its providers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Failover {
    /// Conditions that move a request to the next provider (default connect-error, timeout,
    /// 429, 500, 502, 503, 504).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<serde_json::Value>>, example = json!(["connect-error", "timeout", 429, 503]))]
    pub on: Option<Vec<FailoverOn>>,
    /// Providers tried for one request at most (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_attempts: Option<u32>,
    /// How long a provider that failed is skipped (default 30s; its `Retry-After` when longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::policy::WindowText>, example = "30s")]
    pub cooldown: Option<Window>,
}

impl Failover {
    /// Whether `cond` moves a request on.
    pub fn moves_on(&self, cond: FailoverOn) -> bool {
        match &self.on {
            Some(on) => on.contains(&cond),
            None => DEFAULT_FAILOVER_ON.contains(&cond),
        }
    }

    /// How long a failed provider is skipped.
    pub fn cooldown(&self) -> std::time::Duration {
        self.cooldown
            .as_ref()
            .map(Window::duration)
            .unwrap_or(std::time::Duration::from_secs(30))
    }
}

/// `spec` of an `LlmProxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmProxySpec {
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
    /// The one provider; or give `providers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderRef>,
    /// Several providers, tried by `priority` and spread by `weight`; or give `provider`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<WeightedProvider>,
    /// How requests move between providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// The API clients speak to this proxy; requests and responses are translated for a
    /// provider that speaks another (today: `openai` in front of `anthropic`). Default: the
    /// providers' own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiFamily>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::policy::HandleText>)]
    pub subscription_plans: Vec<String>,
}

impl LlmProxySpec {
    /// The providers in the order written, with weight and priority (`provider` reads as one
    /// of weight 1, priority 0).
    pub fn provider_list(&self) -> Vec<WeightedProvider> {
        match &self.provider {
            Some(p) => vec![WeightedProvider {
                id: p.id.clone(),
                weight: 1,
                priority: 0,
            }],
            None => self.providers.clone(),
        }
    }

    /// Exactly one of `provider` and `providers`; a non-empty list without repeats; positive
    /// weights and attempts.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        match (&self.provider, self.providers.is_empty()) {
            (Some(_), false) => {
                return Err(FieldError::new(
                    "providers",
                    "give either provider or providers, not both",
                ))
            }
            (None, true) => {
                return Err(FieldError::new(
                    "provider",
                    "is required (or give providers: [{id, weight, priority}])",
                ))
            }
            _ => {}
        }
        let mut seen = HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            if !seen.insert(p.id.as_str()) {
                return Err(FieldError::new(
                    format!("providers[{i}].id"),
                    format!("provider '{}' is named twice", p.id),
                ));
            }
            if p.weight == 0 {
                return Err(FieldError::new(
                    format!("providers[{i}].weight"),
                    "must be a positive integer",
                ));
            }
        }
        if let Some(f) = &self.failover {
            if f.max_attempts == Some(0) {
                return Err(FieldError::new(
                    "failover.maxAttempts",
                    "must be a positive integer",
                ));
            }
            if f.on.as_ref().is_some_and(Vec::is_empty) {
                return Err(FieldError::new(
                    "failover.on",
                    "must name at least one condition (or leave it out for the default)",
                ));
            }
        }
        Ok(())
    }

    /// Refuses a proxy that names itself (`own` is its handle) as a provider.
    pub fn check_not_self(&self, own: &str) -> Result<(), FieldError> {
        if let Some(p) = &self.provider {
            if p.id.as_str() == own {
                return Err(FieldError::new(
                    "provider.id",
                    format!("an LLM proxy cannot name itself ('{own}') as its provider"),
                ));
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            if p.id.as_str() == own {
                return Err(FieldError::new(
                    format!("providers[{i}].id"),
                    format!("an LLM proxy cannot name itself ('{own}') as a provider"),
                ));
            }
        }
        Ok(())
    }
}
