//! Request bodies of the management API: YAML or JSON, by `Content-Type` or by content.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use super::AdminError;

/// A YAML or JSON body, parsed to a JSON value.
pub struct Document(pub Value);

impl<S: Send + Sync> FromRequest<S> for Document {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AdminError::TooLarge
            } else {
                AdminError::BadRequest(format!("could not read the body: {r}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AdminError::BadRequest(
                "a YAML or JSON body is required".into(),
            ));
        }
        let value = if content_type.contains("yaml") {
            parse_yaml(&bytes)?
        } else if content_type.contains("json") {
            parse_json(&bytes)?
        } else {
            // No declared type: JSON if it parses as JSON, YAML otherwise.
            parse_json(&bytes).or_else(|_| parse_yaml(&bytes))?
        };
        if !value.is_object() {
            return Err(AdminError::BadRequest(
                "the body must be a mapping (a YAML or JSON object)".into(),
            ));
        }
        Ok(Document(value))
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, AdminError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AdminError::BadRequest(format!("malformed JSON: {e}")))
}

fn parse_yaml(bytes: &[u8]) -> Result<Value, AdminError> {
    gatehouse_core::yaml::from_slice(bytes)
        .map_err(|e| AdminError::BadRequest(format!("malformed YAML: {e}")))
}
