//! Positions as an organisation keeps them (policy 002 section 7): listed with who approved
//! them, corrected with a new approval recorded before the change, and retired when no one
//! holds them any more (a retired position takes no new assignments).

use serde::Deserialize;
use serde_json::json;

use super::answers::{PositionList, PositionView};
use super::authority as op;
use super::{AdminError, Caller};
use crate::domain::provider::Provider;
use crate::model::audit::AuditKind;
use crate::model::rbac::{Position, Profile};

/// A correction: absent fields stay as they are; the approval is required.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionChange {
    pub name: Option<String>,
    pub esr_position: Option<String>,
    /// Replaces the access profiles (every holder's access changes with them).
    pub profiles: Option<Vec<Profile>>,
    /// Who agreed the change (IG Steering Group, or the IG Manager if urgent), before it is
    /// made (policy 002 section 7.2).
    pub approved_by: String,
}

/// A retirement, with its approval.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retirement {
    pub approved_by: String,
    pub reason: String,
}

impl Provider {
    /// The positions of the caller's organisation (to assign, request or keep).
    pub async fn admin_list_positions(&self, caller: &Caller) -> Result<PositionList, AdminError> {
        self.authorise(caller, &op::LIST_POSITIONS)?;
        let records = self.db.positions_at(&caller.org_code, self.now()).await?;
        let positions = records
            .into_iter()
            .map(|r| PositionView {
                position: r.position,
                approved_by: r.approved_by,
                retired_at: r.retired_at,
                holders: r.holders,
            })
            .collect();
        Ok(PositionList { positions })
    }

    async fn position_view(
        &self,
        position: Position,
        now: i64,
    ) -> Result<PositionView, AdminError> {
        let (approved_by, retired_at) = self.db.position_standing(&position.id).await?;
        let holders = self.db.current_holders(&position.id, now).await?;
        Ok(PositionView {
            position,
            approved_by,
            retired_at,
            holders,
        })
    }

    /// A position of the caller's organisation, by id (404 otherwise).
    async fn own_position(&self, caller: &Caller, id: &str) -> Result<Position, AdminError> {
        let position = self
            .db
            .position(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no position {id}")))?;
        Self::own_organisation(caller, &position)?;
        Ok(position)
    }

    /// Organisations and national job roles of a position's profiles must be known.
    pub(crate) async fn check_profiles(
        &self,
        org_code: &str,
        profiles: &[Profile],
    ) -> Result<(), AdminError> {
        if profiles.is_empty() {
            return Err(AdminError::Invalid(
                "a position needs at least one access profile".into(),
            ));
        }
        let mut orgs: Vec<String> = profiles
            .iter()
            .map(|x| x.org_code.clone())
            .chain([org_code.to_string()])
            .collect();
        orgs.sort();
        orgs.dedup();
        let known = self.db.names_of("organisation", &orgs).await?;
        if let Some(o) = orgs.iter().find(|o| !known.contains_key(*o)) {
            return Err(AdminError::Invalid(format!("unknown organisation {o}")));
        }
        let jobs: Vec<String> = profiles.iter().map(|x| x.job_role.clone()).collect();
        let known = self.db.job_roles(&jobs).await?;
        if let Some(j) = jobs.iter().find(|j| !known.contains_key(*j)) {
            return Err(AdminError::Invalid(format!(
                "unknown national job role {j}"
            )));
        }
        Ok(())
    }

    /// Corrects a position of the caller's organisation, recording who approved it.
    pub async fn admin_correct_position(
        &self,
        caller: &Caller,
        id: &str,
        change: PositionChange,
    ) -> Result<PositionView, AdminError> {
        self.authorise(caller, &op::CORRECT_POSITION)?;
        if change.approved_by.trim().is_empty() {
            return Err(AdminError::Invalid(
                "approved_by is required: a change is approved before it is made".into(),
            ));
        }
        let mut position = self.own_position(caller, id).await?;
        if self.db.position_standing(id).await?.1.is_some() {
            return Err(AdminError::Conflict(format!("position {id} is retired")));
        }
        let before = position.clone();
        if let Some(name) = change.name.filter(|n| !n.trim().is_empty()) {
            let taken = self
                .db
                .position_by_name(&position.org_code, name.trim())
                .await?;
            if taken.is_some_and(|other| other != position.id) {
                return Err(AdminError::Conflict(
                    "the organisation already has a position of that name".into(),
                ));
            }
            position.name = name.trim().into();
        }
        if let Some(esr) = change.esr_position {
            position.esr_position = Some(esr.trim().to_string()).filter(|e| !e.is_empty());
        }
        if let Some(profiles) = change.profiles {
            self.check_profiles(&position.org_code, &profiles).await?;
            position.profiles = profiles;
        }
        Self::own_organisation(caller, &position)?;
        if position == before {
            return Err(AdminError::Invalid("nothing to change".into()));
        }
        let approved_by = change.approved_by.trim();
        self.db.correct_position(&position, approved_by).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminPositionUpdated,
            json!({ "position_id": id, "name": position.name, "approved_by": approved_by,
                    "profiles_changed": before.profiles != position.profiles }),
        )
        .await?;
        self.position_view(position, self.now()).await
    }

    /// Retires a position nobody holds any more: it takes no new assignments.
    pub async fn admin_retire_position(
        &self,
        caller: &Caller,
        id: &str,
        r: Retirement,
    ) -> Result<PositionView, AdminError> {
        self.authorise(caller, &op::RETIRE_POSITION)?;
        if r.approved_by.trim().is_empty() || r.reason.trim().is_empty() {
            return Err(AdminError::Invalid(
                "approved_by and reason are required".into(),
            ));
        }
        let position = self.own_position(caller, id).await?;
        let now = self.now();
        let holders = self.db.current_holders(id, now).await?;
        if holders > 0 {
            return Err(AdminError::Conflict(format!(
                "{holders} people hold this position: end or move their assignments first"
            )));
        }
        if !self.db.retire_position(id, now).await? {
            return Err(AdminError::Conflict(format!(
                "position {id} is already retired"
            )));
        }
        self.admin_audit(
            caller,
            AuditKind::AdminPositionRetired,
            json!({ "position_id": id, "name": position.name, "approved_by": r.approved_by.trim(), "reason": r.reason.trim() }),
        )
        .await?;
        self.position_view(position, now).await
    }
}
