//! API keys, subscriptions and subscription plans as the control plane delivers them to gateways,
//! in events and in the internal API's lists. Keys and subscription tokens travel only as hashes.

use serde::{Deserialize, Serialize};

use super::status::{ApiKeyStatus, PlanStatus, SubscriptionStatus, TimeUnit};
use crate::kind::ArtifactKind;

/// An API key of an artifact (payload of `apikey.*`, entry of `GET /api-keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    /// The artifact's uuid.
    pub artifact_id: String,
    pub kind: ArtifactKind,
    /// The artifact's handle.
    pub handle: String,
    /// The key's uuid.
    pub key_id: String,
    /// The key's handle.
    pub name: String,
    /// SHA-256 of the key, hex.
    pub api_key_hash: String,
    /// The key with all but its last characters hidden; empty in `apikey.revoked`.
    pub masked_api_key: String,
    pub status: ApiKeyStatus,
    /// Milliseconds since the Unix epoch.
    pub expires_at: Option<i64>,
}

/// Answer of `GET /api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
}

/// A subscription to an artifact (payload of `subscription.*`, entry of `GET /subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionInfo {
    pub subscription_id: String,
    /// The artifact's uuid.
    pub artifact_id: String,
    pub subscriber_id: String,
    /// SHA-256 of the subscription token, hex.
    pub token_hash: String,
    /// The plan's uuid.
    pub plan_id: Option<String>,
    pub status: SubscriptionStatus,
}

/// Answer of `GET /subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// One quota of a subscription plan; the same shape in the public API and towards gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanLimit {
    /// Requests per time unit: 1 to 2^63 - 1 (stored as a signed 64-bit integer).
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub limit_count: u64,
    pub time_unit: TimeUnit,
    /// Refuse requests (429) once the quota is spent; default true.
    #[serde(default = "yes")]
    pub stop_on_quota_reach: bool,
}

fn yes() -> bool {
    true
}

/// A subscription plan (payload of `subscriptionPlan.created|updated`, entry of
/// `GET /subscription-plans`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanInfo {
    /// The plan's uuid.
    pub plan_id: String,
    pub handle: String,
    pub limits: Vec<PlanLimit>,
    pub status: PlanStatus,
}

/// Payload of `subscriptionPlan.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanRef {
    /// The plan's uuid.
    pub plan_id: String,
    pub handle: String,
}

/// Answer of `GET /subscription-plans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanList {
    pub subscription_plans: Vec<PlanInfo>,
}
