//! Care identities (users, keyed by their 12-digit UUID) and their authenticators. The full
//! identity model (positions, RBAC, RA workflows) builds on these types.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Suspended,
    Closed,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            UserStatus::Active,
            UserStatus::Suspended,
            UserStatus::Closed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The Care Identity's UUID: 12 decimal digits, kept as a string (it may start with 0).
    pub uuid: String,
    pub title: Option<String>,
    pub given_name: String,
    pub middle_names: Option<String>,
    pub family_name: String,
    pub email: Option<String>,
    /// Identity proofing level (GPG45), "0"–"3" in claims.
    pub id_assurance_level: i64,
    pub status: UserStatus,
}

impl User {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// A Care Identity UUID is exactly 12 ASCII digits.
pub fn is_valid_uuid(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticatorKind {
    Smartcard,
}

impl AuthenticatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorKind::Smartcard => "smartcard",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticatorStatus {
    Active,
    Revoked,
}

impl AuthenticatorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorStatus::Active => "active",
            AuthenticatorStatus::Revoked => "revoked",
        }
    }
}

/// A bound authenticator. Smartcards are bound by certificate issuer DN and serial number.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticator {
    pub id: String,
    pub user_uuid: String,
    pub kind: String,
    pub cert_issuer: Option<String>,
    pub cert_serial: Option<String>,
    pub status: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    /// Temporary access cards stop working at this time.
    pub expires_at: Option<UnixTime>,
}

impl Authenticator {
    pub fn is_active(&self) -> bool {
        self.status == AuthenticatorStatus::Active.as_str()
    }

    /// Active and, for a temporary access card, not past its expiry.
    pub fn is_usable(&self, now: UnixTime) -> bool {
        self.is_active() && self.expires_at.is_none_or(|t| now < t)
    }
}
