//! Console tasks beyond the record itself: positions, authenticators, smartcards, TACs and RA
//! roles for a person (`person_routes`), and the shared work: access requests, reports (CSV)
//! and the audit trail (`routes`). Sensitive actions (binding or revoking an authenticator,
//! issuing a TAC, granting an RA role) ask for a recent sign-in first.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use super::forms::{Field, FormPage};
use super::{base, forbidden, needs_fresh_sign_in, page, refused, to_record, Staff, StaffForm};
use crate::domain::ra::access_requests::{Decision, Fulfilment, NewAccessRequest};
use crate::domain::ra::{
    AdminError, AssignmentTerm, NewAssignment, NewRaGrant, NewTac, Permission, TAC_MAX_HOURS,
};
use crate::http::AppState;
use crate::model::audit::AuditFilter;

pub fn person_routes() -> Router<AppState> {
    Router::new()
        .route("/ra/people/{uuid}/assign", get(assign_form).post(assign))
        .route(
            "/ra/people/{uuid}/assignments/{id}/end",
            get(end_form).post(end_assignment),
        )
        .route(
            "/ra/people/{uuid}/authenticators/{id}/revoke",
            get(revoke_form).post(revoke),
        )
        .route(
            "/ra/people/{uuid}/authenticators/{id}/suspend",
            post(suspend_authenticator),
        )
        .route(
            "/ra/people/{uuid}/authenticators/{id}/unlock",
            post(unlock_authenticator),
        )
        .route("/ra/people/{uuid}/invite", post(invite))
        .route("/ra/people/{uuid}/smartcard", get(bind_form).post(bind))
        .route("/ra/people/{uuid}/tac", get(tac_form).post(issue_tac))
        .route("/ra/people/{uuid}/tacs/{id}/return", post(return_tac))
        .route("/ra/people/{uuid}/ra-role", get(grant_form).post(grant))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ra/requests", get(requests).post(raise_request))
        .route("/ra/requests/{id}/{action}", post(decide))
        .route("/ra/positions", get(positions))
        .route(
            "/ra/positions/{id}/correct",
            get(correct_form).post(correct),
        )
        .route("/ra/positions/{id}/retire", get(retire_form).post(retire))
        .route("/ra/reports", get(reports))
        .route("/ra/reports/{name}", get(report_csv))
        .route("/ra/audit", get(audit))
}

/// `YYYY-MM-DD` as the Unix time of that day's start (UTC).
fn day(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

fn record_link(app: &AppState, uuid: &str) -> String {
    format!("{}/people/{uuid}", base(app))
}

async fn assign_page(app: &AppState, staff: &Staff, uuid: &str) -> Result<FormPage, AdminError> {
    let positions = app
        .provider
        .admin_list_positions(&staff.user.caller)
        .await?
        .positions;
    let choices = positions
        .into_iter()
        .filter(|p| p.retired_at.is_none())
        .map(|p| (p.position.id, p.position.name))
        .collect::<Vec<_>>();
    let terms = vec![
        (String::new(), "Employee (no default end)".to_string()),
        (
            "contractor".to_string(),
            "Contractor or locum: ends after 3 months unless an end date is given".to_string(),
        ),
        (
            "inter_organisation".to_string(),
            "Inter-organisation agreement: ends after 12 months unless an end date is given"
                .to_string(),
        ),
    ];
    Ok(FormPage::new(
        "Assign a position",
        format!("{}/people/{uuid}/assign", base(app)),
        "Assign position",
        record_link(app, uuid),
    )
    .intro("The person gets every access profile of the position, from the start date until the end date.")
    .fields(vec![
        Field::select("position_id", &format!("Position at {}", staff.user.caller.org_code), choices).required(),
        Field::date("starts", "Start date").hint("Leave blank to start now"),
        Field::date("ends", "End date").hint("Leave blank for no end (or the default of the term below)"),
        Field::select("term", "Basis", terms),
        Field::text("appointment_evidence", "Appointment evidence (RA Manager positions)")
            .hint("Required for an RA Manager position: where the appointment is recorded, for example board minutes of 3 March 2026"),
    ]))
}

async fn assign_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
) -> Response {
    match assign_page(&app, &staff, &uuid).await {
        Ok(p) => p.render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn assign(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let mut page = match assign_page(&app, &staff, &uuid).await {
        Ok(p) => p.refill(&form),
        Err(e) => return refused(&app, &staff, e),
    };
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let (starts, ends) = (form.get("starts"), form.get("ends"));
    let starts_at = (!starts.is_empty()).then(|| day(starts));
    let ends_at = (!ends.is_empty()).then(|| day(ends));
    if starts_at == Some(None) || ends_at == Some(None) {
        return page
            .error("starts and ends must be dates")
            .render(&app, &staff);
    }
    let term = match form.get("term") {
        "contractor" => Some(AssignmentTerm::Contractor),
        "inter_organisation" => Some(AssignmentTerm::InterOrganisation),
        _ => None,
    };
    let a = NewAssignment {
        position_id: form.get("position_id").into(),
        starts_at: starts_at.flatten(),
        ends_at: ends_at.flatten(),
        term,
        appointment_evidence: form.opt("appointment_evidence"),
    };
    match app
        .provider
        .admin_assign(&staff.user.caller, &uuid, a)
        .await
    {
        Ok(_) => to_record(&app, &uuid, "assigned"),
        Err(AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

fn end_page(app: &AppState, uuid: &str, id: &str) -> FormPage {
    FormPage::new(
        "End this assignment",
        format!("{}/people/{uuid}/assignments/{id}/end", base(app)),
        "End assignment",
        record_link(app, uuid),
    )
    .intro("The person loses this role at once; applications using it see the change at their next check.")
    .danger()
}

async fn end_form(
    State(app): State<AppState>,
    staff: Staff,
    Path((uuid, id)): Path<(String, String)>,
) -> Response {
    end_page(&app, &uuid, &id).render(&app, &staff)
}

async fn end_assignment(
    State(app): State<AppState>,
    Path((uuid, id)): Path<(String, String)>,
    StaffForm { staff, .. }: StaffForm,
) -> Response {
    match app
        .provider
        .admin_end_assignment(&staff.user.caller, &id)
        .await
    {
        Ok(_) => to_record(&app, &uuid, "ended"),
        Err(e) => refused(&app, &staff, e),
    }
}

fn revoke_page(app: &AppState, uuid: &str, id: &str) -> FormPage {
    FormPage::new(
        "Revoke this authenticator",
        format!("{}/people/{uuid}/authenticators/{id}/revoke", base(app)),
        "Revoke authenticator",
        record_link(app, uuid),
    )
    .intro("Revoke a card or key that is lost, stolen, damaged or no longer needed. It stops working at once and every session it opened ends. A revoked card cannot be reactivated.")
    .danger()
}

async fn revoke_form(
    State(app): State<AppState>,
    staff: Staff,
    Path((uuid, id)): Path<(String, String)>,
) -> Response {
    revoke_page(&app, &uuid, &id).render(&app, &staff)
}

async fn revoke(
    State(app): State<AppState>,
    Path((uuid, id)): Path<(String, String)>,
    StaffForm { staff, .. }: StaffForm,
) -> Response {
    let back = format!("{}/people/{uuid}/authenticators/{id}/revoke", base(&app));
    if let Some(r) = needs_fresh_sign_in(&app, &staff, &back) {
        return r;
    }
    let p = &app.provider;
    match p
        .admin_revoke_authenticator(&staff.user.caller, &uuid, &id)
        .await
    {
        Ok(_) => to_record(&app, &uuid, "revoked"),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn suspend_authenticator(
    app: State<AppState>,
    ids: Path<(String, String)>,
    form: StaffForm,
) -> Response {
    change_authenticator(app, ids, form, false).await
}

async fn unlock_authenticator(
    app: State<AppState>,
    ids: Path<(String, String)>,
    form: StaffForm,
) -> Response {
    change_authenticator(app, ids, form, true).await
}

/// Suspends a working card or key, or unlocks a suspended one.
async fn change_authenticator(
    State(app): State<AppState>,
    Path((uuid, id)): Path<(String, String)>,
    StaffForm { staff, .. }: StaffForm,
    unlock: bool,
) -> Response {
    let (p, caller) = (&app.provider, &staff.user.caller);
    let (done, notice) = if unlock {
        (
            p.admin_unlock_authenticator(caller, &uuid, &id).await,
            "card-unlocked",
        )
    } else {
        (
            p.admin_suspend_authenticator(caller, &uuid, &id).await,
            "card-suspended",
        )
    };
    match done {
        Ok(_) => to_record(&app, &uuid, notice),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn invite(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, .. }: StaffForm,
) -> Response {
    let p = &app.provider;
    match p
        .admin_invite_authenticator(&staff.user.caller, &uuid)
        .await
    {
        Ok(sent) => page(
            &app,
            &staff,
            "ra/invitation.html",
            context! { title => "Invitation ready", sent => sent, back => record_link(&app, &uuid) },
        ),
        Err(e) => refused(&app, &staff, e),
    }
}

fn bind_page(app: &AppState, uuid: &str) -> FormPage {
    FormPage::new(
        "Bind a smartcard",
        format!("{}/people/{uuid}/smartcard", base(app)),
        "Bind smartcard",
        record_link(app, uuid),
    )
    .intro("Paste the authentication certificate read from the person's new card. A person has one working card: revoke the old one first.")
    .fields(vec![Field::textarea("certificate_pem", "Card certificate (PEM)").required()])
}

async fn bind_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
) -> Response {
    bind_page(&app, &uuid).render(&app, &staff)
}

async fn bind(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let back = format!("{}/people/{uuid}/smartcard", base(&app));
    if let Some(r) = needs_fresh_sign_in(&app, &staff, &back) {
        return r;
    }
    let mut page = bind_page(&app, &uuid).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let p = &app.provider;
    match p
        .admin_bind_smartcard(&staff.user.caller, &uuid, form.get("certificate_pem"))
        .await
    {
        Ok(_) => to_record(&app, &uuid, "bound"),
        Err(AdminError::Invalid(m)) | Err(AdminError::Conflict(m)) => {
            page.error(&m).render(&app, &staff)
        }
        Err(e) => refused(&app, &staff, e),
    }
}

const TAC_REASONS: &[(&str, &str)] = &[
    (
        "card not with them",
        "The person does not have their card with them, needs access now and cannot fetch it",
    ),
    (
        "access not otherwise possible",
        "The person needs different or continued access that RA functions cannot give",
    ),
];

/// The TAC form. `roles`: the person's current positions, one of which the TAC may be given.
fn tac_page(app: &AppState, uuid: &str, roles: &[crate::model::rbac::RoleClaim]) -> FormPage {
    let mut positions = vec![(
        String::new(),
        "None for now (the TAC signs in, with no position)".to_string(),
    )];
    positions.extend(roles.iter().map(|r| {
        (
            r.person_roleid.clone(),
            format!("{} at {}", r.role_name, r.org_code),
        )
    }));
    let reasons = TAC_REASONS
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect();
    FormPage::new(
        "Issue a temporary access card",
        format!("{}/people/{uuid}/tac", base(app)),
        "Issue TAC",
        record_link(app, uuid),
    )
    .intro("A TAC is for a person with a verified identity, for at most 72 hours. It signs them in with their own positions; it is logged with its name, the reason and you as the issuer. Record its return when it comes back.")
    .fields(vec![
        Field::checkbox("likeness", "I have checked that the person in front of me is the person in the photograph on record").required(),
        Field::select("reason", "Reason", reasons).required(),
        Field::text("detail", "Details").hint("Optional, for example: card left at home"),
        Field::text("tac_name", "TAC name as printed on the card").required().hint("For example TAC 0042"),
        Field::number("hours", "Hours it works").required().value("8").hint(&format!("1 to {TAC_MAX_HOURS}")),
        Field::select("person_roleid", "Position the TAC may use", positions)
            .hint("A TAC carries no positions until you choose one of the person's current positions"),
        Field::textarea("certificate_pem", "TAC certificate (PEM)").required(),
    ])
}

/// The person's current positions, for the TAC form.
async fn current_roles_of(
    app: &AppState,
    staff: &Staff,
    uuid: &str,
) -> Result<Vec<crate::model::rbac::RoleClaim>, AdminError> {
    Ok(app
        .provider
        .admin_get_identity(&staff.user.caller, uuid)
        .await?
        .roles)
}

async fn tac_form(State(app): State<AppState>, staff: Staff, Path(uuid): Path<String>) -> Response {
    let roles = match current_roles_of(&app, &staff, &uuid).await {
        Ok(r) => r,
        Err(e) => return refused(&app, &staff, e),
    };
    let mut page = tac_page(&app, &uuid, &roles);
    if app
        .provider
        .photo_of(&staff.user.caller, &uuid)
        .await
        .is_ok()
    {
        page.image = Some((
            format!("{}/people/{uuid}/photo", base(&app)),
            "The photograph on record, for the likeness check".into(),
        ));
    } else {
        page.warnings
            .push("No photograph is on record: record one before issuing a TAC.".into());
    }
    page.render(&app, &staff)
}

async fn issue_tac(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let back = format!("{}/people/{uuid}/tac", base(&app));
    if let Some(r) = needs_fresh_sign_in(&app, &staff, &back) {
        return r;
    }
    let roles = match current_roles_of(&app, &staff, &uuid).await {
        Ok(r) => r,
        Err(e) => return refused(&app, &staff, e),
    };
    let mut page = tac_page(&app, &uuid, &roles).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let Ok(hours) = form.get("hours").parse::<i64>() else {
        return page
            .error("hours must be a whole number")
            .render(&app, &staff);
    };
    let reason = match form.opt("detail") {
        Some(d) => format!("{}: {d}", form.get("reason")),
        None => form.get("reason").to_string(),
    };
    let tac = NewTac {
        certificate_pem: form.get("certificate_pem").into(),
        tac_name: form.get("tac_name").into(),
        reason,
        hours,
        person_roleids: form.opt("person_roleid").into_iter().collect(),
    };
    match app
        .provider
        .admin_issue_tac(&staff.user.caller, &uuid, tac)
        .await
    {
        Ok(_) => to_record(&app, &uuid, "tac-issued"),
        Err(AdminError::Invalid(m)) | Err(AdminError::Conflict(m)) => {
            page.error(&m).render(&app, &staff)
        }
        Err(e) => refused(&app, &staff, e),
    }
}

async fn return_tac(
    State(app): State<AppState>,
    Path((uuid, id)): Path<(String, String)>,
    StaffForm { staff, .. }: StaffForm,
) -> Response {
    match app.provider.admin_return_tac(&staff.user.caller, &id).await {
        Ok(_) => to_record(&app, &uuid, "tac-returned"),
        Err(e) => refused(&app, &staff, e),
    }
}

fn grant_page(app: &AppState, uuid: &str) -> FormPage {
    let roles = vec![
        (
            "advanced_ra_agent".to_string(),
            "Advanced RA Agent".to_string(),
        ),
        ("id_checker".to_string(), "ID Checker".to_string()),
        (
            "local_smartcard_administrator".to_string(),
            "Local Smartcard Administrator".to_string(),
        ),
    ];
    FormPage::new(
        "Grant an RA role",
        format!("{}/people/{uuid}/ra-role", base(app)),
        "Grant RA role",
        record_link(app, uuid),
    )
    .intro("Only an RA Manager grants RA roles, never to themselves. Record where the appointment is evidenced.")
    .fields(vec![
        Field::select("role", "RA role", roles).required(),
        Field::text("evidence", "Appointment evidence").required().hint("For example: minutes of the board meeting, 3 March 2026"),
    ])
}

async fn grant_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(uuid): Path<String>,
) -> Response {
    if !staff.may(Permission::AssignRaRoles) {
        return refused(&app, &staff, forbidden("grant RA roles"));
    }
    grant_page(&app, &uuid).render(&app, &staff)
}

async fn grant(
    State(app): State<AppState>,
    Path(uuid): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let back = format!("{}/people/{uuid}/ra-role", base(&app));
    if staff.may(Permission::AssignRaRoles) {
        if let Some(r) = needs_fresh_sign_in(&app, &staff, &back) {
            return r;
        }
    }
    let mut page = grant_page(&app, &uuid).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let g = NewRaGrant {
        role: form.get("role").into(),
        evidence: form.opt("evidence"),
    };
    match app
        .provider
        .admin_grant_ra_role(&staff.user.caller, &uuid, g)
        .await
    {
        Ok(_) => to_record(&app, &uuid, "ra-role"),
        Err(AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

#[derive(Deserialize)]
struct RequestsQuery {
    status: Option<String>,
}

async fn requests(
    State(app): State<AppState>,
    staff: Staff,
    Query(q): Query<RequestsQuery>,
) -> Response {
    render_requests(&app, &staff, q.status.as_deref(), None).await
}

async fn render_requests(
    app: &AppState,
    staff: &Staff,
    status: Option<&str>,
    error: Option<String>,
) -> Response {
    let p = &app.provider;
    let caller = &staff.user.caller;
    let status = status.filter(|s| ["pending", "approved", "rejected", "fulfilled"].contains(s));
    let listed = match p.admin_list_access_requests(caller, status).await {
        Ok(l) => l.requests,
        Err(e) => return refused(app, staff, e),
    };
    let positions = p
        .admin_list_positions(caller)
        .await
        .map(|l| l.positions)
        .unwrap_or_default();
    page(
        app,
        staff,
        "ra/requests.html",
        context! { title => "Access requests", requests => listed, positions => positions,
        status => status, error => error,
        can_decide => staff.may(Permission::ApproveAccess),
        can_fulfil => staff.may(Permission::AssignPositions) },
    )
}

async fn raise_request(
    State(app): State<AppState>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let r = NewAccessRequest {
        uuid: form.get("uuid").into(),
        position_id: form.get("position_id").into(),
        reason: form.get("reason").into(),
    };
    match app
        .provider
        .admin_request_access(&staff.user.caller, r)
        .await
    {
        Ok(_) => Redirect::to(&format!("{}/requests?status=pending", base(&app))).into_response(),
        Err(AdminError::Invalid(m)) | Err(AdminError::NotFound(m)) => {
            render_requests(&app, &staff, None, Some(m)).await
        }
        Err(e) => refused(&app, &staff, e),
    }
}

async fn decide(
    State(app): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let p = &app.provider;
    let caller = &staff.user.caller;
    let note = form.opt("note");
    let done = match action.as_str() {
        "approve" | "reject" => p
            .admin_decide_access(caller, &id, action == "approve", Decision { note })
            .await
            .map(|_| ()),
        "fulfil" => p
            .admin_fulfil_access(caller, &id, Fulfilment::default())
            .await
            .map(|_| ()),
        _ => Err(AdminError::NotFound("no such action".into())),
    };
    match done {
        Ok(()) => Redirect::to(&format!("{}/requests", base(&app))).into_response(),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn positions(State(app): State<AppState>, staff: Staff) -> Response {
    if !staff.may(Permission::CreatePositions) {
        return refused(&app, &staff, forbidden("keep positions"));
    }
    match app.provider.admin_list_positions(&staff.user.caller).await {
        Ok(list) => page(
            &app,
            &staff,
            "ra/positions.html",
            context! { title => "Positions", positions => list.positions },
        ),
        Err(e) => refused(&app, &staff, e),
    }
}

/// A position's access profiles as the correction form shows them: one line each,
/// `ORG JOBROLE activities=B0820,B0825 workgroups=... aow=P1:Q2:T3`.
fn profiles_text(profiles: &[crate::model::rbac::Profile]) -> String {
    let mut lines = Vec::new();
    for p in profiles {
        let mut line = format!("{} {}", p.org_code, p.job_role);
        for (key, list) in [
            ("activities", &p.activities),
            ("workgroups", &p.workgroups),
            ("aow", &p.areas_of_work),
        ] {
            if !list.is_empty() {
                line.push_str(&format!(" {key}={}", list.join(",")));
            }
        }
        lines.push(line);
    }
    lines.join("\n")
}

/// The inverse of [`profiles_text`]; an error names the line.
fn parse_profiles(text: &str) -> Result<Vec<crate::model::rbac::Profile>, String> {
    let mut profiles = Vec::new();
    for (n, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let mut words = line.split_whitespace();
        let (Some(org_code), Some(job_role)) = (words.next(), words.next()) else {
            return Err(format!(
                "profiles: line {} needs an organisation and a job role",
                n + 1
            ));
        };
        let mut p = crate::model::rbac::Profile {
            org_code: org_code.to_uppercase(),
            job_role: job_role.to_uppercase(),
            activities: Vec::new(),
            workgroups: Vec::new(),
            areas_of_work: Vec::new(),
        };
        for word in words {
            let list = |v: &str| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            };
            match word.split_once('=') {
                Some(("activities", v)) => p.activities = list(v),
                Some(("workgroups", v)) => p.workgroups = list(v),
                Some(("aow", v)) => p.areas_of_work = list(v),
                _ => {
                    return Err(format!(
                        "profiles: line {}: {word} is not activities=, workgroups= or aow=",
                        n + 1
                    ))
                }
            }
        }
        profiles.push(p);
    }
    Ok(profiles)
}

fn correct_page(app: &AppState, id: &str, p: Option<&crate::model::rbac::Position>) -> FormPage {
    let name = p.map(|p| p.name.clone()).unwrap_or_default();
    let esr = p.and_then(|p| p.esr_position.clone()).unwrap_or_default();
    let profiles = p.map(|p| profiles_text(&p.profiles)).unwrap_or_default();
    FormPage::new(
        "Correct a position",
        format!("{}/positions/{id}/correct", base(app)),
        "Save the correction",
        format!("{}/positions", base(app)),
    )
    .intro("A change to a position is approved before it is made (the IG Steering Group, or the IG Manager if it is urgent). Every holder's access changes with its profiles.")
    .fields(vec![
        Field::text("name", "Name").required().value(&name),
        Field::text("esr_position", "ESR position").value(&esr),
        Field::textarea("profiles", "Access profiles").required().value(&profiles)
            .hint("One per line: organisation, national job role, then activities=, workgroups= and aow= lists, for example RZ9 R8001 activities=B0820,B0825"),
        Field::text("approved_by", "Approved by").required().hint("For example: IG Steering Group, 12 November 2026"),
    ])
}

async fn own_position(
    app: &AppState,
    staff: &Staff,
    id: &str,
) -> Result<crate::model::rbac::Position, AdminError> {
    app.provider
        .admin_list_positions(&staff.user.caller)
        .await?
        .positions
        .into_iter()
        .map(|p| p.position)
        .find(|p| p.id == id)
        .ok_or_else(|| {
            AdminError::NotFound(format!(
                "no position {id} at {}",
                staff.user.caller.org_code
            ))
        })
}

async fn correct_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    match own_position(&app, &staff, &id).await {
        Ok(p) => correct_page(&app, &id, Some(&p)).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn correct(
    State(app): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let mut page = correct_page(&app, &id, None).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let profiles = match parse_profiles(form.get("profiles")) {
        Ok(p) => p,
        Err(m) => return page.error(&m).render(&app, &staff),
    };
    let change = crate::domain::ra::positions::PositionChange {
        name: form.opt("name"),
        esr_position: Some(form.get("esr_position").into()),
        profiles: Some(profiles),
        approved_by: form.get("approved_by").into(),
    };
    match app
        .provider
        .admin_correct_position(&staff.user.caller, &id, change)
        .await
    {
        Ok(_) => Redirect::to(&format!("{}/positions", base(&app))).into_response(),
        Err(AdminError::Invalid(m)) | Err(AdminError::Conflict(m)) => {
            page.error(&m).render(&app, &staff)
        }
        Err(e) => refused(&app, &staff, e),
    }
}

fn retire_page(app: &AppState, id: &str) -> FormPage {
    FormPage::new(
        "Retire a position",
        format!("{}/positions/{id}/retire", base(app)),
        "Retire position",
        format!("{}/positions", base(app)),
    )
    .intro("A retired position takes no new assignments. Only a position nobody holds can be retired: end or move its holders' assignments first.")
    .fields(vec![
        Field::text("approved_by", "Approved by").required(),
        Field::textarea("reason", "Reason").required(),
    ])
    .danger()
}

async fn retire_form(
    State(app): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    if !staff.may(Permission::CreatePositions) {
        return refused(&app, &staff, forbidden("keep positions"));
    }
    retire_page(&app, &id).render(&app, &staff)
}

async fn retire(
    State(app): State<AppState>,
    Path(id): Path<String>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let mut page = retire_page(&app, &id).refill(&form);
    if !page.check_required() {
        return page.render(&app, &staff);
    }
    let r = crate::domain::ra::positions::Retirement {
        approved_by: form.get("approved_by").into(),
        reason: form.get("reason").into(),
    };
    match app
        .provider
        .admin_retire_position(&staff.user.caller, &id, r)
        .await
    {
        Ok(_) => Redirect::to(&format!("{}/positions", base(&app))).into_response(),
        Err(AdminError::Invalid(m)) => page.error(&m).render(&app, &staff),
        Err(e) => refused(&app, &staff, e),
    }
}

async fn reports(State(app): State<AppState>, staff: Staff) -> Response {
    if !staff.may(Permission::ReadAudit) {
        return refused(&app, &staff, forbidden("run reports"));
    }
    page(
        &app,
        &staff,
        "ra/reports.html",
        context! { title => "Reports", reports => crate::domain::reports::REPORTS,
        quarter => crate::domain::reports::Period::quarter_of(app.provider.now()).label },
    )
}

#[derive(Deserialize)]
struct ReportQuery {
    period: Option<String>,
}

async fn report_csv(
    State(app): State<AppState>,
    staff: Staff,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let name = name.trim_end_matches(".csv");
    let period = q.period.as_deref().map(str::trim).filter(|p| !p.is_empty());
    match app
        .provider
        .admin_report(&staff.user.caller, name, period)
        .await
    {
        Ok(report) => {
            let body = crate::domain::reports::to_csv(&report);
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            let when = report
                .period
                .clone()
                .unwrap_or(report.generated_at.to_string());
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"careid-{name}-{when}.csv\""
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => refused(&app, &staff, e),
    }
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    person: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    org_code: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    verify: String,
}

async fn audit(State(app): State<AppState>, staff: Staff, Query(q): Query<AuditQuery>) -> Response {
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (since, until) = (opt(&q.since), opt(&q.until));
    let bad_date = since.as_deref().is_some_and(|d| day(d).is_none())
        || until.as_deref().is_some_and(|d| day(d).is_none());
    let filter = AuditFilter {
        actor: opt(&q.actor),
        person: opt(&q.person),
        org_code: opt(&q.org_code).map(|o| o.to_uppercase()),
        since: since.as_deref().and_then(day),
        // Until the end of that day.
        until: until.as_deref().and_then(day).map(|d| d + 86400),
        limit: 200,
        ..Default::default()
    };
    let trail = if bad_date {
        Err(AdminError::Invalid(
            "since and until must be dates (YYYY-MM-DD)".into(),
        ))
    } else {
        app.provider
            .admin_audit_events(&staff.user.caller, filter, !q.verify.is_empty())
            .await
    };
    let (events, chain, error) = match trail {
        Ok(t) => (t.events, t.chain, None),
        Err(AdminError::Invalid(m)) => (Vec::new(), None, Some(m)),
        Err(e) => return refused(&app, &staff, e),
    };
    page(
        &app,
        &staff,
        "ra/audit.html",
        context! { title => "Audit trail", events => events, chain => chain, error => error,
        q => context! { person => q.person, actor => q.actor, org_code => q.org_code, since => q.since, until => q.until } },
    )
}
