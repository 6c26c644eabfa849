//! People in the console: the organization's users (admins add them, change their roles and
//! remove them) and each user's own account page, where they change their password.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::Deserialize;

use super::actions::{audited, submit};
use super::artifacts::respond;
use super::layout::{csrf, page as frame};
use super::session::Signed;
use crate::error::ApiError;
use crate::service::{users, Page};
use crate::state::AppState;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(people))
        .route("/console/users/new", post(create_user))
        .route("/console/users/{username}/role", post(set_role))
        .route("/console/users/{username}/delete", post(remove_user))
        .route("/console/account", get(account).post(change_password))
}

fn all() -> Page {
    Page {
        limit: Some(1000),
        offset: None,
    }
}

async fn people(State(state): State<AppState>, Signed(s): Signed) -> Response {
    respond(
        async {
            let list = if s.may(&Method::GET, "/api/v1/users") {
                users::list(&state.db, &s.caller, all()).await?.list
            } else {
                return Err(crate::error::ApiError::Forbidden(format!(
                    "your role '{}' may not see the users",
                    s.caller.role
                )));
            };
            let body = html! {
                h1 { "Users" }
                table #users {
                    thead { tr { th { "User" } th { "Role" } th { "Since" } th {} } }
                    tbody {
                        @for u in &list {
                            tr data-user=(u.username) {
                                td { (u.username) }
                                td {
                                    form.inline method="post" action={ "/console/users/" (u.username) "/role" } {
                                        (csrf(&s))
                                        select name="role" {
                                            @for r in ["viewer", "editor", "admin"] {
                                                option value=(r) selected[u.role.as_str() == r] { (r) }
                                            }
                                        }
                                        " " button.secondary type="submit" { "Change role" }
                                    }
                                }
                                td.muted { (u.created_at) }
                                td {
                                    @if u.username != s.caller.username {
                                        @let panel = format!("confirm-remove-{}", u.username);
                                        button.secondary type="button" data-reveal=(panel) { "Remove" }
                                        form.confirm id=(panel) hidden method="post" action={ "/console/users/" (u.username) "/delete" } {
                                            (csrf(&s))
                                            p { "Remove " strong { (u.username) } " from this organization? Their sessions and API tokens here stop working." }
                                            button.danger type="submit" { "Confirm remove" } " "
                                            button.secondary type="button" data-hide=(panel) { "Cancel" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { "Add a user" }
                form.toolbar #user-form method="post" action="/console/users/new" {
                    (csrf(&s))
                    input #new-username name="username" placeholder="username" required;
                    input #new-password name="password" type="password" placeholder="password (10+ characters)" autocomplete="new-password" required;
                    select #new-role name="role" { option value="viewer" { "viewer" } option value="editor" { "editor" } option value="admin" { "admin" } }
                    button #add-user type="submit" { "Add" }
                }
                p.muted { "Passwords are reset with " code { "gatehouse users reset-password" } " or the API." }
            };
            Ok(frame(Some(&s), "Users", None, body).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
    role: String,
}

async fn create_user(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<UserForm>,
) -> Response {
    let role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => {
            return ApiError::from(gatehouse_core::FieldError::new("role", e)).into_response()
        }
    };
    let new = users::NewUser {
        username: f.username,
        password: f.password,
        role,
    };
    let call = (Method::POST, "/api/v1/users".to_owned());
    let action = users::create(&state.db, &s.caller, new);
    submit(&state, &s, peer, &f.csrf, call, action, "/console/users").await
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    csrf: String,
    role: String,
}

async fn set_role(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(username): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    let role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => {
            return ApiError::from(gatehouse_core::FieldError::new("role", e)).into_response()
        }
    };
    let change = users::UserChange {
        role: Some(role),
        password: None,
    };
    let call = (Method::PUT, format!("/api/v1/users/{username}"));
    let action = users::update(&state.db, &s.caller, &username, change);
    submit(&state, &s, peer, &f.csrf, call, action, "/console/users").await
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn remove_user(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(username): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let call = (Method::DELETE, format!("/api/v1/users/{username}"));
    let action = users::delete(&state.db, &s.caller, &username);
    submit(&state, &s, peer, &f.csrf, call, action, "/console/users").await
}

fn account_page(
    s: &super::session::Session,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let body = html! {
        h1 { "Your account" }
        p { strong { (s.caller.username) } " · " (s.caller.role) " in " (s.org_handle) }
        @if let Some(n) = notice { div.notice #account-notice role="status" { (n) } }
        @if let Some(e) = error { div.error #account-error role="alert" { (e) } }
        h2 { "Change your password" }
        form #password-form method="post" action="/console/account" {
            (csrf(s))
            p { input #current-password name="current" type="password" placeholder="current password" autocomplete="current-password" required; }
            p { input #new-password-self name="new" type="password" placeholder="new password (10+ characters)" autocomplete="new-password" required; }
            button #change-password type="submit" { "Change password" }
        }
    };
    frame(Some(s), "Account", None, body).into_response()
}

async fn account(Signed(s): Signed) -> Response {
    account_page(&s, None, None)
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    new: String,
}

async fn change_password(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<PasswordForm>,
) -> Response {
    if let Err(e) = s.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let change = users::PasswordChange {
        current_password: f.current,
        new_password: f.new,
    };
    let path = "/api/v1/users/me/password".to_owned();
    let done = audited(&state, &s, peer, (Method::PUT, path), async {
        users::change_password(&state.db, &s.caller, change).await
    })
    .await;
    match done {
        Ok(()) => account_page(&s, Some("Password changed."), None),
        Err(e) => {
            let status = e.status();
            let mut page = account_page(&s, None, Some(&e.to_string()));
            *page.status_mut() = status;
            page
        }
    }
}
