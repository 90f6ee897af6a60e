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

/// Personal details kept beside the identity for RA work (never in tokens).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonalDetails {
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    /// National Insurance number, upper case without spaces (`QQ123456C`).
    pub ni_number: Option<String>,
    pub work_phones: Vec<String>,
}

/// A person's photograph (never in a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub recorded_by: String,
    pub recorded_at: UnixTime,
}

/// The professional bodies whose registration numbers careid records, as CIS2's
/// `professionalmemberships` claims name them (`{body}_id`; cis2.md section 5).
pub const PROFESSIONAL_BODIES: [&str; 8] = [
    "gmc",
    "gmp",
    "gdc",
    "gdp",
    "nmc",
    "gphc",
    "rcn",
    "consultant",
];

/// A registration number's shape: 1 to 16 letters and digits.
pub fn valid_registration_number(n: &str) -> bool {
    (1..=16).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A National Insurance number's shape (HMRC): two prefix letters (not D, F, I, Q, U or V; the
/// second not O; not the prefixes BG, GB, KN, NK, NT, TN or ZZ), six digits, and a suffix A–D.
/// Spaces are ignored and letters upper-cased; returns the normalised number.
pub fn normalise_ni_number(s: &str) -> Option<String> {
    let n: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = n.as_bytes();
    let bad_first = |c: u8| b"DFIQUV".contains(&c);
    let ok = b.len() == 9
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && !bad_first(b[0])
        && !bad_first(b[1])
        && b[1] != b'O'
        && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&&n[..2])
        && b[2..8].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&b[8]);
    ok.then_some(n)
}

/// A date of birth: a real `YYYY-MM-DD` date, in the past, at most 130 years ago.
pub fn valid_date_of_birth(s: &str, now: UnixTime) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(date) = time::Date::parse(s, &format) else {
        return false;
    };
    let Ok(today) = time::OffsetDateTime::from_unix_timestamp(now).map(|t| t.date()) else {
        return false;
    };
    date < today && today.year() - date.year() <= 130
}

/// A Care Identity UUID is exactly 12 ASCII digits.
pub fn is_valid_uuid(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// What an authenticator is. Stored (and shown) by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticatorKind {
    /// A smartcard certificate, bound by issuer and serial.
    Smartcard,
    /// A temporary access card: a card certificate that works until its `expires_at`.
    Tac,
    /// WebAuthn (`model/webauthn.rs::Kind`).
    SecurityKey,
    Passkey,
    Platform,
}

impl AuthenticatorKind {
    pub const ALL: [AuthenticatorKind; 5] = [
        AuthenticatorKind::Smartcard,
        AuthenticatorKind::Tac,
        AuthenticatorKind::SecurityKey,
        AuthenticatorKind::Passkey,
        AuthenticatorKind::Platform,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorKind::Smartcard => "smartcard",
            AuthenticatorKind::Tac => "tac",
            AuthenticatorKind::SecurityKey => "security_key",
            AuthenticatorKind::Passkey => "passkey",
            AuthenticatorKind::Platform => "platform",
        }
    }
    pub fn parse(s: &str) -> Option<AuthenticatorKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// A card certificate (smartcard or TAC), as opposed to a WebAuthn credential.
    pub fn is_card(self) -> bool {
        matches!(self, AuthenticatorKind::Smartcard | AuthenticatorKind::Tac)
    }
}

/// Where an authenticator stands. Only `Active` signs anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticatorStatus {
    Active,
    /// Ended by an RA (lost, stolen, damaged, left).
    Revoked,
    /// Removed by its owner (account page).
    Removed,
    /// A WebAuthn credential whose counter went back (a clone).
    Blocked,
    /// A TAC given back.
    Returned,
    /// Out of use for now (misplaced, or locked after wrong PINs): an RA unlocks it again.
    Suspended,
}

impl AuthenticatorStatus {
    pub const ALL: [AuthenticatorStatus; 6] = [
        AuthenticatorStatus::Active,
        AuthenticatorStatus::Revoked,
        AuthenticatorStatus::Removed,
        AuthenticatorStatus::Blocked,
        AuthenticatorStatus::Returned,
        AuthenticatorStatus::Suspended,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorStatus::Active => "active",
            AuthenticatorStatus::Revoked => "revoked",
            AuthenticatorStatus::Removed => "removed",
            AuthenticatorStatus::Blocked => "blocked",
            AuthenticatorStatus::Returned => "returned",
            AuthenticatorStatus::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<AuthenticatorStatus> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A bound authenticator. Smartcards are bound by certificate issuer DN and serial number.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticator {
    pub id: String,
    pub user_uuid: String,
    pub kind: AuthenticatorKind,
    pub cert_issuer: Option<String>,
    pub cert_serial: Option<String>,
    pub status: AuthenticatorStatus,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    /// Temporary access cards stop working at this time.
    pub expires_at: Option<UnixTime>,
}

impl Authenticator {
    pub fn is_active(&self) -> bool {
        self.status == AuthenticatorStatus::Active
    }

    /// Active and, for a temporary access card, not past its expiry.
    pub fn is_usable(&self, now: UnixTime) -> bool {
        self.is_active() && self.expires_at.is_none_or(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticator_kinds_and_statuses_are_stored_by_name() {
        for k in AuthenticatorKind::ALL {
            assert_eq!(AuthenticatorKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in AuthenticatorStatus::ALL {
            assert_eq!(AuthenticatorStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(AuthenticatorKind::parse("card"), None);
        assert_eq!(AuthenticatorStatus::parse("lost"), None);
    }

    #[test]
    fn ni_numbers_follow_hmrc_rules() {
        assert_eq!(
            normalise_ni_number("ab 12 34 56 c").as_deref(),
            Some("AB123456C")
        );
        assert_eq!(
            normalise_ni_number("QQ123456C"),
            None,
            "Q is never a prefix letter"
        );
        for bad in [
            "AB123456E",
            "DA123456A",
            "AO123456A",
            "GB123456A",
            "AB12345A",
            "A1123456A",
            "",
        ] {
            assert_eq!(normalise_ni_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_of_birth_are_real_past_dates() {
        let now = 1_795_000_000; // 2026-11-18
        assert!(valid_date_of_birth("1980-02-29", now));
        assert!(!valid_date_of_birth("1981-02-29", now));
        assert!(!valid_date_of_birth("2030-01-01", now));
        assert!(!valid_date_of_birth("1850-01-01", now));
        assert!(!valid_date_of_birth("01/02/1980", now));
    }
}
