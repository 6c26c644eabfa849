//! The overview: every gateway of the organization (connected, in sync, applied revision against
//! the organization's, last seen, artifacts served), and a matrix of artifacts × gateways with
//! each deployment's status. Both stay current without a reload.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use sqlx::Row;

use super::layout::{kind_title, page as frame};
use super::live::{self, cell_id, Fields};
use super::session::Signed;
use crate::service::{gateways, Page};
use crate::state::AppState;
use gatehouse_core::ArtifactKind;

fn shown(fields: &Fields, id: &str) -> (String, String) {
    fields
        .get(id)
        .map(|f| (f.text.clone(), f.state.clone()))
        .unwrap_or_else(|| ("—".into(), String::new()))
}

/// `GET /console/`.
pub async fn page(State(state): State<AppState>, Signed(s): Signed) -> Response {
    match render(&state, &s).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render(
    state: &AppState,
    s: &super::session::Session,
) -> crate::error::ApiResult<Response> {
    let all = Page {
        limit: Some(1000),
        offset: None,
    };
    let gws = gateways::list(&state.db, &state.hub, &s.caller, all)
        .await?
        .list;
    let fields = live::gateway_fields(state, s).await?;
    let matrix = live::matrix_fields(state, s).await?;
    let artifacts: Vec<(String, String)> = sqlx::query(
        "SELECT kind, handle FROM artifacts WHERE org_id = $1 ORDER BY kind, handle LIMIT 200",
    )
    .bind(&s.caller.org_id)
    .fetch_all(state.db.pool())
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let body = html! {
        h1 { "Overview " span.muted #live-stamp { "" } }
        h2 { "Gateways" }
        @if gws.is_empty() {
            p.muted { "No gateway yet. Register one with the API or " code { "gatehouse gateways create" } "." }
        } @else {
            table #gateways {
                thead { tr { th { "Gateway" } th { "Connection" } th { "Sync" } th { "Applied / organization revision" } th { "Last seen" } th { "Artifacts served" } } }
                tbody {
                    @for g in &gws {
                        @let id = &g.id;
                        tr data-gateway=(id) {
                            td { a href={ "/console/gateways/" (id) } { strong { (g.display_name) } } " " span.muted { (id) } }
                            @for (suffix, _) in [("connected", 0), ("sync", 1), ("revision", 2), ("seen", 3), ("served", 4)] {
                                @let el = format!("gw-{id}-{suffix}");
                                @let (text, st) = shown(&fields, &el);
                                td id=(el) data-state=(st) { (text) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Deployments" }
        @if artifacts.is_empty() || gws.is_empty() {
            p.muted { "Nothing deployed yet." }
        } @else {
            table.matrix #matrix {
                thead { tr { th { "Artifact" } @for g in &gws { th { (g.id) } } } }
                tbody {
                    @for (kind, handle) in &artifacts {
                        @let k = kind.parse::<ArtifactKind>().ok();
                        tr {
                            td {
                                @if let Some(k) = k {
                                    a href={ "/console/" (k.collection()) "/" (handle) } { (handle) }
                                    " " span.muted { (kind_title(k)) }
                                } @else { (handle) }
                            }
                            @for g in &gws {
                                @let el = cell_id(kind, handle, &g.id);
                                @let (text, st) = matrix.get(&el).map(|f| (f.text.clone(), f.state.clone())).unwrap_or_default();
                                td.cell id=(el) data-state=(st) { (text) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        Some(s),
        "Overview",
        Some("/console/live?page=overview"),
        body,
    )
    .into_response())
}
