//! Secrets: values are sent, never received.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, ClientError, List};

/// A secret as the platform shows it (no value).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    /// What artifacts reference.
    pub id: String,
    /// A name for people.
    pub display_name: String,
    /// A keyed hash that tells two values apart.
    pub fingerprint: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its value or name last changed (RFC 3339).
    pub updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewSecret<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretChange<'a> {
    value: &'a str,
}

impl Client {
    /// The organization's secrets.
    pub async fn secrets(&self) -> Result<List<SecretInfo>, ClientError> {
        self.call(Method::GET, "/secrets?limit=1000", None::<&()>)
            .await
    }

    /// Creates a secret.
    pub async fn create_secret(
        &self,
        id: &str,
        display_name: Option<&str>,
        value: &str,
    ) -> Result<SecretInfo, ClientError> {
        let body = NewSecret {
            id,
            display_name,
            value,
        };
        self.call(Method::POST, "/secrets", Some(&body)).await
    }

    /// Gives a secret a new value.
    pub async fn rotate_secret(&self, id: &str, value: &str) -> Result<SecretInfo, ClientError> {
        self.call(
            Method::PUT,
            &format!("/secrets/{id}"),
            Some(&SecretChange { value }),
        )
        .await
    }

    /// Deletes a secret.
    pub async fn delete_secret(&self, id: &str) -> Result<(), ClientError> {
        self.call_no_content(Method::DELETE, &format!("/secrets/{id}"))
            .await
    }
}
