//! Supplier onboarding (`docs/onboarding.md`): suppliers register their relying parties
//! themselves (RFC 7591 with an initial access token, RFC 7592 to manage them), test in the
//! `integration` stage with synthetic test identities, have careid check their app
//! (`checks.rs`), and go to `production` when an onboarding manager from outside the supplier
//! approves (`promotion.rs`). Who may do what is decided here, from the caller's token.

mod checks;
mod portal;
mod promotion;
mod registration;

use serde_json::{json, Value};

use super::client::{RegistrationError, ADMIN_SCOPE};
use super::provider::{Provider, ServiceError};
use super::secrets;
use crate::model::audit::AuditKind;
use crate::model::identity::{is_valid_uuid, User, UserStatus};
use crate::model::onboarding::Supplier;
use crate::store::StoreError;

pub use portal::{PortalUser, PORTAL_CLIENT_ID};
pub use promotion::PromotionAsked;
pub use registration::Registered;

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    /// A missing, unknown, used or expired token (RFC 6750 `invalid_token`).
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// RFC 7591 `invalid_redirect_uri` / `invalid_client_metadata`.
    #[error(transparent)]
    Metadata(#[from] RegistrationError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<super::registry::RegistryError> for OnboardingError {
    fn from(e: super::registry::RegistryError) -> Self {
        match e {
            super::registry::RegistryError::Store(s) => s.into(),
            other => OnboardingError::Invalid(other.to_string()),
        }
    }
}

impl From<StoreError> for OnboardingError {
    fn from(e: StoreError) -> Self {
        OnboardingError::Service(e.into())
    }
}

/// A person acting in onboarding: the suppliers they develop for, and whether they are one of
/// careid's onboarding managers.
#[derive(Debug, Clone)]
pub struct OnboardingCaller {
    pub uuid: String,
    pub suppliers: Vec<String>,
    pub manager: bool,
}

impl OnboardingCaller {
    pub fn develops_for(&self, supplier_id: &str) -> bool {
        self.suppliers.iter().any(|s| s == supplier_id)
    }
}

/// A new test identity: the person, their test card (when careid has a test card CA) and an
/// invitation to register a passkey. The card's key and password are shown this once.
#[derive(Debug)]
pub struct TestIdentity {
    pub user: User,
    pub card: Option<TestCard>,
    pub passkey_invitation_url: String,
    pub invitation_expires_at: i64,
}

#[derive(Debug)]
pub struct TestCard {
    pub certificate_pem: String,
    pub pkcs12: Vec<u8>,
    pub password: String,
}

/// The prefix of test identities' UUIDs: real Care Identity UUIDs never start with it here.
pub const TEST_UUID_PREFIX: &str = "99";

impl Provider {
    /// The person behind an onboarding API call: an active access token issued to one of
    /// careid's own tools (an admin client, scope `careid:admin`) for a person who signed in at
    /// AAL2 or above (a passkey will do), who is a supplier developer or an onboarding manager.
    pub async fn onboarding_caller(
        &self,
        token: Option<&str>,
    ) -> Result<OnboardingCaller, OnboardingError> {
        let token = token.ok_or_else(|| {
            OnboardingError::InvalidToken("a bearer access token is required".into())
        })?;
        let claims = self.active_access_claims(token).await?.ok_or_else(|| {
            OnboardingError::InvalidToken("the access token is not active".into())
        })?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
        let tool = self
            .active_client(text("client_id"))
            .await?
            .is_some_and(|c| c.metadata.careid_admin);
        if !tool || !text("scope").split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(OnboardingError::Forbidden(format!(
                "onboarding accepts only tokens issued to careid's own tools with the {ADMIN_SCOPE} scope"
            )));
        }
        let uuid = Some(text("sub"))
            .filter(|s| is_valid_uuid(s))
            .ok_or_else(|| {
                OnboardingError::Forbidden("the token does not belong to a person".into())
            })?;
        if !matches!(text("authentication_assurance_level"), "2" | "3") {
            return Err(OnboardingError::Forbidden(
                "onboarding needs a sign-in at AAL2 or above".into(),
            ));
        }
        let caller = OnboardingCaller {
            uuid: uuid.to_string(),
            suppliers: self.db.suppliers_of_developer(uuid).await?,
            manager: self.db.is_onboarding_manager(uuid).await?,
        };
        if caller.suppliers.is_empty() && !caller.manager {
            return Err(OnboardingError::Forbidden(
                "only supplier developers and onboarding managers work here".into(),
            ));
        }
        Ok(caller)
    }

    /// An operator adds a supplier (`careid suppliers add`).
    pub async fn create_supplier(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<Supplier, OnboardingError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(OnboardingError::Invalid(
                "a supplier needs a name (at most 200 characters)".into(),
            ));
        }
        let supplier = Supplier {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
        };
        self.db
            .insert_supplier(&supplier, self.now())
            .await
            .map_err(|_| OnboardingError::Conflict(format!("a supplier named {name:?} exists")))?;
        self.audit(
            AuditKind::OnboardingSupplier,
            "created",
            Some(actor),
            None,
            json!({ "supplier": supplier.id, "name": name }),
        )
        .await?;
        Ok(supplier)
    }

    /// An operator makes a person a developer of a supplier, or an onboarding manager.
    pub async fn add_onboarding_member(
        &self,
        uuid: &str,
        supplier_id: Option<&str>,
        actor: &str,
    ) -> Result<(), OnboardingError> {
        if self.db.user(uuid).await?.is_none() {
            return Err(OnboardingError::NotFound(format!(
                "no Care Identity {uuid}"
            )));
        }
        let role = match supplier_id {
            Some(s) => {
                self.db
                    .supplier(s)
                    .await?
                    .ok_or_else(|| OnboardingError::NotFound(format!("no supplier {s}")))?;
                self.db
                    .add_supplier_developer(s, uuid)
                    .await
                    .map_err(|_| OnboardingError::Conflict("already a developer".into()))?;
                "developer"
            }
            None => {
                self.db
                    .add_onboarding_manager(uuid, self.now())
                    .await
                    .map_err(|_| OnboardingError::Conflict("already a manager".into()))?;
                "manager"
            }
        };
        self.audit(
            AuditKind::OnboardingSupplier,
            role,
            Some(actor),
            None,
            json!({ "user": uuid, "supplier": supplier_id }),
        )
        .await?;
        Ok(())
    }

    /// An initial access token for `supplier_id`: one registration, within
    /// `onboarding.initial_access_token_ttl_secs`. `by`: the developer or the operator.
    pub async fn issue_initial_access_token(
        &self,
        supplier_id: &str,
        by: &str,
    ) -> Result<(String, i64), OnboardingError> {
        self.db
            .supplier(supplier_id)
            .await?
            .ok_or_else(|| OnboardingError::NotFound(format!("no supplier {supplier_id}")))?;
        let now = self.now();
        let token = secrets::random_token();
        let expires_at = now + self.config.onboarding.initial_access_token_ttl_secs;
        self.db
            .insert_initial_access_token(&secrets::digest(&token), supplier_id, by, now, expires_at)
            .await?;
        self.audit(
            AuditKind::OnboardingInitialToken,
            "issued",
            Some(by),
            None,
            json!({ "supplier": supplier_id, "expires_at": expires_at }),
        )
        .await?;
        Ok((token, expires_at))
    }

    /// A developer asks for an initial access token for one of their suppliers.
    pub async fn developer_initial_access_token(
        &self,
        caller: &OnboardingCaller,
        supplier_id: &str,
    ) -> Result<(String, i64), OnboardingError> {
        if !caller.develops_for(supplier_id) {
            return Err(OnboardingError::Forbidden(
                "you are not a developer of this supplier".into(),
            ));
        }
        self.issue_initial_access_token(supplier_id, &caller.uuid)
            .await
    }

    /// A synthetic test identity for a supplier's integration testing: a Care Identity whose
    /// UUID starts with [`TEST_UUID_PREFIX`], marked as a test identity (it can sign in only to
    /// integration clients), with the current terms accepted, an invitation to register a
    /// passkey, and (when `onboarding.test_card_ca_*` is configured) a card certificate as a
    /// PKCS#12 file, shown once.
    pub async fn create_test_identity(
        &self,
        caller: &OnboardingCaller,
        supplier_id: &str,
        given_name: &str,
        family_name: &str,
        positions: &[String],
    ) -> Result<TestIdentity, OnboardingError> {
        if !caller.develops_for(supplier_id) {
            return Err(OnboardingError::Forbidden(
                "you are not a developer of this supplier".into(),
            ));
        }
        let allowed = self.test_positions().await?;
        if let Some(p) = positions
            .iter()
            .find(|p| !allowed.iter().any(|a| &a.id == *p))
        {
            return Err(OnboardingError::Invalid(format!(
                "{p} is not a position at a test organisation that a test identity may hold"
            )));
        }
        let (given, family) = (given_name.trim(), family_name.trim());
        let plain = |s: &str| {
            (1..=50).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        };
        if !plain(given) || !plain(family) {
            return Err(OnboardingError::Invalid(
                "a test identity needs a given and a family name (letters, - and ', at most 50)"
                    .into(),
            ));
        }
        let now = self.now();
        let user = User {
            uuid: format!("{TEST_UUID_PREFIX}{}", secrets::random_digits(10)),
            title: None,
            given_name: given.to_string(),
            middle_names: None,
            family_name: family.to_string(),
            email: None,
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        crate::domain::registry::create_user(&self.db, &user, &caller.uuid, now).await?;
        self.db
            .insert_test_identity(&user.uuid, supplier_id, now)
            .await?;
        self.db
            .record_terms_acceptance(&user.uuid, &self.config.terms.version, now)
            .await?;
        for position in positions {
            crate::domain::rbac::assign_position(
                &self.db,
                &user.uuid,
                position,
                now,
                None,
                &caller.uuid,
                now,
            )
            .await
            .map_err(|e| OnboardingError::Invalid(e.to_string()))?;
        }
        let card = self.issue_test_card(&user, &caller.uuid).await?;
        let (passkey_invitation_url, invitation_expires_at) =
            self.new_invitation(&user.uuid, &caller.uuid).await?;
        self.audit(
            AuditKind::OnboardingTestIdentity,
            "created",
            Some(&caller.uuid),
            None,
            json!({ "supplier": supplier_id, "user": user.uuid, "card": card.is_some() }),
        )
        .await?;
        Ok(TestIdentity {
            user,
            card,
            passkey_invitation_url,
            invitation_expires_at,
        })
    }

    /// Positions test identities may hold: at `onboarding.test_organisations`, not retired,
    /// without RA or sponsor power.
    pub async fn test_positions(
        &self,
    ) -> Result<Vec<crate::model::rbac::Position>, OnboardingError> {
        let mut out = Vec::new();
        for org in &self.config.onboarding.test_organisations {
            for record in self.db.positions_at(org, self.now()).await? {
                let p = record.position;
                if record.retired_at.is_none()
                    && !p
                        .profiles
                        .iter()
                        .any(crate::domain::ra::authority::carries_ra_power)
                {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// A card certificate for a test identity from the configured test card CA, bound to it.
    async fn issue_test_card(
        &self,
        user: &User,
        by: &str,
    ) -> Result<Option<TestCard>, OnboardingError> {
        let c = &self.config.onboarding;
        let (Some(cert_file), Some(key_file)) =
            (&c.test_card_ca_cert_file, &c.test_card_ca_key_file)
        else {
            return Ok(None);
        };
        let read = |p: &std::path::PathBuf| {
            std::fs::read_to_string(p).map_err(|e| {
                OnboardingError::Invalid(format!("the test card CA {}: {e}", p.display()))
            })
        };
        let (ca_pem, ca_key) = (read(cert_file)?, read(key_file)?);
        let failed =
            |e: String| OnboardingError::Invalid(format!("the test card could not be issued: {e}"));
        let ca = crate::domain::pki::Authority::from_pem(&ca_pem, &ca_key)
            .map_err(|e| failed(e.to_string()))?;
        let name = format!("{}_{}", user.given_name, user.family_name);
        let card = ca
            .card_cert(&crate::domain::pki::CardSpec::valid(
                &user.uuid,
                &name,
                self.now(),
            ))
            .map_err(|e| failed(e.to_string()))?;
        crate::domain::registry::bind_smartcard(&self.db, &user.uuid, &card.der, by, self.now())
            .await?;
        let password = secrets::random_token();
        let pkcs12 = crate::domain::pki::pkcs12(&card.cert_pem, &card.key_pem, &ca_pem, &password)
            .map_err(|e| failed(e.to_string()))?;
        Ok(Some(TestCard {
            certificate_pem: card.cert_pem,
            pkcs12,
            password,
        }))
    }

    /// Why `user_uuid` may not sign in to `client_id`, if so: integration clients take test
    /// identities only, and test identities sign in to nothing else.
    pub async fn stage_refusal(
        &self,
        client_id: &str,
        user_uuid: &str,
    ) -> Result<Option<&'static str>, ServiceError> {
        let integration = self
            .active_client(client_id)
            .await?
            .is_some_and(|c| c.in_integration());
        let test = self.db.is_test_identity(user_uuid).await?;
        Ok(match (integration, test) {
            (true, false) => Some("this application is in integration testing: only test identities can sign in to it"),
            (false, true) => Some("test identities can sign in only to applications in integration testing"),
            _ => None,
        })
    }
}
