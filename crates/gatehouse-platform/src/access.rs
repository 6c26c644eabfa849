//! Who may do what on the public API, decided in one place for every route: the caller is
//! authenticated (a login token or an API token), their role in the organization is checked
//! against what the route needs (403 naming both), and every change is written to the audit
//! log with its outcome.

use std::net::SocketAddr;
use std::str::FromStr;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// A person's (or an API token's) role in an organization. Each includes the ones below it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything an organization holds (never secret values).
    Viewer,
    /// Also changes artifacts, deployments, API keys, plans, subscriptions and projects.
    Editor,
    /// Also gateways, secrets, templates and users.
    Admin,
}

impl Role {
    /// The role as spelled on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "'{other}' is not a role; expected admin, editor or viewer"
            )),
        }
    }
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: open to anyone (login, the API document).
    Nobody,
    /// Any authenticated caller; the handler decides further (own password, own tokens,
    /// organizations for the platform admin).
    Caller,
    /// At least this role in the organization.
    Role(Role),
}

/// Collections an editor changes.
const EDITOR_COLLECTIONS: &[&str] = &[
    "rest-apis",
    "llm-providers",
    "llm-proxies",
    "mcp-proxies",
    "subscription-plans",
    "subscriptions",
    "projects",
];

/// What `method path` (the path under `/api/v1`) needs.
pub fn need(method: &Method, path: &str) -> Need {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or_default();
    let second = segments.next();
    let reads = matches!(*method, Method::GET | Method::HEAD);
    match (first, second) {
        ("auth", Some("login")) | ("openapi.json", None) => Need::Nobody,
        ("users", Some("me")) | ("tokens", _) | ("organizations", _) | ("auth", Some("logout")) => {
            Need::Caller
        }
        ("users", _) | ("audit-log", _) => Need::Role(Role::Admin),
        _ if reads => Need::Role(Role::Viewer),
        (c, _) if EDITOR_COLLECTIONS.contains(&c) => Need::Role(Role::Editor),
        _ => Need::Role(Role::Admin),
    }
}

/// Whether a call changes something (and is audited).
fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware of the public API: authenticate, authorize, audit.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // The full path: under `nest`, the request's own URI lost its `/api/v1`.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.0.path().to_owned());
    let need = need(&method, &path);
    if need == Need::Nobody {
        return next.run(req).await;
    }
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let caller = match crate::auth::authenticate(&state, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Need::Role(role) = need {
        if caller.role < role {
            let refused = ApiError::Forbidden(format!(
                "your role '{}' may not {method} {path}: it needs '{role}'",
                caller.role
            ));
            let response = refused.into_response();
            if is_change(&method) {
                let entry = crate::service::audit::Entry::new(&caller, &method, &path, address);
                crate::service::audit::record(&state.db, entry, response.status().as_u16()).await;
            }
            return response;
        }
    }
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    if is_change(&method) {
        let entry = crate::service::audit::Entry::new(&caller, &method, &path, address);
        crate::service::audit::record(&state.db, entry, response.status().as_u16()).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_needs_what_its_role_allows() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(need(&post, "/auth/login"), Need::Nobody);
        assert_eq!(need(&get, "/openapi.json"), Need::Nobody);
        assert_eq!(need(&get, "/rest-apis"), Need::Role(Role::Viewer));
        assert_eq!(
            need(&post, "/rest-apis/x/deployments"),
            Need::Role(Role::Editor)
        );
        assert_eq!(
            need(&Method::DELETE, "/llm-proxies/x/api-keys/k"),
            Need::Role(Role::Editor)
        );
        assert_eq!(need(&post, "/subscription-plans"), Need::Role(Role::Editor));
        assert_eq!(need(&post, "/gateways"), Need::Role(Role::Admin));
        assert_eq!(need(&Method::PUT, "/secrets/x"), Need::Role(Role::Admin));
        assert_eq!(need(&get, "/secrets"), Need::Role(Role::Viewer));
        assert_eq!(need(&get, "/users"), Need::Role(Role::Admin));
        assert_eq!(need(&get, "/audit-log"), Need::Role(Role::Admin));
        assert_eq!(need(&Method::PUT, "/users/me/password"), Need::Caller);
        assert_eq!(need(&post, "/tokens"), Need::Caller);
        assert_eq!(need(&post, "/api/v1/rest-apis"), Need::Role(Role::Editor));
        // Anything new defaults to the admin.
        assert_eq!(need(&post, "/something-new"), Need::Role(Role::Admin));
    }

    #[test]
    fn roles_are_ordered_and_spelled_once() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        for r in [Role::Viewer, Role::Editor, Role::Admin] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
