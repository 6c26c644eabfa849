//! Gateway-origin artifacts: what a connected gateway publishes to the control plane about the
//! artifacts created through its own management API (`POST /api/internal/v1/gateway-artifacts`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kind::ArtifactKind;

/// One artifact by kind and handle.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactKey {
    pub kind: ArtifactKind,
    pub handle: String,
}

/// An artifact as the gateway holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishedArtifact {
    /// The artifact document (section 5 of the contract), credentials included: the control
    /// plane seals them.
    #[schema(value_type = Object)]
    pub document: Value,
    /// Whether the gateway serves it (`DEPLOYED`) or only holds it (`UNDEPLOYED`).
    pub state: super::DesiredState,
}

/// Body of `POST /gateway-artifacts`. Idempotent: publishing the same thing twice changes
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishRequest {
    /// Created or changed artifacts.
    #[serde(default)]
    pub artifacts: Vec<PublishedArtifact>,
    /// Artifacts the gateway deleted.
    #[serde(default)]
    pub removed: Vec<ArtifactKey>,
    /// When given, every artifact the gateway holds of its own: the control plane forgets this
    /// gateway's other gateway-origin artifacts (the batch sent on every connect).
    #[serde(default)]
    pub present: Option<Vec<ArtifactKey>>,
}

/// What became of one published artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PublishOutcome {
    /// Listed by the control plane with `origin: gateway`.
    Published,
    /// Forgotten by the control plane.
    Removed,
    /// Its handle belongs to a control-plane artifact or another gateway's: not listed, and
    /// the control plane's artifact is left as it is.
    Conflict,
    /// The document is not valid.
    Invalid,
}

/// One answer of `POST /gateway-artifacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishResult {
    pub kind: ArtifactKind,
    pub handle: String,
    pub outcome: PublishOutcome,
    /// The control plane's uuid for it, when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_id: Option<String>,
    /// Why, for a conflict or an invalid document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Answer of `POST /gateway-artifacts`: one result per published or removed artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishResponse {
    pub results: Vec<PublishResult>,
}
