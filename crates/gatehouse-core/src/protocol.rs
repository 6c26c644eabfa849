//! What the control plane and gateways say to each other: deployment states, change-log event
//! envelopes and acknowledgements.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

use crate::kind::ArtifactKind;

/// A per-organization change-log revision: strictly increasing, gap-free in commit order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Revision(pub i64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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

impl DeploymentStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Deploying => "DEPLOYING",
            DeploymentStatus::Deployed => "DEPLOYED",
            DeploymentStatus::Undeploying => "UNDEPLOYING",
            DeploymentStatus::Undeployed => "UNDEPLOYED",
            DeploymentStatus::Failed => "FAILED",
            DeploymentStatus::Archived => "ARCHIVED",
        }
    }
}

impl FromStr for DeploymentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "DEPLOYING" => DeploymentStatus::Deploying,
            "DEPLOYED" => DeploymentStatus::Deployed,
            "UNDEPLOYING" => DeploymentStatus::Undeploying,
            "UNDEPLOYED" => DeploymentStatus::Undeployed,
            "FAILED" => DeploymentStatus::Failed,
            "ARCHIVED" => DeploymentStatus::Archived,
            other => {
                return Err(format!(
                    "unknown status '{other}': expected DEPLOYING, DEPLOYED, UNDEPLOYING, UNDEPLOYED, FAILED or ARCHIVED"
                ))
            }
        })
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the control plane wants a gateway to do with an artifact it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredState {
    Deployed,
    Undeployed,
}

impl DesiredState {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredState::Deployed => "DEPLOYED",
            DesiredState::Undeployed => "UNDEPLOYED",
        }
    }
}

impl FromStr for DesiredState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "DEPLOYED" => Ok(DesiredState::Deployed),
            "UNDEPLOYED" => Ok(DesiredState::Undeployed),
            other => Err(format!("unknown desired state '{other}'")),
        }
    }
}

/// The action a deploy-type event or an ack is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployAction {
    Deploy,
    Undeploy,
}

/// What happened to an artifact, as the suffix of its event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactChange {
    Deployed,
    Undeployed,
    Deleted,
}

impl ArtifactChange {
    fn suffix(self) -> &'static str {
        match self {
            ArtifactChange::Deployed => "deployed",
            ArtifactChange::Undeployed => "undeployed",
            ArtifactChange::Deleted => "deleted",
        }
    }
}

/// The event type string of an artifact change (`api.deployed`, `llmproxy.deleted`, ...).
pub fn artifact_event_type(kind: ArtifactKind, change: ArtifactChange) -> String {
    format!("{}.{}", kind.event_prefix(), change.suffix())
}

/// Parses an artifact event type back into its kind and change.
pub fn parse_artifact_event_type(event_type: &str) -> Option<(ArtifactKind, ArtifactChange)> {
    let (prefix, suffix) = event_type.split_once('.')?;
    let kind = ArtifactKind::ALL
        .into_iter()
        .find(|k| k.event_prefix() == prefix)?;
    let change = match suffix {
        "deployed" => ArtifactChange::Deployed,
        "undeployed" => ArtifactChange::Undeployed,
        "deleted" => ArtifactChange::Deleted,
        _ => return None,
    };
    Some((kind, change))
}

/// One change-log event as delivered to a gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    #[serde(rename = "type")]
    pub event_type: String,
    pub revision: i64,
    /// RFC 3339, millisecond precision.
    pub timestamp: String,
    pub correlation_id: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// Payload of `<kind>.deployed` / `<kind>.undeployed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployPayload {
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub handle: String,
    pub deployment_id: String,
    /// The action's concurrency token, RFC 3339 with milliseconds; echoed in the ack.
    pub performed_at: String,
}

/// Payload of `<kind>.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletePayload {
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub handle: String,
}

/// A gateway's acknowledgement of an applied (or refused) deploy or undeploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAck {
    pub artifact_id: String,
    pub deployment_id: String,
    pub performed_at: String,
    pub action: AckAction,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `action` of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckAction {
    Deploy,
    Undeploy,
}

/// `status` of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    Success,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for kind in ArtifactKind::ALL {
            for change in [
                ArtifactChange::Deployed,
                ArtifactChange::Undeployed,
                ArtifactChange::Deleted,
            ] {
                let t = artifact_event_type(kind, change);
                assert_eq!(parse_artifact_event_type(&t), Some((kind, change)));
            }
        }
        assert_eq!(
            artifact_event_type(ArtifactKind::RestApi, ArtifactChange::Deleted),
            "api.deleted"
        );
        assert_eq!(
            artifact_event_type(ArtifactKind::Mcp, ArtifactChange::Deployed),
            "mcpproxy.deployed"
        );
        assert_eq!(parse_artifact_event_type("apikey.created"), None);
    }

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
}

/// How a connecting gateway catches up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Resume {
    /// The missed events follow on the socket, in order.
    #[serde(rename = "replay")]
    Replay,
    /// The gateway runs a full sync (first start, or too far behind the retained log).
    #[serde(rename = "full-sync")]
    FullSync,
}

/// The platform's first frame on a gateway connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionAck {
    /// Always `connection.ack`.
    #[serde(rename = "type")]
    pub message_type: String,
    pub gateway_id: String,
    pub organization_id: String,
    pub connection_id: String,
    /// The organization's revision when the connection was accepted.
    pub revision: i64,
    pub capabilities: Vec<String>,
    pub resume: Resume,
}

/// `type` of the connection acknowledgement.
pub const CONNECTION_ACK: &str = "connection.ack";

/// A gateway's periodic report of what it applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub applied_revision: i64,
    /// A hash of the gateway's control-plane configuration (artifacts, states, deployments).
    pub config_hash: String,
}

/// What a gateway sends on its connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum GatewayMessage {
    #[serde(rename = "deployment.ack")]
    DeploymentAck(DeploymentAck),
    #[serde(rename = "heartbeat")]
    Heartbeat(Heartbeat),
}

#[cfg(test)]
mod connection_tests {
    use super::*;

    #[test]
    fn gateway_messages_have_the_contract_shape() {
        let hb = GatewayMessage::Heartbeat(Heartbeat {
            applied_revision: 7,
            config_hash: "abc".into(),
        });
        assert_eq!(
            serde_json::to_value(&hb).unwrap(),
            serde_json::json!({"type": "heartbeat", "payload": {"appliedRevision": 7, "configHash": "abc"}})
        );
        let ack: GatewayMessage = serde_json::from_value(serde_json::json!({"type": "deployment.ack", "payload": {
            "artifactId": "a", "deploymentId": "d", "performedAt": "2026-01-01T00:00:00.000Z", "action": "deploy", "status": "failed",
            "errorCode": "HANDLE_CONFLICT", "message": "held"}}))
        .unwrap();
        assert!(matches!(
            ack,
            GatewayMessage::DeploymentAck(DeploymentAck {
                status: AckStatus::Failed,
                ..
            })
        ));
        assert_eq!(serde_json::to_value(Resume::FullSync).unwrap(), "full-sync");
    }
}
