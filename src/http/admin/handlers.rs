//! The admin API's handlers: each is its extractors, one domain call and [`answer`], with its
//! route, parameters and success answer declared for the OpenAPI document (`#[utoipa::path]`).
//! Problem responses and who may call each operation are added to the document in one place
//! (`super::doc`), from the permission table.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{answer, AdminCaller, AdminJson, AdminQuery, AdminResult, OptionalJson};
use crate::domain::ra::access_requests::{Decision, Fulfilment, NewAccessRequest};
use crate::domain::ra::answers::*;
use crate::domain::ra::photos::{NewPhoto, PhotoView};
use crate::domain::ra::positions::{PositionChange, Retirement};
use crate::domain::ra::AdminError;
use crate::domain::ra::{
    DetailsChange, NewAssignment, NewIdentity, NewPosition, NewRaGrant, NewTac, Verification,
};
use crate::http::error::Problem;
use crate::http::AppState;
use crate::model::audit::AuditFilter;
use crate::model::identity::UserStatus;

/// The reason for a status change, recorded with it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    reason: String,
}

/// A smartcard certificate to bind.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The card's authentication certificate, PEM.
    certificate_pem: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A UUID prefix or part of a name; at least two characters besides wildcards.
    #[serde(default)]
    q: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Only requests in this state: `pending`, `approved`, `rejected` or `fulfilled`.
    status: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events this person (a 12-digit UUID) did.
    actor: Option<String>,
    /// Events this person did or that were done to them.
    person: Option<String>,
    /// Events done to this person (a 12-digit UUID), by anyone.
    subject: Option<String>,
    /// Events done from or at this organisation (ODS code).
    org_code: Option<String>,
    /// Events of this kind (`login.smartcard`), or under a prefix (`admin.*`).
    kind: Option<String>,
    /// From this time (seconds since 1970), inclusive.
    since: Option<i64>,
    /// Before this time (seconds since 1970).
    until: Option<i64>,
    /// How many events, newest first (1 to 500; default 100).
    limit: Option<i64>,
    /// The next page: the `next` of the previous answer (absent when there are no more).
    before: Option<i64>,
    /// Re-compute the hash chain over the whole trail and report whether it is intact.
    #[serde(default)]
    verify_chain: bool,
}

const UUID: &str = "The Care Identity's 12-digit UUID";

#[utoipa::path(get, path = "/admin/api/v1/identities", params(SearchQuery),
    responses((status = OK, description = "Identities found", body = IdentityList)))]
pub async fn search(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminQuery(q): AdminQuery<SearchQuery>,
) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_search(&c, &q.q).await)
}

#[utoipa::path(post, path = "/admin/api/v1/identities", request_body = NewIdentity,
    responses((status = CREATED, description = "Registered", body = IdentityWithDetails)))]
pub async fn create(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(new): AdminJson<NewIdentity>,
) -> AdminResult {
    let created = app.provider.admin_create_identity(&c, new).await;
    answer(StatusCode::CREATED, created)
}

#[utoipa::path(get, path = "/admin/api/v1/identities/{uuid}",
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "The person's record", body = IdentityRecord)))]
pub async fn show(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    let record = app.provider.admin_get_identity(&c, &uuid).await;
    answer(StatusCode::OK, record)
}

#[utoipa::path(patch, path = "/admin/api/v1/identities/{uuid}", request_body = DetailsChange,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "Changed", body = IdentityWithDetails)))]
pub async fn update(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(change): AdminJson<DetailsChange>,
) -> AdminResult {
    let changed = app.provider.admin_update_details(&c, &uuid, change).await;
    answer(StatusCode::OK, changed)
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/verify", request_body = Verification,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "Check recorded", body = Verified)))]
pub async fn verify(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(v): AdminJson<Verification>,
) -> AdminResult {
    let verified = app.provider.admin_verify_identity(&c, &uuid, v).await;
    answer(StatusCode::OK, verified)
}

async fn status_change(
    app: AppState,
    c: AdminCaller,
    uuid: String,
    r: Reason,
    status: UserStatus,
) -> AdminResult {
    let p = &app.provider;
    answer(
        StatusCode::OK,
        p.admin_set_status(&c.0, &uuid, status, &r.reason).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/suspend", request_body = Reason,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "Suspended; every session and token ended", body = StatusChanged)))]
pub async fn suspend(
    State(app): State<AppState>,
    c: AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(r): AdminJson<Reason>,
) -> AdminResult {
    status_change(app, c, uuid, r, UserStatus::Suspended).await
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/reinstate", request_body = Reason,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "Active again", body = StatusChanged)))]
pub async fn reinstate(
    State(app): State<AppState>,
    c: AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(r): AdminJson<Reason>,
) -> AdminResult {
    status_change(app, c, uuid, r, UserStatus::Active).await
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/close", request_body = Reason,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "Closed; every session and token ended", body = StatusChanged)))]
pub async fn close(
    State(app): State<AppState>,
    c: AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(r): AdminJson<Reason>,
) -> AdminResult {
    status_change(app, c, uuid, r, UserStatus::Closed).await
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/smartcards", request_body = Certificate,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = CREATED, description = "Bound", body = SmartcardBound)))]
pub async fn bind_card(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(cert): AdminJson<Certificate>,
) -> AdminResult {
    let p = &app.provider;
    let bound = p.admin_bind_smartcard(&c, &uuid, &cert.certificate_pem);
    answer(StatusCode::CREATED, bound.await)
}

#[utoipa::path(get, path = "/admin/api/v1/identities/{uuid}/authenticators",
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "Cards, TACs, security keys and passkeys", body = AuthenticatorList)))]
pub async fn list_authenticators(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    let list = app.provider.admin_list_authenticators(&c, &uuid).await;
    answer(StatusCode::OK, list)
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/authenticators/{id}/revoke",
    params(("uuid" = String, Path, description = UUID), ("id" = String, Path, description = "The authenticator's id")),
    responses((status = OK, description = "Revoked; its sessions ended", body = AuthenticatorRevoked)))]
pub async fn revoke_authenticator(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path((uuid, id)): Path<(String, String)>,
) -> AdminResult {
    let p = &app.provider;
    answer(
        StatusCode::OK,
        p.admin_revoke_authenticator(&c, &uuid, &id).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/authenticators/{id}/suspend",
    params(("uuid" = String, Path, description = UUID), ("id" = String, Path, description = "The authenticator's id")),
    responses((status = OK, description = "Suspended; its sessions ended", body = AuthenticatorRevoked)))]
pub async fn suspend_authenticator(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path((uuid, id)): Path<(String, String)>,
) -> AdminResult {
    let p = &app.provider;
    answer(
        StatusCode::OK,
        p.admin_suspend_authenticator(&c, &uuid, &id).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/authenticators/{id}/unlock",
    params(("uuid" = String, Path, description = UUID), ("id" = String, Path, description = "The authenticator's id")),
    responses((status = OK, description = "Working again", body = AuthenticatorRevoked)))]
pub async fn unlock_authenticator(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path((uuid, id)): Path<(String, String)>,
) -> AdminResult {
    let p = &app.provider;
    answer(
        StatusCode::OK,
        p.admin_unlock_authenticator(&c, &uuid, &id).await,
    )
}

/// The older name of [`revoke_authenticator`], kept for clients written against it.
#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/smartcards/{id}/revoke",
    params(("uuid" = String, Path, description = UUID), ("id" = String, Path, description = "The authenticator's id")),
    responses((status = OK, description = "Revoked; its sessions ended", body = AuthenticatorRevoked)))]
pub async fn revoke_smartcard(
    app: State<AppState>,
    c: AdminCaller,
    ids: Path<(String, String)>,
) -> AdminResult {
    revoke_authenticator(app, c, ids).await
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/authenticator-invitations",
    params(("uuid" = String, Path, description = UUID)),
    responses((status = CREATED, description = "A one-time handover link", body = InvitationSent)))]
pub async fn invite_authenticator(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    let sent = app.provider.admin_invite_authenticator(&c, &uuid).await;
    answer(StatusCode::CREATED, sent)
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/photo", request_body = NewPhoto,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = CREATED, description = "Recorded (replacing any earlier one)", body = PhotoView)))]
pub async fn record_photo(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(photo): AdminJson<NewPhoto>,
) -> AdminResult {
    let recorded = app.provider.admin_record_photo(&c, &uuid, photo).await;
    answer(StatusCode::CREATED, recorded)
}

#[utoipa::path(get, path = "/admin/api/v1/identities/{uuid}/photo",
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "The photograph (never in a token)", body = PhotoView)))]
pub async fn show_photo(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_photo(&c, &uuid).await)
}

#[utoipa::path(get, path = "/admin/api/v1/identities/{uuid}/tacs",
    params(("uuid" = String, Path, description = UUID)),
    responses((status = OK, description = "The person's TAC issues, newest first", body = TacList)))]
pub async fn list_tacs(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_list_tacs(&c, &uuid).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/tacs", request_body = NewTac,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = CREATED, description = "Issued", body = TacIssued)))]
pub async fn issue_tac(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(t): AdminJson<NewTac>,
) -> AdminResult {
    let issued = app.provider.admin_issue_tac(&c, &uuid, t).await;
    answer(StatusCode::CREATED, issued)
}

#[utoipa::path(post, path = "/admin/api/v1/tacs/{id}/return",
    params(("id" = String, Path, description = "The TAC issue's id")),
    responses((status = OK, description = "Returned; the TAC is locked", body = TacReturned)))]
pub async fn return_tac(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_return_tac(&c, &id).await)
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/ra-roles", request_body = NewRaGrant,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = CREATED, description = "Granted", body = RaRoleGranted)))]
pub async fn grant_ra_role(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(g): AdminJson<NewRaGrant>,
) -> AdminResult {
    let granted = app.provider.admin_grant_ra_role(&c, &uuid, g).await;
    answer(StatusCode::CREATED, granted)
}

#[utoipa::path(post, path = "/admin/api/v1/ra-roles/{id}/end",
    params(("id" = String, Path, description = "The grant's id")),
    responses((status = OK, description = "Ended", body = RaRoleEnded)))]
pub async fn end_ra_role(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_end_ra_role(&c, &id).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/identities/{uuid}/assignments", request_body = NewAssignment,
    params(("uuid" = String, Path, description = UUID)),
    responses((status = CREATED, description = "Assigned", body = Assigned)))]
pub async fn assign(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(uuid): Path<String>,
    AdminJson(a): AdminJson<NewAssignment>,
) -> AdminResult {
    let assigned = app.provider.admin_assign(&c, &uuid, a).await;
    answer(StatusCode::CREATED, assigned)
}

#[utoipa::path(post, path = "/admin/api/v1/assignments/{person_roleid}/end",
    params(("person_roleid" = String, Path, description = "The assignment's person_roleid")),
    responses((status = OK, description = "Ended", body = AssignmentEnded)))]
pub async fn end_assignment(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(person_roleid): Path<String>,
) -> AdminResult {
    let ended = app.provider.admin_end_assignment(&c, &person_roleid).await;
    answer(StatusCode::OK, ended)
}

#[utoipa::path(get, path = "/admin/api/v1/positions",
    responses((status = OK, description = "The caller's organisation's positions", body = PositionList)))]
pub async fn list_positions(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_list_positions(&c).await)
}

#[utoipa::path(post, path = "/admin/api/v1/positions", request_body = NewPosition,
    responses((status = CREATED, description = "Created", body = PositionCreated)))]
pub async fn create_position(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(p): AdminJson<NewPosition>,
) -> AdminResult {
    let created = app.provider.admin_create_position(&c, p).await;
    answer(StatusCode::CREATED, created)
}

#[utoipa::path(patch, path = "/admin/api/v1/positions/{id}", request_body = PositionChange,
    params(("id" = String, Path, description = "The position's id")),
    responses((status = OK, description = "Corrected, with the approval recorded", body = PositionView)))]
pub async fn correct_position(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    AdminJson(change): AdminJson<PositionChange>,
) -> AdminResult {
    let corrected = app.provider.admin_correct_position(&c, &id, change).await;
    answer(StatusCode::OK, corrected)
}

#[utoipa::path(post, path = "/admin/api/v1/positions/{id}/retire", request_body = Retirement,
    params(("id" = String, Path, description = "The position's id")),
    responses((status = OK, description = "Retired: no new assignments", body = PositionView)))]
pub async fn retire_position(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    AdminJson(r): AdminJson<Retirement>,
) -> AdminResult {
    let retired = app.provider.admin_retire_position(&c, &id, r).await;
    answer(StatusCode::OK, retired)
}

#[utoipa::path(post, path = "/admin/api/v1/access-requests", request_body = NewAccessRequest,
    responses((status = CREATED, description = "Raised, pending a sponsor", body = AccessRequest)))]
pub async fn request_access(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(r): AdminJson<NewAccessRequest>,
) -> AdminResult {
    let raised = app.provider.admin_request_access(&c, r).await;
    answer(StatusCode::CREATED, raised)
}

#[utoipa::path(get, path = "/admin/api/v1/access-requests", params(StatusQuery),
    responses((status = OK, description = "The caller's organisation's requests", body = AccessRequestList)))]
pub async fn list_access_requests(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminQuery(q): AdminQuery<StatusQuery>,
) -> AdminResult {
    let p = &app.provider;
    let listed = p.admin_list_access_requests(&c, q.status.as_deref());
    answer(StatusCode::OK, listed.await)
}

#[utoipa::path(post, path = "/admin/api/v1/access-requests/{id}/approve", request_body(content = Option<Decision>),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = OK, description = "Approved", body = AccessDecided)))]
pub async fn approve_access(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    OptionalJson(d): OptionalJson<Decision>,
) -> AdminResult {
    let p = &app.provider;
    answer(
        StatusCode::OK,
        p.admin_decide_access(&c, &id, true, d).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/access-requests/{id}/reject", request_body(content = Option<Decision>),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = OK, description = "Refused", body = AccessDecided)))]
pub async fn reject_access(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    OptionalJson(d): OptionalJson<Decision>,
) -> AdminResult {
    let p = &app.provider;
    answer(
        StatusCode::OK,
        p.admin_decide_access(&c, &id, false, d).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/access-requests/{id}/fulfil", request_body(content = Option<Fulfilment>),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = OK, description = "Carried out", body = AccessFulfilled)))]
pub async fn fulfil_access(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    OptionalJson(f): OptionalJson<Fulfilment>,
) -> AdminResult {
    let fulfilled = app.provider.admin_fulfil_access(&c, &id, f).await;
    answer(StatusCode::OK, fulfilled)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// For ra-activity: a quarter (`2026-Q3`) or a year (`2026`); the current quarter if absent.
    period: Option<String>,
    /// `csv` for CSV (RFC 4180) instead of JSON.
    format: Option<String>,
}

#[utoipa::path(get, path = "/admin/api/v1/reports/{name}",
    params(("name" = String, Path, description = "active-users-by-org, positions-in-use, authenticators-by-type, tacs-issued, tacs-overdue, leavers-with-access, ra-activity or hr-reconciliation"), ReportQuery),
    responses((status = OK, description = "The report", body = Report)))]
pub async fn report(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    AdminQuery(q): AdminQuery<ReportQuery>,
) -> AdminResult {
    let report = app.provider.admin_report(&c, &name, q.period.as_deref());
    match q.format.as_deref() {
        None | Some("json") => answer(StatusCode::OK, report.await),
        Some("csv") => {
            let csv = crate::domain::reports::to_csv(&report.await.map_err(Problem)?);
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                csv,
            )
                .into_response())
        }
        Some(other) => Err(Problem(AdminError::Invalid(format!(
            "format must be json or csv, not {other}"
        )))),
    }
}

#[utoipa::path(get, path = "/admin/api/v1/audit", params(AuditQuery),
    responses((status = OK, description = "Recent events, newest first", body = AuditTrail)))]
pub async fn audit(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminQuery(q): AdminQuery<AuditQuery>,
) -> AdminResult {
    let filter = AuditFilter {
        actor: q.actor,
        person: q.person,
        subject: q.subject,
        org_code: q.org_code,
        kind: q.kind,
        since: q.since,
        until: q.until,
        before: q.before,
        limit: q.limit.unwrap_or(100),
    };
    let trail = app.provider.admin_audit_events(&c, filter, q.verify_chain);
    answer(StatusCode::OK, trail.await)
}
