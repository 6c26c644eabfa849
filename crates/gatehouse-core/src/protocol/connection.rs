//! The gateway's WebSocket: the platform's `connection.ack`, then events; the gateway's
//! deployment acks and heartbeats back.

use serde::{Deserialize, Serialize};

use super::Revision;

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

/// `type` of the connection acknowledgement.
pub const CONNECTION_ACK: &str = "connection.ack";

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
    pub revision: Revision,
    pub capabilities: Vec<String>,
    pub resume: Resume,
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

/// `action` of an ack: which action of the deployment it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckAction {
    Deploy,
    Undeploy,
}

/// `status` of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    Success,
    Failed,
}

/// A gateway's periodic report of what it applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub applied_revision: Revision,
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
mod tests {
    use super::*;

    #[test]
    fn gateway_messages_have_the_contract_shape() {
        let hb = GatewayMessage::Heartbeat(Heartbeat {
            applied_revision: Revision(7),
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

    #[test]
    fn the_connection_ack_carries_its_revision_as_a_number() {
        let ack = ConnectionAck {
            message_type: CONNECTION_ACK.into(),
            gateway_id: "g".into(),
            organization_id: "o".into(),
            connection_id: "c".into(),
            revision: Revision(12),
            capabilities: vec!["replay".into()],
            resume: Resume::Replay,
        };
        let v = serde_json::to_value(&ack).unwrap();
        assert_eq!(v["revision"], 12);
        assert_eq!(v["type"], "connection.ack");
        assert_eq!(serde_json::from_value::<ConnectionAck>(v).unwrap(), ack);
    }
}
