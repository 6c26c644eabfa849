//! What the public API answers and accepts, as the client reads and writes it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use gatehouse_core::protocol::{DeploymentStatus, Revision};
use gatehouse_core::spec::{strip_credentials, ArtifactSpec};
use gatehouse_core::{ArtifactDocument, ArtifactKind, Handle};

/// The list envelope of every collection.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    /// How many items this page holds.
    pub count: usize,
    /// The items of this page.
    pub list: Vec<T>,
    /// Where the page sits in the whole collection.
    pub pagination: Pagination,
}

/// Where a page sits in its collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Pagination {
    /// Items in the whole collection.
    pub total: i64,
    /// Index of the page's first item.
    pub offset: i64,
    /// Largest page asked for.
    pub limit: i64,
}

/// Answer of a login: a bearer token for one organization.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    /// The bearer token.
    pub token: String,
    /// When the token stops being accepted (RFC 3339).
    pub expires_at: String,
    /// The organization's handle.
    pub organization: String,
}

/// An artifact as the platform shows it: identity fields plus its spec's fields, credential
/// values replaced by `valueSet: true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// The artifact's handle.
    pub id: Handle,
    /// The platform's identifier of the artifact.
    pub uuid: String,
    /// Which of the four kinds it is.
    pub kind: ArtifactKind,
    /// Absent for LLM providers, which belong to the organization.
    pub project_id: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its spec last changed (RFC 3339).
    pub updated_at: String,
    /// `control-plane`, or `gateway` for an artifact a gateway created and published
    /// (read-only on the control plane).
    #[serde(default)]
    pub origin: Option<String>,
    /// The gateway that published it, for `origin: gateway`.
    #[serde(default)]
    pub gateway_id: Option<String>,
    /// `DEPLOYED` or `UNDEPLOYED` as that gateway holds it, for `origin: gateway`.
    #[serde(default)]
    pub gateway_state: Option<String>,
    /// The spec's fields (`displayName`, `context`, `upstream`, ...).
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

impl Artifact {
    /// Whether this artifact already says what `spec` says. Credential values, which the
    /// platform never returns, are not compared.
    pub fn matches(&self, spec: &ArtifactSpec) -> bool {
        let mut want = spec.to_value();
        strip_credentials(spec.kind(), &mut want);
        let mut have = Value::Object(self.spec.clone());
        strip_credentials(spec.kind(), &mut have);
        want == have
    }
}

/// The body of an artifact's create or replace: its handle, project and spec.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    /// The artifact's handle.
    pub id: Handle,
    /// The project's handle; ignored for kinds without projects (LLM providers).
    pub project_id: Option<String>,
    /// The validated spec; its kind is the artifact's.
    pub spec: ArtifactSpec,
}

/// The project of artifacts whose document names none.
pub const DEFAULT_PROJECT: &str = "default";

impl NewArtifact {
    /// The body for a document: its name, its `project` label (else `default`), its spec.
    pub fn from_document(doc: &ArtifactDocument) -> Self {
        let project = doc
            .metadata
            .labels
            .get("project")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_PROJECT);
        Self {
            id: doc.metadata.name.clone(),
            project_id: Some(project.to_owned()),
            spec: doc.spec.clone(),
        }
    }

    /// The artifact's kind (its spec's).
    pub fn kind(&self) -> ArtifactKind {
        self.spec.kind()
    }

    /// The JSON the public API takes: the spec's fields plus `id` and `projectId`.
    pub fn to_value(&self) -> Value {
        let mut body = self.spec.to_value();
        body["id"] = Value::String(self.id.to_string());
        if self.kind().has_project() {
            let project = self.project_id.as_deref().unwrap_or(DEFAULT_PROJECT);
            body["projectId"] = Value::String(project.to_owned());
        }
        body
    }
}

/// A deployment of an artifact to a gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The deployment's identifier.
    pub deployment_id: String,
    /// Its label.
    pub name: String,
    /// The artifact's handle.
    pub artifact_id: String,
    /// The artifact's kind.
    pub kind: ArtifactKind,
    /// The gateway's handle.
    pub gateway_id: String,
    /// Where it is in its lifecycle.
    pub status: DeploymentStatus,
    /// Why it failed (e.g. `DEPLOYMENT_TIMEOUT`), for `FAILED`.
    pub status_reason: Option<String>,
    /// What the gateway or the platform said about a failure.
    pub status_message: Option<String>,
    /// The deployment it was made from, when it deploys an earlier one again.
    pub base_deployment_id: Option<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When the current action on it was taken (absent for archived ones).
    pub performed_at: Option<String>,
    /// When its status last changed (RFC 3339).
    pub updated_at: Option<String>,
}

impl Deployment {
    /// Whether a gateway is (or is about to be) serving it.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            DeploymentStatus::Deployed | DeploymentStatus::Deploying
        )
    }
}

/// The body of an API key's creation.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    /// The key's handle; derived from `display_name` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Handle>,
    /// A name for people.
    pub display_name: String,
    /// A key to register (e.g. issued elsewhere); generated when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// An API key as listed (masked; the key itself is only in [`CreatedApiKey`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's handle.
    pub id: Handle,
    /// The platform's identifier of the key.
    pub uuid: String,
    /// A name for people.
    pub display_name: String,
    /// The key with all but a few characters hidden.
    pub masked_api_key: String,
    /// `active` or `revoked`, as the platform writes it.
    pub status: String,
    /// When it stops being accepted (RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

/// A new API key with its plaintext, which the platform shows only once.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The key as it will be listed.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key itself.
    pub api_key: String,
}

/// The body of a gateway's registration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewGateway {
    /// The gateway's handle; derived from `display_name` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Handle>,
    /// A name for people.
    pub display_name: String,
    /// What the gateway is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A registered gateway with its connection and sync status.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// The gateway's handle.
    pub id: Handle,
    /// The platform's identifier of the gateway.
    pub uuid: String,
    /// A name for people.
    pub display_name: String,
    /// What the gateway is for.
    pub description: Option<String>,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When its registration last changed (RFC 3339).
    pub updated_at: String,
    /// Its connection and sync status.
    pub status: GatewayStatus,
}

/// Whether a gateway is connected and caught up with the change log.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Whether it holds a connection to the platform now.
    pub connected: bool,
    /// The last change-log revision the gateway reported as applied.
    pub applied_revision: Revision,
    /// The organization's current revision.
    pub org_revision: Revision,
    /// True when the gateway has applied every event meant for it.
    pub in_sync: bool,
    /// When the platform last heard from it (RFC 3339).
    pub last_seen: Option<String>,
}

/// A freshly minted gateway registration token, shown only once.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayToken {
    /// The token's identifier (for listing and revoking it).
    pub id: String,
    /// The token itself, for the gateway's `--token`.
    pub token: String,
    /// When it was minted (RFC 3339).
    pub created_at: String,
}

/// A registration token as listed (never the token itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The token's identifier.
    pub id: String,
    /// `active` or `revoked`, as the platform writes it.
    pub status: String,
    /// When it was minted (RFC 3339).
    pub created_at: String,
    /// When it was revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

impl TokenInfo {
    /// Whether the token still admits its gateway.
    pub fn is_active(&self) -> bool {
        self.status.eq_ignore_ascii_case("active")
    }
}

impl ApiKey {
    /// Whether the key still admits requests.
    pub fn is_active(&self) -> bool {
        self.status.eq_ignore_ascii_case("active")
    }
}
