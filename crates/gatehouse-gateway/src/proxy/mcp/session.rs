//! Session ids of an MCP proxy over several servers. The gateway answers `initialize` itself,
//! opens a session on each server, and gives the client one id that carries every server's
//! session id and protocol version, sealed (AES-256-GCM, bound to the proxy) with a key all the
//! gateways of the organization share. Any gateway holding the proxy opens it and continues the
//! session: nothing is stored, nothing is shared but the key. docs/mcp.md tells the design.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of the session ids the gateway makes (the version of their format).
const PREFIX: &str = "gh1.";

/// Longest session id opened: ids are short, and a long one is not ours.
const MAX_ID: usize = 8 << 10;

/// One server's part of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSession {
    /// The server's `Mcp-Session-Id` (none for a server that keeps no sessions).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The protocol version the server agreed to.
    #[serde(rename = "p")]
    pub version: String,
}

/// What a client's session id carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The protocol version the client was given.
    #[serde(rename = "v")]
    pub version: String,
    /// The servers that answered `initialize`, by name.
    #[serde(rename = "s")]
    pub servers: BTreeMap<String, ServerSession>,
}

/// Seals and opens the session ids of one proxy.
pub struct SessionSealer {
    cipher: Aes256Gcm,
    /// Binds ids to the proxy: one proxy's id does not open at another's.
    aad: Vec<u8>,
}

/// The key of a gateway process, for proxies given no `sessionKey` (from a gateway's own API):
/// their sessions continue on this process only.
fn process_key() -> [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        k
    })
}

impl SessionSealer {
    /// The sealer of proxy `artifact` with `secret` (the spec's `sessionKey`).
    pub fn new(secret: Option<&str>, artifact: &str) -> Self {
        let key: [u8; 32] = match secret {
            Some(s) => Sha256::digest(s.as_bytes()).into(),
            None => process_key(),
        };
        Self {
            // A 32-byte key is what AES-256 takes.
            cipher: Aes256Gcm::new(&key.into()),
            aad: format!("gatehouse mcp session|{artifact}").into_bytes(),
        }
    }

    /// The client's id of `session`.
    pub fn seal(&self, session: &Session) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = serde_json::to_vec(session).unwrap_or_default();
        // Encryption with a fresh nonce into memory does not fail.
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &self.aad,
                },
            )
            .unwrap_or_default();
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&ct);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
    }

    /// The session an id carries; `None` for an id this proxy did not make (forged, altered,
    /// another proxy's, or sealed with another key).
    pub fn open(&self, id: &str) -> Option<Session> {
        if id.len() > MAX_ID {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(id.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &self.aad,
                },
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            version: "2025-06-18".into(),
            servers: BTreeMap::from([
                (
                    "docs".into(),
                    ServerSession {
                        id: Some("abc123".into()),
                        version: "2025-06-18".into(),
                    },
                ),
                (
                    "git".into(),
                    ServerSession {
                        id: None,
                        version: "2025-03-26".into(),
                    },
                ),
            ]),
        }
    }

    #[test]
    fn an_id_opens_with_the_same_key_on_any_gateway() {
        let key = "k".repeat(43);
        let one = SessionSealer::new(Some(&key), "tools");
        let other = SessionSealer::new(Some(&key), "tools");
        let id = one.seal(&session());
        assert!(id.starts_with(PREFIX));
        assert!(
            id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "visible ASCII"
        );
        assert_eq!(other.open(&id), Some(session()));
        assert_ne!(one.seal(&session()), id, "a fresh nonce each time");
    }

    #[test]
    fn forged_altered_and_foreign_ids_do_not_open() {
        let key = "k".repeat(43);
        let sealer = SessionSealer::new(Some(&key), "tools");
        let id = sealer.seal(&session());
        let mut altered = id.clone().into_bytes();
        let i = altered.len() - 5;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(SessionSealer::new(Some(&key), "other").open(&id), None);
        assert_eq!(
            SessionSealer::new(Some(&"x".repeat(43)), "tools").open(&id),
            None
        );
        assert_eq!(SessionSealer::new(None, "tools").open(&id), None);
        for junk in ["", "gh1.", "gh1.!!!", "abc", &"gh1.A".repeat(5000)] {
            assert_eq!(sealer.open(junk), None);
        }
    }
}
