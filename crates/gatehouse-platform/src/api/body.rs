//! The JSON body extractor: size limit → 413, malformed JSON or a wrong field → 400 naming it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use gatehouse_core::FieldError;

use crate::error::ApiError;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("the request body is larger than the limit".into())
            } else {
                ApiError::Invalid(format!("could not read the request body: {rejection}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::Invalid("a JSON body is required".into()));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut de) {
            Ok(v) => {
                de.end()
                    .map_err(|e| ApiError::Invalid(format!("malformed JSON: {e}")))?;
                Ok(JsonBody(v))
            }
            Err(err) => {
                let inner = err.inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::Invalid(format!("malformed JSON: {inner}")))
                } else {
                    Err(FieldError::from_serde(err).into())
                }
            }
        }
    }
}

/// Query parameters of type `T`; a bad value is a 400 in the API's error format.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from(query).map(Params)
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::Invalid("malformed query string".into()))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::Invalid(format!("invalid query parameters: {}", e.body_text())))
}
