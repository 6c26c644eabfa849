//! The control plane's internal API, as the gateway calls it.

use std::time::Duration;

use gatehouse_core::protocol::{
    ApiKeyInfo, ApiKeyList, DeploymentContent, DesiredStateResponse, ExistsRequest, ExistsResponse,
    FetchBatchRequest, FetchBatchResponse, PlanInfo, PlanList, PublishRequest, PublishResponse,
    Revision, SecretValue, SecretValues, SubscriptionInfo, SubscriptionList,
};

use super::SyncError;
use crate::store::{StoredKey, StoredPlan, StoredSubscription};

/// Most ids per `/artifacts/exists` call.
pub const EXISTS_CHUNK: usize = 1000;
/// Deployments fetched per `/deployments/fetch-batch` call.
pub const FETCH_CHUNK: usize = 100;

/// A delivered key as the gateway stores it.
pub fn stored_key(k: &ApiKeyInfo) -> StoredKey {
    StoredKey {
        id: k.key_id.clone(),
        artifact_id: String::new(),
        display_name: k.name.clone(),
        key_hash: k.api_key_hash.clone(),
        masked_api_key: k.masked_api_key.clone(),
        status: k.status,
        expires_at: k.expires_at,
    }
}

/// A delivered subscription as the gateway stores it.
pub fn stored_subscription(s: &SubscriptionInfo) -> StoredSubscription {
    StoredSubscription {
        id: s.subscription_id.clone(),
        artifact_id: String::new(),
        subscriber_id: s.subscriber_id.clone(),
        token_hash: s.token_hash.clone(),
        plan_id: s.plan_id.clone(),
        status: s.status,
    }
}

/// A delivered plan as the gateway stores it.
pub fn stored_plan(p: &PlanInfo) -> StoredPlan {
    StoredPlan {
        id: p.plan_id.clone(),
        handle: p.handle.clone(),
        limits: p.limits.clone(),
        status: p.status,
    }
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
    pub fn new(base: &str, token: &str) -> Result<Self, SyncError> {
        Ok(Self {
            base: format!("{}/api/internal/v1", base.trim_end_matches('/')),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(SyncError::Client)?,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        call: &'static str,
    ) -> Result<T, SyncError> {
        let res = req
            .header("api-key", &self.token)
            .send()
            .await
            .map_err(|source| SyncError::Unreachable { call, source })?;
        let status = res.status();
        if !status.is_success() {
            let message = res.text().await.unwrap_or_default();
            return Err(SyncError::Status {
                call,
                status,
                message,
            });
        }
        res.json()
            .await
            .map_err(|source| SyncError::Decode { call, source })
    }

    /// This gateway's desired state and the revision it reflects.
    pub async fn desired(&self) -> Result<DesiredStateResponse, SyncError> {
        self.call(
            self.http.get(format!("{}/deployments", self.base)),
            "GET /deployments",
        )
        .await
    }

    /// The contents of `ids` (missing ones omitted).
    pub async fn fetch(&self, ids: &[String]) -> Result<Vec<DeploymentContent>, SyncError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_CHUNK) {
            let request = FetchBatchRequest {
                deployment_ids: chunk.to_vec(),
            };
            let b: FetchBatchResponse = self
                .call(
                    self.http
                        .post(format!("{}/deployments/fetch-batch", self.base))
                        .json(&request),
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
    ) -> Result<std::collections::HashSet<String>, SyncError> {
        let mut out = std::collections::HashSet::new();
        for chunk in ids.chunks(EXISTS_CHUNK) {
            let request = ExistsRequest {
                artifact_ids: chunk.to_vec(),
            };
            let a: ExistsResponse = self
                .call(
                    self.http
                        .post(format!("{}/artifacts/exists", self.base))
                        .json(&request),
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
    pub async fn keys(&self, artifact: Option<&str>) -> Result<Vec<ApiKeyInfo>, SyncError> {
        let mut req = self.http.get(format!("{}/api-keys", self.base));
        if let Some(a) = artifact {
            req = req.query(&[("artifactId", a)]);
        }
        let l: ApiKeyList = self.call(req, "GET /api-keys").await?;
        Ok(l.api_keys)
    }

    /// The organization's subscription plans.
    pub async fn plans(&self) -> Result<Vec<PlanInfo>, SyncError> {
        let l: PlanList = self
            .call(
                self.http.get(format!("{}/subscription-plans", self.base)),
                "GET /subscription-plans",
            )
            .await?;
        Ok(l.subscription_plans)
    }

    /// The subscriptions of the artifacts this gateway holds.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>, SyncError> {
        let l: SubscriptionList = self
            .call(
                self.http.get(format!("{}/subscriptions", self.base)),
                "GET /subscriptions",
            )
            .await?;
        Ok(l.subscriptions)
    }

    /// The values of the secrets this gateway's deployments reference (all, or one).
    pub async fn secrets(&self, id: Option<&str>) -> Result<Vec<SecretValue>, SyncError> {
        let mut req = self.http.get(format!("{}/secrets", self.base));
        if let Some(id) = id {
            req = req.query(&[("id", id)]);
        }
        let l: SecretValues = self.call(req, "GET /secrets").await?;
        Ok(l.secrets)
    }

    /// Publishes gateway-origin artifacts.
    pub async fn publish(&self, request: &PublishRequest) -> Result<PublishResponse, SyncError> {
        self.call(
            self.http
                .post(format!("{}/gateway-artifacts", self.base))
                .json(request),
            "POST /gateway-artifacts",
        )
        .await
    }

    /// The WebSocket URL for `applied`.
    pub fn ws_url(&self, applied: Revision) -> String {
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
