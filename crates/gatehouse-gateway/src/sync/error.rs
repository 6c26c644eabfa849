//! The errors of the control-plane connection: `SyncError` ends a session (the loop reconnects
//! and shows it as `lastError`); `ApplyRefusal` is why one deployment was not applied, sent
//! back to the platform in a failed ack.

use gatehouse_core::protocol::EventError;
use gatehouse_core::FieldError;
use tokio_tungstenite::tungstenite;

use crate::store::StoreError;

/// Why talking to the control plane, or applying what it sent, failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The HTTP client of the internal API could not be built.
    #[error("building the control-plane client: {0}")]
    Client(#[source] reqwest::Error),
    /// A call to the internal API did not reach the control plane.
    #[error("{call}: control plane unreachable: {source}")]
    Unreachable {
        call: &'static str,
        source: reqwest::Error,
    },
    /// The control plane answered a call with an error status.
    #[error("{call}: control plane answered {status}: {message}")]
    Status {
        call: &'static str,
        status: reqwest::StatusCode,
        /// The answer's body, as sent.
        message: String,
    },
    /// An answer of the internal API could not be decoded.
    #[error("{call}: unreadable answer: {source}")]
    Decode {
        call: &'static str,
        source: reqwest::Error,
    },
    /// The gateway token cannot be sent as a header.
    #[error("the gateway token is not a valid header value: {0}")]
    Token(#[source] http::header::InvalidHeaderValue),
    /// The WebSocket failed: connecting, reading or sending (boxed: the error is large).
    #[error("{0}")]
    WebSocket(#[source] Box<tungstenite::Error>),
    /// The control plane did not answer in time.
    #[error("{0}: no answer in time")]
    Timeout(&'static str),
    /// The control plane broke the connection protocol (e.g. an unexpected first frame).
    #[error("{0}")]
    Protocol(String),
    /// A frame could not be read or written as JSON.
    #[error("{what}: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    /// An event whose payload does not fit its type.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret value could not be sealed for the store.
    #[error("sealing a secret value: {0}")]
    Seal(#[from] crate::secrets::SealError),
}

impl From<tungstenite::Error> for SyncError {
    fn from(e: tungstenite::Error) -> Self {
        SyncError::WebSocket(Box::new(e))
    }
}

impl SyncError {
    /// The message followed by the causes it does not already show (`a: b: c`), for logs and
    /// the status's `lastError`.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let part = c.to_string();
            if !text.contains(&part) {
                text = format!("{text}: {part}");
            }
            cause = c.source();
        }
        text
    }
}

/// Why the gateway refused to apply one deployment; the ack's `errorCode` is [`Self::as_code`].
#[derive(Debug, thiserror::Error)]
pub enum ApplyRefusal {
    /// Another held artifact of the same kind has the handle.
    #[error("configuration already exists: {0}")]
    HandleConflict(String),
    /// The artifact's context (or another unique value) is already served.
    #[error("{0}")]
    ContextConflict(String),
    /// The deployment's document is not a valid artifact.
    #[error("{0}")]
    InvalidConfiguration(FieldError),
    /// The local store failed while applying it.
    #[error(transparent)]
    Processing(StoreError),
}

impl ApplyRefusal {
    /// The ack's `errorCode`.
    pub fn as_code(&self) -> &'static str {
        match self {
            ApplyRefusal::HandleConflict(_) => "HANDLE_CONFLICT",
            ApplyRefusal::ContextConflict(_) => "CONTEXT_CONFLICT",
            ApplyRefusal::InvalidConfiguration(_) => "INVALID_CONFIGURATION",
            ApplyRefusal::Processing(_) => "GATEWAY_PROCESSING_ERROR",
        }
    }
}

impl From<StoreError> for ApplyRefusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(m) => ApplyRefusal::HandleConflict(m),
            StoreError::Conflict(m) => ApplyRefusal::ContextConflict(m),
            other => ApplyRefusal::Processing(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_call_names_the_call_and_the_status() {
        let e = SyncError::Status {
            call: "GET /deployments",
            status: reqwest::StatusCode::UNAUTHORIZED,
            message: "token revoked".into(),
        };
        assert_eq!(
            e.with_causes(),
            "GET /deployments: control plane answered 401 Unauthorized: token revoked"
        );
        let e = SyncError::Store(StoreError::Db(sqlx::Error::PoolClosed));
        assert_eq!(
            e.with_causes(),
            StoreError::Db(sqlx::Error::PoolClosed).to_string()
        );
    }

    #[test]
    fn each_refusal_has_its_ack_code_and_the_store_message() {
        let cases = [
            (
                ApplyRefusal::from(StoreError::AlreadyExists("LlmProvider 'openai'".into())),
                "HANDLE_CONFLICT",
                "configuration already exists: LlmProvider 'openai'",
            ),
            (
                ApplyRefusal::from(StoreError::Conflict("context '/a' is served".into())),
                "CONTEXT_CONFLICT",
                "context '/a' is served",
            ),
            (
                ApplyRefusal::InvalidConfiguration(FieldError::new("spec", "missing")),
                "INVALID_CONFIGURATION",
                "",
            ),
            (
                ApplyRefusal::from(StoreError::NotFound),
                "GATEWAY_PROCESSING_ERROR",
                "not found",
            ),
        ];
        for (refusal, code, message) in cases {
            assert_eq!(refusal.as_code(), code, "{refusal:?}");
            if !message.is_empty() {
                assert_eq!(refusal.to_string(), message);
            }
        }
    }
}
