//! Artifacts of the four kinds, their deployments and their API keys.

use gatehouse_core::{ArtifactKind, Handle};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    ApiKey, Artifact, Client, ClientError, CreatedApiKey, Deployment, List, NewApiKey, NewArtifact,
};

/// `/{collection}/{id}` of an artifact.
fn artifact_path(kind: ArtifactKind, id: &Handle) -> String {
    format!("/{}/{id}", kind.collection())
}

impl Client {
    /// The artifacts of `kind` (the first page).
    pub async fn list_artifacts(&self, kind: ArtifactKind) -> Result<List<Artifact>, ClientError> {
        self.call(Method::GET, &format!("/{}", kind.collection()), None::<&()>)
            .await
    }

    /// One artifact; [`ClientError::is_not_found`] when there is none.
    pub async fn artifact(&self, kind: ArtifactKind, id: &Handle) -> Result<Artifact, ClientError> {
        self.call(Method::GET, &artifact_path(kind, id), None::<&()>)
            .await
    }

    /// Creates an artifact of the spec's kind.
    pub async fn create_artifact(&self, artifact: &NewArtifact) -> Result<Artifact, ClientError> {
        let path = format!("/{}", artifact.kind().collection());
        self.call(Method::POST, &path, Some(&artifact.to_value()))
            .await
    }

    /// Replaces an artifact's spec (gateways see it once it is deployed again).
    pub async fn update_artifact(&self, artifact: &NewArtifact) -> Result<Artifact, ClientError> {
        let path = artifact_path(artifact.kind(), &artifact.id);
        self.call(Method::PUT, &path, Some(&artifact.to_value()))
            .await
    }

    /// Deletes an artifact; every gateway of the organization is told.
    pub async fn delete_artifact(
        &self,
        kind: ArtifactKind,
        id: &Handle,
    ) -> Result<(), ClientError> {
        self.call_no_content(Method::DELETE, &artifact_path(kind, id))
            .await
    }

    /// Deploys the artifact as it is now to `gateway`.
    pub async fn deploy(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        gateway: &Handle,
    ) -> Result<Deployment, ClientError> {
        let path = format!("{}/deployments", artifact_path(kind, id));
        self.call(Method::POST, &path, Some(&json!({"gatewayId": gateway})))
            .await
    }

    /// The artifact's deployments, newest first; only those on `gateway` when given.
    pub async fn deployments(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        gateway: Option<&Handle>,
    ) -> Result<List<Deployment>, ClientError> {
        let mut path = format!("{}/deployments", artifact_path(kind, id));
        if let Some(g) = gateway {
            path.push_str(&format!("?gatewayId={g}"));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// One deployment of the artifact.
    pub async fn deployment(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        deployment_id: &str,
    ) -> Result<Deployment, ClientError> {
        let path = format!("{}/deployments/{deployment_id}", artifact_path(kind, id));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Undeploys the artifact's current deployment `deployment_id`.
    pub async fn undeploy(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        deployment_id: &str,
    ) -> Result<Deployment, ClientError> {
        self.deployment_action(kind, id, deployment_id, "undeploy")
            .await
    }

    /// Makes an earlier deployment current again and deploys it.
    pub async fn restore(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        deployment_id: &str,
    ) -> Result<Deployment, ClientError> {
        self.deployment_action(kind, id, deployment_id, "restore")
            .await
    }

    async fn deployment_action(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        deployment_id: &str,
        action: &str,
    ) -> Result<Deployment, ClientError> {
        let path = format!(
            "{}/deployments/{deployment_id}/{action}",
            artifact_path(kind, id)
        );
        self.call(
            Method::POST,
            &path,
            Some(&Value::Object(Default::default())),
        )
        .await
    }

    /// Creates an API key for the artifact; the answer holds the key, shown only this once.
    pub async fn create_api_key(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        key: &NewApiKey,
    ) -> Result<CreatedApiKey, ClientError> {
        let path = format!("{}/api-keys", artifact_path(kind, id));
        self.call(Method::POST, &path, Some(key)).await
    }

    /// The artifact's API keys (masked).
    pub async fn api_keys(
        &self,
        kind: ArtifactKind,
        id: &Handle,
    ) -> Result<List<ApiKey>, ClientError> {
        let path = format!("{}/api-keys", artifact_path(kind, id));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Revokes one of the artifact's API keys.
    pub async fn revoke_api_key(
        &self,
        kind: ArtifactKind,
        id: &Handle,
        key: &Handle,
    ) -> Result<(), ClientError> {
        let path = format!("{}/api-keys/{key}", artifact_path(kind, id));
        self.call_no_content(Method::DELETE, &path).await
    }
}
