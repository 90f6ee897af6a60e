//! National RBAC for Care Identities: reference data (job roles, activities, workgroups,
//! organisations), positions (an organisation's bundles of access profiles), assignments of
//! positions to people with start and end dates, and the role claims CIS2 relying parties read
//! (`nhsid_nrbac_roles`, `nhsid_user_orgs`, `selected_roleid`; `../shared/reference/cis2.md` §5.1,
//! §8). An assignment outside its dates gives no access.

use serde::Deserialize;
use serde_json::{json, Value};

use super::secrets;
use crate::clock::UnixTime;
use crate::model::audit::AuditKind;
pub use crate::model::rbac::{Assignment, JobRole, Position, Profile, RoleClaim};
use crate::store::{AuditEvent, Db, StoreError};

/// The parts of `rbac.json` careid imports (other sections are documentation).
#[derive(Debug, Deserialize)]
pub struct RbacFile {
    #[serde(default)]
    organisations: Vec<OrgIn>,
    #[serde(default)]
    roles: Vec<RoleIn>,
    #[serde(default)]
    activities: Vec<ActivityIn>,
    #[serde(default)]
    workgroups: Vec<WorkgroupIn>,
    #[serde(default)]
    areas_of_work: Vec<AreaOfWorkIn>,
    #[serde(default)]
    positions: Vec<PositionIn>,
}

#[derive(Debug, Deserialize)]
struct AreaOfWorkIn {
    aow_code: String,
    aow: String,
}

#[derive(Debug, Deserialize)]
struct OrgIn {
    org_code: String,
    org_name: String,
}
#[derive(Debug, Deserialize)]
struct RoleIn {
    code: String,
    name: Option<String>,
    role_code: Option<String>,
    role_name: Option<String>,
}
#[derive(Debug, Deserialize)]
struct ActivityIn {
    code: String,
    name: Option<String>,
}
#[derive(Debug, Deserialize)]
struct WorkgroupIn {
    code: String,
    name: String,
    org_code: String,
}
#[derive(Debug, Deserialize)]
struct PositionIn {
    name: String,
    org_code: String,
    esr_position: Option<String>,
    access_profiles: Vec<Profile>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub organisations: usize,
    pub roles: usize,
    pub activities: usize,
    pub workgroups: usize,
    pub areas_of_work: usize,
    pub positions: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error("the RBAC file is not valid: {0}")]
    File(String),
    #[error("no such position: {0}")]
    NoSuchPosition(String),
    #[error("the assignment would end before it starts")]
    EmptyWindow,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads reference data and positions (idempotent: existing codes are updated in place).
pub async fn import(
    db: &Db,
    json_text: &str,
    actor: &str,
    now: UnixTime,
) -> Result<ImportSummary, RbacError> {
    let file: RbacFile =
        serde_json::from_str(json_text).map_err(|e| RbacError::File(e.to_string()))?;
    let mut summary = ImportSummary::default();
    for o in &file.organisations {
        db.upsert_organisation(&o.org_code, &o.org_name).await?;
        summary.organisations += 1;
    }
    for r in &file.roles {
        let role = JobRole {
            code: r.code.clone(),
            name: r.name.clone().unwrap_or_else(|| r.code.clone()),
            role_code: r.role_code.clone(),
            role_name: r.role_name.clone(),
        };
        db.upsert_job_role(&role).await?;
        summary.roles += 1;
    }
    for a in file.activities.iter().filter(|a| a.name.is_some()) {
        db.upsert_activity(&a.code, a.name.as_deref().unwrap_or_default())
            .await?;
        summary.activities += 1;
    }
    for w in &file.workgroups {
        db.upsert_workgroup(&w.code, &w.name, &w.org_code).await?;
        summary.workgroups += 1;
    }
    for a in &file.areas_of_work {
        db.upsert_area_of_work(&a.aow_code, &a.aow).await?;
        summary.areas_of_work += 1;
    }
    for p in &file.positions {
        let position = Position {
            id: uuid::Uuid::new_v4().to_string(),
            org_code: p.org_code.clone(),
            name: p.name.clone(),
            esr_position: p.esr_position.clone(),
            profiles: p.access_profiles.clone(),
        };
        db.upsert_position(&position, now).await?;
        summary.positions += 1;
    }
    let detail = json!({ "organisations": summary.organisations, "roles": summary.roles, "activities": summary.activities, "workgroups": summary.workgroups, "positions": summary.positions });
    db.append_audit(&AuditEvent {
        at: now,
        kind: AuditKind::RbacImported.as_str().into(),
        outcome: "success".into(),
        actor: Some(actor.into()),
        client_id: None,
        detail,
    })
    .await?;
    Ok(summary)
}

/// Assigns every profile of a position to a person from `starts_at` until `ends_at` (open-ended
/// when None); returns the new `person_roleid`s.
pub async fn assign_position(
    db: &Db,
    user_uuid: &str,
    position_id: &str,
    starts_at: UnixTime,
    ends_at: Option<UnixTime>,
    actor: &str,
    now: UnixTime,
) -> Result<Vec<String>, RbacError> {
    if ends_at.is_some_and(|e| e <= starts_at) {
        return Err(RbacError::EmptyWindow);
    }
    let position = db
        .position(position_id)
        .await?
        .ok_or_else(|| RbacError::NoSuchPosition(position_id.into()))?;
    let mut ids = Vec::new();
    for (i, profile) in position.profiles.iter().enumerate() {
        db.person_orgid(user_uuid, &profile.org_code, &secrets::random_digits(12))
            .await?;
        let a = Assignment {
            person_roleid: secrets::random_digits(12),
            user_uuid: user_uuid.into(),
            position_id: position_id.into(),
            profile_index: i as i64,
            org_code: profile.org_code.clone(),
            starts_at,
            ends_at,
        };
        db.insert_assignment(&a, now).await?;
        ids.push(a.person_roleid);
    }
    let detail = json!({ "uuid": user_uuid, "position": position.name, "org_code": position.org_code, "person_roleids": ids, "starts_at": starts_at, "ends_at": ends_at });
    db.append_audit(&AuditEvent {
        at: now,
        kind: AuditKind::AssignmentCreated.as_str().into(),
        outcome: "success".into(),
        actor: Some(actor.into()),
        client_id: None,
        detail,
    })
    .await?;
    Ok(ids)
}

/// The role claims of a user's current assignments, in assignment order.
pub async fn current_roles(
    db: &Db,
    user_uuid: &str,
    now: UnixTime,
) -> Result<Vec<RoleClaim>, StoreError> {
    let assignments = db.current_assignments(user_uuid, now).await?;
    let ids: Vec<String> = assignments
        .iter()
        .map(|(a, _)| a.position_id.clone())
        .collect();
    let positions = db.positions(&ids).await?;
    let mut profiles = Vec::new();
    for (a, person_orgid) in assignments {
        let Some(position) = positions.get(&a.position_id) else {
            continue;
        };
        let Some(profile) = position.profiles.get(a.profile_index as usize).cloned() else {
            continue;
        };
        profiles.push((a, person_orgid, profile));
    }
    let all = |f: fn(&Profile) -> Vec<String>| {
        let mut v: Vec<String> = profiles.iter().flat_map(|(_, _, p)| f(p)).collect();
        v.sort();
        v.dedup();
        v
    };
    let roles = db.job_roles(&all(|p| vec![p.job_role.clone()])).await?;
    let activity_names = db
        .names_of("activity", &all(|p| p.activities.clone()))
        .await?;
    let workgroup_names = db
        .names_of("workgroup", &all(|p| p.workgroups.clone()))
        .await?;
    let aow_names = db
        .names_of("area_of_work", &all(|p| p.areas_of_work.clone()))
        .await?;
    Ok(profiles
        .into_iter()
        .map(|(a, person_orgid, p)| {
            let role = roles.get(&p.job_role);
            // Job roles whose staff group and sub-group are not known keep just the R code and name.
            let role_code = role
                .and_then(|r| r.role_code.clone())
                .unwrap_or_else(|| p.job_role.clone());
            let role_name = role.and_then(|r| r.role_name.clone()).unwrap_or_else(|| {
                format!(
                    "\"{}\"",
                    role.map(|r| r.name.as_str()).unwrap_or(&p.job_role)
                )
            });
            let named: Vec<&String> = p
                .activities
                .iter()
                .filter(|c| activity_names.contains_key(*c))
                .collect();
            RoleClaim {
                person_orgid,
                person_roleid: a.person_roleid,
                org_code: a.org_code,
                role_name,
                role_code,
                activities: named.iter().map(|c| activity_names[*c].clone()).collect(),
                activity_codes: named.iter().map(|c| (*c).clone()).collect(),
                workgroups: p
                    .workgroups
                    .iter()
                    .map(|c| workgroup_names.get(c).cloned().unwrap_or_default())
                    .collect(),
                workgroups_codes: p.workgroups.clone(),
                aow: p
                    .areas_of_work
                    .iter()
                    .map(|c| aow_names.get(c).cloned().unwrap_or_default())
                    .collect(),
                aow_codes: p.areas_of_work.clone(),
            }
        })
        .collect())
}

/// `nhsid_user_orgs`: one entry per organisation where the user holds a current role.
pub async fn user_orgs(db: &Db, roles: &[RoleClaim]) -> Result<Value, StoreError> {
    // Each organisation once, in the order of the roles.
    let mut codes: Vec<String> = Vec::new();
    for r in roles {
        if !codes.contains(&r.org_code) {
            codes.push(r.org_code.clone());
        }
    }
    let names = db.names_of("organisation", &codes).await?;
    Ok(Value::Array(
        codes
            .iter()
            .map(
                |c| json!({ "org_code": c, "org_name": names.get(c).cloned().unwrap_or_default() }),
            )
            .collect(),
    ))
}
