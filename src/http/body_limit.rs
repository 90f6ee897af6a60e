//! Request bodies and their limits. A body over its route's limit gets a 413 in the shape its
//! caller reads (problem details on the JSON APIs, an OAuth error at the token and registration
//! endpoints, a page for people) once the rest of it has been read and dropped, so the client
//! sees the answer rather than a reset connection (chunked HTTP/1.1, HTTP/2). Reading stops at
//! [`DRAIN_LIMIT`]: beyond that careid answers at once and closes the connection.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::json;

use super::error::no_store;
use super::pages::Page;

/// The most careid reads of a body it refuses (to answer it cleanly).
pub const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// Middleware: buffers a body of at most `max` bytes for the handler, or answers 413.
pub async fn limit(State(max): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let path = request.uri().path().to_string();
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        let mut r = too_large(&path, max);
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut read: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return (
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
                .into_response();
        };
        seen += chunk.len();
        if seen <= max {
            read.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            let mut r = too_large(&path, max);
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    }
    if seen > max {
        return too_large(&path, max);
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(read))))
        .await
}

/// 413 in the caller's shape.
fn too_large(path: &str, max: usize) -> Response {
    let detail = format!("the request body is larger than careid takes here ({max} bytes)");
    let api = ["/admin/api/", "/hr/api/", "/onboarding/api/", "/agent/"];
    let oauth = [
        "/token",
        "/access_token",
        "/introspect",
        "/revoke",
        "/token/revoke",
    ];
    if api.iter().any(|p| path.contains(p)) {
        let body = json!({ "type": "about:blank", "title": "Request too large", "status": 413, "detail": detail });
        let mut r = (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return no_store(r);
    }
    if oauth.iter().any(|p| path.ends_with(p)) || path.contains("/connect/register") {
        let body = json!({ "error": "invalid_request", "error_description": detail });
        return no_store((StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response());
    }
    Page::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "This request is too large",
        "careid did not accept what was sent: it is larger than any form of careid's. Go back and try again.",
        "-",
    )
}
