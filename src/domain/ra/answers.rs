//! What each RA operation answers: the typed results the admin API sends as JSON and documents
//! in its OpenAPI schema (`ToSchema`). One struct per answer, so a field cannot be renamed in the
//! code without the documented contract changing with it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::UnixTime;
use crate::model::identity::{Authenticator, AuthenticatorKind, AuthenticatorStatus};
use crate::model::identity::{PersonalDetails, User};
use crate::model::ra::TacIssue;
use crate::model::rbac::{Position, Profile, RoleClaim};
use crate::model::webauthn::StoredCredential;

pub use crate::model::access_request::AccessRequest;

/// An identity's basic fields: what any RA role that may find people sees.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentitySummary {
    /// The Care Identity's 12-digit UUID.
    pub uuid: String,
    pub title: Option<String>,
    pub given_name: String,
    pub middle_names: Option<String>,
    pub family_name: String,
    pub email: Option<String>,
    /// GPG45 identity-proofing level, 0 to 3.
    pub id_assurance_level: i64,
    /// `active`, `suspended` or `closed`.
    pub status: String,
}

impl From<&User> for IdentitySummary {
    fn from(u: &User) -> Self {
        IdentitySummary {
            uuid: u.uuid.clone(),
            title: u.title.clone(),
            given_name: u.given_name.clone(),
            middle_names: u.middle_names.clone(),
            family_name: u.family_name.clone(),
            email: u.email.clone(),
            id_assurance_level: u.id_assurance_level,
            status: u.status.as_str().to_string(),
        }
    }
}

/// Identities found by a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    pub identities: Vec<IdentitySummary>,
}

/// A person's record: basic fields, current roles, the last status change, and personal details
/// for roles that may view them (absent otherwise).
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityRecord {
    #[serde(flatten)]
    pub identity: IdentitySummary,
    /// Current positions, as `nhsid_nrbac_roles` entries.
    pub roles: Vec<RoleClaim>,
    /// Professional registration numbers by body (`gmc`, `nmc`, ...).
    pub professional_registrations: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_details: Option<PersonalDetails>,
    pub status_reason: Option<String>,
    pub status_changed_at: Option<UnixTime>,
}

/// An identity just registered or changed, with its personal details.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityWithDetails {
    #[serde(flatten)]
    pub identity: IdentitySummary,
    pub personal_details: PersonalDetails,
}

/// A status change done.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChanged {
    pub uuid: String,
    pub status: String,
}

/// An identity check recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    pub uuid: String,
    pub id_assurance_level: i64,
}

/// One authenticator of a person. Card fields (`issuer`, `serial`, `expires_at`) are sent for
/// smartcards and TACs; WebAuthn fields (`name` to `discoverable`) for security keys, passkeys
/// and platform authenticators.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticatorView {
    pub id: String,
    #[schema(value_type = String, example = "smartcard")]
    pub kind: AuthenticatorKind,
    #[schema(value_type = String, example = "active")]
    pub status: AuthenticatorStatus,
    /// The assurance level a sign-in with it reaches.
    pub aal: i64,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    /// The certificate's issuer DN, as bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// When a TAC stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation_trusted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_eligible: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backed_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
}

impl AuthenticatorView {
    fn common(a: &Authenticator, aal: i64) -> Self {
        AuthenticatorView {
            id: a.id.clone(),
            kind: a.kind,
            status: a.status,
            aal,
            created_at: a.created_at,
            last_used_at: a.last_used_at,
            issuer: None,
            serial: None,
            expires_at: None,
            name: None,
            aaguid: None,
            attestation_format: None,
            attestation_trusted: None,
            transports: None,
            backup_eligible: None,
            backed_up: None,
            discoverable: None,
        }
    }

    /// A smartcard or TAC (AAL3).
    pub fn card(a: &Authenticator) -> Self {
        AuthenticatorView {
            issuer: a.cert_issuer.clone(),
            serial: a.cert_serial.clone(),
            expires_at: a.expires_at,
            ..Self::common(a, 3)
        }
    }

    /// A WebAuthn credential: its public description, never the key material.
    pub fn webauthn(c: &StoredCredential) -> Self {
        AuthenticatorView {
            name: Some(c.name.clone()),
            aaguid: Some(c.aaguid.clone()),
            attestation_format: Some(c.attestation_format.clone()),
            attestation_trusted: Some(c.attestation_trusted),
            transports: Some(c.transports.clone()),
            backup_eligible: Some(c.backup_eligible),
            backed_up: Some(c.backup_state),
            discoverable: Some(c.discoverable),
            ..Self::common(&c.authenticator, c.aal)
        }
    }
}

/// A person's authenticators.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticatorList {
    pub uuid: String,
    pub authenticators: Vec<AuthenticatorView>,
}

/// A smartcard certificate bound to a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmartcardBound {
    pub id: String,
    pub uuid: String,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    #[schema(value_type = String, example = "active")]
    pub status: AuthenticatorStatus,
}

/// An authenticator's new status (revoked, suspended, or active again after an unlock); the
/// sessions it opened have ended unless it is active.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticatorRevoked {
    pub id: String,
    #[schema(value_type = String, example = "revoked")]
    pub status: AuthenticatorStatus,
}

/// A one-time invitation to register a security key or passkey, handed over in person.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationSent {
    pub uuid: String,
    /// Open on the person's device; the page shows the code once.
    pub handover_url: String,
    pub expires_at: UnixTime,
}

/// An organisation's positions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionList {
    pub positions: Vec<PositionView>,
}

/// A position as its organisation keeps it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    #[serde(flatten)]
    pub position: Position,
    /// Who approved the position as it stands (recorded since positions could be corrected).
    pub approved_by: Option<String>,
    /// When it was retired: it takes no new assignments.
    pub retired_at: Option<UnixTime>,
    /// How many people hold it now.
    pub holders: i64,
}

/// A person's TAC issues, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TacList {
    pub uuid: String,
    pub tacs: Vec<TacIssue>,
}

/// A position assigned: one `person_roleid` per access profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assigned {
    pub person_roleids: Vec<String>,
}

/// An assignment ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentEnded {
    pub person_roleid: String,
    pub ended_at: UnixTime,
}

/// A position created.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionCreated {
    pub id: String,
    pub org_code: String,
    pub name: String,
    pub profiles: Vec<Profile>,
}

/// An RA role granted at the caller's organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RaRoleGranted {
    pub id: String,
    pub uuid: String,
    /// `advanced_ra_agent`, `id_checker` or `local_smartcard_administrator`.
    pub role: String,
    pub org_code: String,
}

/// An RA role grant ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct RaRoleEnded {
    pub id: String,
    pub ended: bool,
}

/// A temporary access card issued.
#[derive(Debug, Serialize, ToSchema)]
pub struct TacIssued {
    pub id: String,
    pub authenticator_id: String,
    pub uuid: String,
    pub tac_name: String,
    pub expires_at: UnixTime,
}

/// A TAC's return recorded: the card is locked and its sessions have ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct TacReturned {
    pub id: String,
    pub returned_at: UnixTime,
}

/// Access requests the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRequestList {
    pub requests: Vec<AccessRequest>,
}

/// A sponsor's decision recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessDecided {
    pub id: String,
    /// `approved` or `rejected`.
    pub status: String,
}

/// An approved request carried out.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessFulfilled {
    pub id: String,
    /// `fulfilled`.
    pub status: String,
    pub person_roleids: Vec<String>,
}

/// A report's rows; each report has its own columns (see `docs/ra-permissions.md`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub report: String,
    pub generated_at: UnixTime,
    /// The quarter or year a periodic report covers (`2026-Q3`, `2026`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The report's rows: an array of objects, one per row; `tacs-issued` answers an object
    /// (`issues`, `open`, `overdue`, `issues_per_ra_member`).
    #[schema(value_type = Object)]
    pub rows: serde_json::Value,
}

/// Audit events, newest first, and whether the hash chain over the whole trail is intact.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTrail {
    pub events: Vec<AuditEventView>,
    /// When more events match: pass this as `before` for the next (older) page.
    pub next: Option<i64>,
    /// Present when the check was asked for (it reads the whole trail).
    pub chain: Option<ChainCheck>,
}

/// The result of re-computing the audit trail's hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainCheck {
    pub intact: bool,
    /// Chained rows checked (when intact).
    pub rows: Option<i64>,
    /// The first row that fails, and why (when broken).
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    /// The event's place in the hash chain (none for events from before the chain).
    pub seq: Option<i64>,
    pub at: UnixTime,
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub actor: Option<String>,
    pub client_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// An HR position mapping as recorded, and how many waiting events it sent back to be applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionMapped {
    pub map: crate::model::hr::PositionMap,
    pub events_retried: u64,
}

/// An organisation's HR position mappings.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionMapList {
    pub maps: Vec<crate::model::hr::PositionMap>,
}

/// HR events kept, not applied, with what would let each apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct HrAttentionList {
    pub events: Vec<crate::domain::hr::feed::AttentionRow>,
}

/// Personal-detail changes from HR waiting for an RA.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailChangeList {
    pub changes: Vec<crate::model::hr::DetailChangeRequest>,
}

/// A detail change decided: `approved` or `rejected`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailChangeDecided {
    pub id: String,
    pub state: String,
}
