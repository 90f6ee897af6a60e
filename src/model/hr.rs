//! HR feed records: events as the Electronic Staff Record sends them, the inbox they wait in,
//! HR people and their links to Care Identities, position maps, and detail changes for an RA.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// An event as it arrives, in the API's JSON and in a file's row alike: every field of every
/// kind, flat, so one parser serves both doors. `domain::hr::events` turns it into an [`HrEvent`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// The HR system's own id for the event: a second event with this id is a duplicate.
    pub event_id: String,
    /// `starter`, `assignment_change`, `leaver`, `details_change` or `identity_link`.
    pub kind: String,
    /// ODS code of the employing organisation.
    pub org_code: String,
    /// The HR system's person number at that organisation.
    pub person_id: String,
    /// When HR recorded the change (RFC 3339): a person's events apply in this order, whatever
    /// order they arrive in.
    pub recorded_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hr_position: Option<String>,
    /// Starter: first day (`YYYY-MM-DD`, from 00:00 UTC) or an RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_on: Option<String>,
    /// Starter or change: when access ends (a date means from 00:00 UTC that day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_on: Option<String>,
    /// Starter: `employee` (default), `contractor` or `inter_org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_kind: Option<String>,
    /// Change: from when the change holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<String>,
    /// Leaver: when access ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaving_on: Option<String>,
    /// Identity link: the Care Identity's 12-digit UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ni_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_mobile: Option<String>,
}

/// Who a starter is, for the length of their access (nhs-processes rules 40–41).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffKind {
    Employee,
    /// Ends at the contract end date, or 91 days after the start when none is given.
    Contractor,
    /// Staff of a partner organisation: at most 365 days.
    InterOrg,
}

/// Personal details as HR holds them (policy 002 §6.1.2). Absent fields are not compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HrDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ni_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_mobile: Option<String>,
}

/// What an event says, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    Starter {
        assignment_id: String,
        hr_position: String,
        starts_at: UnixTime,
        ends_at: Option<UnixTime>,
        staff_kind: StaffKind,
    },
    /// A mover (new position), a new end date, or both, from `effective_from`.
    AssignmentChange {
        assignment_id: String,
        effective_from: UnixTime,
        hr_position: Option<String>,
        ends_at: Option<UnixTime>,
    },
    Leaver {
        leaving_at: UnixTime,
    },
    DetailsChange(HrDetails),
    IdentityLink {
        uuid: String,
    },
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Starter { .. } => "starter",
            EventBody::AssignmentChange { .. } => "assignment_change",
            EventBody::Leaver { .. } => "leaver",
            EventBody::DetailsChange(_) => "details_change",
            EventBody::IdentityLink { .. } => "identity_link",
        }
    }
}

/// A checked event of one HR person.
#[derive(Debug, Clone, PartialEq)]
pub struct HrEvent {
    pub event_id: String,
    pub org_code: String,
    pub person_id: String,
    pub recorded_at: UnixTime,
    pub body: EventBody,
}

/// Where an event stands in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Recorded, not yet applied.
    Pending,
    Applied,
    /// Kept, not applied, with a reason (an unknown person, an unmapped position); applied
    /// when the cause is fixed.
    Attention,
}

impl InboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Pending => "pending",
            InboxState::Applied => "applied",
            InboxState::Attention => "attention",
        }
    }
    pub fn parse(s: &str) -> Option<InboxState> {
        [
            InboxState::Pending,
            InboxState::Applied,
            InboxState::Attention,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// An event as the inbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    pub raw: RawEvent,
    pub state: InboxState,
    pub reason: Option<String>,
    pub received_at: UnixTime,
    pub source: String,
}

/// An HR person record at one organisation, as the feed keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HrPerson {
    pub org_code: String,
    pub person_id: String,
    pub user_uuid: Option<String>,
    pub version: i64,
    pub left_at: Option<UnixTime>,
    pub leaver_enforced_at: Option<UnixTime>,
    /// The feed suspended the identity when the person left (so a re-hire reinstates it).
    pub suspended_identity: bool,
    pub details: Option<HrDetails>,
}

/// The person-role assignments one stretch of an HR assignment gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrRoleLink {
    pub assignment_id: String,
    pub starts_at: UnixTime,
    pub position_id: String,
    pub user_uuid: String,
    pub ends_at: Option<UnixTime>,
    pub person_roleids: Vec<String>,
}

/// An organisation's HR position and the access-control position it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PositionMap {
    pub org_code: String,
    pub hr_position: String,
    pub position_id: String,
    pub approved_by: String,
    pub mapped_by: String,
    pub mapped_at: UnixTime,
}

/// One field HR changed: what the identity holds and what HR says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub current: Option<String>,
    pub proposed: Option<String>,
}

/// Personal details HR changed, waiting for an RA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DetailChangeRequest {
    pub id: String,
    pub event_id: String,
    pub org_code: String,
    pub person_id: String,
    pub user_uuid: String,
    pub changes: Vec<FieldChange>,
    /// A change to core identity (name, date of birth): an RA must see evidence.
    pub core: bool,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub received_at: UnixTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<UnixTime>,
    pub note: Option<String>,
}
