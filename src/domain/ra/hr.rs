//! The RA's side of the HR feed, under the RA rules: mapping an organisation's HR positions to
//! its access-control positions (approval recorded; positions carrying RA power are never
//! given by the feed), the events that need attention, and the personal-detail changes HR sent
//! (a change of name or date of birth is approved only with the evidence the RA saw).

use serde::Deserialize;
use serde_json::json;

use super::answers::{
    DetailChangeDecided, DetailChangeList, HrAttentionList, PositionMapList, PositionMapped,
};
use super::authority::{self as op, carries_ra_power};
use super::identities::DetailsChange;
use super::{AdminError, Caller};
use crate::domain::hr::apply::{is_core_change, MapCache};
use crate::domain::hr::feed::AttentionRow;
use crate::domain::provider::Provider;
use crate::model::audit::AuditKind;
use crate::model::hr::PositionMap;
use crate::model::rbac::within;

/// An HR position mapped to an access-control position, with who agreed it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPositionMap {
    /// The HR organisation (the caller's, or one of its sites).
    pub org_code: String,
    /// The HR system's position code.
    pub hr_position: String,
    /// The access-control position its holders get.
    pub position_id: String,
    /// Who agreed the mapping (Workforce and IG; policy 002 section 7.1).
    pub approved_by: String,
}

/// An RA's decision on a detail change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailDecision {
    /// The document seen, required to approve a change of name or date of birth (for example
    /// "marriage certificate").
    #[serde(default)]
    pub evidence: Option<String>,
    /// Why, required to reject.
    #[serde(default)]
    pub note: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

impl Provider {
    /// Maps an HR position; events waiting for the mapping are applied at once.
    pub async fn admin_map_hr_position(
        &self,
        caller: &Caller,
        m: NewPositionMap,
    ) -> Result<PositionMapped, AdminError> {
        self.authorise(caller, &op::MAP_HR_POSITION)?;
        let org_code = m.org_code.trim().to_uppercase();
        let hr_position = m.hr_position.trim().to_string();
        if hr_position.is_empty() || hr_position.len() > 200 || m.approved_by.trim().is_empty() {
            return Err(AdminError::Invalid(
                "a mapping needs hr_position (at most 200 characters) and who approved it".into(),
            ));
        }
        if !within(&org_code, &caller.org_code) {
            return Err(AdminError::Forbidden(format!(
                "{org_code} is not your organisation: your selected role's RA authority is at {}",
                caller.org_code
            )));
        }
        let position = self
            .db
            .position(&m.position_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no position {}", m.position_id)))?;
        Self::own_organisation(caller, &position)?;
        if self.db.position_standing(&position.id).await?.1.is_some() {
            return Err(AdminError::Conflict(format!(
                "position {} is retired",
                position.name
            )));
        }
        if position.profiles.iter().any(carries_ra_power) {
            return Err(AdminError::Invalid(
                "a position carrying RA or sponsor power is given by an RA Manager with appointment evidence, never by the HR feed".into(),
            ));
        }
        let map = PositionMap {
            org_code: org_code.clone(),
            hr_position,
            position_id: position.id.clone(),
            approved_by: m.approved_by.trim().to_string(),
            mapped_by: caller.uuid.clone(),
            mapped_at: self.now(),
        };
        self.db.set_position_map(&map).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminHrPositionMapped,
            json!({ "org_code": map.org_code, "hr_position": map.hr_position, "position_id": map.position_id, "approved_by": map.approved_by }),
        )
        .await?;
        let retried = self.db.retry_hr_attention(&org_code).await?;
        self.apply_pending_hr(&MapCache::default()).await?;
        Ok(PositionMapped {
            map,
            events_retried: retried,
        })
    }

    pub async fn admin_unmap_hr_position(
        &self,
        caller: &Caller,
        org_code: &str,
        hr_position: &str,
    ) -> Result<PositionMapList, AdminError> {
        self.authorise(caller, &op::UNMAP_HR_POSITION)?;
        if !within(org_code, &caller.org_code) {
            return Err(AdminError::Forbidden(format!(
                "{org_code} is not your organisation"
            )));
        }
        if !self.db.delete_position_map(org_code, hr_position).await? {
            return Err(AdminError::NotFound(format!(
                "no mapping of HR position {hr_position} at {org_code}"
            )));
        }
        self.admin_audit(
            caller,
            AuditKind::AdminHrPositionUnmapped,
            json!({ "org_code": org_code, "hr_position": hr_position }),
        )
        .await?;
        self.admin_list_hr_maps(caller).await
    }

    /// The caller organisation's mappings.
    pub async fn admin_list_hr_maps(&self, caller: &Caller) -> Result<PositionMapList, AdminError> {
        self.authorise(caller, &op::LIST_HR_MAPS)?;
        let maps = self
            .db
            .position_maps()
            .await?
            .into_iter()
            .filter(|m| within(&m.org_code, &caller.org_code))
            .collect();
        Ok(PositionMapList { maps })
    }

    /// Events of the caller's organisation kept for attention, with why.
    pub async fn admin_hr_attention(&self, caller: &Caller) -> Result<HrAttentionList, AdminError> {
        self.authorise(caller, &op::HR_ATTENTION)?;
        let events = self
            .db
            .hr_attention(1000)
            .await?
            .into_iter()
            .filter(|e| within(&e.raw.org_code, &caller.org_code))
            .map(|e| AttentionRow {
                event_id: e.raw.event_id,
                reason: e.reason.unwrap_or_default(),
            })
            .collect();
        Ok(HrAttentionList { events })
    }

    /// Pending detail changes at the caller's organisation.
    pub async fn admin_list_detail_changes(
        &self,
        caller: &Caller,
    ) -> Result<DetailChangeList, AdminError> {
        self.authorise(caller, &op::LIST_DETAIL_CHANGES)?;
        let changes = self
            .db
            .detail_changes("pending", 1000)
            .await?
            .into_iter()
            .filter(|c| within(&c.org_code, &caller.org_code))
            .collect();
        Ok(DetailChangeList { changes })
    }

    /// Approves (applying the details through the RA's own rules) or rejects a detail change.
    pub async fn admin_decide_detail_change(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        d: DetailDecision,
    ) -> Result<DetailChangeDecided, AdminError> {
        self.authorise(caller, &op::DECIDE_DETAIL_CHANGE)?;
        let request = self
            .db
            .detail_change(id)
            .await?
            .filter(|c| within(&c.org_code, &caller.org_code))
            .ok_or_else(|| AdminError::NotFound(format!("no detail change {id}")))?;
        if request.state != "pending" {
            return Err(AdminError::Conflict(format!(
                "the change was already {}",
                request.state
            )));
        }
        self.act_on_person(caller, &op::DECIDE_DETAIL_CHANGE, &request.user_uuid)
            .await?;
        let evidence = nonempty(&d.evidence);
        let note = nonempty(&d.note);
        if approve {
            if is_core_change(&request.changes) && evidence.is_none() {
                return Err(AdminError::Invalid(
                    "a change of name or date of birth needs evidence: the document you saw (for example a marriage certificate or deed poll)".into(),
                ));
            }
            let change = self.details_change_of(&request, evidence.clone()).await?;
            self.admin_update_details(caller, &request.user_uuid, change)
                .await?;
        } else if note.is_none() {
            return Err(AdminError::Invalid(
                "say why the change is rejected (note)".into(),
            ));
        }
        let state = if approve { "approved" } else { "rejected" };
        let now = self.now();
        if !self
            .db
            .decide_detail_change(id, state, &caller.uuid, now, note.as_deref())
            .await?
        {
            return Err(AdminError::Conflict(
                "the change was decided by someone else first".into(),
            ));
        }
        self.admin_audit(
            caller,
            AuditKind::AdminHrDetailsDecided,
            json!({ "id": id, "uuid": request.user_uuid, "event_id": request.event_id, "decision": state, "evidence": evidence, "note": note, "fields": request.changes.iter().map(|c| c.field.clone()).collect::<Vec<_>>() }),
        )
        .await?;
        Ok(DetailChangeDecided {
            id: id.to_string(),
            state: state.to_string(),
        })
    }

    /// The RA change a detail request asks for (work phone and mobile kept as the first two
    /// work phone numbers).
    async fn details_change_of(
        &self,
        request: &crate::model::hr::DetailChangeRequest,
        evidence: Option<String>,
    ) -> Result<DetailsChange, AdminError> {
        let mut phones = self
            .db
            .personal_details(&request.user_uuid)
            .await?
            .work_phones;
        let mut change = DetailsChange::default();
        for c in &request.changes {
            let v = c.proposed.clone();
            match c.field.as_str() {
                "title" => change.title = v,
                "given_name" => change.given_name = v,
                "middle_names" => change.middle_names = v,
                "family_name" => change.family_name = v,
                "email" => change.email = v,
                "date_of_birth" => change.date_of_birth = v,
                "ni_number" => change.ni_number = v,
                "work_phone" | "work_mobile" => {
                    let at = usize::from(c.field == "work_mobile");
                    while phones.len() <= at {
                        phones.push(String::new());
                    }
                    phones[at] = v.unwrap_or_default();
                    change.work_phones =
                        Some(phones.iter().filter(|p| !p.is_empty()).cloned().collect());
                }
                _ => {}
            }
        }
        if change.given_name.is_some() || change.family_name.is_some() {
            change.name_change_evidence = evidence;
        }
        Ok(change)
    }
}
