//! Credentials inside stored specs: removed from what the API shows, sealed at rest, opened for
//! the gateways, and the MCP session key the control plane adds for them.

use serde_json::Value;

use gatehouse_core::spec::CredentialSlot;
use gatehouse_core::ArtifactKind;

use crate::crypto::Sealer;

/// Removes credential values from a spec; the public API never returns them.
pub fn redact_credentials(kind: ArtifactKind, spec: &mut Value) {
    gatehouse_core::spec::redact_credentials(kind, spec);
}

/// Puts the organization's MCP session secret into the spec of a proxy over several servers,
/// for the gateway: every gateway of the organization gets the same one, derived from the
/// platform's key, so that any of them continues a session another began (docs/mcp.md).
pub fn add_session_key(sealer: &Sealer, org_id: &str, kind: ArtifactKind, spec: &mut Value) {
    let multiplexed = spec
        .get("upstreams")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty());
    if kind == ArtifactKind::Mcp && multiplexed {
        spec["sessionKey"] = Value::String(sealer.derive(&format!("mcp-sessions|{org_id}")));
    }
}

/// Replaces sealed credential values in a spec with their plaintext, for the gateway.
pub fn open_credentials(
    sealer: &Sealer,
    kind: ArtifactKind,
    spec: &mut Value,
) -> anyhow::Result<()> {
    for slot in CredentialSlot::of(kind) {
        if let Some(value) = spec.pointer_mut(&slot.pointer()) {
            if let Some(sealed) = value.as_str() {
                *value = Value::String(sealer.open(sealed)?);
            }
        }
    }
    Ok(())
}
