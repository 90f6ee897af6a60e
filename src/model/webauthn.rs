//! WebAuthn records: authenticator kinds, stored credentials, pending ceremonies, invitations.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::model::identity::{Authenticator, AuthenticatorKind};

/// What the user asked to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A roaming FIDO2 key (USB/NFC/BLE), not discoverable, user verification by PIN or biometric.
    SecurityKey,
    /// A discoverable credential (usernameless sign-in); may be synced between devices.
    Passkey,
    /// This device's built-in authenticator (Windows Hello, Touch ID), discoverable.
    Platform,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::SecurityKey, Kind::Passkey, Kind::Platform];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SecurityKey => "security_key",
            Kind::Passkey => "passkey",
            Kind::Platform => "platform",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What people call it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::SecurityKey => "Security key",
            Kind::Passkey => "Passkey",
            Kind::Platform => "This device (Windows Hello, Touch ID)",
        }
    }
}

/// A registered WebAuthn credential with its `authenticators` row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCredential {
    pub authenticator: Authenticator,
    /// base64url, as browsers report it.
    pub credential_id: String,
    /// webauthn-rs-core's `Credential` as JSON: public key, counter, flags.
    pub credential: String,
    pub name: String,
    pub aaguid: String,
    pub attestation_format: String,
    pub attestation_trusted: bool,
    pub transports: Vec<String>,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub discoverable: bool,
    pub aal: i64,
    pub sign_count: i64,
}

/// A started ceremony, kept server-side until the browser answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Ceremony {
    /// `register` or `authenticate`.
    pub purpose: String,
    pub user_uuid: Option<String>,
    /// Kind and name (registration), flow (sign-in), invitation digest (RA binding).
    pub detail: serde_json::Value,
    /// webauthn-rs-core's `RegistrationState` or `AuthenticationState` as JSON.
    pub state: String,
}

/// An RA's single-use invitation to bind an authenticator.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub user_uuid: String,
    pub created_by: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

impl From<Kind> for AuthenticatorKind {
    fn from(k: Kind) -> AuthenticatorKind {
        match k {
            Kind::SecurityKey => AuthenticatorKind::SecurityKey,
            Kind::Passkey => AuthenticatorKind::Passkey,
            Kind::Platform => AuthenticatorKind::Platform,
        }
    }
}
