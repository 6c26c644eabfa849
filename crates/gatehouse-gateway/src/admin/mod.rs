//! The management API (`/api/management/v1` on `--admin-listen`, HTTP basic auth): artifacts of
//! the four kinds in YAML or JSON, their API keys, the gateway's status; and `/metrics`.

mod auth;
mod body;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{json, Value};

use gatehouse_core::crypto::{random_token, sha256_hex};
use gatehouse_core::protocol::ApiKeyStatus;
use gatehouse_core::{ArtifactDocument, ArtifactKind, FieldError};

use crate::runtime::Runtime;
use crate::store::now_rfc3339;
use crate::store::{mask, Origin, State as ArtifactState, StoreError, StoredArtifact, StoredKey};

pub use auth::AdminCredentials;
use body::Document;

/// Installs the process-wide Prometheus recorder (once), the same one a platform in the same
/// process (`gatehouse dev`) records to.
pub fn install_prometheus() -> &'static PrometheusHandle {
    gatehouse_core::prometheus::handle()
}

/// An error of the management API, answered as `{code, message, field?}`.
#[derive(Debug)]
pub enum AdminError {
    Invalid(FieldError),
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    TooLarge,
    /// The store failed; logged, answered as a plain 500.
    Internal(StoreError),
}

impl From<FieldError> for AdminError {
    fn from(e: FieldError) -> Self {
        AdminError::Invalid(e)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(m) => {
                AdminError::Conflict(format!("configuration already exists: {m}"))
            }
            StoreError::Conflict(m) => AdminError::Conflict(m),
            StoreError::NotFound => AdminError::NotFound("not found".into()),
            other => AdminError::Internal(other),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = match self {
            AdminError::Invalid(f) => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                f.to_string(),
                Some(f.field),
            ),
            AdminError::BadRequest(m) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST", m, None),
            AdminError::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m, None),
            AdminError::Conflict(m) => (StatusCode::CONFLICT, "CONFLICT", m, None),
            AdminError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is larger than the limit".into(),
                None,
            ),
            AdminError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "management request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error".into(),
                    None,
                )
            }
        };
        let mut body = json!({"code": code, "message": message});
        if let Some(f) = field.filter(|f| !f.is_empty()) {
            body["field"] = Value::String(f);
        }
        (status, Json(body)).into_response()
    }
}

type AdminResult<T> = Result<T, AdminError>;

/// The management router.
pub fn router(rt: Arc<Runtime>, credentials: AdminCredentials, body_limit: usize) -> Router {
    let mut api = Router::new().route("/status", get(status));
    for kind in ArtifactKind::ALL {
        let c = kind.collection();
        let k = Extension(kind);
        api = api
            .route(&format!("/{c}"), get(list).post(create).layer(k))
            .route(
                &format!("/{c}/{{handle}}"),
                get(read).put(replace).delete(remove).layer(k),
            )
            .route(
                &format!("/{c}/{{handle}}/api-keys"),
                get(list_keys).post(create_key).layer(k),
            )
            .route(
                &format!("/{c}/{{handle}}/api-keys/{{key_id}}"),
                delete(revoke_key).layer(k),
            );
    }
    let api = api.layer(axum::middleware::from_fn_with_state(
        Arc::new(credentials),
        auth::require,
    ));
    Router::new()
        .nest("/api/management/v1", api)
        .route("/metrics", get(metrics))
        .fallback(|| async { AdminError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(rt)
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        install_prometheus().render(),
    )
        .into_response()
}

/// The document as read back: credentials removed, plus `status` (with, for a local
/// artifact on a connected gateway, what the control plane made of it).
fn view(rt: &Runtime, a: &StoredArtifact) -> Value {
    let mut v = a.document.to_value();
    if let Some(spec) = v.get_mut("spec") {
        gatehouse_core::spec::redact_credentials(a.kind(), spec);
    }
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        if spec.remove("sessionKey").is_some() {
            spec.insert("sessionKeySet".into(), Value::Bool(true));
        }
    }
    v["status"] = json!({
        "artifactId": a.artifact_uuid.clone().unwrap_or_else(|| a.id.clone()),
        "state": a.state,
        "origin": a.origin,
        "deploymentId": a.deployment_id,
        "deployedAt": a.deployed_at,
    });
    if a.origin == Origin::GatewayApi {
        if let Some(p) = rt.publish.state_of(a.kind(), a.handle()) {
            v["status"]["controlPlane"] = json!(p);
        }
    }
    v
}

async fn held(rt: &Runtime, kind: ArtifactKind, handle: &str) -> AdminResult<StoredArtifact> {
    rt.store.artifact(kind, handle).await?.ok_or_else(|| {
        AdminError::NotFound(format!(
            "{} '{handle}' is not held by this gateway",
            kind.label()
        ))
    })
}

fn parse_for(kind: ArtifactKind, mut doc: Value) -> AdminResult<ArtifactDocument> {
    // What a read returned can be written back: its `<credential>Set` marks are dropped.
    if let Some(spec) = doc.get_mut("spec") {
        gatehouse_core::spec::remove_credential_marks(kind, spec);
    }
    let doc = ArtifactDocument::from_value(doc)?;
    doc.spec.validate_credentials()?;
    if doc.kind != kind {
        return Err(FieldError::new(
            "kind",
            format!(
                "'{}' does not belong under /{}",
                doc.kind,
                kind.collection()
            ),
        )
        .into());
    }
    // A gateway managed on its own has no organization templates: a provider names a
    // built-in template or carries its definition.
    if let gatehouse_core::spec::ArtifactSpec::LlmProvider(p) = &doc.spec {
        if p.resolved_template().is_none() {
            let mut e = p.unresolved_template_error();
            e.message
                .push_str(" (give its definition in templateDefinition)");
            return Err(e.prefixed("spec").into());
        }
    }
    Ok(doc)
}

async fn status(State(rt): State<Arc<Runtime>>) -> AdminResult<Json<Value>> {
    let counts = rt.store.artifact_counts().await?;
    let total: u64 = counts.iter().map(|c| c.2).sum();
    let deployed: u64 = counts
        .iter()
        .filter(|c| c.1 == ArtifactState::Deployed)
        .map(|c| c.2)
        .sum();
    let mut by_kind = serde_json::Map::new();
    for k in ArtifactKind::ALL {
        let n: u64 = counts.iter().filter(|c| c.0 == k).map(|c| c.2).sum();
        by_kind.insert(k.as_str().into(), json!(n));
    }
    let applied = rt.store.applied_revision().await?;
    let table = rt.proxy.table();
    let rebuild = *rt.last_rebuild.lock().unwrap_or_else(|e| e.into_inner());
    let sync = rt.sync_status();
    // Which secret values are held (ids only; values never leave the data plane).
    let mut secret_ids = rt.secrets.ids();
    secret_ids.sort_unstable();
    Ok(Json(json!({
        "mode": if sync.control_plane.is_some() { "connected" } else { "standalone" },
        "controlPlane": {
            "url": sync.control_plane,
            "connected": sync.connected,
            "connectionId": sync.connection_id,
            "capabilities": sync.capabilities,
            "lastError": sync.last_error,
            "eventsApplied": sync.events_applied,
        },
        "appliedRevision": applied,
        "lastSync": sync.last_sync,
        "artifacts": {"total": total, "deployed": deployed, "undeployed": total - deployed, "byKind": by_kind},
        "routeTable": {"artifacts": table.len(), "routes": table.routes, "lastRebuildMs": rebuild.as_secs_f64() * 1000.0},
        "secrets": {"held": secret_ids},
        "published": {"refused": rt.publish.refused()},
        "rateLimitStore": rt.rate_limit_store_status(),
    })))
}

async fn list(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
) -> AdminResult<Json<Value>> {
    let list: Vec<Value> = rt
        .store
        .artifacts()
        .await?
        .iter()
        .filter(|a| a.kind() == kind)
        .map(|a| view(&rt, a))
        .collect();
    Ok(Json(json!({"count": list.len(), "list": list})))
}

async fn read(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Path(handle): Path<String>,
) -> AdminResult<Json<Value>> {
    Ok(Json(view(&rt, &held(&rt, kind, &handle).await?)))
}

async fn create(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Document(doc): Document,
) -> AdminResult<(StatusCode, Json<Value>)> {
    let document = parse_for(kind, doc)?;
    let art = StoredArtifact {
        id: uuid::Uuid::now_v7().to_string(),
        document,
        state: ArtifactState::Deployed,
        origin: Origin::GatewayApi,
        artifact_uuid: None,
        deployment_id: None,
        deployed_at: Some(now_rfc3339()),
    };
    rt.store.insert(&art).await?;
    rt.refresh(&art.id).await?;
    rt.publish.changed(kind, art.handle());
    Ok((StatusCode::CREATED, Json(view(&rt, &art))))
}

fn refuse_control_plane(a: &StoredArtifact, what: &str) -> AdminResult<()> {
    if a.origin == Origin::ControlPlane {
        return Err(AdminError::Conflict(format!(
            "{} '{}' is managed by the control plane; {what} it there",
            a.kind().label(),
            a.handle()
        )));
    }
    Ok(())
}

async fn replace(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Path(handle): Path<String>,
    Document(doc): Document,
) -> AdminResult<Json<Value>> {
    let mut document = parse_for(kind, doc)?;
    if document.metadata.name.as_str() != handle {
        return Err(FieldError::new(
            "metadata.name",
            format!(
                "'{}' differs from '{handle}' in the path",
                document.metadata.name
            ),
        )
        .into());
    }
    let mut art = held(&rt, kind, &handle).await?;
    refuse_control_plane(&art, "change")?;
    // A replace without a credential keeps the stored one.
    document.spec.keep_credentials_from(&mut art.document.spec);
    art.document = document;
    art.deployed_at = Some(now_rfc3339());
    rt.store.replace(&art).await?;
    rt.refresh(&art.id).await?;
    rt.publish.changed(kind, art.handle());
    Ok(Json(view(&rt, &art)))
}

async fn remove(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Path(handle): Path<String>,
) -> AdminResult<StatusCode> {
    let art = held(&rt, kind, &handle).await?;
    refuse_control_plane(&art, "delete")?;
    rt.store.delete(&art.id).await?;
    rt.refresh(&art.id).await?;
    rt.publish.changed(kind, art.handle());
    Ok(StatusCode::NO_CONTENT)
}

async fn list_keys(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Path(handle): Path<String>,
) -> AdminResult<Json<Value>> {
    let art = held(&rt, kind, &handle).await?;
    let keys = rt.store.keys_of(&art.id).await?;
    Ok(Json(json!({"count": keys.len(), "list": keys})))
}

/// Body of `POST /{kind}/{handle}/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKey {
    display_name: String,
    api_key: Option<String>,
    /// RFC 3339.
    expires_at: Option<String>,
}

async fn create_key(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Path(handle): Path<String>,
    Document(body): Document,
) -> AdminResult<(StatusCode, Json<Value>)> {
    let art = held(&rt, kind, &handle).await?;
    refuse_control_plane(&art, "manage its API keys")?;
    let req: NewKey = gatehouse_core::validate::from_value(body)?;
    if req.display_name.trim().is_empty() {
        return Err(FieldError::new("displayName", "must not be empty").into());
    }
    let key = match req.api_key {
        Some(k) if k.len() < 16 || k.chars().any(char::is_whitespace) => {
            return Err(
                FieldError::new("apiKey", "must be at least 16 characters without spaces").into(),
            )
        }
        Some(k) => k,
        None => random_token("ghk_"),
    };
    let expires_at = match &req.expires_at {
        Some(t) => Some(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| {
                    FieldError::new("expiresAt", format!("'{t}' is not an RFC 3339 time"))
                })?,
        ),
        None => None,
    };
    let stored = StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        artifact_id: art.id.clone(),
        display_name: req.display_name,
        key_hash: sha256_hex(&key),
        masked_api_key: mask(&key),
        status: ApiKeyStatus::Active,
        expires_at,
    };
    rt.store.insert_key(&stored).await?;
    rt.refresh(&art.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": stored.id, "apiKey": key, "maskedApiKey": stored.masked_api_key})),
    ))
}

async fn revoke_key(
    State(rt): State<Arc<Runtime>>,
    Extension(kind): Extension<ArtifactKind>,
    Path((handle, key_id)): Path<(String, String)>,
) -> AdminResult<StatusCode> {
    let art = held(&rt, kind, &handle).await?;
    refuse_control_plane(&art, "manage its API keys")?;
    rt.store
        .revoke_key(&art.id, &key_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound(format!("API key '{key_id}' not found")),
            other => other.into(),
        })?;
    rt.refresh(&art.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
