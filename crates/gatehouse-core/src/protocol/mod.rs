//! What the control plane and gateways say to each other, written once and used by both sides:
//! the platform serializes these types and the gateway deserializes the same ones.
//!
//! - [`status`]: deployment statuses, desired states, key, subscription and plan statuses, time units;
//! - [`events`]: change-log event types, payloads and the envelope;
//! - [`records`]: API keys, subscriptions and plans as delivered to gateways;
//! - [`internal`]: the other requests and answers of the gateway internal API;
//! - [`connection`]: the WebSocket's connection ack, deployment acks and heartbeats.

pub mod connection;
pub mod events;
pub mod internal;
pub mod publish;
pub mod records;
pub mod status;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use connection::{
    AckAction, AckStatus, ConnectionAck, DeploymentAck, GatewayMessage, Heartbeat, Resume,
    CONNECTION_ACK,
};
pub use events::{
    ApiKeyChange, ArtifactChange, DeletePayload, DeployPayload, Event, EventEnvelope, EventError,
    EventType, RecordChange, SecretChange, SecretPayload, UnknownEventType,
};
pub use internal::{
    AckResult, ArtifactExistence, DeploymentContent, DesiredDeployment, DesiredStateResponse,
    EventsQuery, EventsResponse, ExistsRequest, ExistsResponse, FetchBatchRequest,
    FetchBatchResponse, SecretValue, SecretValues, SecretsQuery,
};
pub use publish::{
    ArtifactKey, PublishOutcome, PublishRequest, PublishResponse, PublishResult, PublishedArtifact,
};
pub use records::{
    ApiKeyInfo, ApiKeyList, PlanInfo, PlanLimit, PlanList, PlanRef, SubscriptionInfo,
    SubscriptionList,
};
pub use status::{
    ApiKeyStatus, DeploymentStatus, DesiredState, PlanStatus, SubscriptionStatus, TimeUnit,
    UnknownValue,
};

/// A per-organization change-log revision: strictly increasing, gap-free in commit order.
/// On the wire it is a plain number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Revision(pub i64);

impl Revision {
    /// Before the first event: nothing applied yet.
    pub const ZERO: Revision = Revision(0);
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
