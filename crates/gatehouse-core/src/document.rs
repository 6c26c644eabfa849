//! Artifact documents: the one shape the control plane deploys, the gateway stores and the
//! gateway's management API accepts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::handle::Handle;
use crate::kind::ArtifactKind;
use crate::spec::ArtifactSpec;
use crate::validate::{from_value, FieldError};

/// The `apiVersion` of Gatehouse documents.
pub const API_VERSION: &str = "gatehouse.dev/v1";

/// `metadata` of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The handle.
    pub name: Handle,
    /// The control plane's artifact uuid; absent for gateway-created artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub labels: serde_json::Map<String, Value>,
}

/// A whole artifact document, its spec validated for its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactDocument {
    pub kind: ArtifactKind,
    pub metadata: Metadata,
    pub spec: ArtifactSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDocument {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Value,
}

impl ArtifactDocument {
    /// Parses and validates a document from its JSON value (YAML parses to the same value).
    pub fn from_value(value: Value) -> Result<Self, FieldError> {
        let raw: RawDocument = from_value(value)?;
        if raw.api_version != API_VERSION {
            return Err(FieldError::new(
                "apiVersion",
                format!(
                    "'{}' is not supported; expected '{API_VERSION}'",
                    raw.api_version
                ),
            ));
        }
        let kind: ArtifactKind = raw
            .kind
            .parse()
            .map_err(|e: crate::protocol::UnknownValue| FieldError::new("kind", e.to_string()))?;
        let spec = ArtifactSpec::parse(kind, raw.spec).map_err(|e| e.prefixed("spec"))?;
        Ok(Self {
            kind,
            metadata: raw.metadata,
            spec,
        })
    }

    /// The document as JSON, in its canonical shape.
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": self.kind.as_str(),
            "metadata": self.metadata,
            "spec": self.spec.to_value(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn orders() -> Value {
        json!({
            "apiVersion": "gatehouse.dev/v1",
            "kind": "RestApi",
            "metadata": {"name": "orders", "uid": "0b9d7d9e-8a3f-4b79-9c9e-0a1b2c3d4e5f"},
            "spec": {
                "displayName": "Orders",
                "version": "v1.0",
                "context": "/orders/$version",
                "upstream": {"main": {"url": "http://127.0.0.1:9000/api"}},
                "operations": [{"method": "GET", "path": "/items/{id}"}, {"method": "POST", "path": "/items"}],
                "policies": [{"name": "api-key-auth", "version": "v1"}]
            }
        })
    }

    #[test]
    fn document_round_trips() {
        let doc = ArtifactDocument::from_value(orders()).unwrap();
        assert_eq!(doc.kind, ArtifactKind::RestApi);
        assert_eq!(doc.metadata.name.as_str(), "orders");
        assert_eq!(doc.spec.resolved_context(), "/orders/v1.0");
        let again = ArtifactDocument::from_value(doc.to_value()).unwrap();
        assert_eq!(again, doc);
    }

    #[test]
    fn document_errors_name_the_field() {
        let mut v = orders();
        v["apiVersion"] = json!("v0");
        assert_eq!(
            ArtifactDocument::from_value(v).unwrap_err().field,
            "apiVersion"
        );
        let mut v = orders();
        v["kind"] = json!("Api");
        assert_eq!(ArtifactDocument::from_value(v).unwrap_err().field, "kind");
        let mut v = orders();
        v["spec"]["upstream"]["main"]["url"] = json!("ftp://x");
        assert_eq!(
            ArtifactDocument::from_value(v).unwrap_err().field,
            "spec.upstream.main.url"
        );
        let mut v = orders();
        v["spec"]["operations"][1]["path"] = json!("items");
        assert_eq!(
            ArtifactDocument::from_value(v).unwrap_err().field,
            "spec.operations[1].path"
        );
        let mut v = orders();
        v["metadata"]["name"] = json!("Bad Name");
        assert_eq!(
            ArtifactDocument::from_value(v).unwrap_err().field,
            "metadata.name"
        );
    }
}
