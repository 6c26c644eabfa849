//! Change-log events: their types, their payloads, and the envelope a gateway receives.
//!
//! The platform builds an [`Event`] and appends it; the log stores its [`EventType`] and payload;
//! a gateway reads the [`EventEnvelope`] and turns it back into the same [`Event`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::records::{ApiKeyInfo, PlanInfo, PlanRef, SubscriptionInfo};
use super::Revision;
use crate::kind::ArtifactKind;

/// What happened to an artifact, as the suffix of its event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactChange {
    Deployed,
    Undeployed,
    Deleted,
}

/// What happened to an API key (`apikey.<change>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKeyChange {
    Created,
    Updated,
    Revoked,
}

/// What happened to a subscription or a plan (`subscription.<change>`, `subscriptionPlan.<change>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordChange {
    Created,
    Updated,
    Deleted,
}

/// What happened to a secret (`secret.<change>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretChange {
    /// Its value changed (rotation): gateways holding artifacts that reference it fetch it.
    Updated,
    /// It is gone: gateways forget its value.
    Deleted,
}

super::status::spelled!(SecretChange, "secret change", {
    Updated => "updated",
    Deleted => "deleted",
});

super::status::spelled!(ArtifactChange, "artifact change", {
    Deployed => "deployed",
    Undeployed => "undeployed",
    Deleted => "deleted",
});

super::status::spelled!(ApiKeyChange, "API key change", {
    Created => "created",
    Updated => "updated",
    Revoked => "revoked",
});

super::status::spelled!(RecordChange, "change", {
    Created => "created",
    Updated => "updated",
    Deleted => "deleted",
});

/// The `type` of a change-log event (`api.deployed`, `apikey.revoked`, `subscriptionPlan.deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `<kind prefix>.<change>`: `api`, `llmprovider`, `llmproxy` or `mcpproxy`.
    Artifact(ArtifactKind, ArtifactChange),
    /// `apikey.<change>`.
    ApiKey(ApiKeyChange),
    /// `subscription.<change>`.
    Subscription(RecordChange),
    /// `subscriptionPlan.<change>`.
    SubscriptionPlan(RecordChange),
    /// `secret.<change>`.
    Secret(SecretChange),
}

const SECRET_PREFIX: &str = "secret";
const API_KEY_PREFIX: &str = "apikey";
const SUBSCRIPTION_PREFIX: &str = "subscription";
const PLAN_PREFIX: &str = "subscriptionPlan";

/// A string that is not an event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type '{0}'")]
pub struct UnknownEventType(pub String);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventType::Artifact(kind, change) => write!(f, "{}.{change}", kind.event_prefix()),
            EventType::ApiKey(change) => write!(f, "{API_KEY_PREFIX}.{change}"),
            EventType::Subscription(change) => write!(f, "{SUBSCRIPTION_PREFIX}.{change}"),
            EventType::SubscriptionPlan(change) => write!(f, "{PLAN_PREFIX}.{change}"),
            EventType::Secret(change) => write!(f, "{SECRET_PREFIX}.{change}"),
        }
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, UnknownEventType> {
        let unknown = || UnknownEventType(s.to_owned());
        let (prefix, suffix) = s.split_once('.').ok_or_else(unknown)?;
        let parsed = match prefix {
            API_KEY_PREFIX => suffix.parse().map(EventType::ApiKey).ok(),
            SUBSCRIPTION_PREFIX => suffix.parse().map(EventType::Subscription).ok(),
            PLAN_PREFIX => suffix.parse().map(EventType::SubscriptionPlan).ok(),
            SECRET_PREFIX => suffix.parse().map(EventType::Secret).ok(),
            _ => ArtifactKind::ALL
                .into_iter()
                .find(|k| k.event_prefix() == prefix)
                .and_then(|kind| {
                    suffix
                        .parse()
                        .map(|change| EventType::Artifact(kind, change))
                        .ok()
                }),
        };
        parsed.ok_or_else(unknown)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
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

/// Payload of `secret.updated` / `secret.deleted`: which secret, never its value (a gateway
/// fetches the value from the internal API, which answers only for secrets its deployments
/// reference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretPayload {
    /// The secret's id (what `{{ secret "id" }}` names).
    pub secret_id: String,
    /// When the value last changed (RFC 3339, milliseconds); absent on `secret.deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// One change a gateway must learn, with its typed payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `<kind>.deployed`: fetch the deployment and serve it.
    Deployed(DeployPayload),
    /// `<kind>.undeployed`: keep the artifact (and its keys), stop serving it.
    Undeployed(DeployPayload),
    /// `<kind>.deleted`: forget the artifact with its keys and subscriptions.
    Deleted(DeletePayload),
    /// `apikey.*`: add, change or revoke one key (its hash).
    ApiKey(ApiKeyChange, ApiKeyInfo),
    /// `subscription.*`: add, change or forget one subscription.
    Subscription(RecordChange, SubscriptionInfo),
    /// `subscriptionPlan.created` / `.updated`: hold this plan.
    PlanSaved(RecordChange, PlanInfo),
    /// `subscriptionPlan.deleted`: forget this plan.
    PlanDeleted(PlanRef),
    /// `secret.*`: fetch the secret's new value, or forget it.
    Secret(SecretChange, SecretPayload),
}

/// An event whose payload does not fit its type.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the payload of a {event_type} event is unreadable: {source}")]
    Payload {
        event_type: EventType,
        #[source]
        source: serde_json::Error,
    },
    #[error("a {event_type} event carries a {payload_kind} payload")]
    KindMismatch {
        event_type: EventType,
        payload_kind: ArtifactKind,
    },
}

impl Event {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            Event::Deployed(p) => EventType::Artifact(p.kind, ArtifactChange::Deployed),
            Event::Undeployed(p) => EventType::Artifact(p.kind, ArtifactChange::Undeployed),
            Event::Deleted(p) => EventType::Artifact(p.kind, ArtifactChange::Deleted),
            Event::ApiKey(change, _) => EventType::ApiKey(*change),
            Event::Subscription(change, _) => EventType::Subscription(*change),
            Event::PlanSaved(change, _) => EventType::SubscriptionPlan(*change),
            Event::PlanDeleted(_) => EventType::SubscriptionPlan(RecordChange::Deleted),
            Event::Secret(change, _) => EventType::Secret(*change),
        }
    }

    /// The payload as it travels and is stored.
    pub fn payload(&self) -> Result<Value, serde_json::Error> {
        match self {
            Event::Deployed(p) | Event::Undeployed(p) => serde_json::to_value(p),
            Event::Deleted(p) => serde_json::to_value(p),
            Event::ApiKey(_, k) => serde_json::to_value(k),
            Event::Subscription(_, s) => serde_json::to_value(s),
            Event::PlanSaved(_, p) => serde_json::to_value(p),
            Event::PlanDeleted(p) => serde_json::to_value(p),
            Event::Secret(_, p) => serde_json::to_value(p),
        }
    }

    /// Reads the payload of an event of type `event_type`.
    pub fn from_parts(event_type: EventType, payload: &Value) -> Result<Event, EventError> {
        fn read<T: serde::de::DeserializeOwned>(
            event_type: EventType,
            payload: &Value,
        ) -> Result<T, EventError> {
            T::deserialize(payload).map_err(|source| EventError::Payload { event_type, source })
        }
        let event = match event_type {
            EventType::Artifact(kind, change) => {
                let (payload_kind, event) = match change {
                    ArtifactChange::Deployed | ArtifactChange::Undeployed => {
                        let p: DeployPayload = read(event_type, payload)?;
                        let kind = p.kind;
                        if change == ArtifactChange::Deployed {
                            (kind, Event::Deployed(p))
                        } else {
                            (kind, Event::Undeployed(p))
                        }
                    }
                    ArtifactChange::Deleted => {
                        let p: DeletePayload = read(event_type, payload)?;
                        (p.kind, Event::Deleted(p))
                    }
                };
                if payload_kind != kind {
                    return Err(EventError::KindMismatch {
                        event_type,
                        payload_kind,
                    });
                }
                event
            }
            EventType::ApiKey(change) => Event::ApiKey(change, read(event_type, payload)?),
            EventType::Subscription(change) => {
                Event::Subscription(change, read(event_type, payload)?)
            }
            EventType::SubscriptionPlan(RecordChange::Deleted) => {
                Event::PlanDeleted(read(event_type, payload)?)
            }
            EventType::SubscriptionPlan(change) => {
                Event::PlanSaved(change, read(event_type, payload)?)
            }
            EventType::Secret(change) => Event::Secret(change, read(event_type, payload)?),
        };
        Ok(event)
    }
}

/// One change-log event as delivered to a gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "api.deployed")]
    pub event_type: EventType,
    pub revision: Revision,
    /// RFC 3339, millisecond precision.
    pub timestamp: String,
    pub correlation_id: String,
    /// The payload of `type`: see the event payload schemas.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// On the WebSocket: the revision of the event sent before this one on the connection (or
    /// the revision the stream started from). A gateway that has not applied that far missed
    /// an event, or received this one out of order, and reconnects to replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<Revision>,
}

impl EventEnvelope {
    /// The event with its typed payload.
    pub fn event(&self) -> Result<Event, EventError> {
        Event::from_parts(self.event_type, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ApiKeyStatus, PlanStatus, SubscriptionStatus};

    #[test]
    fn event_types_round_trip() {
        for kind in ArtifactKind::ALL {
            for change in ArtifactChange::ALL {
                let t = EventType::Artifact(kind, *change).to_string();
                assert_eq!(t.parse(), Ok(EventType::Artifact(kind, *change)));
            }
        }
        assert_eq!(
            EventType::Artifact(ArtifactKind::RestApi, ArtifactChange::Deleted).to_string(),
            "api.deleted"
        );
        assert_eq!(
            EventType::Artifact(ArtifactKind::Mcp, ArtifactChange::Deployed).to_string(),
            "mcpproxy.deployed"
        );
        // Not an artifact event.
        assert_eq!(
            "apikey.created".parse(),
            Ok(EventType::ApiKey(ApiKeyChange::Created))
        );
        for change in RecordChange::ALL {
            for t in [
                EventType::Subscription(*change),
                EventType::SubscriptionPlan(*change),
            ] {
                assert_eq!(t.to_string().parse(), Ok(t));
            }
        }
        assert_eq!(
            EventType::SubscriptionPlan(RecordChange::Updated).to_string(),
            "subscriptionPlan.updated"
        );
        for change in SecretChange::ALL {
            let t = EventType::Secret(*change);
            assert_eq!(t.to_string().parse(), Ok(t));
        }
        assert_eq!(
            EventType::Secret(SecretChange::Updated).to_string(),
            "secret.updated"
        );
        for bad in [
            "api.revoked",
            "apikey.deleted",
            "secret.created",
            "widget.deployed",
            "api",
            "",
        ] {
            assert_eq!(
                bad.parse::<EventType>(),
                Err(UnknownEventType(bad.to_owned()))
            );
        }
    }

    fn key() -> ApiKeyInfo {
        ApiKeyInfo {
            artifact_id: "a-1".into(),
            kind: ArtifactKind::RestApi,
            handle: "orders".into(),
            key_id: "k-1".into(),
            name: "ci".into(),
            api_key_hash: "abc".into(),
            masked_api_key: "***1234".into(),
            status: ApiKeyStatus::Active,
            expires_at: None,
        }
    }

    #[test]
    fn events_travel_as_type_and_payload_and_come_back_the_same() {
        let events = [
            Event::Deployed(DeployPayload {
                artifact_id: "a-1".into(),
                kind: ArtifactKind::LlmProxy,
                handle: "chat".into(),
                deployment_id: "d-1".into(),
                performed_at: "2026-01-01T00:00:00.000Z".into(),
            }),
            Event::Deleted(DeletePayload {
                artifact_id: "a-1".into(),
                kind: ArtifactKind::Mcp,
                handle: "tools".into(),
            }),
            Event::ApiKey(ApiKeyChange::Revoked, key()),
            Event::Subscription(
                RecordChange::Updated,
                SubscriptionInfo {
                    subscription_id: "s-1".into(),
                    artifact_id: "a-1".into(),
                    subscriber_id: "team".into(),
                    token_hash: "h".into(),
                    plan_id: None,
                    status: SubscriptionStatus::Inactive,
                },
            ),
            Event::PlanSaved(
                RecordChange::Created,
                PlanInfo {
                    plan_id: "p-1".into(),
                    handle: "gold".into(),
                    limits: vec![],
                    status: PlanStatus::Active,
                },
            ),
            Event::PlanDeleted(PlanRef {
                plan_id: "p-1".into(),
                handle: "gold".into(),
            }),
            Event::Secret(
                SecretChange::Updated,
                SecretPayload {
                    secret_id: "openai".into(),
                    updated_at: Some("2026-01-01T00:00:00.000Z".into()),
                },
            ),
            Event::Secret(
                SecretChange::Deleted,
                SecretPayload {
                    secret_id: "openai".into(),
                    updated_at: None,
                },
            ),
        ];
        for e in events {
            let envelope = EventEnvelope {
                event_type: e.event_type(),
                revision: Revision(3),
                timestamp: "2026-01-01T00:00:00.000Z".into(),
                correlation_id: "c".into(),
                payload: e.payload().unwrap(),
                previous_revision: Some(Revision(2)),
            };
            let wire = serde_json::to_string(&envelope).unwrap();
            let back: EventEnvelope = serde_json::from_str(&wire).unwrap();
            assert_eq!(back.event().unwrap(), e);
        }
    }

    #[test]
    fn payloads_keep_their_contract_field_names() {
        let v = Event::ApiKey(ApiKeyChange::Created, key())
            .payload()
            .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"artifactId": "a-1", "kind": "RestApi", "handle": "orders", "keyId": "k-1",
                "name": "ci", "apiKeyHash": "abc", "maskedApiKey": "***1234", "status": "active", "expiresAt": null})
        );
        let old = serde_json::json!({"subscriptionId": "s", "artifactId": "a", "subscriberId": "x",
            "tokenHash": "h", "planId": null, "status": "ACTIVE"});
        let e = Event::from_parts(EventType::Subscription(RecordChange::Created), &old).unwrap();
        assert!(matches!(
            e,
            Event::Subscription(
                _,
                SubscriptionInfo {
                    status: SubscriptionStatus::Active,
                    ..
                }
            )
        ));
    }

    #[test]
    fn payloads_that_do_not_fit_their_type_are_errors() {
        let deleted = serde_json::json!({"artifactId": "a", "kind": "Mcp", "handle": "h"});
        let t = EventType::Artifact(ArtifactKind::RestApi, ArtifactChange::Deleted);
        assert!(matches!(
            Event::from_parts(t, &deleted),
            Err(EventError::KindMismatch {
                payload_kind: ArtifactKind::Mcp,
                ..
            })
        ));
        let t = EventType::ApiKey(ApiKeyChange::Created);
        let err = Event::from_parts(t, &serde_json::json!({"n": 1})).unwrap_err();
        assert!(err.to_string().contains("apikey.created"), "{err}");
        let unknown: Result<EventEnvelope, _> = serde_json::from_value(serde_json::json!({
            "type": "widget.made", "revision": 1, "timestamp": "t", "correlationId": "c", "payload": {}}));
        assert!(unknown.unwrap_err().to_string().contains("widget.made"));
    }
}
