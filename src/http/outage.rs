//! While the database is unavailable (an outage error within the last few seconds: the pool
//! gave up waiting, the connection broke, the disk is full; see `store/availability.rs`), an
//! internal error becomes `503 Service Unavailable` with `Retry-After`, in the shape its caller
//! expects: problem details on the admin, HR and onboarding APIs, an OAuth-style JSON error on
//! the endpoints that speak JSON, a page for people. Clients and load balancers then retry
//! instead of treating careid as broken, and nothing about the request was half written (a
//! failed write set rolls back whole).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::pages::Page;
use super::AppState;

/// How long after an outage error a 500 is read as the outage.
const WINDOW: std::time::Duration = std::time::Duration::from_secs(5);
/// What `Retry-After` asks for, in seconds.
pub const RETRY_AFTER_SECS: u32 = 5;

pub async fn unavailable_as_503(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // A reference count, not a copy: most requests never need it.
    let request_id = request.headers().get("x-request-id").cloned();
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !app.provider.db.unavailable_recently(WINDOW)
    {
        return response;
    }
    metrics::counter!("careid_unavailable_responses_total").increment(1);
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let detail = "The database is unavailable for the moment; try again shortly.";
    let mut answer = if kind.starts_with("application/problem+json") {
        let body = json!({ "type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": detail });
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        r
    } else if kind.starts_with("application/json") {
        let body = json!({ "error": "temporarily_unavailable", "error_description": detail });
        super::error::no_store((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response())
    } else if kind.starts_with("text/html") {
        Page::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "careid is unavailable for a moment",
            "Your sign-in could not be completed just now. Wait a minute and try again; if it keeps happening, contact your IT service desk.",
            request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
        )
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, detail).into_response()
    };
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    answer
}
