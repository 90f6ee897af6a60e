//! The RA operations on identities themselves: search, view, create, personal details
//! (checked: date of birth, NI number, work phones), identity verification, and status changes
//! with their reason and time (suspending or closing ends every session and token).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::answers::{IdentityList, IdentityRecord, IdentitySummary, IdentityWithDetails};
use super::answers::{StatusChanged, Verified};
use super::authority as op;
use super::{AdminError, Caller, Permission};
use crate::domain::provider::Provider;
use crate::domain::{rbac, registry, secrets};
use crate::model::audit::AuditKind;
use crate::model::identity::{PersonalDetails, User, UserStatus};

/// A new identity as an RA records it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIdentity {
    pub title: Option<String>,
    pub given_name: String,
    pub middle_names: Option<String>,
    pub family_name: String,
    pub email: Option<String>,
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default)]
    pub ni_number: Option<String>,
    #[serde(default)]
    pub work_phones: Vec<String>,
    /// Why this person is not one of the likely duplicates careid found (recorded in the audit
    /// trail). Without it, a likely duplicate refuses the registration (409, naming them): link
    /// the person to the existing identity instead (policy 002 §6.1).
    #[serde(default)]
    pub not_a_duplicate_because: Option<String>,
}

/// An identity document seen face to face. Only its kind and, optionally, the last four
/// characters of its number are kept (enough to trace it, not to copy it).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// e.g. "passport", "photocard driving licence", "utility bill".
    pub kind: String,
    /// Whether the document is photographic.
    #[serde(default)]
    pub photographic: bool,
    pub reference_last4: Option<String>,
}

/// An RA's record of an identity check (GPG45; nhs-processes §3 rules 17–18).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub level: i64,
    pub documents: Vec<Document>,
}

/// Personal details to change; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailsChange {
    pub title: Option<String>,
    pub given_name: Option<String>,
    pub middle_names: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    /// `YYYY-MM-DD`; `""` removes it.
    #[serde(default)]
    pub date_of_birth: Option<String>,
    /// `""` removes it.
    #[serde(default)]
    pub ni_number: Option<String>,
    /// Replaces the list.
    #[serde(default)]
    pub work_phones: Option<Vec<String>>,
    /// The document seen for a change of given or family name (e.g. "marriage certificate"):
    /// required for one. The person's smartcard shows the old name, so its binding ends with
    /// the change and a new card is printed (policy 002 section 6.1.2).
    #[serde(default)]
    pub name_change_evidence: Option<String>,
    /// Professional registration numbers by body (`gmc`, `gmp`, `gdc`, `gdp`, `nmc`, `gphc`,
    /// `rcn`, `consultant`); replaces the recorded set (`{}` clears it). Released to relying
    /// parties under the `professionalmemberships` scope.
    #[serde(default)]
    pub professional_registrations: Option<std::collections::BTreeMap<String, String>>,
}

/// Registration numbers of known bodies only, each 1 to 16 letters and digits (upper-cased).
fn checked_registrations(
    r: std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, AdminError> {
    use crate::model::identity::{valid_registration_number, PROFESSIONAL_BODIES};
    r.into_iter()
        .filter(|(_, n)| !n.trim().is_empty())
        .map(|(body, n)| {
            let body = body.trim().to_lowercase();
            let n = n.trim().to_uppercase();
            if !PROFESSIONAL_BODIES.contains(&body.as_str()) {
                return Err(AdminError::Invalid(format!(
                    "professional_registrations: {body} is not one of {}",
                    PROFESSIONAL_BODIES.join(", ")
                )));
            }
            if !valid_registration_number(&n) {
                return Err(AdminError::Invalid(format!(
                    "professional_registrations: the {body} number must be 1 to 16 letters and digits"
                )));
            }
            Ok((body, n))
        })
        .collect()
}

/// Checks and normalises personal details: a real past date of birth, an NI number of HMRC's
/// shape, at most five work phone numbers of 7–20 digits, spaces and `+-()`.
fn checked_details(
    d: PersonalDetails,
    now: crate::clock::UnixTime,
) -> Result<PersonalDetails, AdminError> {
    let date_of_birth = d.date_of_birth.filter(|v| !v.trim().is_empty());
    if let Some(dob) = &date_of_birth {
        if !crate::model::identity::valid_date_of_birth(dob.trim(), now) {
            return Err(AdminError::Invalid(
                "date_of_birth must be a past date, YYYY-MM-DD".into(),
            ));
        }
    }
    let ni_number = match d.ni_number.filter(|v| !v.trim().is_empty()) {
        Some(n) => Some(
            crate::model::identity::normalise_ni_number(&n).ok_or_else(|| {
                AdminError::Invalid("ni_number is not a valid National Insurance number".into())
            })?,
        ),
        None => None,
    };
    let phone_ok = |p: &str| {
        (7..=20).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
    };
    let work_phones: Vec<String> = d.work_phones.iter().map(|p| p.trim().to_string()).collect();
    if work_phones.len() > 5 || !work_phones.iter().all(|p| phone_ok(p)) {
        return Err(AdminError::Invalid(
            "work_phones: at most five numbers of 7 to 20 digits, spaces and +-()".into(),
        ));
    }
    Ok(PersonalDetails {
        date_of_birth: date_of_birth.map(|d| d.trim().to_string()),
        ni_number,
        work_phones,
    })
}

impl Provider {
    pub async fn admin_get_identity(
        &self,
        caller: &Caller,
        uuid: &str,
    ) -> Result<IdentityRecord, AdminError> {
        self.read_person(caller, &op::SHOW, uuid).await?;
        let user = self
            .db
            .user(uuid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no Care Identity {uuid}")))?;
        let roles = rbac::current_roles(&self.db, uuid, self.now()).await?;
        let (reason, changed_at) = self.db.status_change(uuid).await?;
        // Date of birth, NI number and phones: only for roles that check identities.
        let personal_details = if Permission::ViewPersonalDetails.allowed(&caller.ra_roles) {
            Some(self.db.personal_details(uuid).await?)
        } else {
            None
        };
        Ok(IdentityRecord {
            identity: IdentitySummary::from(&user),
            professional_registrations: self.db.professional_registrations(uuid).await?,
            roles,
            personal_details,
            status_reason: reason,
            status_changed_at: changed_at,
        })
    }

    /// A person found nationally who is not (yet) affiliated with the caller's organisation: the
    /// basic fields, for associating them with it by giving them a position there (policy 002
    /// section 6.1). None when there is no such person, or they are already affiliated.
    pub async fn admin_association_candidate(
        &self,
        caller: &Caller,
        uuid: &str,
    ) -> Result<Option<IdentitySummary>, AdminError> {
        self.authorise(caller, &op::ASSIGN)?;
        let Some(user) = self.db.user(uuid).await? else {
            return Ok(None);
        };
        if self.standing(uuid).await?.affiliated_with(&caller.org_code) {
            return Ok(None);
        }
        Ok(Some(IdentitySummary::from(&user)))
    }

    pub async fn admin_search(&self, caller: &Caller, q: &str) -> Result<IdentityList, AdminError> {
        self.authorise(caller, &op::SEARCH)?;
        // Wildcards match nothing of their own: the minimum counts what is left.
        let q: String = q
            .chars()
            .filter(|c| !matches!(c, '%' | '_' | '*'))
            .collect();
        if q.trim().chars().count() < 2 {
            return Err(AdminError::Invalid(
                "search with at least two characters (wildcards do not count)".into(),
            ));
        }
        let q = q.trim();
        // A date of birth (YYYY-MM-DD) finds people born that day, for roles that may see it.
        let is_date = q.len() == 10
            && q.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        let found = if is_date {
            if !Permission::ViewPersonalDetails.allowed(&caller.ra_roles) {
                return Err(AdminError::Forbidden(
                    "searching by date of birth needs a role that may see personal details".into(),
                ));
            }
            self.db.users_born_on(q, 50).await?
        } else {
            self.db.search_users(q, 50).await?
        };
        Ok(IdentityList {
            identities: found.iter().map(IdentitySummary::from).collect(),
        })
    }

    /// Identities that may be the person about to be registered: the same NI number, or the
    /// same name with the same (or an unrecorded) date of birth. Basic fields only.
    pub async fn admin_likely_duplicates(
        &self,
        caller: &Caller,
        new: &NewIdentity,
    ) -> Result<Vec<IdentitySummary>, AdminError> {
        self.authorise(caller, &op::CREATE_IDENTITY)?;
        let details = checked_details(
            PersonalDetails {
                date_of_birth: new.date_of_birth.clone(),
                ni_number: new.ni_number.clone(),
                work_phones: new.work_phones.clone(),
            },
            self.now(),
        )?;
        let found = self.likely_duplicates(new, &details).await?;
        Ok(found.iter().map(IdentitySummary::from).collect())
    }

    async fn likely_duplicates(
        &self,
        new: &NewIdentity,
        details: &PersonalDetails,
    ) -> Result<Vec<User>, AdminError> {
        Ok(self
            .db
            .likely_duplicates(
                &new.given_name,
                &new.family_name,
                details.date_of_birth.as_deref(),
                details.ni_number.as_deref(),
            )
            .await?)
    }

    pub async fn admin_create_identity(
        &self,
        caller: &Caller,
        new: NewIdentity,
    ) -> Result<IdentityWithDetails, AdminError> {
        self.authorise(caller, &op::CREATE_IDENTITY)?;
        if new.given_name.trim().is_empty() || new.family_name.trim().is_empty() {
            return Err(AdminError::Invalid(
                "given_name and family_name are required".into(),
            ));
        }
        let now = self.now();
        let details = checked_details(
            PersonalDetails {
                date_of_birth: new.date_of_birth.clone(),
                ni_number: new.ni_number.clone(),
                work_phones: new.work_phones.clone(),
            },
            now,
        )?;
        let duplicates = self.likely_duplicates(&new, &details).await?;
        let override_reason = new
            .not_a_duplicate_because
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if !duplicates.is_empty() && override_reason.is_none() {
            let named: Vec<String> = duplicates
                .iter()
                .map(|u| format!("{} ({} {})", u.uuid, u.given_name, u.family_name))
                .collect();
            return Err(AdminError::Conflict(format!(
                "likely duplicates: {}; link the person to the existing identity, or give not_a_duplicate_because",
                named.join(", ")
            )));
        }
        for _ in 0..5 {
            let uuid = secrets::random_digits(12);
            if self.db.user(&uuid).await?.is_some() {
                continue;
            }
            let user = User {
                uuid: uuid.clone(),
                title: new.title.clone(),
                given_name: new.given_name.trim().into(),
                middle_names: new.middle_names.clone(),
                family_name: new.family_name.trim().into(),
                email: new.email.clone(),
                id_assurance_level: 0,
                status: UserStatus::Active,
            };
            registry::create_user(&self.db, &user, &caller.uuid, now).await?;
            self.db.set_registered_org(&uuid, &caller.org_code).await?;
            self.db.set_registered_by(&uuid, &caller.uuid).await?;
            if details != PersonalDetails::default() {
                self.db.set_personal_details(&uuid, &details).await?;
            }
            self.admin_audit(
                caller,
                AuditKind::AdminIdentityCreated,
                json!({ "uuid": uuid, "registered_org": caller.org_code,
                        "likely_duplicates": duplicates.iter().map(|u| &u.uuid).collect::<Vec<_>>(),
                        "not_a_duplicate_because": override_reason }),
            )
            .await?;
            return Ok(IdentityWithDetails {
                identity: IdentitySummary::from(&user),
                personal_details: details,
            });
        }
        Err(AdminError::Conflict(
            "could not allocate a free UUID".into(),
        ))
    }

    /// Suspends, reinstates or closes an identity. Suspending or closing ends every session and
    /// token through the lifecycle's single revocation path.
    pub async fn admin_set_status(
        &self,
        caller: &Caller,
        uuid: &str,
        status: UserStatus,
        reason: &str,
    ) -> Result<StatusChanged, AdminError> {
        self.act_on_person(caller, &op::SET_STATUS, uuid).await?;
        if reason.trim().is_empty() {
            return Err(AdminError::Invalid("a reason is required".into()));
        }
        let user = self
            .db
            .user(uuid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no Care Identity {uuid}")))?;
        if user.status == UserStatus::Closed {
            return Err(AdminError::Conflict(
                "a closed identity cannot change status".into(),
            ));
        }
        self.db
            .change_user_status(uuid, status, reason.trim(), self.now())
            .await?;
        if status != UserStatus::Active {
            self.revoke_user(uuid, status.as_str()).await?;
        }
        self.admin_audit(
            caller,
            AuditKind::AdminIdentityStatus,
            json!({ "uuid": uuid, "status": status.as_str(), "reason": reason }),
        )
        .await?;
        Ok(StatusChanged {
            uuid: uuid.to_string(),
            status: status.as_str().to_string(),
        })
    }

    /// Records an identity check: the documents seen and the GPG45 level reached. Level 3 needs
    /// three documents, one of them photographic (public CIM guidance).
    pub async fn admin_verify_identity(
        &self,
        caller: &Caller,
        uuid: &str,
        v: Verification,
    ) -> Result<Verified, AdminError> {
        self.act_on_person(caller, &op::VERIFY, uuid).await?;
        if self.config.registration.second_ra_verifies
            && self.db.registered_by(uuid).await?.as_deref() == Some(caller.uuid.as_str())
        {
            return Err(AdminError::Forbidden(
                "a second RA records the identity check of a person you registered (registration.second_ra_verifies)".into(),
            ));
        }
        if !(1..=3).contains(&v.level) {
            return Err(AdminError::Invalid("level must be 1, 2 or 3".into()));
        }
        if v.documents.is_empty() || v.documents.iter().any(|d| d.kind.trim().is_empty()) {
            return Err(AdminError::Invalid("name every document seen".into()));
        }
        if v.level == 3 && (v.documents.len() < 3 || !v.documents.iter().any(|d| d.photographic)) {
            return Err(AdminError::Invalid(
                "level 3 needs three documents, one of them photographic".into(),
            ));
        }
        if v.documents.iter().any(|d| {
            d.reference_last4
                .as_ref()
                .is_some_and(|r| r.chars().count() > 4)
        }) {
            return Err(AdminError::Invalid(
                "keep at most the last four characters of a document number".into(),
            ));
        }
        self.db
            .user(uuid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no Care Identity {uuid}")))?;
        self.db.set_id_assurance_level(uuid, v.level).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminIdentityVerified,
            json!({ "uuid": uuid, "level": v.level, "documents": v.documents }),
        )
        .await?;
        Ok(Verified {
            uuid: uuid.to_string(),
            id_assurance_level: v.level,
        })
    }

    pub async fn admin_update_details(
        &self,
        caller: &Caller,
        uuid: &str,
        change: DetailsChange,
    ) -> Result<IdentityWithDetails, AdminError> {
        self.act_on_person(caller, &op::UPDATE_DETAILS, uuid)
            .await?;
        let mut user = self
            .db
            .user(uuid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no Care Identity {uuid}")))?;
        let old_name = (user.given_name.clone(), user.family_name.clone());
        let evidence = change
            .name_change_evidence
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from);
        let mut changed = Vec::new();
        let mut set = |field: &'static str, target: &mut String, value: Option<String>| {
            if let Some(v) = value {
                if v.trim().is_empty() {
                    return Err(AdminError::Invalid(format!("{field} cannot be empty")));
                }
                *target = v.trim().to_string();
                changed.push(field);
            }
            Ok(())
        };
        set("given_name", &mut user.given_name, change.given_name)?;
        set("family_name", &mut user.family_name, change.family_name)?;
        for (field, target, value) in [
            ("title", &mut user.title, change.title),
            ("middle_names", &mut user.middle_names, change.middle_names),
            ("email", &mut user.email, change.email),
        ] {
            if let Some(v) = value {
                *target = Some(v.trim().to_string()).filter(|v| !v.is_empty());
                changed.push(field);
            }
        }
        let mut details = self.db.personal_details(uuid).await?;
        let before = details.clone();
        if let Some(v) = change.date_of_birth {
            details.date_of_birth = Some(v);
            changed.push("date_of_birth");
        }
        if let Some(v) = change.ni_number {
            details.ni_number = Some(v);
            changed.push("ni_number");
        }
        if let Some(v) = change.work_phones {
            details.work_phones = v;
            changed.push("work_phones");
        }
        let registrations = match change.professional_registrations {
            Some(r) => {
                changed.push("professional_registrations");
                Some(checked_registrations(r)?)
            }
            None => None,
        };
        if changed.is_empty() {
            return Err(AdminError::Invalid("nothing to change".into()));
        }
        let details = checked_details(details, self.now())?;
        let renamed = (user.given_name.clone(), user.family_name.clone()) != old_name;
        if renamed && evidence.is_none() {
            return Err(AdminError::Invalid(
                "a change of name needs name_change_evidence: the document seen (for example a marriage certificate or deed poll)".into(),
            ));
        }
        self.db.update_user_details(&user).await?;
        if let Some(r) = &registrations {
            self.db.set_professional_registrations(uuid, r).await?;
        }
        let mut cards_ended = Vec::new();
        if renamed {
            let now = self.now();
            for card in self.db.authenticators_of(uuid).await? {
                if card.kind == crate::model::identity::AuthenticatorKind::Smartcard
                    && card.is_usable(now)
                {
                    self.revoke_authenticator(&card.id, "name_changed").await?;
                    cards_ended.push(card.id);
                }
            }
        }
        if details != before {
            self.db.set_personal_details(uuid, &details).await?;
        }
        self.admin_audit(
            caller,
            AuditKind::AdminIdentityUpdated,
            json!({ "uuid": uuid, "fields": changed, "name_change_evidence": evidence, "smartcards_revoked": cards_ended }),
        )
        .await?;
        Ok(IdentityWithDetails {
            identity: IdentitySummary::from(&user),
            personal_details: details,
        })
    }
}
