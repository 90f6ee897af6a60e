//! `/admin/api/v1`: the registration-authority JSON API. Callers present a careid access token
//! (from a smartcard sign-in with `selectedrole`); the domain decides what their selected role
//! allows. Errors are RFC 9457 problem details (`application/problem+json`). The OpenAPI
//! document is served at `/admin/api/v1/openapi.json`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::domain::admin::{
    AdminError, Caller, DetailsChange, NewAssignment, NewIdentity, NewPosition, Verification,
};
use crate::domain::identity::UserStatus;

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

type AdminResult = Result<Response, Problem>;

async fn caller(app: &AppState, headers: &HeaderMap) -> Result<Caller, Problem> {
    app.provider
        .admin_caller(super::params::bearer(headers))
        .await
        .map_err(Problem)
}

fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(Problem(AdminError::Invalid("send application/json".into())));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Problem(AdminError::Invalid(format!("the body is not valid: {e}"))))
}

fn ok(status: StatusCode, v: Value) -> AdminResult {
    let mut r = (status, Json(v)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn search(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let pairs = super::params::from_query(q.as_deref()).unwrap_or_default();
    let q = pairs
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    ok(
        StatusCode::OK,
        app.provider.admin_search(&c, q).await.map_err(Problem)?,
    )
}

async fn create(State(app): State<AppState>, headers: HeaderMap, bytes: Bytes) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let new: NewIdentity = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_create_identity(&c, new)
            .await
            .map_err(Problem)?,
    )
}

async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_get_identity(&c, &uuid)
            .await
            .map_err(Problem)?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

async fn status_change(
    app: AppState,
    headers: HeaderMap,
    uuid: String,
    bytes: Bytes,
    status: UserStatus,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let r: Reason = body(&headers, &bytes)?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_set_status(&c, &uuid, status, &r.reason)
            .await
            .map_err(Problem)?,
    )
}

async fn suspend(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    status_change(app, headers, uuid, bytes, UserStatus::Suspended).await
}

async fn reinstate(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    status_change(app, headers, uuid, bytes, UserStatus::Active).await
}

async fn close(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    status_change(app, headers, uuid, bytes, UserStatus::Closed).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Certificate {
    certificate_pem: String,
}

async fn bind_card(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let cert: Certificate = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_bind_smartcard(&c, &uuid, &cert.certificate_pem)
            .await
            .map_err(Problem)?,
    )
}

async fn revoke_authenticator(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((uuid, id)): Path<(String, String)>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_revoke_authenticator(&c, &uuid, &id)
            .await
            .map_err(Problem)?,
    )
}

async fn grant_ra_role(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let g = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_grant_ra_role(&c, &uuid, g)
            .await
            .map_err(Problem)?,
    )
}

async fn end_ra_role(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_end_ra_role(&c, &id)
            .await
            .map_err(Problem)?,
    )
}

async fn issue_tac(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let t = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_issue_tac(&c, &uuid, t)
            .await
            .map_err(Problem)?,
    )
}

async fn return_tac(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_return_tac(&c, &id)
            .await
            .map_err(Problem)?,
    )
}

async fn request_access(
    State(app): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let r = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_request_access(&c, r)
            .await
            .map_err(Problem)?,
    )
}

async fn list_access_requests(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let pairs = crate::http::params::from_query(query.as_deref()).unwrap_or_default();
    let status = pairs
        .iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.as_str());
    ok(
        StatusCode::OK,
        app.provider
            .admin_list_access_requests(&c, status)
            .await
            .map_err(Problem)?,
    )
}

/// Empty body allowed for these POSTs: `{}` is assumed.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<T, Problem> {
    if bytes.is_empty() {
        Ok(T::default())
    } else {
        body(headers, bytes)
    }
}

async fn decide_access(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let p = &app.provider;
    let done = match action.as_str() {
        "approve" | "reject" => {
            let d = optional_body(&headers, &bytes)?;
            p.admin_decide_access(&c, &id, action == "approve", d).await
        }
        "fulfil" => {
            let f = optional_body(&headers, &bytes)?;
            p.admin_fulfil_access(&c, &id, f).await
        }
        _ => Err(AdminError::NotFound("no such action".into())),
    };
    ok(StatusCode::OK, done.map_err(Problem)?)
}

async fn list_authenticators(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_list_authenticators(&c, &uuid)
            .await
            .map_err(Problem)?,
    )
}

async fn invite_authenticator(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_invite_authenticator(&c, &uuid)
            .await
            .map_err(Problem)?,
    )
}

async fn assign(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let a: NewAssignment = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_assign(&c, &uuid, a)
            .await
            .map_err(Problem)?,
    )
}

async fn end_assignment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(person_roleid): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_end_assignment(&c, &person_roleid)
            .await
            .map_err(Problem)?,
    )
}

async fn audit(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let pairs = super::params::from_query(q.as_deref()).unwrap_or_default();
    let limit = pairs
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(100);
    ok(
        StatusCode::OK,
        app.provider
            .admin_audit_events(&c, limit)
            .await
            .map_err(Problem)?,
    )
}

async fn verify(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let v: Verification = body(&headers, &bytes)?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_verify_identity(&c, &uuid, v)
            .await
            .map_err(Problem)?,
    )
}

async fn update(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let change: DetailsChange = body(&headers, &bytes)?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_update_details(&c, &uuid, change)
            .await
            .map_err(Problem)?,
    )
}

async fn create_position(
    State(app): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    let p: NewPosition = body(&headers, &bytes)?;
    ok(
        StatusCode::CREATED,
        app.provider
            .admin_create_position(&c, p)
            .await
            .map_err(Problem)?,
    )
}

async fn report(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> AdminResult {
    let c = caller(&app, &headers).await?;
    ok(
        StatusCode::OK,
        app.provider
            .admin_report(&c, &name)
            .await
            .map_err(Problem)?,
    )
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

async fn not_found() -> Response {
    Problem(AdminError::NotFound("no such admin API resource".into())).into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/api/v1/openapi.json", get(openapi))
        .route("/admin/api/v1/identities", get(search).post(create))
        .route("/admin/api/v1/identities/{uuid}", get(show).patch(update))
        .route("/admin/api/v1/identities/{uuid}/verify", post(verify))
        .route("/admin/api/v1/positions", post(create_position))
        .route("/admin/api/v1/reports/{name}", get(report))
        .route("/admin/api/v1/identities/{uuid}/suspend", post(suspend))
        .route("/admin/api/v1/identities/{uuid}/reinstate", post(reinstate))
        .route("/admin/api/v1/identities/{uuid}/close", post(close))
        .route(
            "/admin/api/v1/identities/{uuid}/smartcards",
            post(bind_card),
        )
        .route(
            "/admin/api/v1/identities/{uuid}/smartcards/{id}/revoke",
            post(revoke_authenticator),
        )
        .route(
            "/admin/api/v1/identities/{uuid}/authenticators",
            get(list_authenticators),
        )
        .route(
            "/admin/api/v1/identities/{uuid}/authenticators/{id}/revoke",
            post(revoke_authenticator),
        )
        .route(
            "/admin/api/v1/identities/{uuid}/authenticator-invitations",
            post(invite_authenticator),
        )
        .route(
            "/admin/api/v1/identities/{uuid}/ra-roles",
            post(grant_ra_role),
        )
        .route("/admin/api/v1/ra-roles/{id}/end", post(end_ra_role))
        .route("/admin/api/v1/identities/{uuid}/tacs", post(issue_tac))
        .route("/admin/api/v1/tacs/{id}/return", post(return_tac))
        .route(
            "/admin/api/v1/access-requests",
            get(list_access_requests).post(request_access),
        )
        .route(
            "/admin/api/v1/access-requests/{id}/{action}",
            post(decide_access),
        )
        .route("/admin/api/v1/identities/{uuid}/assignments", post(assign))
        .route(
            "/admin/api/v1/assignments/{person_roleid}/end",
            post(end_assignment),
        )
        .route("/admin/api/v1/audit", get(audit))
        .route("/admin/api/v1/{*rest}", get(not_found).post(not_found))
}
