//! The test kit's JSON client: `(status, body)` answers for asserting on both.

use std::time::Duration;

use gatehouse_client::{Body, ClientError, Method};
use serde_json::Value;

/// A JSON client for Gatehouse's HTTP APIs (public, internal, management, traffic), answering
/// `(status, body)` whatever the status so tests can assert on both. A thin layer over
/// [`gatehouse_client::Client`]; [`Client::api`] gives its typed calls.
#[derive(Clone)]
pub struct Client {
    inner: gatehouse_client::Client,
}

/// How long a test waits for any one answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// A client without credentials.
    pub fn anonymous(base: &str) -> Self {
        Self {
            inner: gatehouse_client::Client::new(base).with_timeout(CALL_TIMEOUT),
        }
    }

    /// The typed platform client underneath, with this client's headers.
    pub fn api(&self) -> &gatehouse_client::Client {
        &self.inner
    }

    /// The same client with `Authorization: Bearer token`.
    pub fn with_bearer(&self, token: &str) -> Self {
        Self {
            inner: self.inner.with_token(token),
        }
    }

    /// The same client with an extra header on every request.
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        Self {
            inner: self.inner.with_header(name, value),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Body<'_>) -> Answer {
        let (status, body) = self.inner.request_with(method, path, body).await?;
        Ok((status.as_u16(), body))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Body::Empty).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Body::Json(body)).await
    }

    /// `POST path` with raw bytes as the body.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Answer {
        self.post_typed(path, "application/json", body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PUT, path, Body::Json(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, Body::Empty).await
    }

    /// `POST path` with a raw body and content type.
    pub async fn post_typed(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let body = Body::Bytes {
            content_type,
            bytes: &body,
        };
        self.call(Method::POST, path, body).await
    }

    /// Sends a request built on this client's base URL and headers; returns the raw response.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        self.inner.send(method, path, Body::Empty, headers).await
    }

    /// `GET path` returning the raw text.
    pub async fn get_text(&self, path: &str) -> Result<(u16, String), ClientError> {
        let res = self.raw(Method::GET, path, &[]).await?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|source| ClientError::Transport {
            url: format!("{}{path}", self.inner.base()),
            source,
        })?;
        Ok((status, text))
    }
}

/// A status and a body (JSON; a non-JSON body as a string; no body as `null`).
pub type Answer = Result<(u16, Value), ClientError>;
