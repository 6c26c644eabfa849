//! The control plane's internal API, as the gateway calls it.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::{json, Value};

use gatehouse_core::protocol::DesiredState;
use gatehouse_core::ArtifactKind;

/// Most ids per `/artifacts/exists` call.
pub const EXISTS_CHUNK: usize = 1000;
/// Deployments fetched per `/deployments/fetch-batch` call.
pub const FETCH_CHUNK: usize = 100;

/// One entry of `GET /deployments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub deployment_id: String,
    pub state: DesiredState,
    pub deployed_at: String,
}

/// `GET /deployments`.
#[derive(Debug, Deserialize)]
pub struct DesiredList {
    pub revision: i64,
    pub deployments: Vec<Desired>,
}

/// One deployment's content.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub deployment_id: String,
    pub artifact_id: String,
    pub content: Value,
}

#[derive(Deserialize)]
struct Batch {
    deployments: Vec<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Existence {
    artifact_id: String,
    exists: bool,
}

#[derive(Deserialize)]
struct ExistsAnswer {
    artifacts: Vec<Existence>,
}

/// An API key as the platform delivers it (in events and `GET /api-keys`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub artifact_id: String,
    pub key_id: String,
    pub name: String,
    #[serde(default)]
    pub api_key_hash: String,
    #[serde(default)]
    pub masked_api_key: String,
    pub status: String,
    pub expires_at: Option<i64>,
}

impl KeyInfo {
    /// The key as the gateway stores it.
    pub fn stored(&self) -> crate::store::StoredKey {
        crate::store::StoredKey {
            id: self.key_id.clone(),
            artifact_id: String::new(),
            display_name: self.name.clone(),
            key_hash: self.api_key_hash.clone(),
            masked_api_key: self.masked_api_key.clone(),
            status: self.status.clone(),
            expires_at: self.expires_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyList {
    api_keys: Vec<KeyInfo>,
}

/// A subscription as the platform delivers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubInfo {
    pub subscription_id: String,
    pub artifact_id: String,
    #[serde(default)]
    pub subscriber_id: String,
    #[serde(default)]
    pub token_hash: String,
    pub plan_id: Option<String>,
    #[serde(default)]
    pub status: String,
}

impl SubInfo {
    /// The subscription as the gateway stores it.
    pub fn stored(&self) -> crate::store::StoredSubscription {
        crate::store::StoredSubscription {
            id: self.subscription_id.clone(),
            artifact_id: String::new(),
            subscriber_id: self.subscriber_id.clone(),
            token_hash: self.token_hash.clone(),
            plan_id: self.plan_id.clone(),
            status: self.status.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanList {
    subscription_plans: Vec<crate::store::StoredPlan>,
}

#[derive(Deserialize)]
struct SubList {
    subscriptions: Vec<SubInfo>,
}

/// A client of `/api/internal/v1` with the gateway's token.
#[derive(Clone)]
pub struct InternalApi {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl InternalApi {
    /// A client of the control plane at `base` (e.g. `http://127.0.0.1:9243`).
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: format!("{}/api/internal/v1", base.trim_end_matches('/')),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<T> {
        let res = req
            .header("api-key", &self.token)
            .send()
            .await
            .with_context(|| format!("{what}: control plane unreachable"))?;
        let status = res.status();
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            anyhow::bail!("{what}: control plane answered {status}: {body}");
        }
        res.json()
            .await
            .with_context(|| format!("{what}: unreadable answer"))
    }

    /// This gateway's desired state and the revision it reflects.
    pub async fn desired(&self) -> anyhow::Result<DesiredList> {
        self.call(
            self.http.get(format!("{}/deployments", self.base)),
            "GET /deployments",
        )
        .await
    }

    /// The contents of `ids` (missing ones omitted).
    pub async fn fetch(&self, ids: &[String]) -> anyhow::Result<Vec<Content>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_CHUNK) {
            let b: Batch = self
                .call(
                    self.http
                        .post(format!("{}/deployments/fetch-batch", self.base))
                        .json(&json!({"deploymentIds": chunk})),
                    "POST /deployments/fetch-batch",
                )
                .await?;
            out.extend(b.deployments);
        }
        Ok(out)
    }

    /// Which of `ids` still exist, asked in chunks; any failure fails the whole question.
    pub async fn existing(
        &self,
        ids: &[String],
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        for chunk in ids.chunks(EXISTS_CHUNK) {
            let a: ExistsAnswer = self
                .call(
                    self.http
                        .post(format!("{}/artifacts/exists", self.base))
                        .json(&json!({"artifactIds": chunk})),
                    "POST /artifacts/exists",
                )
                .await?;
            out.extend(
                a.artifacts
                    .into_iter()
                    .filter(|e| e.exists)
                    .map(|e| e.artifact_id),
            );
        }
        Ok(out)
    }

    /// The keys of the artifacts this gateway holds (or of one of them).
    pub async fn keys(&self, artifact: Option<&str>) -> anyhow::Result<Vec<KeyInfo>> {
        let mut req = self.http.get(format!("{}/api-keys", self.base));
        if let Some(a) = artifact {
            req = req.query(&[("artifactId", a)]);
        }
        let l: KeyList = self.call(req, "GET /api-keys").await?;
        Ok(l.api_keys)
    }

    /// The organization's subscription plans.
    pub async fn plans(&self) -> anyhow::Result<Vec<crate::store::StoredPlan>> {
        let l: PlanList = self
            .call(
                self.http.get(format!("{}/subscription-plans", self.base)),
                "GET /subscription-plans",
            )
            .await?;
        Ok(l.subscription_plans)
    }

    /// The subscriptions of the artifacts this gateway holds.
    pub async fn subscriptions(&self) -> anyhow::Result<Vec<SubInfo>> {
        let l: SubList = self
            .call(
                self.http.get(format!("{}/subscriptions", self.base)),
                "GET /subscriptions",
            )
            .await?;
        Ok(l.subscriptions)
    }

    /// The WebSocket URL for `applied`.
    pub fn ws_url(&self, applied: i64) -> String {
        let base = self
            .base
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        format!("{base}/ws/gateways/connect?appliedRevision={applied}")
    }

    /// The gateway token.
    pub fn token(&self) -> &str {
        &self.token
    }
}
