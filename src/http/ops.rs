//! Operations endpoints: `/healthz` (the process answers), `/readyz` (not draining, and the
//! database takes a write within `database.readiness_timeout_ms`),
//! `/metrics` (Prometheus), and the stylesheet.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::pages::STYLESHEET;
use super::AppState;

/// The process-wide Prometheus recorder, installed once.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("careid_group_commit_sets".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
                )
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    let limit = std::time::Duration::from_millis(app.provider.config.database.readiness_timeout_ms);
    let now = app.provider.now();
    match tokio::time::timeout(limit, app.provider.db.probe_write(now)).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database does not take writes");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = limit.as_millis() as u64,
                "database write did not finish in time"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// `/metrics` on the main listener: only to the configured bearer token (404 otherwise, as if
/// it were not there).
pub async fn metrics_with_token(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let allowed = match (
        &app.provider.config.metrics.token,
        super::params::bearer(&headers),
    ) {
        (Some(token), Some(presented)) => {
            crate::domain::secrets::constant_time_eq(token, presented)
        }
        _ => false,
    };
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    metrics().await
}

/// The router of the metrics listener (`metrics.listen`): operations endpoints only.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(state)
}

pub async fn metrics() -> Response {
    match metrics_handle() {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable").into_response(),
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Records every request's latency by route template, method and status.
pub async fn record_latency(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("careid_http_request_duration_seconds", "route" => route, "method" => method, "status" => status).record(started.elapsed().as_secs_f64());
    response
}
