//! The client's one error type.

use reqwest::StatusCode;

/// Why a call to the platform failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent, or its answer not read (connection refused, timeout,
    /// malformed URL).
    #[error("cannot reach {url}")]
    Transport {
        /// The URL asked for.
        url: String,
        /// What went wrong on the way.
        #[source]
        source: reqwest::Error,
    },
    /// The platform answered with an error status; `message` is the one it gave.
    #[error("{status}: {message}")]
    Status {
        /// The status it answered with.
        status: StatusCode,
        /// The platform's machine-readable code (`NOT_FOUND`, `CONFLICT`, ...), when it sent one.
        code: Option<String>,
        /// What went wrong, as the platform put it (the body's text when it is not the API's
        /// error format).
        message: String,
    },
    /// The platform answered with success but a body of an unexpected shape.
    #[error("unexpected answer to {path}")]
    Decode {
        /// The path asked for.
        path: String,
        /// How the body did not fit.
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The HTTP status the platform answered with, for [`ClientError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the platform answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Whether the platform answered 409.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// The error for a non-success answer: the server's `message` when its body is the API's
    /// error format, else the body's text.
    pub(crate) fn from_answer(status: StatusCode, body: &serde_json::Value) -> Self {
        let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let message = text("message").unwrap_or_else(|| match body {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        });
        ClientError::Status {
            status,
            code: text("code"),
            message,
        }
    }
}
