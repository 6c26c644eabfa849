//! Health, Prometheus metrics and request accounting.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// The process-wide Prometheus recorder, installed on first use and shared with a gateway
/// running in the same process (`gatehouse dev`).
pub fn prometheus() -> &'static PrometheusHandle {
    gatehouse_core::prometheus::handle()
}

/// How long `/health` waits for the database before saying it is unreachable.
const HEALTH_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET /health`: 200 while the database answers (within a few seconds).
pub async fn health(State(st): State<AppState>) -> Response {
    let probe = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(st.db.pool());
    let answer = tokio::time::timeout(HEALTH_WAIT, probe)
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
    match answer {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
                .into_response()
        }
    }
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
        .into_response()
}

/// Unknown routes answer in the API's error format.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Counts requests and their latency per route template and status.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("gatehouse_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("gatehouse_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Headers every platform answer carries (unless the answer set its own): no sniffing, no
/// framing, no referrer; API answers are not cached; HSTS when the platform serves HTTPS.
pub async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(header::HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(header::HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(header::HeaderValue::from_static("no-referrer"));
    if api {
        h.entry(header::CACHE_CONTROL)
            .or_insert(header::HeaderValue::from_static("no-store"));
    }
    if st.config.tls.is_some() {
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(header::HeaderValue::from_static("max-age=31536000"));
    }
    res
}
