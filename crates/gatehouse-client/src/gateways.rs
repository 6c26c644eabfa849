//! Gateways and their registration tokens.

use gatehouse_core::Handle;
use reqwest::Method;
use serde_json::Value;

use crate::{Client, ClientError, Gateway, GatewayToken, List, NewGateway, TokenInfo};

impl Client {
    /// Registers a gateway.
    pub async fn create_gateway(&self, gateway: &NewGateway) -> Result<Gateway, ClientError> {
        self.call(Method::POST, "/gateways", Some(gateway)).await
    }

    /// The organization's gateways (the first page) with their status.
    pub async fn gateways(&self) -> Result<List<Gateway>, ClientError> {
        self.call(Method::GET, "/gateways", None::<&()>).await
    }

    /// One gateway with its status.
    pub async fn gateway(&self, id: &Handle) -> Result<Gateway, ClientError> {
        self.call(Method::GET, &format!("/gateways/{id}"), None::<&()>)
            .await
    }

    /// Mints a registration token for the gateway; the answer holds it, shown only this once.
    pub async fn create_gateway_token(&self, id: &Handle) -> Result<GatewayToken, ClientError> {
        let body = Value::Object(Default::default());
        self.call(Method::POST, &format!("/gateways/{id}/tokens"), Some(&body))
            .await
    }

    /// The gateway's registration tokens, newest first.
    pub async fn gateway_tokens(&self, id: &Handle) -> Result<Vec<TokenInfo>, ClientError> {
        self.call(Method::GET, &format!("/gateways/{id}/tokens"), None::<&()>)
            .await
    }

    /// Revokes one of the gateway's registration tokens.
    pub async fn revoke_gateway_token(
        &self,
        id: &Handle,
        token_id: &str,
    ) -> Result<(), ClientError> {
        self.call_no_content(Method::DELETE, &format!("/gateways/{id}/tokens/{token_id}"))
            .await
    }
}
