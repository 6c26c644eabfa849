//! A typed client of the platform's public API (`/api/v1`), shared by the CLI, `gatehouse dev`
//! and the test kit, so the three speak to the platform one way. Artifact kinds and specs are
//! `gatehouse-core` types; every failure is a [`ClientError`].
//!
//! Typed methods cover the calls Gatehouse's own tools make; [`Client::request`] is the escape
//! hatch for anything else (tests probing error statuses, the gateway's internal API).

#![warn(missing_docs)]

mod artifacts;
mod error;
mod gateways;
mod llm_templates;
mod secrets;
mod types;
mod users;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use error::ClientError;
pub use llm_templates::TemplateInfo;
pub use reqwest::{Method, StatusCode};
pub use secrets::SecretInfo;
pub use types::{
    ApiKey, Artifact, CreatedApiKey, Deployment, Gateway, GatewayStatus, GatewayToken, List, Login,
    NewApiKey, NewArtifact, NewGateway, Pagination, TokenInfo,
};
pub use users::UserInfo;

/// The path prefix of the platform's public API.
pub const PUBLIC_API: &str = "/api/v1";

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// No body.
    Empty,
    /// A JSON body (`content-type: application/json`).
    Json(&'a Value),
    /// Raw bytes with their content type (for probing how the server treats odd bodies).
    Bytes {
        /// The `content-type` header.
        content_type: &'a str,
        /// The body.
        bytes: &'a [u8],
    },
}

/// A client of one platform (or any Gatehouse HTTP server), optionally authenticated.
/// Cloning is cheap: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Client {
    /// Header names only: their values hold tokens and keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// An anonymous client of the server at `base` (e.g. `http://127.0.0.1:9243`). A malformed
    /// URL is reported by the first call, as [`ClientError::Transport`].
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            headers: vec![],
            timeout: None,
        }
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same client, sending `Authorization: Bearer <token>` (a login token).
    pub fn with_token(&self, token: &str) -> Self {
        self.with_header("authorization", &format!("Bearer {token}"))
    }

    /// The same client with a header on every request (replacing one of the same name).
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let mut c = self.clone();
        c.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        c.headers.push((name.to_owned(), value.to_owned()));
        c
    }

    /// The same client, giving up on a call after `timeout` (default: no limit).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Sends `method path` (`path` from the server's root, e.g. `/api/v1/gateways`) with this
    /// client's headers plus `headers`, and returns the raw response whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.builder(method, path);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(v),
            Body::Bytes {
                content_type,
                bytes,
            } => req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes.to_vec()),
        };
        self.execute(path, req).await
    }

    /// A request to `path` (from the server's root) with this client's headers and timeout.
    fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        for (n, v) in &self.headers {
            req = req.header(n, v);
        }
        req
    }

    async fn execute(
        &self,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        req.send().await.map_err(|source| ClientError::Transport {
            url: format!("{}{path}", self.base),
            source,
        })
    }

    /// The status and body of an answer: JSON; a non-JSON body as a string; no body as `null`.
    async fn read(
        &self,
        path: &str,
        res: reqwest::Response,
    ) -> Result<(StatusCode, Value), ClientError> {
        let status = res.status();
        let text = res.text().await.map_err(|source| ClientError::Transport {
            url: format!("{}{path}", self.base),
            source,
        })?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, body))
    }

    /// The escape hatch: `method path` with an optional JSON body, answered with the status and
    /// the body whatever the status (JSON; a non-JSON body as a string; no body as `null`).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        self.request_with(method, path, body.map_or(Body::Empty, Body::Json))
            .await
    }

    /// Like [`Client::request`], with any [`Body`].
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let res = self.send(method, path, body, &[]).await?;
        self.read(path, res).await
    }

    /// Logs in to the platform; [`Client::with_token`] turns the answer into an authenticated
    /// client.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        organization: Option<&str>,
    ) -> Result<Login, ClientError> {
        #[derive(Serialize)]
        struct LoginRequest<'a> {
            username: &'a str,
            password: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            organization: Option<&'a str>,
        }
        let body = LoginRequest {
            username,
            password,
            organization,
        };
        self.call(Method::POST, "/auth/login", Some(&body)).await
    }

    /// Reads any resource of the public API (`path` under `/api/v1`) as the JSON the platform
    /// wrote, failing on an error status.
    pub async fn read_json(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `method /api/v1{path}` with a JSON body, decoding a success answer as `T` and turning an
    /// error status into [`ClientError::Status`].
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let full = format!("{PUBLIC_API}{path}");
        let answer = self.answer(method, &full, body).await?;
        serde_json::from_value(answer).map_err(|source| ClientError::Decode { path: full, source })
    }

    /// Like [`Client::call`] for calls answered without a body (`204`).
    async fn call_no_content(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.answer(method, &format!("{PUBLIC_API}{path}"), None::<&()>)
            .await
            .map(drop)
    }

    /// The body of a success answer to `method path`; an error status as [`ClientError::Status`].
    async fn answer(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Value, ClientError> {
        let mut req = self.builder(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = self.execute(path, req).await?;
        let (status, answer) = self.read(path, res).await?;
        if status.is_success() {
            Ok(answer)
        } else {
            Err(ClientError::from_answer(status, &answer))
        }
    }
}
