//! The four artifact kinds, handled by one set of operations: the kinds differ in their spec,
//! which `gatehouse_core::spec` validates, not in how they are stored, listed or deleted.

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::AnyConnection;
use sqlx::Row;

use gatehouse_core::protocol::{DeletePayload, DesiredState, Event};
use gatehouse_core::references::{self, Reference};
use gatehouse_core::spec::ArtifactSpec;
use gatehouse_core::{ArtifactKind, FieldError, Handle};

use crate::auth::Caller;
use crate::changelog::{NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::{
    llm_templates, new_handle, new_uuid, parse_stored, projects, secret_refs, List, Page,
};
use crate::state::AppState;
use crate::store::{format_ms, is_unique_violation, now_ms};

/// `?projectId=` filter of artifact lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactFilter {
    /// Only artifacts of this project.
    pub project_id: Option<String>,
}

/// An artifact row as stored (spec JSON with credentials sealed).
#[derive(Debug, Clone)]
pub struct ArtifactRow {
    pub uuid: String,
    pub kind: ArtifactKind,
    pub handle: String,
    pub project: Option<String>,
    pub spec: Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub origin: Origin,
}

/// Where an artifact was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Through this API: editable and deployable here.
    ControlPlane,
    /// Through a gateway's management API and published by it: read-only here.
    Gateway {
        /// The gateway's handle.
        gateway: String,
        /// As the gateway holds it.
        state: DesiredState,
    },
}

const SELECT: &str =
    "SELECT a.uuid, a.kind, a.handle, p.handle, a.spec, a.created_at, a.updated_at, g.handle, a.origin_state \
                      FROM artifacts a LEFT JOIN projects p ON p.uuid = a.project_id \
                      LEFT JOIN gateways g ON g.uuid = a.origin_gateway_id";

fn from_row(row: &sqlx::any::AnyRow) -> ApiResult<ArtifactRow> {
    let kind: String = row.try_get(1)?;
    let spec: String = row.try_get(4)?;
    let uuid: String = row.try_get(0)?;
    Ok(ArtifactRow {
        kind: parse_stored("artifact kind", &kind)?,
        handle: row.try_get(2)?,
        project: row.try_get(3)?,
        spec: serde_json::from_str(&spec).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "stored spec of artifact {uuid} is unreadable: {e}"
            ))
        })?,
        uuid,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
        origin: match row.try_get::<Option<String>, _>(7)? {
            None => Origin::ControlPlane,
            Some(gateway) => Origin::Gateway {
                gateway,
                state: parse_stored(
                    "origin state",
                    &row.try_get::<Option<String>, _>(8)?.unwrap_or_default(),
                )?,
            },
        },
    })
}

/// Loads an artifact of `kind` by handle within `org_id`; 404 when it is not there.
pub async fn load(
    conn: &mut AnyConnection,
    org_id: &str,
    kind: ArtifactKind,
    handle: &str,
) -> ApiResult<ArtifactRow> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE a.org_id = $1 AND a.kind = $2 AND a.handle = $3"
    ))
    .bind(org_id)
    .bind(kind.as_str())
    .bind(handle)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found(kind.label(), handle))?;
    from_row(&row)
}

/// The public view of an artifact: its spec fields (credentials removed) plus identity.
pub fn view(row: &ArtifactRow) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(row.handle.clone()));
    out.insert("uuid".into(), Value::String(row.uuid.clone()));
    out.insert("kind".into(), Value::String(row.kind.as_str().into()));
    if let Some(p) = &row.project {
        out.insert("projectId".into(), Value::String(p.clone()));
    }
    match &row.origin {
        Origin::ControlPlane => {
            out.insert("origin".into(), Value::String("control-plane".into()));
        }
        Origin::Gateway { gateway, state } => {
            out.insert("origin".into(), Value::String("gateway".into()));
            out.insert("gatewayId".into(), Value::String(gateway.clone()));
            out.insert("gatewayState".into(), Value::String(state.as_str().into()));
        }
    }
    let mut spec = row.spec.clone();
    super::credentials::redact_credentials(row.kind, &mut spec);
    if let Value::Object(fields) = spec {
        out.extend(fields);
    }
    out.insert("createdAt".into(), Value::String(format_ms(row.created_at)));
    out.insert("updatedAt".into(), Value::String(format_ms(row.updated_at)));
    Value::Object(out)
}

/// A create or replace body split into its identity fields and its validated spec.
struct Body {
    id: Option<String>,
    project_id: Option<String>,
    spec: ArtifactSpec,
    /// The secrets the spec references (`{{ secret "id" }}`), each with its field.
    secrets: Vec<(String, Handle)>,
}

fn parse_body(kind: ArtifactKind, body: Value) -> ApiResult<Body> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::Invalid("the body must be a JSON object".into()));
    };
    let take_str = |fields: &mut Map<String, Value>, key: &str| -> ApiResult<Option<String>> {
        match fields.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(FieldError::new(key, "must be a string").into()),
        }
    };
    let id = take_str(&mut fields, "id")?;
    let project_id = take_str(&mut fields, "projectId")?;
    // Read-only fields a client may echo back from a GET.
    for key in [
        "uuid",
        "kind",
        "createdAt",
        "updatedAt",
        "origin",
        "gatewayId",
        "gatewayState",
    ] {
        fields.remove(key);
    }
    let mut fields = Value::Object(fields);
    let found = references::find(&fields)?;
    gatehouse_core::spec::remove_credential_marks(kind, &mut fields);
    let spec = ArtifactSpec::parse(kind, fields).map_err(|mut e| {
        // A typed field (a URL, a header name) refuses the reference's text: say so plainly.
        if found.iter().any(|(field, _)| *field == e.field) {
            e.message = format!(
                "{}; this field cannot hold a reference (references work in free-text fields: credentials, header values, ...)",
                e.message
            );
        }
        e
    })?;
    let secrets = found
        .into_iter()
        .filter_map(|(field, r)| match r {
            Reference::Secret(id) => Some((field, id)),
            Reference::Env(_) => None,
        })
        .collect();
    spec.validate_credentials()?;
    if matches!(&spec, ArtifactSpec::Mcp(m) if m.session_key.is_some()) {
        return Err(FieldError::new(
            "sessionKey",
            "is set by the control plane when it delivers the proxy to gateways",
        )
        .into());
    }
    Ok(Body {
        id,
        project_id,
        spec,
        secrets,
    })
}

/// Checks references of a spec and returns the project's uuid and those of the LLM providers
/// it names.
async fn resolve_refs(
    conn: &mut AnyConnection,
    org_id: &str,
    kind: ArtifactKind,
    body: &Body,
) -> ApiResult<(Option<String>, Vec<String>)> {
    let project = match (&body.project_id, kind.has_project()) {
        (Some(p), true) => Some(projects::resolve(conn, org_id, "projectId", p).await?),
        (None, true) => return Err(FieldError::new("projectId", "is required").into()),
        (Some(_), false) => {
            return Err(FieldError::new(
                "projectId",
                "LLM providers belong to the organization, not to a project",
            )
            .into())
        }
        (None, false) => None,
    };
    let mut providers = Vec::new();
    let named = body.spec.providers();
    for (i, handle) in named.iter().enumerate() {
        let uuid: Option<String> = sqlx::query_scalar(
            "SELECT uuid FROM artifacts WHERE org_id = $1 AND kind = 'LlmProvider' AND handle = $2",
        )
        .bind(org_id)
        .bind(handle.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let field = match &body.spec {
            ArtifactSpec::LlmProxy(s) if s.provider.is_none() => format!("providers[{i}].id"),
            _ => "provider.id".to_owned(),
        };
        providers.push(uuid.ok_or_else(|| {
            ApiError::UnknownReference(FieldError::new(
                field,
                format!("LLM provider '{handle}' does not exist"),
            ))
        })?);
    }
    llm_templates::check_provider(conn, org_id, &body.spec).await?;
    for (field, id) in &body.secrets {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM secrets WHERE org_id = $1 AND handle = $2")
                .bind(org_id)
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        if found.is_none() {
            return Err(ApiError::UnknownReference(FieldError::new(
                field.as_str(),
                format!("secret '{}' does not exist", id.as_str()),
            )));
        }
    }
    for (i, plan) in body.spec.subscription_plans().iter().enumerate() {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM subscription_plans WHERE org_id = $1 AND handle = $2",
        )
        .bind(org_id)
        .bind(plan)
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_none() {
            return Err(ApiError::UnknownReference(FieldError::new(
                format!("subscriptionPlans[{i}]"),
                format!("subscription plan '{plan}' does not exist"),
            )));
        }
    }
    Ok((project, providers))
}

/// Records the providers an LLM proxy names, in order.
async fn store_providers(
    conn: &mut AnyConnection,
    proxy: &str,
    providers: &[String],
) -> ApiResult<()> {
    sqlx::query("DELETE FROM llm_proxy_providers WHERE proxy_id = $1")
        .bind(proxy)
        .execute(&mut *conn)
        .await?;
    for (i, p) in providers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO llm_proxy_providers (proxy_id, provider_id, position) VALUES ($1, $2, $3)",
        )
        .bind(proxy)
        .bind(p)
        .bind(i as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn stored_value(stored: &str) -> ApiResult<Value> {
    serde_json::from_str(stored).map_err(|e| ApiError::Internal(e.into()))
}

/// Refuses (409) to change, delete, deploy or key an artifact a gateway published: it is
/// managed on that gateway.
pub fn ensure_editable(row: &ArtifactRow, what: &str) -> ApiResult<()> {
    match &row.origin {
        Origin::ControlPlane => Ok(()),
        Origin::Gateway { gateway, .. } => Err(ApiError::Conflict(format!(
            "{} '{}' was created on gateway '{gateway}' (origin: gateway) and cannot be {what} here; manage it through that gateway's management API",
            row.kind.label(),
            row.handle
        ))),
    }
}

/// Refuses an LLM proxy that names itself.
fn check_not_self(spec: &ArtifactSpec, handle: &str) -> ApiResult<()> {
    if let ArtifactSpec::LlmProxy(s) = spec {
        s.check_not_self(handle)?;
    }
    Ok(())
}

/// The spec as stored: credentials sealed.
pub(crate) fn stored_spec(
    state: &AppState,
    mut spec: ArtifactSpec,
    previous: Option<&Value>,
) -> ApiResult<String> {
    for (slot, cred) in spec.credentials_mut() {
        match cred.take() {
            Some(plain) => *cred = Some(state.sealer.seal(&plain)),
            // A replace without the credential keeps the stored one.
            None => {
                *cred = previous
                    .and_then(|p| p.pointer(&slot.pointer()))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
        }
    }
    // A client certificate needs its key, given now or kept from before.
    if let ArtifactSpec::RestApi(api) = &spec {
        let endpoints = [
            ("main", Some(&api.upstream.main)),
            ("sandbox", api.upstream.sandbox.as_ref()),
        ];
        for (name, endpoint) in endpoints {
            if let Some(tls) = endpoint.and_then(|e| e.tls.as_ref()) {
                if tls.client_cert.is_some() && tls.client_key.is_none() {
                    return Err(FieldError::new(
                        format!("upstream.{name}.tls.clientKey"),
                        "is required with clientCert",
                    )
                    .into());
                }
            }
        }
    }
    Ok(spec.to_value().to_string())
}

/// Creates an artifact of `kind`.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    body: Value,
) -> ApiResult<Value> {
    let body = parse_body(kind, body)?;
    let handle = new_handle(body.id.as_deref(), body.spec.display_name())?;
    check_not_self(&body.spec, handle.as_str())?;
    let mut tx = state.db.write().await?;
    let (project, providers) = resolve_refs(tx.conn(), &caller.org_id, kind, &body).await?;
    let now = now_ms();
    let display = body.spec.display_name().to_owned();
    let spec = stored_spec(state, body.spec, None)?;
    let secrets = secret_refs::referenced(&state.sealer, kind, &stored_value(&spec)?)?;
    let uuid = new_uuid();
    let res = sqlx::query(
        "INSERT INTO artifacts (uuid, org_id, kind, handle, display_name, project_id, provider_id, spec, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&uuid)
    .bind(&caller.org_id)
    .bind(kind.as_str())
    .bind(handle.as_str())
    .bind(display)
    .bind(project)
    .bind(providers.first())
    .bind(spec)
    .bind(now)
    .execute(tx.conn())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            drop(tx);
            let mut conn = state.db.pool().acquire().await?;
            let taken = load(&mut conn, &caller.org_id, kind, handle.as_str()).await?;
            return Err(match taken.origin {
                Origin::Gateway { gateway, .. } => ApiError::Conflict(format!(
                    "{} '{handle}' already exists: gateway '{gateway}' publishes it (origin: gateway); choose another id",
                    kind.label()
                )),
                Origin::ControlPlane => {
                    ApiError::Conflict(format!("{} '{handle}' already exists", kind.label()))
                }
            });
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    store_providers(tx.conn(), &uuid, &providers).await?;
    secret_refs::store_for_artifact(tx.conn(), &caller.org_id, &uuid, &secrets).await?;
    let row = load(tx.conn(), &caller.org_id, kind, handle.as_str()).await?;
    tx.commit().await?;
    Ok(view(&row))
}

/// Reads an artifact.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
) -> ApiResult<Value> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(view(&load(&mut conn, &caller.org_id, kind, handle).await?))
}

/// Lists artifacts of `kind`, optionally of one project.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    page: Page,
    filter: ArtifactFilter,
) -> ApiResult<List<Value>> {
    let bounds = page.bounds()?;
    let project_clause = if filter.project_id.is_some() {
        " AND p.handle = $3"
    } else {
        ""
    };
    let count_sql = format!(
        "SELECT COUNT(*) FROM artifacts a LEFT JOIN projects p ON p.uuid = a.project_id WHERE a.org_id = $1 AND a.kind = $2{project_clause}"
    );
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql)
        .bind(&caller.org_id)
        .bind(kind.as_str());
    let list_sql = format!(
        "{SELECT} WHERE a.org_id = $1 AND a.kind = $2{project_clause} ORDER BY a.handle LIMIT {} OFFSET {}",
        bounds.0, bounds.1
    );
    let mut rows = sqlx::query(&list_sql)
        .bind(&caller.org_id)
        .bind(kind.as_str());
    if let Some(p) = &filter.project_id {
        count = count.bind(p);
        rows = rows.bind(p);
    }
    let total = count.fetch_one(state.db.pool()).await?;
    let rows = rows.fetch_all(state.db.pool()).await?;
    let list = rows
        .iter()
        .map(|r| from_row(r).map(|a| view(&a)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(list, total, bounds))
}

/// Replaces an artifact's spec. Gateways see the change only when it is deployed again.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
    body: Value,
) -> ApiResult<Value> {
    let mut body = parse_body(kind, body)?;
    if let Some(id) = &body.id {
        if id != handle {
            return Err(ApiError::Immutable(FieldError::new(
                "id",
                format!("is immutable: '{id}' differs from '{handle}'"),
            )));
        }
    }
    let mut tx = state.db.write().await?;
    let current = load(tx.conn(), &caller.org_id, kind, handle).await?;
    ensure_editable(&current, "changed")?;
    if body.project_id.is_none() && kind.has_project() {
        body.project_id = current.project.clone();
    }
    check_not_self(&body.spec, handle)?;
    let (project, providers) = resolve_refs(tx.conn(), &caller.org_id, kind, &body).await?;
    let display = body.spec.display_name().to_owned();
    let spec = stored_spec(state, body.spec, Some(&current.spec))?;
    let secrets = secret_refs::referenced(&state.sealer, kind, &stored_value(&spec)?)?;
    sqlx::query(
        "UPDATE artifacts SET display_name = $1, project_id = $2, provider_id = $3, spec = $4, updated_at = $5 WHERE uuid = $6",
    )
    .bind(display)
    .bind(project)
    .bind(providers.first())
    .bind(spec)
    .bind(now_ms())
    .bind(&current.uuid)
    .execute(tx.conn())
    .await?;
    store_providers(tx.conn(), &current.uuid, &providers).await?;
    secret_refs::store_for_artifact(tx.conn(), &caller.org_id, &current.uuid, &secrets).await?;
    let row = load(tx.conn(), &caller.org_id, kind, handle).await?;
    tx.commit().await?;
    Ok(view(&row))
}

/// Deletes an artifact with its deployments, and tells every gateway of the organization,
/// whether or not a deployment of it still exists (a gateway may retain it undeployed).
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    kind: ArtifactKind,
    handle: &str,
) -> ApiResult<()> {
    let mut tx = state.begin_change().await?;
    let row = load(tx.conn(), &caller.org_id, kind, handle).await?;
    ensure_editable(&row, "deleted")?;
    if kind == ArtifactKind::LlmProvider {
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT a.handle FROM llm_proxy_providers p JOIN artifacts a ON a.uuid = p.proxy_id \
             WHERE p.provider_id = $1 ORDER BY a.handle LIMIT 20",
        )
        .bind(&row.uuid)
        .fetch_all(tx.conn())
        .await?;
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "LLM provider '{handle}' is used by LLM proxies {}; delete them or point them elsewhere first",
                users.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    sqlx::query("DELETE FROM artifacts WHERE uuid = $1")
        .bind(&row.uuid)
        .execute(tx.conn())
        .await?;
    let deleted = Event::Deleted(DeletePayload {
        artifact_id: row.uuid.clone(),
        kind,
        handle: row.handle.clone(),
    });
    // Every gateway: one may hold the artifact without any deployment row left.
    tx.append(
        &caller.org_id,
        &[NewEvent::new(deleted, Target::AllGateways)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
