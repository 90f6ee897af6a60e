//! What is due at a time, whoever's process notices first: events still pending, leavers whose
//! date has come, and assignments that have ended (a contract's end, an inter-organisation
//! term, a mover's old position, a TAC-less RA end date) whose sessions must end. Every item is
//! claimed by one conditional update, so several careid processes may run this side by side.

use serde_json::json;

use super::apply::{MapCache, FEED_ACTOR};
use crate::domain::provider::{Provider, ServiceError};
use crate::model::audit::AuditKind;

/// Items taken per pass of each kind.
const PER_PASS: i64 = 500;

/// What one run of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DueWork {
    pub people_applied: usize,
    pub leavers: usize,
    pub assignments_ended: usize,
    pub sessions_ended: usize,
}

impl Provider {
    /// Applies every person with pending events (in passes, until none is left or a pass
    /// makes no progress).
    pub async fn apply_pending_hr(&self, maps: &MapCache) -> Result<usize, ServiceError> {
        let mut applied = 0;
        let mut previous: Option<Vec<(String, String)>> = None;
        loop {
            let people = self.db.hr_people_pending(PER_PASS).await?;
            if people.is_empty() || previous.as_ref() == Some(&people) {
                return Ok(applied);
            }
            applied += self.apply_hr_people(&people, maps).await?.len();
            previous = Some(people);
        }
    }

    /// Everything due now.
    pub async fn run_hr_schedule(&self) -> Result<DueWork, ServiceError> {
        let mut done = DueWork {
            people_applied: self.apply_pending_hr(&MapCache::default()).await?,
            ..DueWork::default()
        };
        let now = self.now();
        for person in self.db.hr_leavers_due(now, PER_PASS).await? {
            if let Some(left) = person.left_at {
                self.enforce_leaver(&person, left).await?;
                done.leavers += 1;
            }
        }
        loop {
            let ended = self.db.ended_unhandled_assignments(now, PER_PASS).await?;
            if ended.is_empty() {
                break;
            }
            for a in &ended {
                if !self
                    .db
                    .claim_ended_assignment(&a.person_roleid, now)
                    .await?
                {
                    continue;
                }
                let sessions = self.end_sessions_in_ended_role(&a.person_roleid).await?;
                done.assignments_ended += 1;
                done.sessions_ended += sessions;
                self.audit(
                    AuditKind::AssignmentExpired,
                    "success",
                    Some(FEED_ACTOR),
                    None,
                    json!({ "person_roleid": a.person_roleid, "uuid": a.user_uuid, "position_id": a.position_id, "org_code": a.org_code, "ended_at": a.ends_at, "sessions_ended": sessions }),
                )
                .await?;
            }
            if (ended.len() as i64) < PER_PASS {
                break;
            }
        }
        Ok(done)
    }

    /// Ends the sessions acting in a role that has ended (their tokens name it); returns how many.
    pub(crate) async fn end_sessions_in_ended_role(
        &self,
        person_roleid: &str,
    ) -> Result<usize, ServiceError> {
        let mut ended = 0;
        for sid in self.db.sessions_in_role(person_roleid).await? {
            if self.end_session(&sid, "role_ended").await? {
                ended += 1;
            }
        }
        Ok(ended)
    }
}
