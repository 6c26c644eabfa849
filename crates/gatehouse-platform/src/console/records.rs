//! The console's other pages: a gateway with its registration tokens (a new one shown once),
//! the change log with filters, subscription plans and subscriptions, users and the audit log.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::Deserialize;
use sqlx::Row;

use super::actions::{audited, submit};
use super::artifacts::{editor, parse_document, respond};
use super::layout::{csrf, page as frame};
use super::session::{Session, Signed};
use crate::error::{ApiError, ApiResult};
use crate::service::subscriptions::SubscriptionFilter;
use crate::service::{audit, gateways, subscriptions, Page};
use crate::state::AppState;
use crate::store::format_ms;
use gatehouse_core::ArtifactKind;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/gateways/{id}", get(gateway))
        .route("/console/gateways/{id}/tokens", post(create_token))
        .route(
            "/console/gateways/{id}/tokens/{token}/revoke",
            post(revoke_token),
        )
        .route("/console/changes", get(changes))
        .route("/console/plans", get(plans))
        .route("/console/plans/new", post(create_plan))
        .route("/console/subscriptions/new", post(create_subscription))
        .route("/console/audit", get(audit_log))
}

fn all() -> Page {
    Page {
        limit: Some(1000),
        offset: None,
    }
}

async fn gateway_page(
    state: &AppState,
    s: &Session,
    id: &str,
    created: Option<String>,
) -> ApiResult<Response> {
    let g = gateways::get(&state.db, &state.hub, &s.caller, id).await?;
    let may = s.may(&Method::POST, &format!("/api/v1/gateways/{id}/tokens"));
    let tokens = if may {
        gateways::list_tokens(&state.db, &s.caller, id).await?
    } else {
        vec![]
    };
    let st = &g.status;
    let body = html! {
        h1 { (g.display_name) " " span.muted { (g.id) } }
        table {
            tr { th { "Connection" } td data-state=(if st.connected { "good" } else { "bad" }) { (if st.connected { "connected" } else { "offline" }) } }
            tr { th { "Sync" } td { (if st.in_sync { "in sync" } else { "behind" }) } }
            tr { th { "Applied / organization revision" } td { (st.applied_revision) " / " (st.org_revision) } }
            tr { th { "Last seen" } td { (st.last_seen.clone().unwrap_or_else(|| "never".into())) } }
        }
        @if !g.publish_conflicts.is_empty() {
            h2 { "Artifacts it could not publish" }
            ul { @for c in &g.publish_conflicts { li { (c.id) ": " (c.message) } } }
        }
        @if may {
            h2 { "Registration tokens" }
            @if let Some(t) = &created {
                div.notice #created-token {
                    "New token (shown once, keep it now): "
                    span.secret-once #created-token-value { (t) } " "
                    button.secondary type="button" data-copy="created-token-value" { "Copy" }
                }
            }
            form.toolbar method="post" action={ "/console/gateways/" (id) "/tokens" } {
                (csrf(s)) button #create-token type="submit" { "Create token" }
            }
            table #tokens {
                thead { tr { th { "Token" } th { "Status" } th { "Created" } th {} } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { code { (t.id) } }
                            td { (format!("{:?}", t.status).to_lowercase()) }
                            td.muted { (t.created_at) }
                            td {
                                @if t.revoked_at.is_none() {
                                    @let panel = format!("confirm-revoke-{}", t.id);
                                    button.secondary type="button" data-reveal=(panel) { "Revoke" }
                                    form.confirm id=(panel) hidden method="post" action={ "/console/gateways/" (id) "/tokens/" (t.id) "/revoke" } {
                                        (csrf(s))
                                        p { "Revoke this token? A gateway using it is disconnected and cannot connect again with it." }
                                        button.danger type="submit" { "Confirm revoke" } " "
                                        button.secondary type="button" data-hide=(panel) { "Cancel" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(Some(s), id, None, body).into_response())
}

async fn gateway(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Response {
    respond(gateway_page(&state, &s, &id, None).await)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn create_token(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            s.check_csrf(&f.csrf)?;
            let path = format!("/api/v1/gateways/{id}/tokens");
            let made = audited(&state, &s, peer, (Method::POST, path), async {
                gateways::create_token(&state.db, &s.caller, &id).await
            })
            .await?;
            gateway_page(&state, &s, &id, Some(made.token)).await
        }
        .await,
    )
}

async fn revoke_token(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, token)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let call = (
        Method::DELETE,
        format!("/api/v1/gateways/{id}/tokens/{token}"),
    );
    let action = async {
        let gateway = gateways::revoke_token(&state.db, &s.caller, &id, &token).await?;
        // Like the API: the gateway's connections using it end now.
        state.close_gateway(&gateway).await;
        Ok(())
    };
    submit(
        &state,
        &s,
        peer,
        &f.csrf,
        call,
        action,
        &format!("/console/gateways/{id}"),
    )
    .await
}

#[derive(Deserialize)]
struct ChangeFilter {
    /// A prefix of the event type (`api.`, `apikey.revoked`).
    #[serde(rename = "type", default)]
    event_type: String,
    /// A gateway handle: events for it (and for every gateway).
    #[serde(default)]
    gateway: String,
}

async fn changes(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(f): Query<ChangeFilter>,
) -> Response {
    respond(
        async {
            let rows = sqlx::query(
                "SELECT e.revision, e.event_type, g.handle, e.payload, e.created_at FROM events e \
                 LEFT JOIN gateways g ON g.uuid = e.target_gateway_id \
                 WHERE e.org_id = $1 AND ($2 = '' OR e.event_type LIKE $2 || '%') \
                 AND ($3 = '' OR e.target_gateway_id IS NULL OR g.handle = $3) \
                 ORDER BY e.revision DESC LIMIT 300",
            )
            .bind(&s.caller.org_id)
            .bind(&f.event_type)
            .bind(&f.gateway)
            .fetch_all(state.db.pool())
            .await?;
            let body = html! {
                h1 { "Change log" }
                form.toolbar method="get" action="/console/changes" {
                    input #type name="type" placeholder="type (api., apikey.revoked)" value=(f.event_type);
                    input #gateway name="gateway" placeholder="gateway" value=(f.gateway);
                    button.secondary type="submit" { "Filter" }
                }
                table #changes {
                    thead { tr { th { "Revision" } th { "Type" } th { "For" } th { "What" } th { "When" } } }
                    tbody {
                        @for r in &rows {
                            tr {
                                td { (r.try_get::<i64, _>(0)?) }
                                td { code { (r.try_get::<String, _>(1)?) } }
                                td { (r.try_get::<Option<String>, _>(2)?.unwrap_or_else(|| "every gateway".into())) }
                                td { code.muted { (r.try_get::<String, _>(3)?) } }
                                td.muted { (format_ms(r.try_get(4)?)) }
                            }
                        }
                    }
                }
            };
            Ok(frame(Some(&s), "Change log", None, body).into_response())
        }
        .await,
    )
}

const PLAN_TEMPLATE: &str =
    "id: gold\ndisplayName: Gold\nlimits:\n  - limitCount: 1000\n    timeUnit: HOUR\n";

/// What the plans page shows besides its lists: a plan document being written (with its
/// error), or a subscription token made this once.
#[derive(Default)]
struct PlansShown<'a> {
    document: Option<&'a str>,
    error: Option<&'a ApiError>,
    token: Option<String>,
}

async fn plans_page(state: &AppState, s: &Session, shown: PlansShown<'_>) -> ApiResult<Response> {
    let plans = subscriptions::list_plans(state, &s.caller, all())
        .await?
        .list;
    let filter = SubscriptionFilter { artifact_id: None };
    let subs = subscriptions::list_subscriptions(state, &s.caller, filter)
        .await?
        .list;
    let may_plan = s.may(&Method::POST, "/api/v1/subscription-plans");
    let may_sub = s.may(&Method::POST, "/api/v1/subscriptions");
    let body = html! {
        h1 { "Subscription plans" }
        table #plans {
            thead { tr { th { "Plan" } th { "Name" } th { "Limits" } th { "Status" } } }
            tbody {
                @for p in &plans {
                    tr {
                        td { (p.id) }
                        td { (p.display_name) }
                        td { @for l in &p.limits { (l.limit_count) " per " (l.time_unit.as_str().to_lowercase()) " " } }
                        td { (p.status.as_str()) }
                    }
                }
            }
        }
        @if may_plan {
            h2 { "New plan" }
            (editor(s, "/console/plans/new", shown.document.unwrap_or(PLAN_TEMPLATE), shown.error))
        }
        h2 { "Subscriptions" }
        @if let Some(t) = &shown.token {
            div.notice #created-subscription {
                "Subscription token (shown once, keep it now): "
                span.secret-once #created-subscription-value { (t) } " "
                button.secondary type="button" data-copy="created-subscription-value" { "Copy" }
            }
        }
        @if may_sub {
            form.toolbar #subscription-form method="post" action="/console/subscriptions/new" {
                (csrf(s))
                select name="kind" { @for k in ArtifactKind::ALL { option value=(k.as_str()) { (k.label()) } } }
                input #sub-artifact name="artifact" placeholder="artifact id" required;
                input #sub-subscriber name="subscriber" placeholder="subscriber" required;
                input #sub-plan name="plan" placeholder="plan (optional)";
                button #subscribe type="submit" { "Subscribe" }
            }
        }
        table #subscriptions {
            thead { tr { th { "Subscriber" } th { "Artifact" } th { "Plan" } th { "Status" } th { "Created" } } }
            tbody {
                @for x in &subs {
                    tr {
                        td { (x.subscriber_id) }
                        td { a href={ "/console/" (x.kind.collection()) "/" (x.artifact_id) } { (x.artifact_id) } }
                        td { (x.plan_id.clone().unwrap_or_default()) }
                        td { (x.status.as_str()) }
                        td.muted { (x.created_at) }
                    }
                }
            }
        }
    };
    let status = shown
        .error
        .map_or(axum::http::StatusCode::OK, ApiError::status);
    Ok((status, frame(Some(s), "Plans", None, body)).into_response())
}

async fn plans(State(state): State<AppState>, Signed(s): Signed) -> Response {
    respond(plans_page(&state, &s, PlansShown::default()).await)
}

#[derive(Deserialize)]
struct DocumentForm {
    #[serde(default)]
    csrf: String,
    document: String,
}

async fn create_plan(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<DocumentForm>,
) -> Response {
    respond(
        async {
            s.check_csrf(&f.csrf)?;
            let path = "/api/v1/subscription-plans".to_owned();
            let made = audited(&state, &s, peer, (Method::POST, path), async {
                let value = parse_document(&f.document)?;
                let body: subscriptions::PlanBody = serde_path_to_error::deserialize(value)
                    .map_err(|e| {
                        gatehouse_core::FieldError::new(e.path().to_string(), e.inner().to_string())
                    })?;
                subscriptions::create_plan(&state, &s.caller, body).await
            })
            .await;
            match made {
                Ok(_) => Ok(Redirect::to("/console/plans").into_response()),
                Err(
                    e @ (ApiError::InvalidField(_) | ApiError::Invalid(_) | ApiError::Conflict(_)),
                ) => {
                    let shown = PlansShown {
                        document: Some(&f.document),
                        error: Some(&e),
                        token: None,
                    };
                    plans_page(&state, &s, shown).await
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

#[derive(Deserialize)]
struct SubscriptionForm {
    #[serde(default)]
    csrf: String,
    kind: String,
    artifact: String,
    subscriber: String,
    #[serde(default)]
    plan: String,
}

async fn create_subscription(
    State(state): State<AppState>,
    Signed(s): Signed,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<SubscriptionForm>,
) -> Response {
    respond(
        async {
            s.check_csrf(&f.csrf)?;
            let kind: ArtifactKind = f
                .kind
                .parse()
                .map_err(|_| gatehouse_core::FieldError::new("kind", "is not a kind"))?;
            let req = subscriptions::NewSubscription {
                artifact_id: f.artifact.trim().to_owned(),
                kind,
                subscriber_id: f.subscriber,
                plan_id: Some(f.plan.trim().to_owned()).filter(|p| !p.is_empty()),
            };
            let path = "/api/v1/subscriptions".to_owned();
            let made = audited(&state, &s, peer, (Method::POST, path), async {
                subscriptions::create_subscription(&state, &s.caller, req).await
            })
            .await?;
            let shown = PlansShown {
                token: made.subscription_token,
                ..Default::default()
            };
            plans_page(&state, &s, shown).await
        }
        .await,
    )
}

async fn audit_log(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(f): Query<audit::AuditFilter>,
) -> Response {
    respond(
        async {
            if !s.may(&Method::GET, "/api/v1/audit-log") {
                return Err(crate::error::ApiError::Forbidden(format!(
                    "your role '{}' may not see the audit log",
                    s.caller.role
                )));
            }
            let log = audit::list(&state.db, &s.caller, f).await?;
            let body = html! {
                h1 { "Audit log" }
                form.toolbar method="get" action="/console/audit" {
                    input #audit-user name="username" placeholder="username";
                    input #audit-path name="path" placeholder="path prefix (/api/v1/rest-apis)";
                    select name="failed" { option value="" { "done and refused" } option value="true" { "refused only" } option value="false" { "done only" } }
                    button.secondary type="submit" { "Filter" }
                }
                table #audit {
                    thead { tr { th { "When" } th { "Who" } th { "Via" } th { "What" } th { "Outcome" } th { "From" } } }
                    tbody {
                        @for e in &log.list {
                            tr {
                                td.muted { (e.at) }
                                td { (e.username) }
                                td { (e.via) }
                                td { code { (e.method) " " (e.path) } }
                                td data-state=(if e.status < 400 { "good" } else { "bad" }) { (e.status) }
                                td.muted { (e.address.clone().unwrap_or_default()) }
                            }
                        }
                    }
                }
            };
            Ok(frame(Some(&s), "Audit log", None, body).into_response())
        }
        .await,
    )
}
