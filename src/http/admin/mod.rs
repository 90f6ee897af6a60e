//! `/admin/api/v1`: the registration-authority JSON API. Callers present a careid access token
//! (from a smartcard sign-in with `selectedrole`); the domain decides what their selected role
//! allows. Errors are RFC 9457 problem details (`application/problem+json`). The OpenAPI
//! document is served at `/admin/api/v1/openapi.json`.
//!
//! Each handler (`handlers.rs`) is its extractors and one domain call: [`AdminCaller`] (the
//! bearer token's RA caller, before anything else is read), [`AdminJson`] / [`OptionalJson`]
//! (the body), [`AdminQuery`] (the query), and [`answer`] (the domain's typed answer as JSON, or
//! problem details; never cached). The OpenAPI document is generated from the handlers' routes
//! and the answer types (`doc.rs`), with who may call each operation taken from the permission
//! table (`domain/ra/authority.rs`).

mod doc;
mod handlers;
mod hr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::Problem;
use super::AppState;
use crate::domain::ra::{AdminError, Caller};

type AdminResult = Result<Response, Problem>;

/// The authenticated RA caller: the shared prologue of every admin handler. It runs before the
/// body is read, so an unauthenticated request is refused (401/403) without parsing anything.
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Problem> {
        app.provider
            .admin_caller(super::params::bearer(&parts.headers))
            .await
            .map(AdminCaller)
            .map_err(Problem)
    }
}

/// A JSON body (`application/json`; unknown fields refused by each type), or 400 problem
/// details saying what is wrong with it.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Problem> {
        let bytes = read_body(request, app).await?;
        parse_json(&bytes).map(AdminJson)
    }
}

/// As [`AdminJson`], but an empty body means `{}` (POSTs whose fields are all optional).
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Problem> {
        let bytes = read_body_allowing_empty(request, app).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn read_body(request: Request, app: &AppState) -> Result<Bytes, Problem> {
    if !is_json(&request) {
        return Err(Problem(AdminError::Invalid("send application/json".into())));
    }
    Bytes::from_request(request, app).await.map_err(|e| {
        Problem(AdminError::Invalid(format!(
            "the body could not be read: {e}"
        )))
    })
}

async fn read_body_allowing_empty(request: Request, app: &AppState) -> Result<Bytes, Problem> {
    let json = is_json(&request);
    let bytes = Bytes::from_request(request, app).await.map_err(|e| {
        Problem(AdminError::Invalid(format!(
            "the body could not be read: {e}"
        )))
    })?;
    if !bytes.is_empty() && !json {
        return Err(Problem(AdminError::Invalid("send application/json".into())));
    }
    Ok(bytes)
}

fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|e| Problem(AdminError::Invalid(format!("the body is not valid: {e}"))))
}

/// The shared epilogue: the domain's answer as JSON with `status` (never cached), or its error as
/// problem details.
fn answer<T: Serialize>(status: StatusCode, outcome: Result<T, AdminError>) -> AdminResult {
    let mut r = (status, Json(outcome.map_err(Problem)?)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Query parameters, or 400 problem details naming the one that is wrong.
pub struct AdminQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for AdminQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Problem> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|q| AdminQuery(q.0))
            .map_err(|e| Problem(AdminError::Invalid(e.body_text())))
    }
}

async fn not_found() -> Response {
    Problem(AdminError::NotFound("no such admin API resource".into())).into_response()
}

/// The admin API and its OpenAPI document, built from the same handler list, so a route cannot
/// be served undocumented (`routes!` registers a handler and its `#[utoipa::path]` together).
pub fn routes() -> Router<AppState> {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (router, api) = documented_routes().split_for_parts();
    let document = DOCUMENT.get_or_init(|| doc::finish(api));
    router
        .route(doc::PATH, get(move || doc::serve(document)))
        .route("/admin/api/v1/{*rest}", any(not_found))
        .method_not_allowed_fallback(super::error::problem_method_not_allowed)
}

/// Every operation, each with its documentation.
fn documented_routes() -> OpenApiRouter<AppState> {
    use handlers::*;
    OpenApiRouter::with_openapi(doc::base())
        .routes(routes!(search, create))
        .routes(routes!(show, update))
        .routes(routes!(verify))
        .routes(routes!(suspend))
        .routes(routes!(reinstate))
        .routes(routes!(close))
        .routes(routes!(bind_card))
        .routes(routes!(revoke_smartcard))
        .routes(routes!(list_authenticators))
        .routes(routes!(revoke_authenticator))
        .routes(routes!(suspend_authenticator))
        .routes(routes!(unlock_authenticator))
        .routes(routes!(invite_authenticator))
        .routes(routes!(list_tacs, issue_tac))
        .routes(routes!(show_photo, record_photo))
        .routes(routes!(return_tac))
        .routes(routes!(grant_ra_role))
        .routes(routes!(end_ra_role))
        .routes(routes!(assign))
        .routes(routes!(end_assignment))
        .routes(routes!(list_positions, create_position))
        .routes(routes!(correct_position))
        .routes(routes!(retire_position))
        .routes(routes!(list_access_requests, request_access))
        .routes(routes!(approve_access))
        .routes(routes!(reject_access))
        .routes(routes!(fulfil_access))
        .routes(routes!(hr::list_hr_maps, hr::map_hr_position))
        .routes(routes!(hr::unmap_hr_position))
        .routes(routes!(hr::hr_attention))
        .routes(routes!(hr::list_detail_changes))
        .routes(routes!(hr::approve_detail_change))
        .routes(routes!(hr::reject_detail_change))
        .routes(routes!(report))
        .routes(routes!(audit))
}
