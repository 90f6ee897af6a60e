//! Dynamic client registration for suppliers (`docs/onboarding.md`): `POST /connect/register`
//! (RFC 7591, Bearer initial access token) and, with the registration access token it returns,
//! `GET`/`PUT`/`DELETE /connect/register/{client_id}` (RFC 7592), `POST .../secret` (rotation),
//! `POST .../conformance` (run the checks; `GET` the last report) and `POST .../promotion`. Errors
//! are RFC 7591 JSON (`invalid_redirect_uri`, `invalid_client_metadata`) or RFC 6750
//! `invalid_token`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::no_store;
use super::params::bearer;
use super::AppState;
use crate::domain::client::RegistrationError;
use crate::domain::onboarding::{OnboardingError, PromotionAsked};
use crate::model::client::Client;
use crate::model::onboarding::RegistrationRequest;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connect/register", post(register))
        .route(
            "/connect/register/{client_id}",
            axum::routing::get(read).put(update).delete(delete),
        )
        .route("/connect/register/{client_id}/secret", post(rotate))
        .route(
            "/connect/register/{client_id}/conformance",
            post(conformance).get(last_report),
        )
        .route("/connect/register/{client_id}/promotion", post(promotion))
        .method_not_allowed_fallback(super::error::oauth_method_not_allowed)
}

/// An error as RFC 7591 §3.2.2 (or RFC 6750 for tokens) says.
pub fn registration_error(e: OnboardingError) -> Response {
    let (status, error, description) = match &e {
        OnboardingError::InvalidToken(m) => (StatusCode::UNAUTHORIZED, "invalid_token", m.clone()),
        OnboardingError::Forbidden(m) => (StatusCode::FORBIDDEN, "access_denied", m.clone()),
        OnboardingError::NotFound(m) => (StatusCode::NOT_FOUND, "invalid_request", m.clone()),
        OnboardingError::Metadata(RegistrationError::RedirectUri(m)) => {
            (StatusCode::BAD_REQUEST, "invalid_redirect_uri", m.clone())
        }
        OnboardingError::Metadata(RegistrationError::Metadata(m)) => (
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            m.clone(),
        ),
        OnboardingError::Invalid(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
        OnboardingError::Conflict(m) => (StatusCode::CONFLICT, "invalid_request", m.clone()),
        OnboardingError::Service(s) => {
            tracing::error!(error = %s, "registration failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the server could not complete the request".into(),
            )
        }
    };
    let mut r = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    no_store(r)
}

fn metadata_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<RegistrationRequest, OnboardingError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(OnboardingError::Metadata(RegistrationError::Metadata(
            "the body must be application/json".into(),
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        OnboardingError::Metadata(RegistrationError::Metadata(format!(
            "the body is not client metadata: {e}"
        )))
    })
}

/// The metadata as RFC 7591/7592 return it, with the registration URI.
fn client_json(app: &AppState, client: &Client, extra: Value) -> Value {
    let mut v = serde_json::to_value(&client.metadata).unwrap_or_default();
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.insert(
            "registration_client_uri".into(),
            app.provider
                .config
                .endpoint(&format!("/connect/register/{}", client.metadata.client_id))
                .into(),
        );
        obj.extend(more);
    }
    v
}

fn answer(status: StatusCode, body: Value) -> Response {
    no_store((status, Json(body)).into_response())
}

async fn register(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let req = metadata_body(&headers, &body)?;
        app.provider
            .register_by_supplier(bearer(&headers), &req)
            .await
    }
    .await;
    match result {
        Ok(done) => {
            let mut extra = json!({ "registration_access_token": done.registration_access_token });
            if let Some(secret) = &done.client.secret {
                extra["client_secret"] = secret.clone().into();
                extra["client_secret_expires_at"] = 0.into();
            }
            answer(
                StatusCode::CREATED,
                client_json(&app, &done.client.client, extra),
            )
        }
        Err(e) => registration_error(e),
    }
}

async fn read(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match app
        .provider
        .registered_client(&client_id, bearer(&headers))
        .await
    {
        Ok((client, _)) => answer(StatusCode::OK, client_json(&app, &client, json!({}))),
        Err(e) => registration_error(e),
    }
}

async fn update(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let req = metadata_body(&headers, &body)?;
        app.provider
            .update_registration(&client_id, bearer(&headers), &req)
            .await
    }
    .await;
    match result {
        Ok(client) => answer(StatusCode::OK, client_json(&app, &client, json!({}))),
        Err(e) => registration_error(e),
    }
}

async fn delete(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match app
        .provider
        .delete_registration(&client_id, bearer(&headers))
        .await
    {
        Ok(()) => no_store(StatusCode::NO_CONTENT.into_response()),
        Err(e) => registration_error(e),
    }
}

async fn rotate(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match app
        .provider
        .rotate_registered_secret(&client_id, bearer(&headers))
        .await
    {
        Ok((secret, until)) => answer(
            StatusCode::OK,
            json!({ "client_id": client_id, "client_secret": secret, "client_secret_expires_at": 0, "previous_secret_valid_until": until }),
        ),
        Err(e) => registration_error(e),
    }
}

async fn conformance(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match app
        .provider
        .run_conformance(&client_id, bearer(&headers))
        .await
    {
        Ok(report) => answer(StatusCode::OK, json!(report)),
        Err(e) => registration_error(e),
    }
}

async fn last_report(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        app.provider
            .registered_client(&client_id, bearer(&headers))
            .await?;
        app.provider
            .db
            .latest_conformance_report(&client_id)
            .await
            .map_err(OnboardingError::from)
    }
    .await;
    match result {
        Ok(Some(report)) => answer(StatusCode::OK, json!(report)),
        Ok(None) => registration_error(OnboardingError::NotFound(
            "no conformance report yet: POST to run the checks".into(),
        )),
        Err(e) => registration_error(e),
    }
}

async fn promotion(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match app
        .provider
        .request_promotion(&client_id, bearer(&headers))
        .await
    {
        Ok(PromotionAsked::Queued(request)) => answer(StatusCode::ACCEPTED, json!(request)),
        Ok(PromotionAsked::ChecksFailed(report)) => {
            let failed: Vec<String> = report
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": "conformance_failed", "error_description": failed.join("; "), "report": report }),
            )
        }
        Err(e) => registration_error(e),
    }
}
