//! Registration and sign-in ceremonies. Each starts with options for the browser and a
//! server-side ceremony row (keyed by the digest of a handle the browser keeps in a `__Host-`
//! cookie), and finishes once: the row is deleted when taken, so a challenge cannot be replayed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AllowCredentials, AuthenticationState, Credential, ExtnState, PublicKeyCredential,
    RegisterPublicKeyCredential, RegistrationState,
};

use super::{Ceremony, Kind, PasskeyRejection, StoredCredential};
use crate::domain::login::{flow_key, FlowStep, Next};
use crate::domain::provider::{Provider, ServiceError};
use crate::domain::secrets;
use crate::model::assurance::Method;
use crate::model::audit::AuditKind;
use crate::model::identity::AuthenticatorStatus;
use crate::model::identity::{Authenticator, UserStatus};

/// Who is registering an authenticator.
#[derive(Debug, Clone, Copy)]
pub enum Registrant<'a> {
    /// With the code from an RA's invitation.
    Invitation(&'a str),
    /// The signed-in user, from their session cookie secret.
    Session(Option<&'a str>),
}

/// Options for the browser and the handle that names the ceremony.
#[derive(Debug)]
pub struct Started {
    pub options: Value,
    pub handle: String,
}

/// What a WebAuthn sign-in attempt ended with.
#[derive(Debug)]
pub enum PasskeyLoginOutcome {
    SignedIn {
        next: Next,
        session_secret: String,
    },
    Rejected(PasskeyRejection),
    /// The sign-in request (login flow) is unknown or has expired.
    FlowExpired,
}

type Checked<T> = Result<Result<T, PasskeyRejection>, ServiceError>;

const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";

/// The credential id as stored: base64url without padding.
pub fn credential_id_text(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn invalid(e: impl std::fmt::Display) -> PasskeyRejection {
    PasskeyRejection::Invalid(e.to_string())
}

impl Provider {
    /// Starts registering an authenticator of `kind` named `name`.
    pub async fn begin_registration(
        &self,
        who: Registrant<'_>,
        kind: Kind,
        name: &str,
    ) -> Checked<Started> {
        let now = self.now();
        let (user_uuid, invitation) = match who {
            Registrant::Invitation(code) => {
                let hash = secrets::digest(code.trim());
                match self.db.open_invitation(&hash, now).await? {
                    Some(i) => (i.user_uuid, Some(hash)),
                    None => return Ok(Err(PasskeyRejection::InvitationInvalid)),
                }
            }
            Registrant::Session(secret) => match self.usable_session(secret).await? {
                Some(s)
                    if s.aal >= 3
                        && now - s.auth_time <= self.config.webauthn.self_service_max_age_secs =>
                {
                    (s.user_uuid, None)
                }
                _ => return Ok(Err(PasskeyRejection::NotAllowedToRegister)),
            },
        };
        let Some(user) = self.db.user(&user_uuid).await? else {
            return Ok(Err(PasskeyRejection::UserNotActive));
        };
        if user.status != UserStatus::Active {
            return Ok(Err(PasskeyRejection::UserNotActive));
        }
        let exclude = self
            .db
            .webauthn_credentials_of(&user_uuid)
            .await?
            .iter()
            .filter_map(|c| URL_SAFE_NO_PAD.decode(&c.credential_id).ok())
            .map(Into::into)
            .collect();
        let (options, state) = match self.relying_party.registration_options(
            &user_uuid,
            &user.display_name(),
            kind,
            exclude,
        ) {
            Ok(v) => v,
            Err(e) => return Ok(Err(invalid(e))),
        };
        let name = clean_name(name).unwrap_or_else(|| kind.label().to_string());
        let detail = json!({ "kind": kind.as_str(), "name": name, "invitation": invitation });
        let started = self
            .store_ceremony(
                REGISTER,
                Some(&user_uuid),
                detail,
                serde_json::to_string(&state),
            )
            .await?;
        Ok(Ok(Started {
            options: serde_json::to_value(options).map_err(crate::store::StoreError::from)?,
            handle: started,
        }))
    }

    /// Finishes a registration with the browser's answer (JSON of `PublicKeyCredential`).
    pub async fn finish_registration(
        &self,
        handle: &str,
        answer: &str,
    ) -> Checked<StoredCredential> {
        let result = self.verify_registration(handle, answer).await?;
        let (outcome, user, detail) = match &result {
            Ok((c, via)) => (
                "success",
                Some(c.authenticator.user_uuid.clone()),
                json!({ "authenticator": c.authenticator.id, "kind": c.authenticator.kind, "aal": c.aal,
                        "attestation_trusted": c.attestation_trusted, "aaguid": c.aaguid, "via": via }),
            ),
            Err((r, user)) => (r.code(), user.clone(), json!({ "reason": r.to_string() })),
        };
        self.audit(
            AuditKind::WebauthnRegistered,
            outcome,
            user.as_deref(),
            None,
            detail,
        )
        .await?;
        Ok(result.map(|(c, _)| c).map_err(|(r, _)| r))
    }

    async fn verify_registration(
        &self,
        handle: &str,
        answer: &str,
    ) -> Result<
        Result<(StoredCredential, &'static str), (PasskeyRejection, Option<String>)>,
        ServiceError,
    > {
        let now = self.now();
        let Some(ceremony) = self.take_ceremony(handle, REGISTER).await? else {
            return Ok(Err((PasskeyRejection::CeremonyExpired, None)));
        };
        let user_uuid = ceremony.user_uuid.clone().unwrap_or_default();
        let fail = |r: PasskeyRejection| Ok(Err((r, Some(user_uuid.clone()))));
        let (answer, state) = match (
            serde_json::from_str::<RegisterPublicKeyCredential>(answer),
            serde_json::from_str::<RegistrationState>(&ceremony.state),
        ) {
            (Ok(a), Ok(s)) => (a, s),
            (Err(e), _) | (_, Err(e)) => return fail(invalid(e)),
        };
        let credential = match self.relying_party.finish_registration(&answer, &state) {
            Ok(c) => c,
            Err(e) => return fail(invalid(e)),
        };
        let invitation = ceremony.detail["invitation"].as_str();
        if let Some(hash) = invitation {
            if !self.db.use_invitation(hash, now).await? {
                return fail(PasskeyRejection::InvitationInvalid);
            }
        }
        let credential_id = credential_id_text(credential.cred_id.as_ref());
        if self.db.webauthn_credential(&credential_id).await?.is_some() {
            return fail(PasskeyRejection::AlreadyRegistered);
        }
        if self
            .db
            .user(&user_uuid)
            .await?
            .is_none_or(|u| u.status != UserStatus::Active)
        {
            return fail(PasskeyRejection::UserNotActive);
        }
        let kind = ceremony.detail["kind"]
            .as_str()
            .and_then(Kind::parse)
            .unwrap_or(Kind::SecurityKey);
        let name = ceremony.detail["name"].as_str().unwrap_or(kind.label());
        let stored = self.stored_credential(&user_uuid, kind, name, &credential)?;
        self.db.insert_webauthn_credential(&stored).await?;
        let via = if invitation.is_some() {
            "invitation"
        } else {
            "self_service"
        };
        Ok(Ok((stored, via)))
    }

    fn stored_credential(
        &self,
        user_uuid: &str,
        kind: Kind,
        name: &str,
        credential: &Credential,
    ) -> Result<StoredCredential, ServiceError> {
        let assessment = self.relying_party.policy.assess(credential);
        let discoverable = match &credential.extensions.cred_props {
            ExtnState::Set(props) | ExtnState::Unsigned(props) => {
                props.rk.unwrap_or(kind != Kind::SecurityKey)
            }
            _ => kind != Kind::SecurityKey,
        };
        let transports = credential
            .transports
            .iter()
            .flatten()
            .filter_map(|t| serde_json::to_value(t).ok())
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        Ok(StoredCredential {
            authenticator: Authenticator {
                id: uuid::Uuid::new_v4().to_string(),
                user_uuid: user_uuid.to_string(),
                kind: kind.into(),
                cert_issuer: None,
                cert_serial: None,
                status: AuthenticatorStatus::Active,
                created_at: self.now(),
                last_used_at: None,
                expires_at: None,
            },
            credential_id: credential_id_text(credential.cred_id.as_ref()),
            credential: serde_json::to_string(credential)
                .map_err(crate::store::StoreError::from)?,
            name: name.to_string(),
            aaguid: assessment.aaguid.to_string(),
            attestation_format: assessment.format,
            attestation_trusted: assessment.attestation_trusted,
            transports,
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
            discoverable,
            aal: i64::from(assessment.aal),
            sign_count: i64::from(credential.counter),
        })
    }

    /// Starts a WebAuthn sign-in for a pending login flow: for the credentials of `username`
    /// (a Care Identity UUID), or for any discoverable credential when there is none.
    /// `browser`: the browser-binding cookie; a flow started in another browser is not found.
    pub async fn begin_authentication(
        &self,
        flow_id: &str,
        username: Option<&str>,
        conditional: bool,
        browser: Option<&str>,
    ) -> Result<Option<Result<Started, PasskeyRejection>>, ServiceError> {
        if self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let username = username.map(str::trim).filter(|u| !u.is_empty());
        let credentials = match username {
            Some(uuid) => self
                .db
                .webauthn_credentials_of(uuid)
                .await?
                .iter()
                // A blocked (cloned) key is still offered, so its holder is told at the answer
                // that it is blocked rather than that nothing is registered.
                .filter(|c| {
                    c.authenticator.is_active()
                        || c.authenticator.status == AuthenticatorStatus::Blocked
                })
                .filter_map(|c| serde_json::from_str(&c.credential).ok())
                .collect(),
            None => Vec::new(),
        };
        let decoy = username.filter(|_| credentials.is_empty());
        let (mut options, state) = match self
            .relying_party
            .authentication_options(credentials, conditional && username.is_none())
        {
            Ok(v) => v,
            Err(e) => return Ok(Some(Err(invalid(e)))),
        };
        // A UUID with no usable credential gets options shaped like anyone's, naming a
        // credential derived from the UUID (the same at every ask): the answer says nothing about
        // whether the identity exists or has keys. Any assertion then fails as an unknown key.
        if let Some(uuid) = decoy {
            options.public_key.allow_credentials = vec![AllowCredentials {
                type_: "public-key".into(),
                id: self.decoy_credential_id(uuid).into(),
                transports: None,
            }];
        }
        // The flow's key, not its id: ceremonies are stored too.
        let detail = json!({ "flow": flow_key(flow_id) });
        let handle = self
            .store_ceremony(
                AUTHENTICATE,
                username,
                detail,
                serde_json::to_string(&state),
            )
            .await?;
        Ok(Some(Ok(Started {
            options: serde_json::to_value(options).map_err(crate::store::StoreError::from)?,
            handle,
        })))
    }

    /// A stable, unguessable credential id for a UUID without credentials: HMAC-SHA256 under a
    /// key derived from the key-encryption key (or, without one, made for this process).
    fn decoy_credential_id(&self, uuid: &str) -> Vec<u8> {
        static PROCESS_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let secret = match &self.config.keys.encryption_key {
            Some(k) => secrets::s256(&format!("careid webauthn decoy:{k}")),
            None => PROCESS_KEY.get_or_init(secrets::random_token).clone(),
        };
        let mac = |part: &str| -> Vec<u8> {
            openssl::pkey::PKey::hmac(secret.as_bytes())
                .and_then(|key| {
                    let mut signer =
                        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
                    signer.update(format!("{part}:{uuid}").as_bytes())?;
                    signer.sign_to_vec()
                })
                .unwrap_or_default()
        };
        [mac("a"), mac("b")].concat()
    }

    /// Finishes a WebAuthn sign-in. Refusals are audited; a counter that went backwards blocks
    /// the credential and ends the sessions it opened.
    pub async fn finish_authentication(
        &self,
        handle: &str,
        answer: &str,
        previous_secret: Option<&str>,
    ) -> Result<PasskeyLoginOutcome, ServiceError> {
        let Some(ceremony) = self.take_ceremony(handle, AUTHENTICATE).await? else {
            return Ok(PasskeyLoginOutcome::Rejected(
                PasskeyRejection::CeremonyExpired,
            ));
        };
        let key = ceremony.detail["flow"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The ceremony cookie binds this answer to the browser whose flow began it.
        let Some(flow) = self
            .db
            .login_flow(&key, self.now())
            .await?
            .filter(|f| f.step == FlowStep::SignIn)
        else {
            return Ok(PasskeyLoginOutcome::FlowExpired);
        };
        let request = &flow.request;
        let verified = self.verify_assertion(&ceremony, answer).await?;
        let (stored, method) = match verified {
            Ok(v) => v,
            Err((rejection, user)) => {
                metrics::counter!("careid_logins_total", "method" => "webauthn", "outcome" => rejection.code()).increment(1);
                self.audit(
                    AuditKind::LoginWebauthn,
                    rejection.code(),
                    user.as_deref(),
                    Some(&request.client_id),
                    json!({ "reason": rejection.to_string() }),
                )
                .await?;
                return Ok(PasskeyLoginOutcome::Rejected(rejection));
            }
        };
        if request.acr.satisfied_by(method).is_none() {
            let rejection = PasskeyRejection::InsufficientAssurance {
                needed: request.acr.minimum_aal(),
                reached: method.aal(),
            };
            self.audit(
                AuditKind::LoginWebauthn,
                rejection.code(),
                Some(&stored.authenticator.user_uuid),
                Some(&request.client_id),
                json!({ "authenticator": stored.authenticator.id, "acr_values": request.acr.0 }),
            )
            .await?;
            return Ok(PasskeyLoginOutcome::Rejected(rejection));
        }
        let a = &stored.authenticator;
        Ok(
            match self
                .sign_in_verified(&flow, &key, a, method, previous_secret, None)
                .await?
            {
                Some((next, session_secret)) => PasskeyLoginOutcome::SignedIn {
                    next,
                    session_secret,
                },
                None => PasskeyLoginOutcome::FlowExpired,
            },
        )
    }

    /// The assertion checked against the stored credential; the use recorded.
    async fn verify_assertion(
        &self,
        ceremony: &Ceremony,
        answer: &str,
    ) -> Result<Result<(StoredCredential, Method), (PasskeyRejection, Option<String>)>, ServiceError>
    {
        let (answer, state) = match (
            serde_json::from_str::<PublicKeyCredential>(answer),
            serde_json::from_str::<AuthenticationState>(&ceremony.state),
        ) {
            (Ok(a), Ok(s)) => (a, s),
            (Err(e), _) | (_, Err(e)) => return Ok(Err((invalid(e), None))),
        };
        let credential_id = credential_id_text(answer.raw_id.as_ref());
        let Some(stored) = self.db.webauthn_credential(&credential_id).await? else {
            return Ok(Err((PasskeyRejection::UnknownCredential, None)));
        };
        let owner = stored.authenticator.user_uuid.clone();
        let fail = |r: PasskeyRejection| Ok(Err((r, Some(owner.clone()))));
        match (&ceremony.user_uuid, answer.get_user_unique_id()) {
            // Sign-in by UUID: the credential must be one that was offered.
            (Some(expected), _) if *expected != owner => {
                return fail(PasskeyRejection::UnknownCredential)
            }
            (Some(_), _) => {}
            // Usernameless: the authenticator must name the user, and name the owner.
            (None, None) => return fail(PasskeyRejection::NoUserHandle),
            (None, Some(handle)) if handle != owner.as_bytes() => {
                return fail(invalid("the user handle does not match the credential"))
            }
            (None, Some(_)) => {}
        }
        match stored.authenticator.status {
            AuthenticatorStatus::Active => {}
            AuthenticatorStatus::Blocked => return fail(PasskeyRejection::CounterRegression),
            _ => return fail(PasskeyRejection::Revoked),
        }
        if self
            .db
            .user(&owner)
            .await?
            .is_none_or(|u| u.status != UserStatus::Active)
        {
            return fail(PasskeyRejection::UserNotActive);
        }
        let mut credential: Credential = match serde_json::from_str(&stored.credential) {
            Ok(c) => c,
            Err(e) => return fail(invalid(e)),
        };
        let result =
            match self
                .relying_party
                .finish_authentication(&answer, state, credential.clone())
            {
                Ok(r) => r,
                Err(WebauthnError::CredentialPossibleCompromise) => {
                    self.block_credential(&stored).await?;
                    return fail(PasskeyRejection::CounterRegression);
                }
                // webauthn-rs reports a signature that does not verify (or does not parse) in
                // library words ("An OpenSSL Error has occurred"): say what it means.
                Err(WebauthnError::AuthenticationFailure | WebauthnError::OpenSSLError(_)) => {
                    return fail(PasskeyRejection::BadSignature)
                }
                Err(e) => return fail(invalid(e)),
            };
        credential.counter = credential.counter.max(result.counter());
        credential.backup_state = result.backup_state();
        let json = serde_json::to_string(&credential).map_err(crate::store::StoreError::from)?;
        let recorded = self
            .db
            .record_webauthn_use(
                &stored.authenticator.id,
                &json,
                i64::from(result.counter()),
                result.backup_state(),
                self.now(),
            )
            .await?;
        if !recorded {
            // Another sign-in recorded this counter value first: the same assertion twice.
            self.block_credential(&stored).await?;
            return fail(PasskeyRejection::CounterRegression);
        }
        let aal = u8::try_from(stored.aal).unwrap_or(2).clamp(2, 3);
        Ok(Ok((stored, Method::Fido2 { aal })))
    }

    /// A cloned authenticator: the credential is blocked and the sessions it opened end.
    async fn block_credential(&self, stored: &StoredCredential) -> Result<(), ServiceError> {
        let id = &stored.authenticator.id;
        self.db
            .set_authenticator_status(id, AuthenticatorStatus::Blocked)
            .await?;
        for sid in self.db.open_sessions_of_authenticator(id).await? {
            self.end_session(&sid, "authenticator_blocked").await?;
        }
        self.audit(
            AuditKind::WebauthnBlocked,
            "counter_regression",
            Some(&stored.authenticator.user_uuid),
            None,
            json!({ "authenticator": id, "stored_counter": stored.sign_count }),
        )
        .await
    }

    async fn store_ceremony(
        &self,
        purpose: &str,
        user_uuid: Option<&str>,
        detail: Value,
        state: Result<String, serde_json::Error>,
    ) -> Result<String, ServiceError> {
        let state = state.map_err(crate::store::StoreError::from)?;
        let handle = secrets::random_token();
        let ceremony = Ceremony {
            purpose: purpose.into(),
            user_uuid: user_uuid.map(String::from),
            detail,
            state,
        };
        let expires = self.now() + self.config.webauthn.ceremony_ttl_secs;
        self.db
            .insert_ceremony(&secrets::digest(&handle), &ceremony, expires)
            .await?;
        Ok(handle)
    }

    async fn take_ceremony(
        &self,
        handle: &str,
        purpose: &str,
    ) -> Result<Option<Ceremony>, ServiceError> {
        let taken = self
            .db
            .take_ceremony(&secrets::digest(handle), self.now())
            .await?;
        Ok(taken.filter(|c| c.purpose == purpose))
    }
}

/// A user-chosen authenticator name: trimmed, 1–64 characters, no control characters.
pub fn clean_name(name: &str) -> Option<String> {
    let name: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    (!name.is_empty() && name.chars().count() <= 64).then_some(name)
}
