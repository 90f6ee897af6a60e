//! A request for a position, as raised, decided and carried out.

use serde_json::{json, Value};

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct AccessRequest {
    pub id: String,
    pub user_uuid: String,
    pub position_id: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: UnixTime,
    /// `pending`, `approved`, `rejected` or `fulfilled`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<UnixTime>,
    pub decision_note: Option<String>,
    pub fulfilled_by: Option<String>,
    pub fulfilled_at: Option<UnixTime>,
    pub person_roleids: Vec<String>,
}

impl AccessRequest {
    pub fn describe(&self) -> Value {
        json!({
            "id": self.id, "uuid": self.user_uuid, "position_id": self.position_id,
            "reason": self.reason, "requested_by": self.requested_by, "requested_at": self.requested_at,
            "status": self.status, "decided_by": self.decided_by, "decided_at": self.decided_at,
            "decision_note": self.decision_note, "fulfilled_by": self.fulfilled_by,
            "fulfilled_at": self.fulfilled_at, "person_roleids": self.person_roleids,
        })
    }
}
