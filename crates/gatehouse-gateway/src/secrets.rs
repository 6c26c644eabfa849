//! Secret values on the gateway, and references resolved where routes are compiled.
//!
//! An artifact's document keeps its references (`{{ secret "id" }}`, `{{ env "NAME" }}`); the
//! store keeps the document so, and secret values sealed (AES-256-GCM under a key derived from
//! the gateway's control-plane token, which lives in its settings, not in its data directory).
//! Resolved values exist only in memory: in [`Secrets`] and in the compiled route table.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use gatehouse_core::crypto::Sealer;
use gatehouse_core::references::{self, Reference};
use gatehouse_core::spec::ArtifactSpec;
use gatehouse_core::ArtifactDocument;

use crate::store::StoredArtifact;

/// Prefix of the gateway's own settings in its environment: never readable through
/// `{{ env }}`, so that an artifact cannot send the gateway's token upstream.
pub const RESERVED_ENV_PREFIX: &str = "GATEHOUSE_";

/// Why a sealed value could not be opened or sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A standalone gateway has no token to derive its key from, and receives no secrets.
    #[error("this gateway has no control-plane token to seal secrets with")]
    NoKey,
    #[error("{0}")]
    Crypto(String),
}

/// The secret values this gateway holds, in memory, by secret id.
pub struct Secrets {
    values: RwLock<HashMap<String, Arc<str>>>,
    sealer: Option<Sealer>,
}

impl Secrets {
    /// An empty set whose store key derives from `token` (none: a standalone gateway).
    pub fn new(token: Option<&str>) -> Self {
        let sealer = token.map(|t| {
            let key = Sha256::digest(format!("gatehouse gateway secret store|{t}").as_bytes());
            // A SHA-256 digest is 32 bytes, the key size.
            Sealer::new(&key).expect("a 32-byte key")
        });
        Self {
            values: RwLock::default(),
            sealer,
        }
    }

    /// The value of secret `id`, if held.
    pub fn get(&self, id: &str) -> Option<Arc<str>> {
        self.read().get(id).cloned()
    }

    /// Holds `value` for `id`; whether it differs from what was held.
    pub fn put(&self, id: &str, value: &str) -> bool {
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if values.get(id).is_some_and(|v| **v == *value) {
            return false;
        }
        values.insert(id.to_owned(), value.into());
        true
    }

    /// Forgets `id`; whether it was held.
    pub fn remove(&self, id: &str) -> bool {
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        values.remove(id).is_some()
    }

    /// The ids held.
    pub fn ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<str>>> {
        self.values.read().unwrap_or_else(|e| e.into_inner())
    }

    /// `value` sealed for the store.
    pub fn seal(&self, value: &str) -> Result<String, SealError> {
        Ok(self.sealer.as_ref().ok_or(SealError::NoKey)?.seal(value))
    }

    /// A stored sealed value, opened.
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        self.sealer
            .as_ref()
            .ok_or(SealError::NoKey)?
            .open(sealed)
            .map_err(|e| SealError::Crypto(e.to_string()))
    }
}

/// An artifact with its references put in place, or why they cannot be.
pub struct Resolved<'a> {
    /// The artifact as served (borrowed when it holds no reference).
    pub artifact: Result<Cow<'a, StoredArtifact>, String>,
    /// The secrets it references, whether or not held.
    pub secrets: Vec<Arc<str>>,
}

/// The ids of the secrets `spec` references.
pub fn referenced(spec: &ArtifactSpec) -> Vec<String> {
    references::secret_ids(&references::find(&spec.to_value()).unwrap_or_default())
}

/// `art` with every reference replaced by its value: secrets from `secrets`, variables from the
/// gateway's environment (never one of its own `GATEHOUSE_*` settings). The result is parsed
/// again, so a value that does not fit its field is reported like a bad document.
pub fn resolve<'a>(art: &'a StoredArtifact, secrets: &Secrets) -> Resolved<'a> {
    let spec = art.document.spec.to_value();
    let found = match references::find(&spec) {
        Ok(found) => found,
        Err(e) => {
            return Resolved {
                artifact: Err(format!("{}: {}", e.field, e.message)),
                secrets: vec![],
            }
        }
    };
    if found.is_empty() {
        return Resolved {
            artifact: Ok(Cow::Borrowed(art)),
            secrets: vec![],
        };
    }
    let ids: Vec<Arc<str>> = references::secret_ids(&found)
        .into_iter()
        .map(Arc::from)
        .collect();
    let artifact = check(&found, secrets).and_then(|()| {
        let lookup = |r: &Reference| match r {
            Reference::Secret(id) => secrets.get(id.as_str()).map(|v| v.to_string()),
            Reference::Env(name) => std::env::var(name).ok(),
        };
        let value = references::resolve(&spec, &lookup)
            .map_err(|e| format!("{}: {}", e.field, e.message))?;
        let spec = ArtifactSpec::parse(art.kind(), value).map_err(|e| {
            // The message may quote the field's value: never the values put in place.
            let mut message = e.message;
            for (_, r) in &found {
                if let Some(v) = lookup(r).filter(|v| !v.is_empty()) {
                    message = message.replace(&v, &format!("<{r}>"));
                }
            }
            format!("with its references resolved, {}: {message}", e.field)
        })?;
        Ok(Cow::Owned(StoredArtifact {
            document: ArtifactDocument {
                kind: art.document.kind,
                metadata: art.document.metadata.clone(),
                spec,
            },
            ..art.clone()
        }))
    });
    Resolved {
        artifact,
        secrets: ids,
    }
}

/// Why a reference has no value here, naming its field; `Ok` when each has one.
fn check(found: &[(String, Reference)], secrets: &Secrets) -> Result<(), String> {
    for (field, r) in found {
        match r {
            Reference::Secret(id) if secrets.get(id.as_str()).is_none() => {
                return Err(format!(
                    "{field} references {r}, whose value this gateway has not received"
                ));
            }
            Reference::Env(name) if name.starts_with(RESERVED_ENV_PREFIX) => {
                return Err(format!(
                    "{field} references {r}: the gateway's own {RESERVED_ENV_PREFIX}* settings cannot be referenced"
                ));
            }
            Reference::Env(name) if std::env::var_os(name).is_none() => {
                return Err(format!(
                    "{field} references {r}, which is not set on this gateway"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(credential: &str) -> StoredArtifact {
        let doc = ArtifactDocument::from_value(json!({
            "apiVersion": gatehouse_core::API_VERSION, "kind": "LlmProvider", "metadata": {"name": "openai"},
            "spec": {"displayName": "openai", "template": "openai", "context": "/openai",
                     "upstream": {"url": "http://127.0.0.1:9", "auth": {"type": "api-key", "header": "Authorization", "value": credential}}}
        }))
        .unwrap();
        StoredArtifact {
            id: "a-1".into(),
            document: doc,
            state: crate::store::State::Deployed,
            origin: crate::store::Origin::ControlPlane,
            artifact_uuid: None,
            deployment_id: None,
            deployed_at: None,
        }
    }

    fn credential(a: &StoredArtifact) -> String {
        a.document.spec.to_value()["upstream"]["auth"]["value"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn secrets_are_put_in_place_and_missing_ones_named() {
        let secrets = Secrets::new(Some("token"));
        let art = provider(r#"Bearer {{ secret "openai" }}"#);
        let r = resolve(&art, &secrets);
        assert_eq!(r.secrets, vec![Arc::from("openai")]);
        let err = r.artifact.err().unwrap();
        assert!(err.contains("secret 'openai'"), "{err}");
        assert!(err.contains("upstream.auth.value"), "{err}");

        secrets.put("openai", "sk-1");
        let r = resolve(&art, &secrets);
        assert_eq!(credential(&r.artifact.unwrap()), "Bearer sk-1");
        // The stored artifact keeps its reference.
        assert_eq!(credential(&art), r#"Bearer {{ secret "openai" }}"#);
    }

    #[test]
    fn an_artifact_without_references_is_borrowed() {
        let art = provider("Bearer sk-plain");
        let r = resolve(&art, &Secrets::new(None));
        assert!(matches!(r.artifact, Ok(Cow::Borrowed(_))));
        assert!(r.secrets.is_empty());
    }

    #[test]
    fn the_gateways_own_settings_are_never_resolved() {
        let art = provider(r#"{{ env "GATEHOUSE_TOKEN" }}"#);
        let err = resolve(&art, &Secrets::new(None)).artifact.err().unwrap();
        assert!(err.contains("cannot be referenced"), "{err}");
        let art = provider(r#"{{ env "GATEHOUSE_TEST_SURELY_UNSET_VARIABLE_X" }}"#);
        assert!(resolve(&art, &Secrets::new(None)).artifact.is_err());
        let art = provider(r#"{{ env "PATH" }}"#);
        let resolved = resolve(&art, &Secrets::new(None)).artifact.unwrap();
        assert_eq!(credential(&resolved), std::env::var("PATH").unwrap());
    }

    #[test]
    fn values_seal_under_the_token_and_open_only_with_it() {
        let a = Secrets::new(Some("token-a"));
        let sealed = a.seal("sk-1").unwrap();
        assert!(!sealed.contains("sk-1"));
        assert_eq!(a.open(&sealed).unwrap(), "sk-1");
        assert!(Secrets::new(Some("token-b")).open(&sealed).is_err());
        assert!(matches!(
            Secrets::new(None).seal("x"),
            Err(SealError::NoKey)
        ));
    }
}
