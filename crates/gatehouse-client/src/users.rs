//! Users of an organization and their roles; passwords are sent, never received.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Client, ClientError, List};

/// A user as the platform shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// The name the user logs in with.
    pub username: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// The platform's own administrator.
    pub platform_admin: bool,
    /// When the user was made (RFC 3339).
    pub created_at: String,
}

#[derive(Serialize)]
struct NewUser<'a> {
    username: &'a str,
    password: &'a str,
    role: &'a str,
}

impl Client {
    /// The organization's users.
    pub async fn users(&self) -> Result<List<UserInfo>, ClientError> {
        self.call(Method::GET, "/users?limit=1000", None::<&()>)
            .await
    }

    /// Who the token belongs to.
    pub async fn me(&self) -> Result<UserInfo, ClientError> {
        self.call(Method::GET, "/users/me", None::<&()>).await
    }

    /// Adds a user with a role.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: &str,
    ) -> Result<UserInfo, ClientError> {
        let body = NewUser {
            username,
            password,
            role,
        };
        self.call(Method::POST, "/users", Some(&body)).await
    }

    /// Gives a user another role.
    pub async fn set_role(&self, username: &str, role: &str) -> Result<UserInfo, ClientError> {
        self.call(
            Method::PUT,
            &format!("/users/{username}"),
            Some(&json!({"role": role})),
        )
        .await
    }

    /// Sets a user's password (admin).
    pub async fn reset_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserInfo, ClientError> {
        self.call(
            Method::PUT,
            &format!("/users/{username}"),
            Some(&json!({"password": password})),
        )
        .await
    }

    /// Removes a user from the organization.
    pub async fn delete_user(&self, username: &str) -> Result<(), ClientError> {
        self.call_no_content(Method::DELETE, &format!("/users/{username}"))
            .await
    }

    /// Changes the caller's own password.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), ClientError> {
        let body = json!({"currentPassword": current, "newPassword": new});
        self.answer(
            Method::PUT,
            &format!("{}/users/me/password", crate::PUBLIC_API),
            Some(&body),
        )
        .await
        .map(drop)
    }
}
