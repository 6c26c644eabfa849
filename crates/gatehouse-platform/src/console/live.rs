//! Live values for the console: the gateways' state, the deployment matrix and one artifact's
//! deployments, sent as server-sent events whenever they change (checked every second). Each
//! value is addressed by the id of the element that shows it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::session::{Session, Signed};
use crate::error::ApiResult;
use crate::service::{gateways, Page};
use crate::state::AppState;

/// One value shown on a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub text: String,
    /// Drives the element's colour (`good`, `warn`, `bad`, or a deployment status).
    pub state: String,
}

fn field(text: impl Into<String>, state: impl Into<String>) -> Field {
    Field {
        text: text.into(),
        state: state.into(),
    }
}

/// Element id → value.
pub type Fields = BTreeMap<String, Field>;

/// The values of the gateways' rows on the overview.
pub async fn gateway_fields(state: &AppState, s: &Session) -> ApiResult<Fields> {
    let page = Page {
        limit: Some(1000),
        offset: None,
    };
    let list = gateways::list(&state.db, &state.hub, &s.caller, page).await?;
    let served: BTreeMap<String, i64> = sqlx::query_as(
        "SELECT g.handle, COUNT(*) FROM deployment_status s JOIN gateways g ON g.uuid = s.gateway_id \
         WHERE g.org_id = $1 AND s.desired = 'DEPLOYED' GROUP BY g.handle",
    )
    .bind(&s.caller.org_id)
    .fetch_all(state.db.pool())
    .await?
    .into_iter()
    .collect();
    let mut out = Fields::new();
    for g in list.list {
        let st = &g.status;
        let id = &g.id;
        out.insert(
            format!("gw-{id}-connected"),
            if st.connected {
                field("connected", "good")
            } else {
                field("offline", "bad")
            },
        );
        out.insert(
            format!("gw-{id}-sync"),
            if st.in_sync {
                field("in sync", "good")
            } else {
                field("behind", "warn")
            },
        );
        out.insert(
            format!("gw-{id}-revision"),
            field(format!("{} / {}", st.applied_revision, st.org_revision), ""),
        );
        out.insert(
            format!("gw-{id}-seen"),
            field(st.last_seen.clone().unwrap_or_else(|| "never".into()), ""),
        );
        out.insert(
            format!("gw-{id}-served"),
            field(served.get(id).copied().unwrap_or(0).to_string(), ""),
        );
    }
    Ok(out)
}

/// The deployment matrix: the status of each artifact on each gateway.
pub async fn matrix_fields(state: &AppState, s: &Session) -> ApiResult<Fields> {
    let rows = sqlx::query(
        "SELECT a.kind, a.handle, g.handle, st.status FROM deployment_status st \
         JOIN artifacts a ON a.uuid = st.artifact_id JOIN gateways g ON g.uuid = st.gateway_id \
         WHERE a.org_id = $1",
    )
    .bind(&s.caller.org_id)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Fields::new();
    for r in rows {
        let kind: String = r.try_get(0)?;
        let handle: String = r.try_get(1)?;
        let gw: String = r.try_get(2)?;
        let status: String = r.try_get(3)?;
        out.insert(cell_id(&kind, &handle, &gw), field(status.clone(), status));
    }
    Ok(out)
}

/// The id of a matrix cell.
pub fn cell_id(kind: &str, handle: &str, gateway: &str) -> String {
    format!("cell-{kind}-{handle}-{gateway}")
}

/// The status of each deployment of one artifact.
pub async fn deployment_fields(state: &AppState, s: &Session, artifact: &str) -> ApiResult<Fields> {
    let Some((kind, handle)) = artifact.split_once('/') else {
        return Ok(Fields::new());
    };
    let Some(kind) = gatehouse_core::ArtifactKind::from_collection(kind) else {
        return Ok(Fields::new());
    };
    let filter = crate::service::deployments::DeploymentFilter {
        gateway_id: None,
        status: None,
    };
    let list = crate::service::deployments::list(state, &s.caller, kind, handle, filter).await?;
    Ok(list
        .into_iter()
        .map(|d| {
            let status = d.status.as_str().to_owned();
            (
                format!("dep-{}-status", d.deployment_id),
                field(status.clone(), status),
            )
        })
        .collect())
}

#[derive(Deserialize)]
pub struct LiveQuery {
    /// `overview`, or `<collection>/<id>` for an artifact's page.
    #[serde(default)]
    page: String,
}

async fn snapshot(state: &AppState, s: &Session, page: &str) -> ApiResult<Fields> {
    if page == "overview" {
        let mut f = gateway_fields(state, s).await?;
        f.extend(matrix_fields(state, s).await?);
        Ok(f)
    } else {
        deployment_fields(state, s, page).await
    }
}

/// `GET /console/live?page=...`: the page's values, again whenever they change.
pub async fn stream(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(q): Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = tokio::time::interval(Duration::from_secs(1));
    let initial = (state, s, q.page, ticks, None::<Fields>);
    let events = futures::stream::unfold(initial, |(state, s, page, mut ticks, last)| async move {
        loop {
            ticks.tick().await;
            let Ok(now) = snapshot(&state, &s, &page).await else {
                continue;
            };
            if last.as_ref() == Some(&now) {
                continue;
            }
            let data = serde_json::json!({ "fields": now }).to_string();
            let event = Event::default().data(data);
            return Some((Ok(event), (state, s, page, ticks, Some(now))));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
