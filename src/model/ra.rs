//! Registration-authority records: RA role grants and temporary access card issues.

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct RaGrant {
    pub id: String,
    pub user_uuid: String,
    pub org_code: String,
    /// `advanced_ra_agent`, `id_checker` or `local_smartcard_administrator`.
    pub role: String,
    pub evidence: Option<String>,
    pub granted_by: String,
    pub granted_at: UnixTime,
    pub ended_at: Option<UnixTime>,
}

/// One TAC issue, as logged (policy 002 §6.3: the TAC's name, the person, the reason, who
/// issued it and when, and when it came back).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TacIssue {
    pub id: String,
    pub authenticator_id: String,
    pub user_uuid: String,
    pub tac_name: String,
    pub reason: String,
    pub issued_by: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub returned_at: Option<UnixTime>,
    pub returned_to: Option<String>,
    /// The positions (their `person_roleid`s) a session opened with this TAC may use; none
    /// until an RA chooses.
    pub person_roleids: Vec<String>,
}
