//! RA roles that are not national job roles, and temporary access cards (TACs).
//!
//! - **RA role grants** (`../shared/reference/nhs-processes.md` §1): Advanced RA Agent, ID
//!   Checker and Local Smartcard Administrator are granted at an organisation by one of its RA
//!   Managers (only they assign RA roles, rule 13), never to themselves (rule 15), with a
//!   reference to the appointment evidence. They count when the holder's selected role is at that
//!   organisation.
//! - **TACs** (§6): a card certificate bound to a person whose identity is verified, for at most
//!   72 hours, logged with the TAC's name, the reason, who issued it and when, and when it came
//!   back. It stops signing in at expiry; recording the return locks it and ends its sessions. The
//!   TAC authenticates the person, so the access it gives is the person's own current positions.

use serde::Deserialize;
use serde_json::json;

use super::answers::{RaRoleEnded, RaRoleGranted, TacIssued, TacReturned};
use super::authority as op;
use super::{AdminError, Caller, RaRole};
use crate::clock::UnixTime;
use crate::domain::provider::Provider;
use crate::model::audit::AuditKind;
use crate::model::identity::{Authenticator, AuthenticatorKind, AuthenticatorStatus, UserStatus};
pub use crate::model::ra::{RaGrant, TacIssue};

/// The longest a TAC may be issued for (rule 48).
pub const TAC_MAX_HOURS: i64 = 72;

/// The RA roles a grant can give, by their API names.
pub fn granted_role(name: &str) -> Option<RaRole> {
    match name {
        "advanced_ra_agent" => Some(RaRole::AdvancedAgent),
        "id_checker" => Some(RaRole::IdChecker),
        "local_smartcard_administrator" => Some(RaRole::LocalSmartcardAdmin),
        _ => None,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRaGrant {
    pub role: String,
    /// Where the appointment is evidenced (minutes, letter), as the policy asks.
    #[serde(default)]
    pub evidence: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTac {
    /// PEM of the TAC's card certificate.
    pub certificate_pem: String,
    /// The TAC's name as printed on it (e.g. "TAC 0042").
    pub tac_name: String,
    pub reason: String,
    /// How long it works, 1 to 72 hours.
    pub hours: i64,
    /// Which of the person's current positions (their `person_roleid`s) the TAC may use. None
    /// by default: a TAC carries no positions until an RA chooses (policy 002 section 6.3).
    #[serde(default)]
    pub person_roleids: Vec<String>,
}

impl Provider {
    /// RA Manager: grants an RA role at the caller's organisation.
    pub async fn admin_grant_ra_role(
        &self,
        caller: &Caller,
        uuid: &str,
        g: NewRaGrant,
    ) -> Result<RaRoleGranted, AdminError> {
        self.act_on_person(caller, &op::GRANT_RA_ROLE, uuid).await?;
        if granted_role(&g.role).is_none() {
            return Err(AdminError::Invalid(
                "role must be advanced_ra_agent, id_checker or local_smartcard_administrator"
                    .into(),
            ));
        }
        self.active_identity(uuid).await?;
        let grant = RaGrant {
            id: uuid::Uuid::new_v4().to_string(),
            user_uuid: uuid.into(),
            org_code: caller.org_code.clone(),
            role: g.role,
            evidence: g.evidence.filter(|e| !e.trim().is_empty()),
            granted_by: caller.uuid.clone(),
            granted_at: self.now(),
            ended_at: None,
        };
        self.db.insert_ra_grant(&grant).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminRaRoleGranted,
            json!({ "uuid": uuid, "grant": grant.id, "role": grant.role, "org_code": grant.org_code, "evidence": grant.evidence }),
        )
        .await?;
        Ok(RaRoleGranted {
            id: grant.id,
            uuid: uuid.to_string(),
            role: grant.role,
            org_code: grant.org_code,
        })
    }

    /// RA Manager: ends an RA role grant of their organisation.
    pub async fn admin_end_ra_role(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<RaRoleEnded, AdminError> {
        self.authorise(caller, &op::END_RA_ROLE)?;
        let grant = self
            .db
            .ra_grant(id)
            .await?
            .filter(|g| g.org_code == caller.org_code)
            .ok_or_else(|| {
                AdminError::NotFound(format!("no RA role grant {id} at {}", caller.org_code))
            })?;
        self.act_on_person(caller, &op::END_RA_ROLE, &grant.user_uuid)
            .await?;
        if !self.db.end_ra_grant(id, &caller.uuid, self.now()).await? {
            return Err(AdminError::Conflict("this grant has ended already".into()));
        }
        self.admin_audit(
            caller,
            AuditKind::AdminRaRoleEnded,
            json!({ "uuid": grant.user_uuid, "grant": id, "role": grant.role }),
        )
        .await?;
        Ok(RaRoleEnded {
            id: id.to_string(),
            ended: true,
        })
    }

    /// The RA roles a user's grants give at an organisation.
    pub(crate) async fn granted_ra_roles(
        &self,
        uuid: &str,
        org_code: &str,
    ) -> Result<Vec<RaRole>, AdminError> {
        Ok(self
            .db
            .current_ra_grants(uuid)
            .await?
            .iter()
            .filter(|g| g.org_code == org_code)
            .filter_map(|g| granted_role(&g.role))
            .collect())
    }

    /// Issues a temporary access card to a verified, active identity.
    pub async fn admin_issue_tac(
        &self,
        caller: &Caller,
        uuid: &str,
        t: NewTac,
    ) -> Result<TacIssued, AdminError> {
        self.act_on_person(caller, &op::ISSUE_TAC, uuid).await?;
        let user = self.active_identity(uuid).await?;
        if user.id_assurance_level < 1 {
            return Err(AdminError::Conflict(
                "a TAC is issued only to someone whose identity has been verified".into(),
            ));
        }
        if self.db.photo(uuid).await?.is_none() {
            return Err(AdminError::Conflict(
                "record the person's photograph first: the TAC likeness check compares the person with it (policy 002 section 6.3.2)".into(),
            ));
        }
        if !(1..=TAC_MAX_HOURS).contains(&t.hours) {
            return Err(AdminError::Invalid(format!(
                "hours must be between 1 and {TAC_MAX_HOURS}"
            )));
        }
        if t.tac_name.trim().is_empty() || t.reason.trim().is_empty() {
            return Err(AdminError::Invalid(
                "tac_name and reason are required".into(),
            ));
        }
        let now = self.now();
        self.no_working_card(uuid, now).await?;
        let current = crate::domain::rbac::current_roles(&self.db, uuid, now).await?;
        if let Some(unknown) = t
            .person_roleids
            .iter()
            .find(|id| !current.iter().any(|r| &r.person_roleid == *id))
        {
            return Err(AdminError::Invalid(format!(
                "person_roleids: {unknown} is not one of the person's current positions"
            )));
        }
        let (_, card) = self.unbound_certificate(&t.certificate_pem).await?;
        let expires_at = now + t.hours * 3600;
        let authenticator = Authenticator {
            id: uuid::Uuid::new_v4().to_string(),
            user_uuid: uuid.into(),
            kind: AuthenticatorKind::Tac,
            cert_issuer: Some(card.issuer),
            cert_serial: Some(card.serial),
            status: AuthenticatorStatus::Active,
            created_at: now,
            last_used_at: None,
            expires_at: Some(expires_at),
        };
        let issue = TacIssue {
            id: uuid::Uuid::new_v4().to_string(),
            authenticator_id: authenticator.id.clone(),
            user_uuid: uuid.into(),
            tac_name: t.tac_name.trim().into(),
            reason: t.reason.trim().into(),
            issued_by: caller.uuid.clone(),
            issued_at: now,
            expires_at,
            returned_at: None,
            returned_to: None,
            person_roleids: t.person_roleids,
        };
        self.db.insert_tac(&authenticator, &issue).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminTacIssued,
            json!({ "uuid": uuid, "tac": issue.id, "tac_name": issue.tac_name, "reason": issue.reason, "expires_at": expires_at, "person_roleids": issue.person_roleids }),
        )
        .await?;
        Ok(TacIssued {
            id: issue.id,
            authenticator_id: authenticator.id,
            uuid: uuid.to_string(),
            tac_name: issue.tac_name,
            expires_at,
        })
    }

    /// Records a TAC's return: the card is locked and the sessions it opened end.
    pub async fn admin_return_tac(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<TacReturned, AdminError> {
        self.authorise(caller, &op::RETURN_TAC)?;
        let issue = self
            .db
            .tac_issue(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no TAC issue {id}")))?;
        // Taking a TAC back only lowers access: any RA of the person's organisation may.
        self.read_person(caller, &op::RETURN_TAC, &issue.user_uuid)
            .await?;
        let now = self.now();
        if !self.db.return_tac(&issue, &caller.uuid, now).await? {
            return Err(AdminError::Conflict(
                "this TAC has been returned already".into(),
            ));
        }
        for sid in self
            .db
            .open_sessions_of_authenticator(&issue.authenticator_id)
            .await?
        {
            self.end_session(&sid, "tac_returned").await?;
        }
        self.admin_audit(
            caller,
            AuditKind::AdminTacReturned,
            json!({ "uuid": issue.user_uuid, "tac": id, "tac_name": issue.tac_name }),
        )
        .await?;
        Ok(TacReturned {
            id: id.to_string(),
            returned_at: now,
        })
    }

    /// A TAC stands in for a card that is not there: refused while the person holds a working
    /// smartcard (revoke it, reported lost or damaged, first) or another working TAC (policy:
    /// one at a time, so each is accounted for).
    async fn no_working_card(&self, uuid: &str, now: UnixTime) -> Result<(), AdminError> {
        let working = self.db.authenticators_of(uuid).await?;
        let working: Vec<_> = working.iter().filter(|a| a.is_usable(now)).collect();
        if working
            .iter()
            .any(|a| a.kind == AuthenticatorKind::Smartcard)
        {
            return Err(AdminError::Conflict(
                "the person holds an active smartcard: revoke it (lost, stolen or damaged) before issuing a TAC".into(),
            ));
        }
        if working.iter().any(|a| a.kind == AuthenticatorKind::Tac) {
            return Err(AdminError::Conflict(
                "the person already holds an active TAC: record its return first".into(),
            ));
        }
        Ok(())
    }

    /// The identity, if it exists and is active (404 / 409 otherwise).
    pub(crate) async fn active_identity(
        &self,
        uuid: &str,
    ) -> Result<crate::model::identity::User, AdminError> {
        let user = self
            .db
            .user(uuid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no Care Identity {uuid}")))?;
        if user.status != UserStatus::Active {
            return Err(AdminError::Conflict(format!(
                "Care Identity {uuid} is {}",
                user.status.as_str()
            )));
        }
        Ok(user)
    }
}
