//! The console's HR feed page: personal-detail changes HR sent, approved (with the evidence
//! seen, for a name or date of birth) or rejected (with why); events that cannot apply yet; and
//! the organisation's HR position mappings. The rules are the admin API's (`domain/ra/hr.rs`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;

use super::{base, page, refused, Staff, StaffForm};
use crate::domain::ra::hr::DetailDecision;
use crate::domain::ra::{AdminError, Permission};
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ra/hr", get(hr))
        .route("/ra/hr/changes/{id}/{action}", post(decide))
}

async fn hr(State(app): State<AppState>, staff: Staff) -> Response {
    let p = &app.provider;
    let caller = &staff.user.caller;
    let can_details = staff.may(Permission::CreateIdentity);
    let can_attention = staff.may(Permission::AssignPositions);
    if !can_details && !can_attention {
        return refused(&app, &staff, super::forbidden("see the HR feed"));
    }
    let changes = match can_details {
        true => match p.admin_list_detail_changes(caller).await {
            Ok(l) => l.changes,
            Err(e) => return refused(&app, &staff, e),
        },
        false => Vec::new(),
    };
    let attention = match can_attention {
        true => match p.admin_hr_attention(caller).await {
            Ok(l) => l.events,
            Err(e) => return refused(&app, &staff, e),
        },
        false => Vec::new(),
    };
    let maps = p
        .admin_list_hr_maps(caller)
        .await
        .map(|l| l.maps)
        .unwrap_or_default();
    let positions = p
        .admin_list_positions(caller)
        .await
        .map(|l| l.positions)
        .unwrap_or_default();
    page(
        &app,
        &staff,
        "ra/hr.html",
        context! { title => "HR feed", changes, attention, maps, positions, can_details, can_attention },
    )
}

async fn decide(
    State(app): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let decision = DetailDecision {
        evidence: form.opt("evidence"),
        note: form.opt("note"),
    };
    let approve = match action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return refused(&app, &staff, AdminError::NotFound("no such action".into())),
    };
    let decided = app
        .provider
        .admin_decide_detail_change(&staff.user.caller, &id, approve, decision)
        .await;
    match decided {
        Ok(_) => Redirect::to(&format!("{}/hr", base(&app))).into_response(),
        Err(e) => refused(&app, &staff, e),
    }
}
