//! The credentials an artifact spec may carry: an LLM provider's upstream auth value and the
//! client keys of a REST API's upstream TLS. They are sealed at rest, never returned by a read
//! (the read shows `<field>Set: true` instead), and a replace that leaves one out keeps the
//! stored one.

use serde_json::Value;

use super::ArtifactSpec;
use crate::kind::ArtifactKind;

/// Where a credential sits in a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSlot {
    /// `upstream.auth.value` of an LLM provider.
    ProviderAuth,
    /// `upstream.main.tls.clientKey` of a REST API.
    MainClientKey,
    /// `upstream.sandbox.tls.clientKey` of a REST API.
    SandboxClientKey,
}

impl CredentialSlot {
    /// The slots a kind has.
    pub fn of(kind: ArtifactKind) -> &'static [CredentialSlot] {
        match kind {
            ArtifactKind::LlmProvider => &[CredentialSlot::ProviderAuth],
            ArtifactKind::RestApi => &[
                CredentialSlot::MainClientKey,
                CredentialSlot::SandboxClientKey,
            ],
            ArtifactKind::LlmProxy | ArtifactKind::Mcp => &[],
        }
    }

    /// The JSON pointer (within the spec) of the object holding the credential, and its field.
    pub fn location(self) -> (&'static str, &'static str) {
        match self {
            CredentialSlot::ProviderAuth => ("/upstream/auth", "value"),
            CredentialSlot::MainClientKey => ("/upstream/main/tls", "clientKey"),
            CredentialSlot::SandboxClientKey => ("/upstream/sandbox/tls", "clientKey"),
        }
    }

    /// The JSON pointer of the credential itself.
    pub fn pointer(self) -> String {
        let (parent, field) = self.location();
        format!("{parent}/{field}")
    }
}

impl ArtifactSpec {
    /// The spec's credentials that have a place in it (an LLM provider with `auth`, a REST API
    /// upstream with `tls`), each with its slot; `None` inside is a credential left out.
    pub fn credentials_mut(&mut self) -> Vec<(CredentialSlot, &mut Option<String>)> {
        let mut out = vec![];
        match self {
            ArtifactSpec::LlmProvider(s) => {
                if let Some(a) = s.upstream.auth.as_mut() {
                    out.push((CredentialSlot::ProviderAuth, &mut a.value));
                }
            }
            ArtifactSpec::RestApi(s) => {
                if let Some(t) = s.upstream.main.tls.as_mut() {
                    out.push((CredentialSlot::MainClientKey, &mut t.client_key));
                }
                if let Some(t) = s.upstream.sandbox.as_mut().and_then(|e| e.tls.as_mut()) {
                    out.push((CredentialSlot::SandboxClientKey, &mut t.client_key));
                }
            }
            ArtifactSpec::LlmProxy(_) | ArtifactSpec::Mcp(_) => {}
        }
        out
    }

    /// The credentials as a user wrote them are well-formed (a client key is a PEM private
    /// key). Checked where a spec comes in; a stored spec holds them sealed.
    pub fn validate_credentials(&self) -> Result<(), crate::validate::FieldError> {
        if let ArtifactSpec::RestApi(s) = self {
            if let Some(t) = &s.upstream.main.tls {
                t.validate_key("upstream.main.tls")?;
            }
            if let Some(t) = s.upstream.sandbox.as_ref().and_then(|e| e.tls.as_ref()) {
                t.validate_key("upstream.sandbox.tls")?;
            }
        }
        Ok(())
    }

    /// A replace that leaves a credential out keeps the one `previous` holds in that slot.
    pub fn keep_credentials_from(&mut self, previous: &mut ArtifactSpec) {
        let mut old = previous.credentials_mut();
        for (slot, new) in self.credentials_mut() {
            if new.is_none() {
                if let Some((_, o)) = old.iter_mut().find(|(s, _)| *s == slot) {
                    *new = o.take();
                }
            }
        }
    }
}

/// Removes credential values from a spec of `kind` as JSON; each removed one leaves
/// `<field>Set: true` in its place.
pub fn redact_credentials(kind: ArtifactKind, spec: &mut Value) {
    for slot in CredentialSlot::of(kind) {
        let (parent, field) = slot.location();
        if let Some(obj) = spec.pointer_mut(parent).and_then(Value::as_object_mut) {
            if obj.remove(field).is_some() {
                obj.insert(format!("{field}Set"), Value::Bool(true));
            }
        }
    }
}

/// Removes the `<field>Set` marks a read leaves, so that what was read can be written back.
pub fn remove_credential_marks(kind: ArtifactKind, spec: &mut Value) {
    for slot in CredentialSlot::of(kind) {
        let (parent, field) = slot.location();
        if let Some(obj) = spec.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.remove(&format!("{field}Set"));
        }
    }
}

/// Removes credential values and their `<field>Set` marks from a spec of `kind` as JSON, so that
/// a spec as written and one as read back compare equal.
pub fn strip_credentials(kind: ArtifactKind, spec: &mut Value) {
    for slot in CredentialSlot::of(kind) {
        let (parent, field) = slot.location();
        if let Some(obj) = spec.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.remove(field);
            obj.remove(&format!("{field}Set"));
        }
    }
}
