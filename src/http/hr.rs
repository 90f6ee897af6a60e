//! `/hr/api/v1`: the HR feed's door for HR systems (the ESR interface). The caller is a machine
//! client with its own client-credentials token (scope `careid:hr-feed`), never a person; it may
//! send events only for the organisations it was registered for. Batches are JSON
//! (`{"events": [...]}`); every event is reported (recorded, duplicate, rejected with its
//! position and reason, applied, or kept for attention). Errors are problem details.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::error::Problem;
use super::AppState;
use crate::domain::hr::feed::{HrFeedCaller, HrFeedError};
use crate::domain::ra::AdminError;

/// The largest batch body (the event count is capped by `hr.max_batch_events`).
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<serde_json::Value>,
}

fn problem(e: HrFeedError) -> Problem {
    Problem(match e {
        HrFeedError::Unauthenticated(m) => AdminError::Unauthenticated(m),
        HrFeedError::Forbidden(m) => AdminError::Forbidden(m),
        HrFeedError::Service(s) => AdminError::Internal(s),
    })
}

async fn caller(app: &AppState, headers: &HeaderMap) -> Result<HrFeedCaller, Problem> {
    app.provider
        .hr_feed_caller(super::params::bearer(headers))
        .await
        .map_err(problem)
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /hr/api/v1/events`: records and applies a batch; 200 with a report of every event.
async fn receive(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Problem(AdminError::Invalid("send application/json".into())));
    }
    let batch: Batch = serde_json::from_slice(&body).map_err(|e| {
        Problem(AdminError::Invalid(format!(
            "the body must be {{\"events\": [...]}}: {e}"
        )))
    })?;
    let max = app.provider.config.hr.max_batch_events;
    if batch.events.len() > max {
        return Err(Problem(AdminError::Invalid(format!(
            "a batch holds at most {max} events; this one has {}",
            batch.events.len()
        ))));
    }
    let report = app
        .provider
        .receive_hr_events(&caller, batch.events)
        .await
        .map_err(|e| Problem(AdminError::Internal(e)))?;
    Ok(no_store((StatusCode::OK, Json(report)).into_response()))
}

/// `GET /hr/api/v1/events/{event_id}`: where one event stands (for a feed that lost an answer).
async fn status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    let event = app
        .provider
        .hr_event_status(&caller, &event_id)
        .await
        .map_err(|e| Problem(AdminError::Internal(e)))?
        .ok_or_else(|| Problem(AdminError::NotFound(format!("no event {event_id}"))))?;
    Ok(no_store(Json(event).into_response()))
}

async fn not_found() -> Response {
    Problem(AdminError::NotFound("no such HR API resource".into())).into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/hr/api/v1/events", post(receive))
        .route("/hr/api/v1/events/{event_id}", get(status))
        .route("/hr/api/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(super::error::problem_method_not_allowed)
}
