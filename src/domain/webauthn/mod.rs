//! WebAuthn sign-in: FIDO2 security keys, passkeys and platform authenticators (Windows Hello,
//! Touch ID), bound to a Care Identity.
//!
//! - [`relying_party`] builds the ceremony options for each kind of authenticator and verifies
//!   the browser's answers (webauthn-rs-core, with the invariants webauthn-rs keeps: user
//!   verification always required, server-side single-use challenges, counter checks).
//! - [`policy`] decides the AAL an authenticator reaches from its attestation (configured trust
//!   anchors, optionally a FIDO metadata BLOB) and whether it is synced.
//! - [`ceremonies`] runs registration (by RA invitation or self-service) and sign-in.
//! - [`manage`] lists, renames, removes and revokes credentials, and issues invitations.

pub mod ceremonies;
pub mod manage;
pub mod metadata;
pub mod policy;
pub mod relying_party;

pub use crate::model::webauthn::{Ceremony, Invitation, Kind, StoredCredential};

/// Why a WebAuthn ceremony was refused. Each is shown to the person and audited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyRejection {
    #[error("this sign-in or registration has expired or was already used; start again")]
    CeremonyExpired,
    #[error("the invitation code is not valid, has expired or was already used")]
    InvitationInvalid,
    #[error("register another authenticator only after signing in with a smartcard or an AAL3 security key, within the last few minutes")]
    NotAllowedToRegister,
    #[error("this authenticator is not registered with careid")]
    UnknownCredential,
    #[error("this authenticator has been revoked")]
    Revoked,
    #[error("this authenticator is blocked: its signature counter went backwards, which suggests it was cloned")]
    CounterRegression,
    #[error("this Care Identity is not active")]
    UserNotActive,
    #[error("the authenticator did not identify you; use a passkey, or enter your UUID first")]
    NoUserHandle,
    #[error("this authenticator is already registered")]
    AlreadyRegistered,
    #[error("the authenticator's answer could not be verified: {0}")]
    Invalid(String),
    #[error("the security key's signature does not match the key registered for it; try again, and if it keeps happening ask your Registration Authority to check the key")]
    BadSignature,
    #[error("this application needs assurance level {needed}; this authenticator reaches level {reached}. Use a smartcard or a security key registered at AAL3")]
    InsufficientAssurance { needed: u8, reached: u8 },
}

impl PasskeyRejection {
    /// Stable code for audit records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PasskeyRejection::CeremonyExpired => "ceremony_expired",
            PasskeyRejection::InvitationInvalid => "invitation_invalid",
            PasskeyRejection::NotAllowedToRegister => "not_allowed_to_register",
            PasskeyRejection::UnknownCredential => "unknown_credential",
            PasskeyRejection::Revoked => "revoked",
            PasskeyRejection::CounterRegression => "counter_regression",
            PasskeyRejection::UserNotActive => "user_not_active",
            PasskeyRejection::NoUserHandle => "no_user_handle",
            PasskeyRejection::AlreadyRegistered => "already_registered",
            PasskeyRejection::Invalid(_) => "invalid",
            PasskeyRejection::BadSignature => "bad_signature",
            PasskeyRejection::InsufficientAssurance { .. } => "insufficient_assurance",
        }
    }
}
