//! `/admin/api/v1`: the registration-authority JSON API. Callers present a careid access token
//! (from a smartcard sign-in with `selectedrole`); the domain decides what their selected role
//! allows. Errors are RFC 9457 problem details (`application/problem+json`). The OpenAPI
//! document is served at `/admin/api/v1/openapi.json`.
//!
//! Each handler is its extractors and one domain call: [`AdminCaller`] (the bearer token's RA
//! caller, before anything else is read), [`AdminJson`] / [`OptionalJson`] (the body), and
//! [`answer`] (JSON or problem details, never cached).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::Problem;
use super::AppState;
use crate::domain::access_requests::NewAccessRequest;
use crate::domain::admin::{
    AdminError, Caller, DetailsChange, NewAssignment, NewIdentity, NewPosition, NewRaGrant, NewTac,
    Verification,
};
use crate::domain::identity::UserStatus;

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
fn answer(status: StatusCode, outcome: Result<Value, AdminError>) -> AdminResult {
    let mut r = (status, Json(outcome.map_err(Problem)?)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One query parameter, if given.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    super::params::from_query(query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn search(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    RawQuery(q): RawQuery,
) -> AdminResult {
    let q = query_value(q.as_deref(), "q").unwrap_or_default();
    answer(StatusCode::OK, app.provider.admin_search(&c, &q).await)
}

async fn create(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(new): AdminJson<NewIdentity>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_create_identity(&c, new).await,
    )
}

async fn show(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_get_identity(&c, &uuid).await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

async fn status_change(
    app: AppState,
    c: Caller,
    uuid: String,
    r: Reason,
    status: UserStatus,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider
            .admin_set_status(&c, &uuid, status, &r.reason)
            .await,
    )
}

async fn suspend(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(r): AdminJson<Reason>,
) -> AdminResult {
    status_change(app, c, uuid, r, UserStatus::Suspended).await
}

async fn reinstate(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(r): AdminJson<Reason>,
) -> AdminResult {
    status_change(app, c, uuid, r, UserStatus::Active).await
}

async fn close(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(r): AdminJson<Reason>,
) -> AdminResult {
    status_change(app, c, uuid, r, UserStatus::Closed).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Certificate {
    certificate_pem: String,
}

async fn bind_card(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(cert): AdminJson<Certificate>,
) -> AdminResult {
    let bound = app
        .provider
        .admin_bind_smartcard(&c, &uuid, &cert.certificate_pem)
        .await;
    answer(StatusCode::CREATED, bound)
}

async fn revoke_authenticator(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path((uuid, id)): Path<(String, String)>,
) -> AdminResult {
    let revoked = app
        .provider
        .admin_revoke_authenticator(&c, &uuid, &id)
        .await;
    answer(StatusCode::OK, revoked)
}

async fn grant_ra_role(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(g): AdminJson<NewRaGrant>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_grant_ra_role(&c, &uuid, g).await,
    )
}

async fn end_ra_role(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_end_ra_role(&c, &id).await,
    )
}

async fn issue_tac(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(t): AdminJson<NewTac>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_issue_tac(&c, &uuid, t).await,
    )
}

async fn return_tac(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_return_tac(&c, &id).await)
}

async fn request_access(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(r): AdminJson<NewAccessRequest>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_request_access(&c, r).await,
    )
}

async fn list_access_requests(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    RawQuery(query): RawQuery,
) -> AdminResult {
    let status = query_value(query.as_deref(), "status");
    let listed = app
        .provider
        .admin_list_access_requests(&c, status.as_deref())
        .await;
    answer(StatusCode::OK, listed)
}

/// The fields of a body read as JSON, for handlers whose type depends on the path. An empty
/// body (`null`) reads as `{}`.
fn fields<T: DeserializeOwned>(body: Value) -> Result<T, AdminError> {
    let body = if body.is_null() { json!({}) } else { body };
    serde_json::from_value(body)
        .map_err(|e| AdminError::Invalid(format!("the body is not valid: {e}")))
}

async fn decide_access(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<Value>,
) -> AdminResult {
    let p = &app.provider;
    let done = match action.as_str() {
        "approve" | "reject" => match fields(body) {
            Ok(d) => p.admin_decide_access(&c, &id, action == "approve", d).await,
            Err(e) => Err(e),
        },
        "fulfil" => match fields(body) {
            Ok(f) => p.admin_fulfil_access(&c, &id, f).await,
            Err(e) => Err(e),
        },
        _ => Err(AdminError::NotFound("no such action".into())),
    };
    answer(StatusCode::OK, done)
}

async fn list_authenticators(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_list_authenticators(&c, &uuid).await,
    )
}

async fn invite_authenticator(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_invite_authenticator(&c, &uuid).await,
    )
}

async fn assign(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(a): AdminJson<NewAssignment>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_assign(&c, &uuid, a).await,
    )
}

async fn end_assignment(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(person_roleid): Path<String>,
) -> AdminResult {
    let ended = app.provider.admin_end_assignment(&c, &person_roleid).await;
    answer(StatusCode::OK, ended)
}

async fn audit(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    RawQuery(q): RawQuery,
) -> AdminResult {
    let limit = query_value(q.as_deref(), "limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    answer(
        StatusCode::OK,
        app.provider.admin_audit_events(&c, limit).await,
    )
}

async fn verify(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(v): AdminJson<Verification>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_verify_identity(&c, &uuid, v).await,
    )
}

async fn update(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(change): AdminJson<DetailsChange>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_update_details(&c, &uuid, change).await,
    )
}

async fn create_position(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(p): AdminJson<NewPosition>,
) -> AdminResult {
    answer(
        StatusCode::CREATED,
        app.provider.admin_create_position(&c, p).await,
    )
}

async fn report(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_report(&c, &name).await)
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
