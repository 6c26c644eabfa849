//! `api-key-auth`: a request must carry an active, unexpired key of the artifact it calls.

use std::sync::Arc;

use gatehouse_core::policy::ApiKeyAuthParams;
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

/// The header clients put their key in unless configured otherwise.
pub const DEFAULT_HEADER: &str = "api-key";

/// Why a key was refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("API key expired")]
    Expired,
}

/// One key of an artifact, as the data plane checks it.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub id: Arc<str>,
    pub active: bool,
    pub expires_at_ms: Option<i64>,
}

/// An artifact's keys by the SHA-256 digest of their value. The digest is already uniform and the set holds
/// only keys the platform issued, so a fast unkeyed hash serves: a caller cannot fill the set
/// with colliding entries.
pub type KeySet = rustc_hash::FxHashMap<[u8; 32], KeyEntry>;

/// Hash of a presented or stored key.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    header: HeaderName,
}

impl ApiKeyAuth {
    /// From `params.header` (default `API-Key`).
    pub fn new(params: &ApiKeyAuthParams) -> Self {
        let header = params.header.as_ref().map_or_else(
            || HeaderName::from_static(DEFAULT_HEADER),
            |h| h.header_name().clone(),
        );
        Self { header }
    }

    /// Checks the request's key and removes it from the headers (the upstream never sees it).
    /// Returns the key's id, or why it was refused.
    pub fn check(
        &self,
        headers: &mut HeaderMap,
        keys: &KeySet,
        now_ms: i64,
    ) -> Result<Arc<str>, AuthError> {
        let value = headers.remove(&self.header);
        self.check_value(value.as_ref().map(|v| v.as_bytes()), keys, now_ms)
    }

    /// The header the key comes in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// Checks a key presented as `value` (the first of the policy's header, if any), for a
    /// request whose headers are not in a map; the caller leaves the header out upstream.
    pub fn check_value(
        &self,
        value: Option<&[u8]>,
        keys: &KeySet,
        now_ms: i64,
    ) -> Result<Arc<str>, AuthError> {
        let value = value.ok_or(AuthError::Missing)?;
        // Visible ASCII only, as a header value's text.
        let text = std::str::from_utf8(value)
            .ok()
            .filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
            .ok_or(AuthError::Invalid)?;
        // In `Authorization` the key comes as a bearer token (as LLM SDKs send it).
        let key = if self.header == http::header::AUTHORIZATION {
            text.strip_prefix("Bearer ").unwrap_or(text)
        } else {
            text
        };
        let digest = key_digest(key);
        match keys.get(&digest) {
            Some(k) if k.active && k.expires_at_ms.is_none_or(|t| t > now_ms) => Ok(k.id.clone()),
            Some(k) if k.active => Err(AuthError::Expired),
            _ => Err(AuthError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::error::ProxyError;
    use http::StatusCode;
    use serde_json::json;

    fn keys() -> KeySet {
        let mut k = KeySet::default();
        k.insert(
            key_digest("good"),
            KeyEntry {
                id: "k1".into(),
                active: true,
                expires_at_ms: None,
            },
        );
        k.insert(
            key_digest("revoked"),
            KeyEntry {
                id: "k2".into(),
                active: false,
                expires_at_ms: None,
            },
        );
        k.insert(
            key_digest("old"),
            KeyEntry {
                id: "k3".into(),
                active: true,
                expires_at_ms: Some(1000),
            },
        );
        k
    }

    #[test]
    fn accepts_only_active_unexpired_keys_of_the_artifact() {
        let auth = ApiKeyAuth::new(&ApiKeyAuthParams::default());
        let check = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert("API-Key", v.parse().unwrap());
            }
            let r = auth
                .check(&mut h, &keys(), 5000)
                .map(|id| id.to_string())
                .map_err(|e| ProxyError::from(e).into_response().status());
            assert!(h.get("api-key").is_none(), "the key never goes upstream");
            r
        };
        assert_eq!(check(Some("good")), Ok("k1".to_owned()));
        assert_eq!(check(Some("revoked")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check(Some("old")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check(Some("unknown")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check(None), Err(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn header_is_configurable() {
        let p: ApiKeyAuthParams = serde_json::from_value(json!({"header": "X-Token"})).unwrap();
        let auth = ApiKeyAuth::new(&p);
        let mut h = HeaderMap::new();
        h.insert("x-token", "good".parse().unwrap());
        assert!(auth.check(&mut h, &keys(), 0).is_ok());
        let mut h = HeaderMap::new();
        h.insert("api-key", "good".parse().unwrap());
        assert!(auth.check(&mut h, &keys(), 0).is_err());
    }
}
