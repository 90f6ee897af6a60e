//! National RBAC records: job roles, positions and their access profiles, assignments, and the
//! CIS2-shaped role claim.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// Whether organisation code `code` is `org` or one of its sites. ODS codes a trust's sites by
/// its three-character code plus two characters (RZ9 → RZ9EX), and positions name sites.
pub fn within(code: &str, org: &str) -> bool {
    code == org || (code.len() == org.len() + 2 && code.starts_with(org))
}

/// A national job role (`R` code) with its `S:G:R` code and quoted three-part name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRole {
    pub code: String,
    pub name: String,
    pub role_code: Option<String>,
    pub role_name: Option<String>,
}

/// One access profile of a position: a job role at an organisation, with activities and workgroups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub org_code: String,
    pub job_role: String,
    #[serde(default)]
    pub activities: Vec<String>,
    #[serde(default)]
    pub workgroups: Vec<String>,
    /// Area-of-work codes (`P####:Q####:T####`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas_of_work: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Position {
    pub id: String,
    pub org_code: String,
    pub name: String,
    pub esr_position: Option<String>,
    pub profiles: Vec<Profile>,
}

/// A position with how it stands: who approved it, when it was retired, how many hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRecord {
    pub position: Position,
    pub approved_by: Option<String>,
    pub retired_at: Option<UnixTime>,
    pub holders: i64,
}

/// A person holding one profile of a position: one `person_roleid`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub person_roleid: String,
    pub user_uuid: String,
    pub position_id: String,
    pub profile_index: i64,
    pub org_code: String,
    pub starts_at: UnixTime,
    pub ends_at: Option<UnixTime>,
}

/// One entry of `nhsid_nrbac_roles`, in CIS2's field names. Optional arrays are always sent
/// (`[]` when empty), the one rule kept everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoleClaim {
    pub person_orgid: String,
    pub person_roleid: String,
    pub org_code: String,
    pub role_name: String,
    pub role_code: String,
    pub activities: Vec<String>,
    pub activity_codes: Vec<String>,
    pub workgroups: Vec<String>,
    pub workgroups_codes: Vec<String>,
    pub aow: Vec<String>,
    pub aow_codes: Vec<String>,
}
