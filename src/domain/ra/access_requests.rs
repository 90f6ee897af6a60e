//! Sponsor approval of access (`../shared/reference/nhs-processes.md` §1 rule 8, §2 rules 12 and
//! 15): RA staff or a sponsor raise a request for a position for a person; a sponsor (a role with
//! activity B1300) at the position's organisation approves or rejects it, never their own request
//! nor one for themselves; then RA staff other than the approver carry it out (approval and
//! execution are separate steps), through the same assignment rules as a direct assignment.

use serde::Deserialize;
use serde_json::json;

use super::answers::{AccessDecided, AccessFulfilled, AccessRequestList};
use super::authority as op;
use super::{AdminError, Caller, NewAssignment};
use crate::domain::provider::Provider;
pub use crate::model::access_request::AccessRequest;
use crate::model::audit::AuditKind;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequest {
    pub uuid: String,
    pub position_id: String,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fulfilment {
    #[serde(default)]
    pub starts_at: Option<i64>,
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// For an RA Manager position: where the appointment is evidenced.
    #[serde(default)]
    pub appointment_evidence: Option<String>,
}

const SEPARATE: &str = "nobody approves their own request or one for themselves";

impl Provider {
    pub async fn admin_request_access(
        &self,
        caller: &Caller,
        r: NewAccessRequest,
    ) -> Result<AccessRequest, AdminError> {
        self.authorise(caller, &op::REQUEST_ACCESS)?;
        if r.reason.trim().is_empty() {
            return Err(AdminError::Invalid("reason is required".into()));
        }
        if self.db.user(&r.uuid).await?.is_none() {
            return Err(AdminError::NotFound(format!("no Care Identity {}", r.uuid)));
        }
        let position = self
            .db
            .position(&r.position_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no position {}", r.position_id)))?;
        Self::own_organisation(caller, &position)?;
        let request = AccessRequest {
            id: uuid::Uuid::new_v4().to_string(),
            user_uuid: r.uuid,
            position_id: r.position_id,
            reason: r.reason.trim().into(),
            requested_by: caller.uuid.clone(),
            requested_at: self.now(),
            status: "pending".into(),
            decided_by: None,
            decided_at: None,
            decision_note: None,
            fulfilled_by: None,
            fulfilled_at: None,
            person_roleids: Vec::new(),
        };
        self.db.insert_access_request(&request).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminAccessRequested,
            json!({ "request": request.id, "uuid": request.user_uuid, "position_id": request.position_id }),
        )
        .await?;
        Ok(request)
    }

    pub async fn admin_list_access_requests(
        &self,
        caller: &Caller,
        status: Option<&str>,
    ) -> Result<AccessRequestList, AdminError> {
        self.authorise(caller, &op::LIST_REQUESTS)?;
        let list = self.db.access_requests(status, 500).await?;
        let ids: Vec<String> = list.iter().map(|r| r.position_id.clone()).collect();
        let positions = self.db.positions(&ids).await?;
        // Each organisation's RA staff and sponsors see their own organisation's queue.
        let own = list.iter().filter(|r| {
            positions
                .get(&r.position_id)
                .is_some_and(|p| p.org_code == caller.org_code)
        });
        Ok(AccessRequestList {
            requests: own.cloned().collect(),
        })
    }

    /// A sponsor's decision on a pending request.
    pub async fn admin_decide_access(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        d: Decision,
    ) -> Result<AccessDecided, AdminError> {
        self.authorise(caller, &op::DECIDE_REQUEST)?;
        let request = self.request(id).await?;
        if request.requested_by == caller.uuid || request.user_uuid == caller.uuid {
            return Err(AdminError::Forbidden(SEPARATE.into()));
        }
        let position = self.db.position(&request.position_id).await?;
        if position.is_none_or(|p| p.org_code != caller.org_code) {
            return Err(AdminError::Forbidden(
                "a sponsor decides on positions of their own organisation only".into(),
            ));
        }
        let status = if approve { "approved" } else { "rejected" };
        let note = d.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if !self
            .db
            .decide_access_request(id, status, &caller.uuid, note, self.now())
            .await?
        {
            return Err(AdminError::Conflict(format!(
                "the request is {}, not pending",
                request.status
            )));
        }
        self.admin_audit(
            caller,
            if approve {
                AuditKind::AdminAccessApproved
            } else {
                AuditKind::AdminAccessRejected
            },
            json!({ "request": id, "uuid": request.user_uuid, "position_id": request.position_id }),
        )
        .await?;
        Ok(AccessDecided {
            id: id.to_string(),
            status: status.to_string(),
        })
    }

    /// RA staff carry out an approved request; the approver may not.
    pub async fn admin_fulfil_access(
        &self,
        caller: &Caller,
        id: &str,
        f: Fulfilment,
    ) -> Result<AccessFulfilled, AdminError> {
        self.authorise(caller, &op::FULFIL_REQUEST)?;
        let request = self.request(id).await?;
        let position = self
            .db
            .position(&request.position_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no position {}", request.position_id)))?;
        // Checked before the request is claimed, so a refusal leaves it approved.
        self.act_on_position(caller, &op::FULFIL_REQUEST, &request.user_uuid, &position)
            .await?;
        if request.decided_by.as_deref() == Some(caller.uuid.as_str()) {
            return Err(AdminError::Forbidden(
                "approval and execution are separate steps: someone other than the approver carries it out".into(),
            ));
        }
        if !self
            .db
            .claim_access_request(id, &caller.uuid, self.now())
            .await?
        {
            return Err(AdminError::Conflict(format!(
                "the request is {}, not approved",
                request.status
            )));
        }
        let assignment = NewAssignment {
            position_id: request.position_id.clone(),
            starts_at: f.starts_at,
            ends_at: f.ends_at,
            term: None,
            appointment_evidence: f.appointment_evidence,
        };
        match self
            .admin_assign(caller, &request.user_uuid, assignment)
            .await
        {
            Ok(done) => {
                let ids = done.person_roleids;
                self.db.finish_access_request(id, Some(&ids)).await?;
                self.admin_audit(
                    caller,
                    AuditKind::AdminAccessFulfilled,
                    json!({ "request": id, "uuid": request.user_uuid, "person_roleids": ids }),
                )
                .await?;
                Ok(AccessFulfilled {
                    id: id.to_string(),
                    status: "fulfilled".into(),
                    person_roleids: ids,
                })
            }
            Err(e) => {
                self.db.finish_access_request(id, None).await?;
                Err(e)
            }
        }
    }

    async fn request(&self, id: &str) -> Result<AccessRequest, AdminError> {
        self.db
            .access_request(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no access request {id}")))
    }
}
