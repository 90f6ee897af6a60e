//! The admin API's HR operations (the RA's side of the feed): position mappings, events that
//! need attention, and personal-detail changes to approve or reject. Same shape as
//! `handlers.rs`: extractors, one domain call, [`answer`].

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{answer, AdminCaller, AdminJson, AdminResult, OptionalJson};
use crate::domain::ra::answers::{
    DetailChangeDecided, DetailChangeList, HrAttentionList, PositionMapList, PositionMapped,
};
use crate::domain::ra::hr::{DetailDecision, NewPositionMap};
use crate::http::AppState;

#[utoipa::path(get, path = "/admin/api/v1/hr/position-maps",
    responses((status = OK, description = "The organisation's HR position mappings", body = PositionMapList)))]
pub async fn list_hr_maps(State(app): State<AppState>, AdminCaller(c): AdminCaller) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_list_hr_maps(&c).await)
}

#[utoipa::path(put, path = "/admin/api/v1/hr/position-maps", request_body = NewPositionMap,
    responses((status = OK, description = "Mapped; events waiting for it were applied", body = PositionMapped)))]
pub async fn map_hr_position(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    AdminJson(m): AdminJson<NewPositionMap>,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_map_hr_position(&c, m).await,
    )
}

#[utoipa::path(delete, path = "/admin/api/v1/hr/position-maps/{org_code}/{hr_position}",
    params(("org_code" = String, Path, description = "The HR organisation"),
        ("hr_position" = String, Path, description = "The HR position code")),
    responses((status = OK, description = "Removed; the mappings left", body = PositionMapList)))]
pub async fn unmap_hr_position(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path((org_code, hr_position)): Path<(String, String)>,
) -> AdminResult {
    let left = app
        .provider
        .admin_unmap_hr_position(&c, &org_code, &hr_position);
    answer(StatusCode::OK, left.await)
}

#[utoipa::path(get, path = "/admin/api/v1/hr/attention",
    responses((status = OK, description = "Events kept, not applied, with why", body = HrAttentionList)))]
pub async fn hr_attention(State(app): State<AppState>, AdminCaller(c): AdminCaller) -> AdminResult {
    answer(StatusCode::OK, app.provider.admin_hr_attention(&c).await)
}

#[utoipa::path(get, path = "/admin/api/v1/hr/detail-changes",
    responses((status = OK, description = "Changes waiting for an RA", body = DetailChangeList)))]
pub async fn list_detail_changes(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
) -> AdminResult {
    answer(
        StatusCode::OK,
        app.provider.admin_list_detail_changes(&c).await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/hr/detail-changes/{id}/approve",
    request_body(content = Option<DetailDecision>),
    params(("id" = String, Path, description = "The change's id")),
    responses((status = OK, description = "Approved and applied to the identity", body = DetailChangeDecided)))]
pub async fn approve_detail_change(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    OptionalJson(d): OptionalJson<DetailDecision>,
) -> AdminResult {
    let decided = app.provider.admin_decide_detail_change(&c, &id, true, d);
    answer(StatusCode::OK, decided.await)
}

#[utoipa::path(post, path = "/admin/api/v1/hr/detail-changes/{id}/reject",
    request_body = DetailDecision,
    params(("id" = String, Path, description = "The change's id")),
    responses((status = OK, description = "Rejected, with why", body = DetailChangeDecided)))]
pub async fn reject_detail_change(
    State(app): State<AppState>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<String>,
    OptionalJson(d): OptionalJson<DetailDecision>,
) -> AdminResult {
    let decided = app.provider.admin_decide_detail_change(&c, &id, false, d);
    answer(StatusCode::OK, decided.await)
}
