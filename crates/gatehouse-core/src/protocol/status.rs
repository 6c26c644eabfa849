//! Statuses and states, each an enum with one spelling on the wire and in storage.
//!
//! Deployment statuses and desired states are uppercase (`DEPLOYED`); key, subscription and plan
//! statuses are lowercase (`active`). Earlier releases wrote subscription and plan statuses in
//! uppercase, so parsing (serde and `FromStr`) also accepts `ACTIVE`, `INACTIVE` and `REVOKED`;
//! writing always uses the one spelling.

use serde::{Deserialize, Serialize};

/// A string that names none of the values a status, state or kind may take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}': expected {}", one_of(.expected))]
pub struct UnknownValue {
    /// What was being read (`deployment status`, `time unit`, ...).
    pub what: &'static str,
    /// The value as given.
    pub value: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl UnknownValue {
    /// An error about `value`, which is not one of `expected`.
    pub fn new(what: &'static str, value: &str, expected: &'static [&'static str]) -> Self {
        Self {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}

/// `A, B or C`.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Gives an enum its spelling: `as_str`, `Display` and a `FromStr` that also accepts the listed
/// aliases (earlier spellings, read but never written).
macro_rules! spelled {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The one spelling, on the wire and in storage.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::protocol::status::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name $(| $alias)* => Ok($ty::$variant),)+
                    other => Err($crate::protocol::status::UnknownValue::new($what, other, &[$($name),+])),
                }
            }
        }
    };
}
pub(crate) use spelled;

/// Status of a deployment in the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Deploying,
    Deployed,
    Undeploying,
    Undeployed,
    Failed,
    /// Superseded: no longer the current deployment of its (artifact, gateway).
    Archived,
}

spelled!(DeploymentStatus, "deployment status", {
    Deploying => "DEPLOYING",
    Deployed => "DEPLOYED",
    Undeploying => "UNDEPLOYING",
    Undeployed => "UNDEPLOYED",
    Failed => "FAILED",
    Archived => "ARCHIVED",
});

/// What the control plane wants a gateway to do with an artifact it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredState {
    Deployed,
    Undeployed,
}

spelled!(DesiredState, "desired state", {
    Deployed => "DEPLOYED",
    Undeployed => "UNDEPLOYED",
});

/// Whether an API key is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    #[serde(alias = "ACTIVE")]
    Active,
    #[serde(alias = "REVOKED")]
    Revoked,
}

spelled!(ApiKeyStatus, "API key status", {
    Active => "active" | "ACTIVE",
    Revoked => "revoked" | "REVOKED",
});

/// Whether a subscription's token is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    #[serde(alias = "ACTIVE")]
    Active,
    #[serde(alias = "INACTIVE")]
    Inactive,
}

spelled!(SubscriptionStatus, "subscription status", {
    Active => "active" | "ACTIVE",
    Inactive => "inactive" | "INACTIVE",
});

/// Whether the subscriptions under a plan are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanStatus {
    #[serde(alias = "ACTIVE")]
    Active,
    #[serde(alias = "INACTIVE")]
    Inactive,
}

spelled!(PlanStatus, "subscription plan status", {
    Active => "active" | "ACTIVE",
    Inactive => "inactive" | "INACTIVE",
});

/// The period a plan's quota counts requests over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeUnit {
    Minute,
    Hour,
    Day,
    Month,
}

spelled!(TimeUnit, "time unit", {
    Minute => "MINUTE",
    Hour => "HOUR",
    Day => "DAY",
    Month => "MONTH",
});

impl TimeUnit {
    /// The unit as a quota window (a month counts as 30 days).
    pub fn window(self) -> std::time::Duration {
        const DAY: u64 = 86_400;
        std::time::Duration::from_secs(match self {
            TimeUnit::Minute => 60,
            TimeUnit::Hour => 3600,
            TimeUnit::Day => DAY,
            TimeUnit::Month => 30 * DAY,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            "DEPLOYING",
            "DEPLOYED",
            "UNDEPLOYING",
            "UNDEPLOYED",
            "FAILED",
            "ARCHIVED",
        ] {
            assert_eq!(s.parse::<DeploymentStatus>().unwrap().as_str(), s);
        }
        assert!("deployed".parse::<DeploymentStatus>().is_err());
    }

    #[test]
    fn unknown_values_are_named_in_the_error() {
        let e = "WEEK".parse::<TimeUnit>().unwrap_err();
        assert_eq!(e.value, "WEEK");
        assert_eq!(
            e.to_string(),
            "unknown time unit 'WEEK': expected MINUTE, HOUR, DAY or MONTH"
        );
        let e = "paused".parse::<SubscriptionStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown subscription status 'paused': expected active or inactive"
        );
    }

    #[test]
    fn record_statuses_write_lowercase_and_read_the_old_uppercase() {
        for (old, new) in [("ACTIVE", "active"), ("INACTIVE", "inactive")] {
            let from_json: SubscriptionStatus = serde_json::from_value(old.into()).unwrap();
            assert_eq!(serde_json::to_value(from_json).unwrap(), new);
            let parsed: PlanStatus = old.parse().unwrap();
            assert_eq!(parsed.to_string(), new);
            assert_eq!(new.parse::<PlanStatus>().unwrap(), parsed);
        }
        let revoked: ApiKeyStatus = serde_json::from_value("REVOKED".into()).unwrap();
        assert_eq!(revoked, ApiKeyStatus::Revoked);
        assert_eq!(serde_json::to_value(revoked).unwrap(), "revoked");
        assert!(serde_json::from_value::<ApiKeyStatus>("Active".into()).is_err());
    }

    #[test]
    fn time_units_keep_the_uppercase_spelling() {
        for unit in TimeUnit::ALL {
            let json = serde_json::to_value(unit).unwrap();
            assert_eq!(json, unit.as_str());
            assert_eq!(unit.as_str().parse::<TimeUnit>().unwrap(), *unit);
        }
        assert_eq!(TimeUnit::Month.window().as_secs(), 30 * 86_400);
        assert!(serde_json::from_value::<TimeUnit>("minute".into()).is_err());
    }
}
