//! careid as a WebAuthn relying party: the options each kind of authenticator is registered and
//! asked with, and the verification of the browser's answers.
//!
//! This wraps `webauthn-rs-core` (the engine under `webauthn-rs`) because careid needs what the
//! high-level wrappers cannot express: a discoverable credential without mandatory attestation,
//! and an attestation that *lowers the assurance level* when untrusted instead of failing the
//! registration (docs/decisions.md §22). The invariants `webauthn-rs` keeps are kept here:
//! user verification is required in every ceremony, challenges are server-side and single use
//! (the ceremony row is deleted when taken), only the core's secure algorithms are offered, and
//! the signature counter is checked (`CredentialPossibleCompromise`).

use std::time::Duration;

use url::Url;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationResult, AuthenticationState,
    AuthenticatorAttachment, CreationChallengeResponse, CredProtect, Credential, CredentialID,
    CredentialProtectionPolicy, Mediation, PublicKeyCredential, PublicKeyCredentialHints,
    RegisterPublicKeyCredential, RegistrationState, RequestAuthenticationExtensions,
    RequestChallengeResponse, RequestRegistrationExtensions, UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

use super::policy::AttestationPolicy;
use super::Kind;
use crate::config::Config;

/// The relying party: RP id, allowed origins and the attestation policy.
pub struct RelyingParty {
    core: WebauthnCore,
    pub rp_id: String,
    pub policy: AttestationPolicy,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.rp_id)
            .finish_non_exhaustive()
    }
}

/// `webauthn.rp_id`, or the issuer's host.
pub fn rp_id(config: &Config) -> String {
    config.webauthn.rp_id.clone().unwrap_or_else(|| {
        Url::parse(&config.issuer)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_else(|| "localhost".into())
    })
}

/// `webauthn.origins`, or the issuer's origin.
pub fn origins(config: &Config) -> Vec<Url> {
    if config.webauthn.origins.is_empty() {
        Url::parse(&config.issuer)
            .ok()
            .and_then(|u| Url::parse(&u.origin().ascii_serialization()).ok())
            .into_iter()
            .collect()
    } else {
        config
            .webauthn
            .origins
            .iter()
            .filter_map(|o| Url::parse(o).ok())
            .collect()
    }
}

impl RelyingParty {
    pub fn new(config: &Config, policy: AttestationPolicy) -> RelyingParty {
        let rp_id = rp_id(config);
        let core = WebauthnCore::new_unsafe_experts_only(
            &config.webauthn.rp_name,
            &rp_id,
            origins(config),
            Duration::from_secs(config.webauthn.ceremony_ttl_secs.clamp(30, 600) as u64),
            Some(false),
            Some(false),
        );
        RelyingParty {
            core,
            rp_id,
            policy,
        }
    }

    /// Options for `navigator.credentials.create()` for this kind, excluding credentials the
    /// user already has. The user handle is the Care Identity UUID (it is the account name too).
    pub fn registration_options(
        &self,
        user_uuid: &str,
        display_name: &str,
        kind: Kind,
        exclude: Vec<CredentialID>,
    ) -> Result<(CreationChallengeResponse, RegistrationState), WebauthnError> {
        let (discoverable, attachment, hints) = match kind {
            Kind::SecurityKey => (
                false,
                Some(AuthenticatorAttachment::CrossPlatform),
                vec![PublicKeyCredentialHints::SecurityKey],
            ),
            Kind::Passkey => (true, None, vec![]),
            Kind::Platform => (
                true,
                Some(AuthenticatorAttachment::Platform),
                vec![PublicKeyCredentialHints::ClientDevice],
            ),
        };
        let extensions = RequestRegistrationExtensions {
            cred_protect: Some(CredProtect {
                credential_protection_policy: CredentialProtectionPolicy::UserVerificationRequired,
                // Enforcing makes many authenticators fail outright; UV is required anyway.
                enforce_credential_protection_policy: Some(false),
            }),
            uvm: Some(true),
            cred_props: Some(true),
            min_pin_length: None,
            hmac_create_secret: None,
        };
        let builder = self
            .core
            .new_challenge_register_builder(user_uuid.as_bytes(), user_uuid, display_name)?
            .attestation(AttestationConveyancePreference::Direct)
            .user_verification_policy(UserVerificationPolicy::Required)
            .require_resident_key(discoverable)
            .authenticator_attachment(attachment)
            .reject_synchronised_authenticators(false)
            .exclude_credentials(Some(exclude))
            .hints((!hints.is_empty()).then_some(hints))
            .extensions(Some(extensions));
        self.core.generate_challenge_register(builder)
    }

    /// Verifies a registration answer: origin, RP id hash, challenge, user verification, the
    /// attestation statement's signature. Whether the attestation is *trusted* is the policy's call.
    pub fn finish_registration(
        &self,
        answer: &RegisterPublicKeyCredential,
        state: &RegistrationState,
    ) -> Result<Credential, WebauthnError> {
        self.core.register_credential(answer, state, None)
    }

    /// Options for `navigator.credentials.get()`: for these credentials (sign-in by UUID), or
    /// for any discoverable credential (usernameless; `conditional` for passkey autofill).
    pub fn authentication_options(
        &self,
        credentials: Vec<Credential>,
        conditional: bool,
    ) -> Result<(RequestChallengeResponse, AuthenticationState), WebauthnError> {
        let builder = self
            .core
            .new_challenge_authenticate_builder(
                credentials,
                Some(UserVerificationPolicy::Required),
            )?
            .extensions(Some(RequestAuthenticationExtensions {
                appid: None,
                uvm: Some(true),
                hmac_get_secret: None,
            }));
        let (mut options, state) = self.core.generate_challenge_authenticate(builder)?;
        if conditional {
            options.mediation = Some(Mediation::Conditional);
        }
        Ok((options, state))
    }

    /// Verifies an assertion against the credential as stored *now* (its current counter), not
    /// as it was when the ceremony started.
    pub fn finish_authentication(
        &self,
        answer: &PublicKeyCredential,
        mut state: AuthenticationState,
        stored: Credential,
    ) -> Result<AuthenticationResult, WebauthnError> {
        state.set_allowed_credentials(vec![stored]);
        self.core.authenticate_credential(answer, &state)
    }
}
