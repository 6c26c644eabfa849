//! Artifacts in the console: lists with search, the YAML editor (create and edit, with the
//! validation error shown at its field), the artifact page with its deployments per gateway
//! (live) and API keys, and the actions: deploy, undeploy, restore, delete, create and revoke
//! keys. Every action is a form with the session's CSRF token, checked against the user's role
//! like the API and written to the audit log (`via: console`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::actions::audited;
use super::layout::{csrf, kind_title, page as frame};
use super::session::{Session, Signed};
use crate::error::{ApiError, ApiResult};
use crate::service::api_keys;
use crate::service::deployments::{self, DeploymentFilter};
use crate::service::{artifacts, gateways, Page};
use crate::state::AppState;
use gatehouse_core::ArtifactKind;

/// The artifact routes of the console, for each kind under its collection's name.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for kind in ArtifactKind::ALL {
        let c = kind.collection();
        let k = Extension(kind);
        r = r
            .route(&format!("/console/{c}"), get(list).layer(k))
            .route(
                &format!("/console/{c}/new"),
                get(new_page).post(create).layer(k),
            )
            .route(
                &format!("/console/{c}/{{id}}"),
                get(show).post(update).layer(k),
            )
            .merge(super::actions::router(kind));
    }
    r
}

pub(super) fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(|e| e.into_response())
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn list(
    State(state): State<AppState>,
    Signed(s): Signed,
    Extension(kind): Extension<ArtifactKind>,
    Query(search): Query<Search>,
) -> Response {
    respond(
        async {
            let page = Page {
                limit: Some(1000),
                offset: None,
            };
            let filter = artifacts::ArtifactFilter { project_id: None };
            let all = artifacts::list(&state, &s.caller, kind, page, filter).await?;
            let q = search.q.trim().to_lowercase();
            let shown: Vec<&Value> = all
                .list
                .iter()
                .filter(|a| q.is_empty() || a.to_string().to_lowercase().contains(&q))
                .collect();
            let c = kind.collection();
            let body = html! {
                h1 { (kind_title(kind)) }
                div.toolbar {
                    form method="get" action={ "/console/" (c) } {
                        input #search name="q" type="search" placeholder="Search" value=(search.q);
                        " " button.secondary type="submit" { "Search" }
                    }
                    @if s.may(&Method::POST, &format!("/api/v1/{c}")) {
                        a.button #create href={ "/console/" (c) "/new" } { "Create" }
                    }
                }
                table #artifacts {
                    thead { tr { th { "Id" } th { "Name" } th { "Context" } th { "Origin" } th { "Updated" } } }
                    tbody {
                        @for a in &shown {
                            @let id = a["id"].as_str().unwrap_or_default();
                            tr {
                                td { a href={ "/console/" (c) "/" (id) } { (id) } }
                                td { (a["displayName"].as_str().unwrap_or_default()) }
                                td { code { (a["context"].as_str().unwrap_or_default()) } }
                                td { (a["origin"].as_str().unwrap_or_default()) }
                                td.muted { (a["updatedAt"].as_str().unwrap_or_default()) }
                            }
                        }
                    }
                }
                @if shown.is_empty() { p.muted { "Nothing here yet." } }
            };
            Ok(frame(Some(&s), kind_title(kind), None, body).into_response())
        }
        .await,
    )
}

/// A starting document for a new artifact of `kind`.
fn template(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::RestApi => "id: orders\ndisplayName: Orders\nprojectId: default\ncontext: /orders\nupstream:\n  main:\n    url: http://127.0.0.1:8000\noperations:\n  - method: GET\n    path: /*\n",
        ArtifactKind::LlmProvider => "id: openai\ndisplayName: OpenAI\ntemplate: openai\ncontext: /openai\nupstream:\n  url: https://api.openai.com/v1\n  auth:\n    type: api-key\n    header: Authorization\n    value: Bearer {{ secret \"openai\" }}\n",
        ArtifactKind::LlmProxy => "id: chat\ndisplayName: Chat\nprojectId: default\ncontext: /chat\nprovider:\n  id: openai\n",
        ArtifactKind::Mcp => "id: tools\ndisplayName: Tools\nprojectId: default\ncontext: /tools\nupstream:\n  url: http://127.0.0.1:8000/mcp\n",
    }
}

/// The line (1-based) of the key a field path ends with, for the editor to mark.
fn line_of(document: &str, field: &str) -> Option<usize> {
    let last = field.rsplit('.').next()?.split('[').next()?;
    if last.is_empty() {
        return None;
    }
    document
        .lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&format!("{last}:"))
        })
        .map(|i| i + 1)
}

pub(super) fn editor(
    s: &Session,
    action: &str,
    document: &str,
    error: Option<&ApiError>,
) -> Markup {
    let (field, line) = match error {
        Some(ApiError::InvalidField(f)) => (Some(f.field.clone()), line_of(document, &f.field)),
        _ => (None, None),
    };
    html! {
        form #editor method="post" action=(action) {
            (csrf(s))
            @if let Some(e) = error {
                div.error #validation-error role="alert" {
                    @if let Some(f) = &field { span.field { (f) } ": " }
                    (match e { ApiError::InvalidField(f) => f.message.clone(), other => other.to_string() })
                    @if let Some(l) = line { span.muted { " (line " (l) ")" } }
                }
            }
            textarea #document name="document" spellcheck="false" data-error-line=[line] { (document) }
            p { button #save type="submit" { "Save" } }
        }
    }
}

async fn new_page(Signed(s): Signed, Extension(kind): Extension<ArtifactKind>) -> Response {
    respond(async {
        let action = format!("/console/{}/new", kind.collection());
        let body = html! {
            h1 { "New " (kind.label()) }
            p.muted { "YAML; the same fields as the API's create body. Secrets are referenced as " code { "{{ secret \"id\" }}" } "." }
            (editor(&s, &action, template(kind), None))
        };
        Ok(frame(Some(&s), "New", None, body).into_response())
    }.await)
}

#[derive(Deserialize)]
struct DocumentForm {
    #[serde(default)]
    csrf: String,
    document: String,
}

pub(super) fn parse_document(text: &str) -> ApiResult<Value> {
    gatehouse_core::yaml::from_slice(text.as_bytes())
        .map_err(|e| ApiError::Invalid(format!("the document is not valid YAML: {e}")))
}

async fn create(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Form(f): Form<DocumentForm>,
) -> Response {
    respond(
        async {
            s.check_csrf(&f.csrf)?;
            let c = kind.collection();
            let made = audited(
                &state,
                &s,
                peer,
                (Method::POST, format!("/api/v1/{c}")),
                async {
                    artifacts::create(&state, &s.caller, kind, parse_document(&f.document)?).await
                },
            )
            .await;
            match made {
                Ok(v) => {
                    let id = v["id"].as_str().unwrap_or_default();
                    Ok(Redirect::to(&format!("/console/{c}/{id}")).into_response())
                }
                Err(
                    e @ (ApiError::InvalidField(_) | ApiError::Invalid(_) | ApiError::Conflict(_)),
                ) => {
                    let body = html! {
                        h1 { "New " (kind.label()) }
                        (editor(&s, &format!("/console/{c}/new"), &f.document, Some(&e)))
                    };
                    Ok((e.status(), frame(Some(&s), "New", None, body)).into_response())
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// The artifact as the editor shows it: the API's view without the read-only fields.
fn editable(view: &Value) -> String {
    let mut v = view.clone();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "uuid",
            "kind",
            "createdAt",
            "updatedAt",
            "origin",
            "gatewayId",
            "gatewayState",
        ] {
            o.remove(k);
        }
    }
    serde_norway::to_string(&v).unwrap_or_default()
}

#[derive(Default)]
pub(super) struct Shown<'a> {
    pub document: Option<&'a str>,
    pub error: Option<&'a ApiError>,
    pub created_key: Option<(String, String)>,
    pub notice: Option<String>,
}

pub(super) async fn artifact_page(
    state: &AppState,
    s: &Session,
    kind: ArtifactKind,
    id: &str,
    shown: Shown<'_>,
) -> ApiResult<Response> {
    let view = artifacts::get(state, &s.caller, kind, id).await?;
    let c = kind.collection();
    let base = format!("/console/{c}/{id}");
    let filter = DeploymentFilter {
        gateway_id: None,
        status: None,
    };
    let deps = deployments::list(state, &s.caller, kind, id, filter).await?;
    let keys = api_keys::list(state, &s.caller, kind, id).await?.list;
    let all = Page {
        limit: Some(1000),
        offset: None,
    };
    let gws = gateways::list(&state.db, &state.hub, &s.caller, all)
        .await?
        .list;
    let read_only = view["origin"] == "gateway";
    let may_edit = !read_only && s.may(&Method::PUT, &format!("/api/v1/{c}/{id}"));
    let may_deploy = !read_only && s.may(&Method::POST, &format!("/api/v1/{c}/{id}/deployments"));
    let may_key = !read_only && s.may(&Method::POST, &format!("/api/v1/{c}/{id}/api-keys"));
    let document = shown
        .document
        .map(str::to_owned)
        .unwrap_or_else(|| editable(&view));
    let body = html! {
        h1 { (view["displayName"].as_str().unwrap_or(id)) " " span.pill { (kind.label()) } " " span.muted #live-stamp { "" } }
        @if let Some(n) = &shown.notice { div.notice role="status" { (n) } }
        @if read_only {
            p.notice { "Created on gateway '" (view["gatewayId"].as_str().unwrap_or_default()) "' (origin: gateway): managed through that gateway's management API, read-only here." }
        }
        h2 { "Deployments" }
        @if may_deploy && !gws.is_empty() {
            form.toolbar #deploy-form method="post" action={ (base) "/deploy" } {
                (csrf(s))
                select #deploy-gateway name="gateway" { @for g in &gws { option value=(g.id) { (g.id) } } }
                button #deploy type="submit" { "Deploy" }
            }
        }
        table #deployments {
            thead { tr { th { "Deployment" } th { "Gateway" } th { "Status" } th { "Created" } th {} } }
            tbody {
                @for d in &deps {
                    @let status = d.status.as_str();
                    tr data-deployment=(d.deployment_id) {
                        td { (d.name) br; span.muted { (d.deployment_id) } }
                        td { (d.gateway_id) }
                        td id={ "dep-" (d.deployment_id) "-status" } data-state=(status) { (status) }
                        td.muted { (d.created_at) }
                        td {
                            @if may_deploy {
                                @for (action, label, current) in [("undeploy", "Undeploy", true), ("restore", "Restore", false)] {
                                    @let is_current = matches!(status, "DEPLOYED" | "DEPLOYING");
                                    @if is_current == current {
                                        @let panel = format!("confirm-{action}-{}", d.deployment_id);
                                        button.secondary type="button" data-reveal=(panel) { (label) }
                                        form.confirm id=(panel) hidden method="post" action={ (base) "/deployments/" (d.deployment_id) "/" (action) } {
                                            (csrf(s))
                                            p { (label) " deployment " strong { (d.name) } " on gateway " strong { (d.gateway_id) } "? "
                                                @if current { "The gateway stops serving it; it keeps the artifact and its keys." }
                                                @else { "The gateway serves this deployment again." } }
                                            button type="submit" { "Confirm " (action) } " "
                                            button.secondary type="button" data-hide=(panel) { "Cancel" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if deps.is_empty() { p.muted { "Not deployed anywhere." } }
        h2 { "API keys" }
        @if let Some((name, key)) = &shown.created_key {
            div.notice #created-key {
                "Key " strong { (name) } " (shown once, keep it now): "
                span.secret-once #created-key-value { (key) } " "
                button.secondary type="button" data-copy="created-key-value" { "Copy" }
            }
        }
        @if may_key {
            form.toolbar #key-form method="post" action={ (base) "/keys" } {
                (csrf(s))
                input #key-name name="name" placeholder="key name" required;
                button #create-key type="submit" { "Create key" }
            }
        }
        table #keys {
            thead { tr { th { "Key" } th { "Value" } th { "Status" } th { "Created" } th {} } }
            tbody {
                @for k in &keys {
                    tr {
                        td { (k.display_name) }
                        td { code { (k.masked_api_key) } }
                        td { (k.status.as_str()) }
                        td.muted { (k.created_at) }
                        td {
                            @if may_key && k.status.as_str() == "active" {
                                form.inline method="post" action={ (base) "/keys/" (k.id) "/revoke" } {
                                    (csrf(s)) button.secondary type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Document" }
        @if may_edit {
            (editor(s, &base, &document, shown.error))
            @let panel = "confirm-delete";
            p { button.danger #delete type="button" data-reveal=(panel) { "Delete" } }
            form.confirm id=(panel) hidden method="post" action={ (base) "/delete" } {
                (csrf(s))
                p { "Delete " (kind.label()) " " strong { (id) } "? Every gateway stops serving it and forgets it with its keys; its deployments are deleted. This cannot be undone." }
                button.danger #confirm-delete type="submit" { "Confirm delete" } " "
                button.secondary type="button" data-hide=(panel) { "Cancel" }
            }
        } @else {
            pre { (document) }
        }
    };
    let live = format!("/console/live?page={c}/{id}");
    let status = shown
        .error
        .map_or(axum::http::StatusCode::OK, ApiError::status);
    Ok((status, frame(Some(s), id, Some(&live), body)).into_response())
}

async fn show(
    State(state): State<AppState>,
    Signed(s): Signed,
    Extension(kind): Extension<ArtifactKind>,
    Path(id): Path<String>,
) -> Response {
    respond(async { artifact_page(&state, &s, kind, &id, Shown::default()).await }.await)
}

async fn update(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(kind): Extension<ArtifactKind>,
    Path(id): Path<String>,
    Form(f): Form<DocumentForm>,
) -> Response {
    respond(
        async {
            s.check_csrf(&f.csrf)?;
            let path = format!("/api/v1/{}/{id}", kind.collection());
            let done = audited(&state, &s, peer, (Method::PUT, path), async {
                artifacts::update(&state, &s.caller, kind, &id, parse_document(&f.document)?).await
            })
            .await;
            match done {
                Ok(_) => {
                    let shown = Shown {
                        notice: Some("Saved.".into()),
                        ..Default::default()
                    };
                    artifact_page(&state, &s, kind, &id, shown).await
                }
                Err(
                    e @ (ApiError::InvalidField(_) | ApiError::Invalid(_) | ApiError::Conflict(_)),
                ) => {
                    let shown = Shown {
                        document: Some(&f.document),
                        error: Some(&e),
                        ..Default::default()
                    };
                    artifact_page(&state, &s, kind, &id, shown).await
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}
