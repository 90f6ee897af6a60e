//! Each layer's errors mapped to responses, once: OAuth JSON errors (RFC 6749 §5.2), bearer-token
//! challenges (RFC 6750 §3), RFC 9457 problem details for the admin API, and the internal-error
//! page. Pages that explain a refusal to a
//! person are built with [`super::pages::Page::error`]. Internal causes are logged once, with
//! the request id, and never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::pages::Page;
use crate::domain::ra::AdminError;
use crate::domain::token::{BearerError, TokenError};

/// Headers every token response carries (RFC 6749 §5.1).
pub fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub struct OAuthError(pub TokenError);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let (status, description) = match &self.0 {
            TokenError::Internal(e) => {
                tracing::error!(error = %e, "token endpoint failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server could not complete the request".to_string(),
                )
            }
            TokenError::InvalidClient { reason, .. } => (StatusCode::UNAUTHORIZED, reason.clone()),
            TokenError::InvalidRequest(d)
            | TokenError::InvalidGrant(d)
            | TokenError::UnauthorizedClient(d)
            | TokenError::UnsupportedGrantType(d)
            | TokenError::InvalidScope(d) => (StatusCode::BAD_REQUEST, d.clone()),
        };
        let mut response = (
            status,
            Json(json!({ "error": code, "error_description": description })),
        )
            .into_response();
        if let TokenError::InvalidClient {
            used_basic: true, ..
        } = self.0
        {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"careid\""),
            );
        }
        no_store(response)
    }
}

pub struct BearerRejection(pub BearerError);

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let (status, code, description) = match &self.0 {
            BearerError::InvalidRequest(d) => {
                (StatusCode::BAD_REQUEST, "invalid_request", d.clone())
            }
            BearerError::InvalidToken(d) => (StatusCode::UNAUTHORIZED, "invalid_token", d.clone()),
            BearerError::Internal(e) => {
                tracing::error!(error = %e, "userinfo failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the server could not complete the request".into(),
                )
            }
        };
        let challenge = format!(
            "Bearer realm=\"careid\", error=\"{code}\", error_description=\"{}\"",
            description.replace('"', "'")
        );
        let mut response = (
            status,
            Json(json!({ "error": code, "error_description": description })),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        no_store(response)
    }
}

/// An error shown to a person as a page. Internal causes are logged, not shown.
pub fn internal_page(e: impl std::fmt::Display, request_id: &str) -> Response {
    tracing::error!(error = %e, "request failed");
    Page::error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "careid could not complete this request. Please try again; if it keeps happening, give the reference below to your service desk.", request_id)
}

/// An admin-API failure as RFC 9457 problem details.
pub struct Problem(pub AdminError);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, title) = match &self.0 {
            AdminError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "Authentication required"),
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "Invalid request"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            AdminError::Internal(e) => {
                tracing::error!(error = %e, "admin API failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
            }
        };
        let detail = match &self.0 {
            AdminError::Internal(_) => "the server could not complete the request".to_string(),
            other => other.to_string(),
        };
        let body = json!({ "type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail });
        let mut r = (status, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"careid-admin\""),
            );
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

/// A method a JSON API resource does not take: 405 as problem details (admin, HR, onboarding
/// APIs), never an empty body.
pub async fn problem_method_not_allowed() -> Response {
    let body = json!({ "type": "about:blank", "title": "Method not allowed", "status": 405, "detail": "this resource does not take that method; the API's OpenAPI document lists each operation" });
    let mut r = (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    no_store(r)
}

/// A method other than POST at the token, introspection, revocation or registration endpoint:
/// 405 with an OAuth JSON error (RFC 6749 §5.2 shape) and `Allow: POST`.
pub async fn oauth_method_not_allowed() -> Response {
    let body =
        json!({ "error": "invalid_request", "error_description": "this endpoint takes POST only" });
    let mut r = (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    no_store(r)
}
