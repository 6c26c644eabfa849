//! Requests and answers of the gateway internal API (`/api/internal/v1`) besides keys,
//! subscriptions and plans: the desired state, deployment contents, existence checks and the
//! change log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::events::EventEnvelope;
use super::status::DesiredState;
use super::Revision;
use crate::kind::ArtifactKind;

/// One entry of a gateway's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesiredDeployment {
    /// The artifact's uuid.
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub handle: String,
    pub deployment_id: String,
    pub state: DesiredState,
    /// `performedAt` of the last action: a change here with the same deployment id means a
    /// redeploy or restore of the same snapshot.
    pub deployed_at: String,
    /// Where the platform has the action in force (`DEPLOYING`, `DEPLOYED`, `FAILED`, ...): a
    /// gateway that holds it as asked but sees it unsettled acknowledges it again, so that an
    /// ack lost on the way is made good. Absent from older platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<super::DeploymentStatus>,
}

/// Answer of `GET /deployments`: the desired state, read in one snapshot with the revision it
/// reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesiredStateResponse {
    pub revision: Revision,
    pub deployments: Vec<DesiredDeployment>,
}

/// Body of `POST /deployments/fetch-batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchBatchRequest {
    pub deployment_ids: Vec<String>,
}

/// A deployment's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentContent {
    pub deployment_id: String,
    /// The artifact's uuid.
    pub artifact_id: String,
    pub kind: ArtifactKind,
    /// The artifact document with `metadata.uid` = the artifact uuid.
    #[schema(value_type = Object)]
    pub content: Value,
}

/// Answer of `POST /deployments/fetch-batch`: unknown or foreign ids are omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FetchBatchResponse {
    pub deployments: Vec<DeploymentContent>,
}

/// Body of `POST /artifacts/exists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExistsRequest {
    pub artifact_ids: Vec<String>,
}

/// One answer of `POST /artifacts/exists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactExistence {
    pub artifact_id: String,
    pub exists: bool,
}

/// Answer of `POST /artifacts/exists`, one entry per requested id, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExistsResponse {
    pub artifacts: Vec<ArtifactExistence>,
}

/// `?after=&limit=` of `GET /events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The last revision the gateway applied (0 for none).
    #[param(value_type = Option<i64>)]
    pub after: Option<Revision>,
    /// At most this many events (1 to 1000, default 1000).
    pub limit: Option<i64>,
}

/// Answer of `GET /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsResponse {
    pub events: Vec<EventEnvelope>,
    /// The organization's revision when read.
    pub revision: Revision,
    /// Resume from here next time.
    pub next_after: Revision,
    /// The events after `after` were compacted away: run a full sync instead of replaying.
    pub full_sync_required: bool,
}

/// Answer of `POST /deployment-acks`: whether the ack changed a deployment's status (false:
/// stale or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AckResult {
    pub applied: bool,
}

/// Query of `GET /secrets`: one secret, or (absent) every secret this gateway's deployments
/// reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecretsQuery {
    /// Only this secret (by id).
    #[serde(default)]
    pub id: Option<String>,
}

/// A secret's value, for a gateway whose deployments reference it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretValue {
    pub id: String,
    pub value: String,
    /// When the value last changed (RFC 3339, milliseconds).
    pub updated_at: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Answer of `GET /secrets`: the values of the secrets asked for that this gateway's current
/// deployments reference; others are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretValues {
    pub secrets: Vec<SecretValue>,
}
