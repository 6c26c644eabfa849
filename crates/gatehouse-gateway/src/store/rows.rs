//! What the store holds, as Rust values, and the mapping of key and subscription rows.

use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use gatehouse_core::protocol::{ApiKeyStatus, PlanLimit, PlanStatus, SubscriptionStatus};
use gatehouse_core::{ArtifactDocument, ArtifactKind};

use super::StoreError;

/// Whether a held artifact is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Deployed,
    Undeployed,
}

impl State {
    /// The spelling in the `state` column.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            State::Deployed => "deployed",
            State::Undeployed => "undeployed",
        }
    }

    /// Reads the `state` column; `None` for a value this build does not know.
    pub(super) fn parse(value: &str) -> Option<Self> {
        match value {
            "deployed" => Some(State::Deployed),
            "undeployed" => Some(State::Undeployed),
            _ => None,
        }
    }
}

/// Who put an artifact on the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ControlPlane,
    GatewayApi,
}

impl Origin {
    /// The spelling in the `origin` column.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Origin::ControlPlane => "control_plane",
            Origin::GatewayApi => "gateway_api",
        }
    }

    /// Reads the `origin` column; `None` for a value this build does not know.
    pub(super) fn parse(value: &str) -> Option<Self> {
        match value {
            "control_plane" => Some(Origin::ControlPlane),
            "gateway_api" => Some(Origin::GatewayApi),
            _ => None,
        }
    }

    /// Reads the `origin` column of artifact `id`, refusing a value this build does not know.
    pub(super) fn from_column(id: &str, value: String) -> Result<Self, StoreError> {
        Origin::parse(&value).ok_or_else(|| StoreError::UnknownValue {
            table: "artifacts",
            id: id.to_owned(),
            column: "origin",
            value,
        })
    }
}

/// Parses a status column of row `id` in `table`; a value this build does not know is an error
/// naming the row.
pub(super) fn status_column<T: FromStr>(
    table: &'static str,
    id: &str,
    value: String,
) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::UnknownValue {
        table,
        id: id.to_owned(),
        column: "status",
        value,
    })
}

/// An artifact the gateway holds.
#[derive(Debug, Clone)]
pub struct StoredArtifact {
    /// The gateway's own id for it.
    pub id: String,
    pub document: ArtifactDocument,
    pub state: State,
    pub origin: Origin,
    /// The control plane's uuid (`metadata.uid`), for control-plane artifacts.
    pub artifact_uuid: Option<String>,
    pub deployment_id: Option<String>,
    pub deployed_at: Option<String>,
}

impl StoredArtifact {
    /// The artifact's kind.
    pub fn kind(&self) -> ArtifactKind {
        self.document.kind
    }

    /// The artifact's handle.
    pub fn handle(&self) -> &str {
        self.document.metadata.name.as_str()
    }
}

/// An API key as the gateway keeps it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredKey {
    pub id: String,
    #[serde(skip)]
    pub artifact_id: String,
    pub display_name: String,
    #[serde(skip)]
    pub key_hash: String,
    pub masked_api_key: String,
    pub status: ApiKeyStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A subscription to an artifact, as the gateway keeps it (the token only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: String,
    pub artifact_id: String,
    pub subscriber_id: String,
    pub token_hash: String,
    pub plan_id: Option<String>,
    pub status: SubscriptionStatus,
}

/// A subscription plan: its quotas (the `limits` column holds them as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlan {
    pub id: String,
    pub handle: String,
    pub limits: Vec<PlanLimit>,
    pub status: PlanStatus,
}

/// Maps an `api_keys` row.
pub(super) fn key_from_row(row: &SqliteRow) -> Result<StoredKey, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(StoredKey {
        status: status_column("api_keys", &id, row.try_get("status")?)?,
        id,
        artifact_id: row.try_get("artifact_id")?,
        display_name: row.try_get("display_name")?,
        key_hash: row.try_get("key_hash")?,
        masked_api_key: row.try_get("masked")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Maps a `subscriptions` row.
pub(super) fn subscription_from_row(row: &SqliteRow) -> Result<StoredSubscription, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(StoredSubscription {
        status: status_column("subscriptions", &id, row.try_get("status")?)?,
        id,
        artifact_id: row.try_get("artifact_id")?,
        subscriber_id: row.try_get("subscriber_id")?,
        token_hash: row.try_get("token_hash")?,
        plan_id: row.try_get("plan_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_origin_read_back_what_they_write() {
        for s in [State::Deployed, State::Undeployed] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        for o in [Origin::ControlPlane, Origin::GatewayApi] {
            assert_eq!(Origin::parse(o.as_str()), Some(o));
        }
        assert_eq!(State::parse("Deployed"), None);
        assert_eq!(Origin::parse("elsewhere"), None);
    }
}
