//! Who may act on whom, and where: the RA permission table (`docs/ra-permissions.md` is rendered
//! from [`OPERATIONS`] by a test, so the document and the checks cannot drift).
//!
//! Three rules on top of "does the caller's RA role allow the action" ([`Permission`]):
//! - **Organisation.** RA authority is held at the organisation of the caller's selected role
//!   and applies there only (nhs-processes §1 rule 1, derived): positions must be that
//!   organisation's, and identity-level actions need the person to be affiliated with it (a
//!   live assignment or RA grant there, or registered there).
//! - **Hierarchy on the target.** Acting on someone who holds RA power (an RA job role, the
//!   sponsor activity B1300, or an RA grant) needs the authority to grant that power: an RA
//!   Manager of every organisation where they hold it (rule 13); an R5072 holder only by another.
//!   Giving or ending a position that carries RA power needs the same.
//! - **Separation of duties.** Nobody acts on their own identity or access (§2).

use std::collections::BTreeSet;

use super::{AdminError, Caller, Permission, RaRole, RA_JOB_ROLES};
use crate::domain::provider::Provider;
use crate::domain::rbac::{Position, Profile};
use crate::model::audit::AuditKind;
use crate::model::rbac::within;

/// The activity that makes its holder a sponsor ("Approve RA Requests").
pub const SPONSOR_ACTIVITY: &str = "B1300";
/// The root RA Manager job role: only its holders act on its holders.
pub const ROOT_RA_JOB_ROLE: &str = "R5072";

/// Whether holding this access profile makes someone RA staff or a sponsor.
pub fn carries_ra_power(profile: &Profile) -> bool {
    RA_JOB_ROLES.contains(&profile.job_role.as_str())
        || profile.activities.iter().any(|a| a == SPONSOR_ACTIVITY)
}

/// What a target must be for an operation, beyond the caller's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any identity, basic fields only (finding a person who moves in from elsewhere).
    National,
    /// The whole register's reports and audit trail (not yet narrowed to an organisation).
    Register,
    /// A person affiliated with the caller's organisation (reading); personal details only for
    /// roles with [`Permission::ViewPersonalDetails`].
    Affiliated,
    /// Another person affiliated with the caller's organisation, under the hierarchy rule.
    Person,
    /// A position of the caller's organisation for another person, under the hierarchy rule;
    /// positions carrying RA power need [`Permission::AssignRaRoles`].
    Position,
    /// Something of the caller's own organisation (a new identity, a position, a request).
    OwnOrganisation,
}

impl Target {
    pub fn describe(self) -> &'static str {
        match self {
            Target::National => "any identity; basic fields only",
            Target::Register => "the whole register (not yet narrowed to the caller's organisation)",
            Target::Affiliated => "a person affiliated with the caller's organisation; personal details only to roles that may view them",
            Target::Person => "another person affiliated with the caller's organisation; RA staff and sponsors only by an RA Manager of each organisation where they hold that power (R5072 holders only by R5072)",
            Target::Position => "a position of the caller's organisation, for another person; positions carrying RA power (R5072/R5080/R5090, B1300) only by an RA Manager; RA staff as for a person",
            Target::OwnOrganisation => "the caller's own organisation",
        }
    }
}

/// One admin operation: what it needs and what it writes to the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub name: &'static str,
    pub route: &'static str,
    pub permission: Permission,
    pub target: Target,
    /// Audit event kinds written on success (empty: a read).
    pub audit: &'static [AuditKind],
}

macro_rules! operations {
    ($($id:ident = $name:literal, $route:literal, $perm:ident, $target:ident, [$($audit:ident),*];)*) => {
        $(pub const $id: Operation = Operation {
            name: $name,
            route: $route,
            permission: Permission::$perm,
            target: Target::$target,
            audit: &[$(AuditKind::$audit),*],
        };)*
        /// Every admin operation, in the order of the permission table.
        pub const OPERATIONS: &[Operation] = &[$($id),*];
    };
}

operations! {
    SEARCH = "find identities", "GET /identities?q=", SearchIdentities, National, [];
    SHOW = "view an identity", "GET /identities/{uuid}", SearchIdentities, Affiliated, [];
    CREATE_IDENTITY = "register an identity", "POST /identities", CreateIdentity, OwnOrganisation, [AdminIdentityCreated];
    UPDATE_DETAILS = "change personal details", "PATCH /identities/{uuid}", CreateIdentity, Person, [AdminIdentityUpdated];
    VERIFY = "record an identity check", "POST /identities/{uuid}/verify", VerifyIdentity, Person, [AdminIdentityVerified];
    SET_STATUS = "suspend, reinstate or close", "POST /identities/{uuid}/{suspend,reinstate,close}", ChangeStatus, Person, [AdminIdentityStatus];
    BIND_SMARTCARD = "bind a smartcard", "POST /identities/{uuid}/smartcards", ManageSmartcards, Person, [AdminSmartcardBound];
    LIST_AUTHENTICATORS = "list authenticators", "GET /identities/{uuid}/authenticators", SearchIdentities, Affiliated, [];
    REVOKE_AUTHENTICATOR = "revoke an authenticator", "POST /identities/{uuid}/authenticators/{id}/revoke", ManageAuthenticators, Person, [AdminSmartcardRevoked, AdminAuthenticatorRevoked];
    SUSPEND_AUTHENTICATOR = "suspend a card or key", "POST /identities/{uuid}/authenticators/{id}/suspend", ManageAuthenticators, Person, [AdminAuthenticatorSuspended];
    UNLOCK_AUTHENTICATOR = "unlock a suspended card or key", "POST /identities/{uuid}/authenticators/{id}/unlock", ManageAuthenticators, Person, [AdminAuthenticatorUnlocked];
    INVITE = "invite a security key or passkey", "POST /identities/{uuid}/authenticator-invitations", ManageAuthenticators, Person, [AdminAuthenticatorInvited];
    ISSUE_TAC = "issue a temporary access card", "POST /identities/{uuid}/tacs", IssueTac, Person, [AdminTacIssued];
    RETURN_TAC = "record a TAC's return", "POST /tacs/{id}/return", IssueTac, Affiliated, [AdminTacReturned];
    GRANT_RA_ROLE = "grant an RA role", "POST /identities/{uuid}/ra-roles", AssignRaRoles, Person, [AdminRaRoleGranted];
    END_RA_ROLE = "end an RA role", "POST /ra-roles/{id}/end", AssignRaRoles, Person, [AdminRaRoleEnded];
    ASSIGN = "assign a position", "POST /identities/{uuid}/assignments", AssignPositions, Position, [AdminAssignmentCreated];
    END_ASSIGNMENT = "end an assignment", "POST /assignments/{person_roleid}/end", AssignPositions, Position, [AdminAssignmentEnded];
    CREATE_POSITION = "create a position", "POST /positions", CreatePositions, OwnOrganisation, [AdminPositionCreated];
    REQUEST_ACCESS = "raise an access request", "POST /access-requests", RequestAccess, OwnOrganisation, [AdminAccessRequested];
    LIST_REQUESTS = "list access requests", "GET /access-requests", RequestAccess, OwnOrganisation, [];
    DECIDE_REQUEST = "approve or refuse a request", "POST /access-requests/{id}/{approve,reject}", ApproveAccess, OwnOrganisation, [AdminAccessApproved, AdminAccessRejected];
    FULFIL_REQUEST = "carry out an approved request", "POST /access-requests/{id}/fulfil", AssignPositions, Position, [AdminAccessFulfilled, AdminAssignmentCreated];
    LIST_POSITIONS = "list positions", "GET /positions", RequestAccess, OwnOrganisation, [];
    CORRECT_POSITION = "correct a position", "PATCH /positions/{id}", CreatePositions, OwnOrganisation, [AdminPositionUpdated];
    RETIRE_POSITION = "retire a position", "POST /positions/{id}/retire", CreatePositions, OwnOrganisation, [AdminPositionRetired];
    RECORD_PHOTO = "record a photograph", "POST /identities/{uuid}/photo", CreateIdentity, Person, [AdminPhotoRecorded];
    SHOW_PHOTO = "view a photograph", "GET /identities/{uuid}/photo", SearchIdentities, Affiliated, [];
    LIST_TACS = "list a person's TACs", "GET /identities/{uuid}/tacs", SearchIdentities, Affiliated, [];
    LIST_HR_MAPS = "list HR position mappings", "GET /hr/position-maps", RequestAccess, OwnOrganisation, [];
    MAP_HR_POSITION = "map an HR position to a position", "PUT /hr/position-maps", CreatePositions, OwnOrganisation, [AdminHrPositionMapped];
    UNMAP_HR_POSITION = "remove an HR position mapping", "DELETE /hr/position-maps/{org_code}/{hr_position}", CreatePositions, OwnOrganisation, [AdminHrPositionUnmapped];
    HR_ATTENTION = "list HR events needing attention", "GET /hr/attention", AssignPositions, OwnOrganisation, [];
    LIST_DETAIL_CHANGES = "list HR personal-detail changes", "GET /hr/detail-changes", CreateIdentity, OwnOrganisation, [];
    DECIDE_DETAIL_CHANGE = "approve or reject an HR detail change", "POST /hr/detail-changes/{id}/{approve,reject}", CreateIdentity, Person, [AdminHrDetailsDecided, AdminIdentityUpdated];
    REPORTS = "run a report", "GET /reports/{name}", ReadAudit, Register, [];
    AUDIT = "read the audit trail", "GET /audit", ReadAudit, Register, [];
}

/// Where a person stands, as the rules above need it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Organisations with a live assignment or RA grant, or that registered the identity.
    pub affiliation: BTreeSet<String>,
    /// Organisations where the person holds RA power (live assignment or grant).
    pub ra_orgs: BTreeSet<String>,
    /// Holds R5072.
    pub root: bool,
}

impl Standing {
    /// An identity with no organisation at all (registered before careid recorded one, and no
    /// position yet) is affiliated with every organisation; it has no access to protect.
    pub fn affiliated_with(&self, org: &str) -> bool {
        self.affiliation.is_empty() || self.affiliation.iter().any(|a| within(a, org))
    }
}

fn forbidden(m: impl Into<String>) -> AdminError {
    AdminError::Forbidden(m.into())
}

impl Provider {
    /// Refuses a caller whose role does not allow `op`.
    pub(crate) fn authorise(&self, caller: &Caller, op: &Operation) -> Result<(), AdminError> {
        if op.permission.allowed(&caller.ra_roles) {
            Ok(())
        } else {
            Err(forbidden(format!(
                "your selected role does not allow this ({}: {:?})",
                op.name, op.permission
            )))
        }
    }

    /// The organisations a person is affiliated with and holds RA power at.
    pub(crate) async fn standing(&self, uuid: &str) -> Result<Standing, AdminError> {
        let mut st = Standing::default();
        let live = self.db.live_assignments(uuid, self.now()).await?;
        let ids: Vec<String> = live.iter().map(|a| a.position_id.clone()).collect();
        let positions = self.db.positions(&ids).await?;
        for a in &live {
            st.affiliation.insert(a.org_code.clone());
            let profile = positions
                .get(&a.position_id)
                .and_then(|p| p.profiles.get(a.profile_index as usize));
            if let Some(p) = profile.filter(|p| carries_ra_power(p)) {
                st.ra_orgs.insert(a.org_code.clone());
                st.root |= p.job_role == ROOT_RA_JOB_ROLE;
            }
        }
        for g in self.db.current_ra_grants(uuid).await? {
            st.affiliation.insert(g.org_code.clone());
            st.ra_orgs.insert(g.org_code);
        }
        if let Some(org) = self.db.registered_org(uuid).await? {
            st.affiliation.insert(org);
        }
        Ok(st)
    }

    /// The hierarchy rule: RA staff and sponsors are acted on only by an RA Manager of every
    /// organisation where they hold that power.
    fn may_act_on_ra_staff(caller: &Caller, st: &Standing) -> Result<(), AdminError> {
        if st.ra_orgs.is_empty() {
            return Ok(());
        }
        let manager = Permission::AssignRaRoles.allowed(&caller.ra_roles);
        if !manager || st.ra_orgs.iter().any(|o| !within(o, &caller.org_code)) {
            return Err(forbidden(format!(
                "this person holds an RA role or sponsor power at {}: only an RA Manager of that organisation may act on them",
                st.ra_orgs.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if st.root && caller.job_role != ROOT_RA_JOB_ROLE {
            return Err(forbidden(
                "this person is a root RA Manager (R5072): only another may act on them",
            ));
        }
        Ok(())
    }

    /// Permission, separation of duties, organisation and hierarchy for an identity-level
    /// action on `uuid` (404 when there is no such identity).
    pub(crate) async fn act_on_person(
        &self,
        caller: &Caller,
        op: &Operation,
        uuid: &str,
    ) -> Result<Standing, AdminError> {
        self.authorise(caller, op)?;
        Self::not_self(caller, uuid)?;
        let st = self.read_person(caller, op, uuid).await?;
        Self::may_act_on_ra_staff(caller, &st)?;
        Ok(st)
    }

    /// Permission and organisation for reading (or a protective act on) `uuid`.
    pub(crate) async fn read_person(
        &self,
        caller: &Caller,
        op: &Operation,
        uuid: &str,
    ) -> Result<Standing, AdminError> {
        self.authorise(caller, op)?;
        if self.db.user(uuid).await?.is_none() {
            return Err(AdminError::NotFound(format!("no Care Identity {uuid}")));
        }
        let st = self.standing(uuid).await?;
        if !st.affiliated_with(&caller.org_code) {
            return Err(forbidden(format!(
                "Care Identity {uuid} is not affiliated with {}: RA staff act for their own organisation",
                caller.org_code
            )));
        }
        Ok(st)
    }

    /// Permission, organisation and hierarchy for giving or ending `position` for `uuid`.
    pub(crate) async fn act_on_position(
        &self,
        caller: &Caller,
        op: &Operation,
        uuid: &str,
        position: &Position,
    ) -> Result<(), AdminError> {
        self.authorise(caller, op)?;
        Self::not_self(caller, uuid)?;
        Self::own_organisation(caller, position)?;
        if position.profiles.iter().any(carries_ra_power)
            && !Permission::AssignRaRoles.allowed(&caller.ra_roles)
        {
            return Err(forbidden(
                "this position carries RA or sponsor power: only an RA Manager gives or ends it",
            ));
        }
        if self.db.user(uuid).await?.is_none() {
            return Err(AdminError::NotFound(format!("no Care Identity {uuid}")));
        }
        Self::may_act_on_ra_staff(caller, &self.standing(uuid).await?)
    }

    /// A position (and every profile in it) must be at the caller's organisation or its sites.
    pub(crate) fn own_organisation(caller: &Caller, position: &Position) -> Result<(), AdminError> {
        let elsewhere = std::iter::once(&position.org_code)
            .chain(position.profiles.iter().map(|p| &p.org_code))
            .find(|o| !within(o, &caller.org_code));
        match elsewhere {
            Some(org) => Err(forbidden(format!(
                "the position is at {org}: your selected role's RA authority is at {}",
                caller.org_code
            ))),
            None => Ok(()),
        }
    }
}

impl Operation {
    /// The RA roles allowed to call it, by their policy names.
    pub fn who(&self) -> Vec<&'static str> {
        RaRole::ALL
            .into_iter()
            .filter(|r| self.permission.allowed(&[*r]))
            .map(RaRole::name)
            .collect()
    }

    /// The audit event kinds it writes, quoted, or "(a read)".
    pub fn audited_as(&self) -> String {
        if self.audit.is_empty() {
            return "(a read)".to_string();
        }
        let kinds: Vec<String> = self
            .audit
            .iter()
            .map(|k| format!("`{}`", k.as_str()))
            .collect();
        kinds.join(", ")
    }
}

/// The permission table as Markdown, as `docs/ra-permissions.md` shows it.
pub fn permission_table() -> String {
    let mut out = String::from("| operation | route (under `/admin/api/v1`) | who | on whom, where | audited as |\n|---|---|---|---|---|\n");
    for op in OPERATIONS {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            op.name,
            op.route,
            op.who().join(", "),
            op.target.describe(),
            op.audited_as()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(org: &str, roles: Vec<RaRole>, job: &str) -> Caller {
        Caller {
            uuid: "900000000001".into(),
            person_roleid: "pr".into(),
            org_code: org.into(),
            ra_roles: roles,
            job_role: job.into(),
            client_id: "c".into(),
            jti: "j".into(),
            auth_time: 0,
        }
    }

    fn standing(ra: &[&str], root: bool) -> Standing {
        Standing {
            affiliation: ra.iter().map(|s| s.to_string()).collect(),
            ra_orgs: ra.iter().map(|s| s.to_string()).collect(),
            root,
        }
    }

    #[test]
    fn ra_staff_are_acted_on_only_by_a_manager_of_their_organisation() {
        let agent = caller("RZ9", vec![RaRole::Agent], "R5090");
        let advanced = caller("RZ9", vec![RaRole::AdvancedAgent], "R0001");
        let manager = caller("RZ9", vec![RaRole::Manager], "R5080");
        let elsewhere = caller("RZ8", vec![RaRole::Manager], "R5080");
        let plain = Standing::default();
        assert!(Provider::may_act_on_ra_staff(&agent, &plain).is_ok());
        let staff = standing(&["RZ9"], false);
        assert!(Provider::may_act_on_ra_staff(&agent, &staff).is_err());
        assert!(Provider::may_act_on_ra_staff(&advanced, &staff).is_err());
        assert!(Provider::may_act_on_ra_staff(&manager, &staff).is_ok());
        assert!(Provider::may_act_on_ra_staff(&elsewhere, &staff).is_err());
        let both = standing(&["RZ8", "RZ9"], false);
        assert!(
            Provider::may_act_on_ra_staff(&manager, &both).is_err(),
            "RA power at another organisation is beyond this Manager"
        );
        let root = standing(&["RZ9"], true);
        assert!(Provider::may_act_on_ra_staff(&manager, &root).is_err());
        let root_manager = caller("RZ9", vec![RaRole::Manager], "R5072");
        assert!(Provider::may_act_on_ra_staff(&root_manager, &root).is_ok());
    }

    #[test]
    fn positions_must_be_wholly_at_the_callers_organisation() {
        let manager = caller("RZ9", vec![RaRole::Manager], "R5080");
        let profile = |org: &str, job: &str, acts: &[&str]| Profile {
            org_code: org.into(),
            job_role: job.into(),
            activities: acts.iter().map(|s| s.to_string()).collect(),
            workgroups: vec![],
            areas_of_work: vec![],
        };
        let mut p = Position {
            id: "p".into(),
            org_code: "RZ9".into(),
            name: "n".into(),
            esr_position: None,
            profiles: vec![profile("RZ9", "R8000", &[])],
        };
        assert!(Provider::own_organisation(&manager, &p).is_ok());
        p.profiles.push(profile("RZ9EX", "R8000", &[]));
        assert!(
            Provider::own_organisation(&manager, &p).is_ok(),
            "a site of RZ9"
        );
        p.profiles.push(profile("RZ8", "R8000", &[]));
        assert!(Provider::own_organisation(&manager, &p).is_err());
        p.org_code = "RZ8".into();
        p.profiles.truncate(0);
        assert!(Provider::own_organisation(&manager, &p).is_err());
        assert!(carries_ra_power(&profile("RZ9", "R5090", &[])));
        assert!(carries_ra_power(&profile("RZ9", "R8000", &["B1300"])));
        assert!(!carries_ra_power(&profile("RZ9", "R8000", &["B0360"])));
    }

    #[test]
    fn an_identity_without_any_organisation_is_everyones_to_register() {
        assert!(Standing::default().affiliated_with("RZ9"));
        assert!(standing(&["RZ9EX"], false).affiliated_with("RZ9"));
        assert!(!standing(&["RZ9"], false).affiliated_with("RZ9EX"));
        assert!(!within("RZ99", "RZ9") && !within("RZ8EX", "RZ9"));
        assert!(!standing(&["RZ8"], false).affiliated_with("RZ9"));
    }

    #[test]
    fn the_permission_document_is_the_table_the_code_checks() {
        let doc = include_str!("../../../docs/ra-permissions.md");
        let table = permission_table();
        assert!(
            doc.contains(&table),
            "docs/ra-permissions.md is out of date; its table must read:\n\n{table}"
        );
    }
}
