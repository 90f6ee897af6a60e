//! The registration-authority (RA) rules behind `/admin/api/v1`: who the caller is (an active
//! careid access token from an AAL3 sign-in, with a selected role), which RA role that selected
//! role carries, what each RA role may do (`../shared/reference/nhs-processes.md` §1, CIM
//! permission table), and separation of duties (§2: nobody raises their own access). Each
//! operation is audited with the caller as actor.

pub mod access_requests;
pub mod answers;
pub mod authority;
pub mod grants_and_tacs;
pub mod hr;
mod identities;
pub mod photos;
pub mod positions;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::UnixTime;
use crate::domain::client::ADMIN_SCOPE;
use crate::domain::provider::{Provider, ServiceError};
use crate::domain::rbac::{self, RbacError};
use crate::domain::registry::{self, RegistryError};
use crate::domain::secrets;
use crate::model::identity::{is_valid_uuid, User, UserStatus};

use crate::model::audit::AuditFilter;
use crate::model::audit::AuditKind;
use crate::model::identity::{AuthenticatorKind, AuthenticatorStatus};
pub use crate::model::ra::{RaGrant, TacIssue};
use crate::store::AuditVerification;
use answers::{Assigned, AssignmentEnded, AuditEventView, AuditTrail, AuthenticatorRevoked};
use answers::{ChainCheck, PositionCreated, Report, SmartcardBound, TacList};
use authority as op;
pub use authority::{carries_ra_power, Operation, Standing, Target, OPERATIONS};
pub use grants_and_tacs::{granted_role, NewRaGrant, NewTac, TAC_MAX_HOURS};
pub use identities::{DetailsChange, Document, NewIdentity, Verification};

/// RA roles: from the national job role of the caller's selected role (Manager, Agent), its
/// activities (Sponsor), or an RA Manager's grant at that role's organisation (the others; see
/// `domain/ra/grants_and_tacs.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RaRole {
    /// R5080 (and R5072, the root RA Manager).
    Manager,
    /// Granted: everything an RA Manager may do except assigning RA roles.
    AdvancedAgent,
    /// R5090.
    Agent,
    /// Granted: checks identity documents and creates user profiles.
    IdChecker,
    /// Granted: unlocks smartcards and helps renew certificates (card-side); in careid, finds
    /// identities.
    LocalSmartcardAdmin,
    /// Any role carrying activity B1300 "Approve RA Requests".
    Sponsor,
}

impl RaRole {
    pub const ALL: [RaRole; 6] = [
        RaRole::Manager,
        RaRole::AdvancedAgent,
        RaRole::Agent,
        RaRole::IdChecker,
        RaRole::LocalSmartcardAdmin,
        RaRole::Sponsor,
    ];

    /// The role's name as the policy and the CIM guide write it.
    pub fn name(self) -> &'static str {
        match self {
            RaRole::Manager => "RA Manager",
            RaRole::AdvancedAgent => "Advanced RA Agent",
            RaRole::Agent => "RA Agent",
            RaRole::IdChecker => "ID Checker",
            RaRole::LocalSmartcardAdmin => "Local Smartcard Administrator",
            RaRole::Sponsor => "Sponsor",
        }
    }
}

/// National job roles whose assignment makes someone RA staff: only RA Managers assign them.
pub const RA_JOB_ROLES: [&str; 3] = ["R5072", "R5080", "R5090"];

/// What an RA operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    SearchIdentities,
    ViewPersonalDetails,
    CreateIdentity,
    VerifyIdentity,
    ChangeStatus,
    ManageSmartcards,
    ManageAuthenticators,
    IssueTac,
    AssignPositions,
    CreatePositions,
    ReadAudit,
    AssignRaRoles,
    RequestAccess,
    ApproveAccess,
}

impl Permission {
    /// The CIM permission table (`../shared/reference/nhs-processes.md` §1). Sponsors raise and
    /// decide access requests (`domain/ra/access_requests.rs`); assigning stays with RA staff.
    pub fn allowed(self, roles: &[RaRole]) -> bool {
        use RaRole::*;
        let any = |allowed: &[RaRole]| roles.iter().any(|r| allowed.contains(r));
        match self {
            Permission::AssignRaRoles => any(&[Manager]),
            Permission::ApproveAccess => any(&[Sponsor]),
            Permission::RequestAccess => any(&[Manager, AdvancedAgent, Agent, IdChecker, Sponsor]),
            Permission::ReadAudit | Permission::CreatePositions => any(&[Manager, AdvancedAgent]),
            Permission::ChangeStatus
            | Permission::ManageSmartcards
            | Permission::ManageAuthenticators
            | Permission::IssueTac
            | Permission::AssignPositions => any(&[Manager, AdvancedAgent, Agent]),
            Permission::CreateIdentity
            | Permission::VerifyIdentity
            | Permission::ViewPersonalDetails => any(&[Manager, AdvancedAgent, Agent, IdChecker]),
            Permission::SearchIdentities => any(&[
                Manager,
                AdvancedAgent,
                Agent,
                IdChecker,
                LocalSmartcardAdmin,
            ]),
        }
    }
}

/// The authenticated RA caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uuid: String,
    pub person_roleid: String,
    /// The organisation of the selected role: where this caller's RA authority applies.
    pub org_code: String,
    pub ra_roles: Vec<RaRole>,
    /// The national job role of the selected role (R5072 acts on R5072 holders).
    pub job_role: String,
    /// The admin client the access token was issued to, and the token's `jti`: recorded in
    /// every `admin.*` audit event.
    pub client_id: String,
    pub jti: String,
    /// When the person authenticated for this token (the console asks again when it is old).
    pub auth_time: UnixTime,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        AdminError::Internal(e.into())
    }
}

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(s) => s.into(),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<RbacError> for AdminError {
    fn from(e: RbacError) -> Self {
        match e {
            RbacError::Store(s) => s.into(),
            RbacError::NoSuchPosition(p) => AdminError::NotFound(format!("no such position: {p}")),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    pub position_id: String,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    /// Who the assignment is for, when it sets a default end: a contractor's access ends after
    /// 3 months unless the contract's end is given (policy 002 §4.9); access under an
    /// inter-organisation agreement after 12 months (§6.2.2).
    #[serde(default)]
    pub term: Option<AssignmentTerm>,
    /// For a position with the RA Manager job role (R5080, R5072): where the appointment is
    /// evidenced (board minutes, a letter or email from the SRO; policy 002 section 4 and
    /// appendix D). Required for those positions, recorded in the audit trail.
    #[serde(default)]
    pub appointment_evidence: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentTerm {
    Contractor,
    InterOrganisation,
}

impl AssignmentTerm {
    /// The default length of the term, when no end date is given.
    pub fn default_secs(self) -> i64 {
        match self {
            AssignmentTerm::Contractor => 91 * 86400,
            AssignmentTerm::InterOrganisation => 365 * 86400,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPosition {
    pub org_code: String,
    pub name: String,
    pub esr_position: Option<String>,
    pub profiles: Vec<rbac::Profile>,
    /// Who agreed the position (IG / Workforce; nhs-processes §2 rule 14), recorded apart from
    /// the RA who creates it.
    pub approved_by: String,
}

impl Provider {
    /// Authenticates an RA caller from a bearer token: active, issued to an admin client with
    /// the admin scope (a relying party cannot replay its users' tokens here), AAL3 (RA work
    /// needs a smartcard or equivalent), with a selected role that is still current and carries
    /// an RA role.
    pub async fn admin_caller(&self, token: Option<&str>) -> Result<Caller, AdminError> {
        let token = token.ok_or_else(|| {
            AdminError::Unauthenticated("a bearer access token is required".into())
        })?;
        let claims = self
            .active_access_claims(token)
            .await?
            .ok_or_else(|| AdminError::Unauthenticated("the access token is not active".into()))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
        let client_id = text("client_id").to_string();
        let jti = text("jti").to_string();
        let admin_client = self
            .active_client(&client_id)
            .await?
            .is_some_and(|c| c.metadata.careid_admin);
        if !admin_client || !text("scope").split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(AdminError::Forbidden(format!(
                "the admin API accepts only tokens issued to an admin client with the {ADMIN_SCOPE} scope"
            )));
        }
        let uuid = Some(text("sub"))
            .filter(|s| is_valid_uuid(s))
            .ok_or_else(|| AdminError::Forbidden("the token does not belong to a person".into()))?;
        if text("authentication_assurance_level") != "3" {
            return Err(AdminError::Forbidden(
                "RA work needs an AAL3 sign-in".into(),
            ));
        }
        let selected = claims
            .get("selected_roleid")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AdminError::Forbidden(
                    "sign in with a selected role (scope selectedrole) to use the admin API".into(),
                )
            })?;
        let roles = self.token_session_roles(uuid, text("sid")).await?;
        let role = roles
            .into_iter()
            .find(|r| r.person_roleid == selected)
            .ok_or_else(|| {
                AdminError::Forbidden("the selected role is no longer current".into())
            })?;
        let job = role
            .role_code
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut ra_roles = Vec::new();
        if job == "R5080" || job == "R5072" {
            ra_roles.push(RaRole::Manager);
        }
        if job == "R5090" {
            ra_roles.push(RaRole::Agent);
        }
        if role.activity_codes.iter().any(|c| c == "B1300") {
            ra_roles.push(RaRole::Sponsor);
        }
        ra_roles.extend(self.granted_ra_roles(uuid, &role.org_code).await?);
        Ok(Caller {
            uuid: uuid.into(),
            person_roleid: role.person_roleid,
            org_code: role.org_code,
            ra_roles,
            job_role: job,
            client_id,
            jti,
            auth_time: claims.get("auth_time").and_then(Value::as_i64).unwrap_or(0),
        })
    }

    /// A card certificate from PEM that is not bound to anyone yet: its DER and binding.
    pub(crate) async fn unbound_certificate(
        &self,
        pem: &str,
    ) -> Result<(Vec<u8>, crate::domain::smartcard::CardCertificate), AdminError> {
        let der = rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| {
                AdminError::Invalid("certificate_pem holds no PEM certificate".into())
            })?;
        let card = crate::domain::smartcard::binding_of(&der)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        if self
            .db
            .authenticator_by_certificate(&card.issuer, &card.serial)
            .await?
            .is_some()
        {
            return Err(AdminError::Conflict(
                "this certificate is already bound".into(),
            ));
        }
        Ok((der.to_vec(), card))
    }

    /// Separation of duties: nobody acts on their own identity in a way that changes their access.
    pub(crate) fn not_self(caller: &Caller, uuid: &str) -> Result<(), AdminError> {
        if caller.uuid == uuid {
            Err(AdminError::Forbidden(
                "RA staff may not act on their own identity".into(),
            ))
        } else {
            Ok(())
        }
    }

    pub(crate) async fn admin_audit(
        &self,
        caller: &Caller,
        kind: AuditKind,
        detail: Value,
    ) -> Result<(), AdminError> {
        let mut detail = detail;
        detail["ra_role_profile"] = json!(caller.person_roleid);
        detail["org_code_acting"] = json!(caller.org_code);
        detail["jti"] = json!(caller.jti);
        self.audit(
            kind,
            "success",
            Some(&caller.uuid),
            Some(&caller.client_id),
            detail,
        )
        .await?;
        Ok(())
    }

    /// Suspends a card or key for now (misplaced, or locked after wrong PINs): it stops signing
    /// in and the sessions it opened end; [`Self::admin_unlock_authenticator`] restores it.
    pub async fn admin_suspend_authenticator(
        &self,
        caller: &Caller,
        uuid: &str,
        authenticator_id: &str,
    ) -> Result<AuthenticatorRevoked, AdminError> {
        self.act_on_person(caller, &op::SUSPEND_AUTHENTICATOR, uuid)
            .await?;
        let found = self.authenticator_of(uuid, authenticator_id).await?;
        if found.status != AuthenticatorStatus::Active {
            return Err(AdminError::Conflict(format!(
                "only a working card or key is suspended; this one is {}",
                found.status.as_str()
            )));
        }
        self.db
            .set_authenticator_status(authenticator_id, AuthenticatorStatus::Suspended)
            .await?;
        for sid in self
            .db
            .open_sessions_of_authenticator(authenticator_id)
            .await?
        {
            self.end_session(&sid, "authenticator_suspended").await?;
        }
        self.admin_audit(
            caller,
            AuditKind::AdminAuthenticatorSuspended,
            json!({ "uuid": uuid, "authenticator": authenticator_id, "kind": found.kind }),
        )
        .await?;
        Ok(AuthenticatorRevoked {
            id: authenticator_id.to_string(),
            status: AuthenticatorStatus::Suspended,
        })
    }

    /// Unlocks a suspended card or key. A revoked one is never reactivated, and a smartcard is
    /// not unlocked while another works (one card per person).
    pub async fn admin_unlock_authenticator(
        &self,
        caller: &Caller,
        uuid: &str,
        authenticator_id: &str,
    ) -> Result<AuthenticatorRevoked, AdminError> {
        self.act_on_person(caller, &op::UNLOCK_AUTHENTICATOR, uuid)
            .await?;
        let found = self.authenticator_of(uuid, authenticator_id).await?;
        if found.status != AuthenticatorStatus::Suspended {
            return Err(AdminError::Conflict(format!(
                "only a suspended card or key is unlocked; this one is {} (a revoked card is never reactivated)",
                found.status.as_str()
            )));
        }
        let now = self.now();
        if found.kind == AuthenticatorKind::Smartcard
            && self
                .db
                .authenticators_of(uuid)
                .await?
                .iter()
                .any(|a| a.kind == AuthenticatorKind::Smartcard && a.is_usable(now))
        {
            return Err(AdminError::Conflict(
                "another smartcard works for this person: a person has one card".into(),
            ));
        }
        self.db
            .set_authenticator_status(authenticator_id, AuthenticatorStatus::Active)
            .await?;
        self.admin_audit(
            caller,
            AuditKind::AdminAuthenticatorUnlocked,
            json!({ "uuid": uuid, "authenticator": authenticator_id, "kind": found.kind }),
        )
        .await?;
        Ok(AuthenticatorRevoked {
            id: authenticator_id.to_string(),
            status: AuthenticatorStatus::Active,
        })
    }

    async fn authenticator_of(
        &self,
        uuid: &str,
        authenticator_id: &str,
    ) -> Result<crate::model::identity::Authenticator, AdminError> {
        self.db
            .authenticators_of(uuid)
            .await?
            .into_iter()
            .find(|a| a.id == authenticator_id)
            .ok_or_else(|| {
                AdminError::NotFound(format!("no authenticator {authenticator_id} for {uuid}"))
            })
    }

    /// Revokes an authenticator and ends the sessions it opened.
    pub(crate) async fn revoke_authenticator(
        &self,
        authenticator_id: &str,
        why: &str,
    ) -> Result<(), AdminError> {
        self.db
            .set_authenticator_status(authenticator_id, AuthenticatorStatus::Revoked)
            .await?;
        for sid in self
            .db
            .open_sessions_of_authenticator(authenticator_id)
            .await?
        {
            self.end_session(&sid, why).await?;
        }
        Ok(())
    }

    /// Binds a card certificate. One person, one working smartcard (policy 002 section 5): a
    /// replacement is bound after the old card is revoked.
    pub async fn admin_bind_smartcard(
        &self,
        caller: &Caller,
        uuid: &str,
        certificate_pem: &str,
    ) -> Result<SmartcardBound, AdminError> {
        self.act_on_person(caller, &op::BIND_SMARTCARD, uuid)
            .await?;
        let (der, _) = self.unbound_certificate(certificate_pem).await?;
        let now = self.now();
        if let Some(working) = self
            .db
            .authenticators_of(uuid)
            .await?
            .into_iter()
            .find(|a| a.kind == AuthenticatorKind::Smartcard && a.is_usable(now))
        {
            return Err(AdminError::Conflict(format!(
                "{uuid} already has a working smartcard (serial {}): revoke it first (lost, stolen, damaged or replaced); a person has one card",
                working.cert_serial.unwrap_or_default()
            )));
        }
        let a = registry::bind_smartcard(&self.db, uuid, &der, &caller.uuid, self.now()).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminSmartcardBound,
            json!({ "uuid": uuid, "authenticator": a.id }),
        )
        .await?;
        Ok(SmartcardBound {
            id: a.id,
            uuid: uuid.to_string(),
            issuer: a.cert_issuer,
            serial: a.cert_serial,
            status: a.status,
        })
    }

    /// Revokes a bound authenticator (card, security key or passkey); sessions it opened end at once.
    pub async fn admin_revoke_authenticator(
        &self,
        caller: &Caller,
        uuid: &str,
        authenticator_id: &str,
    ) -> Result<AuthenticatorRevoked, AdminError> {
        self.act_on_person(caller, &op::REVOKE_AUTHENTICATOR, uuid)
            .await?;
        let found = self
            .db
            .authenticators_of(uuid)
            .await?
            .into_iter()
            .find(|a| a.id == authenticator_id);
        let Some(found) = found else {
            return Err(AdminError::NotFound(format!(
                "no authenticator {authenticator_id} for {uuid}"
            )));
        };
        self.revoke_authenticator(authenticator_id, "authenticator_revoked")
            .await?;
        self.admin_audit(
            caller,
            if found.kind == AuthenticatorKind::Smartcard {
                AuditKind::AdminSmartcardRevoked
            } else {
                AuditKind::AdminAuthenticatorRevoked
            },
            json!({ "uuid": uuid, "authenticator": authenticator_id, "kind": found.kind }),
        )
        .await?;
        Ok(AuthenticatorRevoked {
            id: authenticator_id.to_string(),
            status: AuthenticatorStatus::Revoked,
        })
    }

    pub async fn admin_assign(
        &self,
        caller: &Caller,
        uuid: &str,
        a: NewAssignment,
    ) -> Result<Assigned, AdminError> {
        self.authorise(caller, &op::ASSIGN)?;
        let position = self
            .db
            .position(&a.position_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no position {}", a.position_id)))?;
        self.act_on_position(caller, &op::ASSIGN, uuid, &position)
            .await?;
        if self.db.position_standing(&position.id).await?.1.is_some() {
            return Err(AdminError::Conflict(format!(
                "position {} is retired: it takes no new assignments",
                position.name
            )));
        }
        let manager_position = position
            .profiles
            .iter()
            .any(|p| p.job_role == "R5080" || p.job_role == authority::ROOT_RA_JOB_ROLE);
        let evidence = a
            .appointment_evidence
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        if manager_position && evidence.is_none() {
            return Err(AdminError::Invalid(
                "an RA Manager position needs appointment_evidence: where the appointment is recorded (board minutes, or a letter or email from the SRO)".into(),
            ));
        }
        let now = self.now();
        let starts_at = a.starts_at.unwrap_or(now);
        let ends_at = a
            .ends_at
            .or_else(|| a.term.map(|t| starts_at + t.default_secs()));
        let ids = rbac::assign_position(
            &self.db,
            uuid,
            &a.position_id,
            starts_at,
            ends_at,
            &caller.uuid,
            now,
        )
        .await?;
        self.admin_audit(
            caller,
            AuditKind::AdminAssignmentCreated,
            json!({ "uuid": uuid, "position_id": a.position_id, "person_roleids": ids, "starts_at": starts_at, "ends_at": ends_at, "term": a.term.map(|t| format!("{t:?}")), "appointment_evidence": evidence }),
        )
        .await?;
        Ok(Assigned {
            person_roleids: ids,
        })
    }

    pub async fn admin_end_assignment(
        &self,
        caller: &Caller,
        person_roleid: &str,
    ) -> Result<AssignmentEnded, AdminError> {
        self.authorise(caller, &op::END_ASSIGNMENT)?;
        let not_current = || AdminError::NotFound(format!("no current assignment {person_roleid}"));
        let assignment = self
            .db
            .assignment(person_roleid)
            .await?
            .ok_or_else(not_current)?;
        let position = self
            .db
            .position(&assignment.position_id)
            .await?
            .ok_or_else(not_current)?;
        // Ending needs what giving needs: the position's organisation, RA power, the person.
        self.act_on_position(
            caller,
            &op::END_ASSIGNMENT,
            &assignment.user_uuid,
            &position,
        )
        .await?;
        if !self.db.end_assignment(person_roleid, self.now()).await? {
            return Err(AdminError::NotFound(format!(
                "no current assignment {person_roleid}"
            )));
        }
        self.admin_audit(
            caller,
            AuditKind::AdminAssignmentEnded,
            json!({ "person_roleid": person_roleid, "uuid": assignment.user_uuid, "position_id": assignment.position_id }),
        )
        .await?;
        Ok(AssignmentEnded {
            person_roleid: person_roleid.to_string(),
            ended_at: self.now(),
        })
    }

    pub async fn admin_create_position(
        &self,
        caller: &Caller,
        p: NewPosition,
    ) -> Result<PositionCreated, AdminError> {
        self.authorise(caller, &op::CREATE_POSITION)?;
        if p.name.trim().is_empty() || p.profiles.is_empty() || p.approved_by.trim().is_empty() {
            return Err(AdminError::Invalid(
                "a position needs a name, at least one access profile and who approved it".into(),
            ));
        }
        self.check_profiles(&p.org_code, &p.profiles).await?;
        if self
            .db
            .position_by_name(&p.org_code, p.name.trim())
            .await?
            .is_some()
        {
            return Err(AdminError::Conflict(
                "the organisation already has a position of that name".into(),
            ));
        }
        let position = rbac::Position {
            id: uuid::Uuid::new_v4().to_string(),
            org_code: p.org_code,
            name: p.name.trim().into(),
            esr_position: p.esr_position,
            profiles: p.profiles,
        };
        Self::own_organisation(caller, &position)?;
        let id = self.db.upsert_position(&position, self.now()).await?;
        self.db
            .set_position_approval(&id, p.approved_by.trim())
            .await?;
        self.admin_audit(caller, AuditKind::AdminPositionCreated, json!({ "position_id": id, "org_code": position.org_code, "name": position.name, "approved_by": p.approved_by })).await?;
        Ok(PositionCreated {
            id,
            org_code: position.org_code,
            name: position.name,
            profiles: position.profiles,
        })
    }

    pub async fn admin_report(
        &self,
        caller: &Caller,
        name: &str,
        period: Option<&str>,
    ) -> Result<Report, AdminError> {
        self.authorise(caller, &op::REPORTS)?;
        super::reports::run(&self.db, name, self.now(), period)
            .await
            .map_err(|e| match e {
                super::reports::ReportError::BadPeriod(m) => AdminError::Invalid(m),
                super::reports::ReportError::Store(s) => s.into(),
            })?
            .ok_or_else(|| {
                AdminError::NotFound(format!(
                    "no report {name}; reports: {}",
                    super::reports::REPORTS.join(", ")
                ))
            })
    }

    /// The audit trail, filtered (newest first, at most 500 events), and on request the result
    /// of re-computing its hash chain.
    pub async fn admin_audit_events(
        &self,
        caller: &Caller,
        mut filter: AuditFilter,
        verify_chain: bool,
    ) -> Result<AuditTrail, AdminError> {
        self.authorise(caller, &op::AUDIT)?;
        for (name, uuid) in [
            ("actor", &filter.actor),
            ("person", &filter.person),
            ("subject", &filter.subject),
        ] {
            if uuid.as_deref().is_some_and(|u| !is_valid_uuid(u)) {
                return Err(AdminError::Invalid(format!(
                    "{name} must be a 12-digit Care Identity UUID"
                )));
            }
        }
        if filter.org_code.as_deref().is_some_and(|o| {
            o.is_empty() || o.len() > 10 || !o.chars().all(|c| c.is_ascii_alphanumeric())
        }) {
            return Err(AdminError::Invalid(
                "org_code must be an ODS code (letters and digits)".into(),
            ));
        }
        if filter.kind_pattern().is_none() {
            return Err(AdminError::Invalid(
                "kind must be an event kind (login.smartcard) or a prefix with * (admin.*)".into(),
            ));
        }
        if filter.before.is_some_and(|b| b < 1) {
            return Err(AdminError::Invalid(
                "before must be a cursor from a previous page's next".into(),
            ));
        }
        filter.limit = filter.limit.clamp(1, 500);
        let found = self.db.audit_events(&filter).await?;
        let next = (found.len() as i64 == filter.limit)
            .then(|| found.last().map(|r| r.id))
            .flatten();
        let events = found
            .into_iter()
            .map(|r| AuditEventView {
                seq: r.seq,
                at: r.event.at,
                kind: r.event.kind,
                outcome: r.event.outcome,
                actor: r.event.actor,
                client_id: r.event.client_id,
                detail: r.event.detail,
            })
            .collect();
        let chain = if verify_chain {
            Some(match self.db.verify_audit_chain().await? {
                AuditVerification::Intact { rows, .. } => ChainCheck {
                    intact: true,
                    rows: Some(rows),
                    broken_at: None,
                    reason: None,
                },
                AuditVerification::Broken { row_id, reason } => ChainCheck {
                    intact: false,
                    rows: None,
                    broken_at: row_id,
                    reason: Some(reason.to_string()),
                },
            })
        } else {
            None
        };
        Ok(AuditTrail {
            events,
            next,
            chain,
        })
    }

    /// A person's TAC issues (RA staff of an organisation the person is affiliated with).
    pub async fn admin_list_tacs(
        &self,
        caller: &Caller,
        uuid: &str,
    ) -> Result<TacList, AdminError> {
        self.read_person(caller, &op::LIST_TACS, uuid).await?;
        let tacs = self.db.tac_issues_of(uuid).await?;
        Ok(TacList {
            uuid: uuid.to_string(),
            tacs,
        })
    }
}

/// What `careid admin bootstrap` needs to make the first RA Manager.
#[derive(Debug)]
pub struct Bootstrap {
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub org_code: String,
    pub org_name: String,
    pub certificate_der: Vec<u8>,
}

/// Creates the first RA Manager — identity, smartcard binding, an "RA Manager" position (R5080
/// with B1300) at the organisation and its assignment — once, on a database with no identities.
/// The certificate's subject UUID (when it has one) becomes the identity's UUID.
pub async fn bootstrap(
    db: &crate::store::Db,
    b: &Bootstrap,
    now: crate::clock::UnixTime,
) -> Result<String, AdminError> {
    if db.count_users().await? > 0 {
        return Err(AdminError::Conflict(
            "bootstrap runs once, on a database with no Care Identities".into(),
        ));
    }
    if b.email.trim().is_empty() {
        return Err(AdminError::Invalid(
            "an RA Manager needs an email address (nhs-processes §1 rule 10)".into(),
        ));
    }
    let card = super::smartcard::binding_of(&b.certificate_der)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let uuid = card
        .subject_uuid
        .clone()
        .unwrap_or_else(|| secrets::random_digits(12));
    let user = User {
        uuid: uuid.clone(),
        title: None,
        given_name: b.given_name.clone(),
        middle_names: None,
        family_name: b.family_name.clone(),
        email: Some(b.email.clone()),
        id_assurance_level: 3,
        status: UserStatus::Active,
    };
    registry::create_user(db, &user, "bootstrap", now).await?;
    registry::bind_smartcard(db, &uuid, &b.certificate_der, "bootstrap", now).await?;
    db.upsert_organisation(&b.org_code, &b.org_name).await?;
    db.upsert_job_role(&rbac::JobRole {
        code: "R5080".into(),
        name: "Registration Authority Manager".into(),
        role_code: Some("S0080:G0450:R5080".into()),
        role_name: Some(
            "\"Admin & Clerical\":\"Management - A & C\":\"Registration Authority Manager\"".into(),
        ),
    })
    .await?;
    db.upsert_activity("B1300", "Approve RA Requests").await?;
    let position = rbac::Position {
        id: uuid::Uuid::new_v4().to_string(),
        org_code: b.org_code.clone(),
        name: "Registration Authority Manager".into(),
        esr_position: None,
        profiles: vec![rbac::Profile {
            org_code: b.org_code.clone(),
            job_role: "R5080".into(),
            activities: vec!["B1300".into()],
            workgroups: vec![],
            areas_of_work: vec![],
        }],
    };
    let position_id = db.upsert_position(&position, now).await?;
    rbac::assign_position(db, &uuid, &position_id, now, None, "bootstrap", now).await?;
    db.append_audit(&crate::store::AuditEvent {
        at: now,
        kind: AuditKind::AdminBootstrap.as_str().into(),
        outcome: "success".into(),
        actor: Some("bootstrap".into()),
        client_id: None,
        detail: json!({ "uuid": uuid, "org_code": b.org_code }),
    })
    .await?;
    Ok(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_follow_the_cim_table() {
        use Permission::*;
        use RaRole::*;
        let who = |p: Permission| -> Vec<RaRole> {
            RaRole::ALL
                .into_iter()
                .filter(|r| p.allowed(&[*r]))
                .collect()
        };
        assert_eq!(who(AssignRaRoles), vec![Manager]);
        assert_eq!(who(CreatePositions), vec![Manager, AdvancedAgent]);
        assert_eq!(who(ReadAudit), vec![Manager, AdvancedAgent]);
        for p in [
            ChangeStatus,
            ManageSmartcards,
            ManageAuthenticators,
            IssueTac,
            AssignPositions,
        ] {
            assert_eq!(who(p), vec![Manager, AdvancedAgent, Agent], "{p:?}");
        }
        for p in [CreateIdentity, VerifyIdentity, ViewPersonalDetails] {
            assert_eq!(
                who(p),
                vec![Manager, AdvancedAgent, Agent, IdChecker],
                "{p:?}"
            );
        }
        assert_eq!(
            who(SearchIdentities),
            vec![
                Manager,
                AdvancedAgent,
                Agent,
                IdChecker,
                LocalSmartcardAdmin
            ]
        );
        assert!(!SearchIdentities.allowed(&[]));
        assert_eq!(who(ApproveAccess), vec![Sponsor]);
        assert_eq!(
            who(RequestAccess),
            vec![Manager, AdvancedAgent, Agent, IdChecker, Sponsor]
        );
    }
}
