//! A request for a position, as raised, decided and carried out.

use serde::Serialize;

use crate::clock::UnixTime;

/// Serialised as the admin API shows it (the person's UUID as `uuid`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccessRequest {
    pub id: String,
    #[serde(rename = "uuid")]
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
