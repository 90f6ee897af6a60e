//! Authentication assurance in CIS2's terms (`../shared/reference/cis2.md` §7): which `acr`
//! values a request asks for, whether an authentication satisfies them, and what the ID token
//! then says. `acr` names the requested class that was met; `amr` names the method actually used;
//! `authentication_assurance_level` is the AAL that method reached. All three always agree with
//! what really happened.

use serde::{Deserialize, Serialize};

/// The default when a relying party sends no `acr_values`: CIS2 relying parties expect AAL3.
pub const DEFAULT_ACR: &str = "AAL3_ANY";

/// Every `acr` value careid understands, with the lowest AAL it needs and the kinds of method
/// that may meet it (at that AAL or above).
const ACR_TABLE: &[(&str, u8, &[MethodKind])] = &[
    ("AAL3_ANY", 3, &[MethodKind::Smartcard, MethodKind::Fido2]),
    (
        "AAL2_OR_AAL3_ANY",
        2,
        &[MethodKind::Smartcard, MethodKind::Fido2],
    ),
    ("AAL2_ANY", 2, &[MethodKind::Fido2]),
    ("AAL3_N3_SMARTCARD", 3, &[MethodKind::Smartcard]),
    ("AAL3_CIS2_SMARTCARD", 3, &[MethodKind::Smartcard]),
    ("AAL3_SMARTCARD", 3, &[MethodKind::Smartcard]),
    ("AAL3_FIDO2", 3, &[MethodKind::Fido2]),
    ("AAL3_IOS", 3, &[]),
    ("AAL2_TOTP", 2, &[]),
    ("AAL2_NHSMAIL", 2, &[]),
    ("AAL1_USERPASS", 1, &[]),
];

/// Published in discovery.
pub fn supported_acr_values() -> Vec<&'static str> {
    ACR_TABLE.iter().map(|(v, _, _)| *v).collect()
}

/// The kinds of sign-in method, as the `acr` table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Smartcard,
    Fido2,
}

/// How the user authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// NHS-style smartcard: X.509 certificate on a PIN-protected card, over mutual TLS.
    Smartcard,
    /// A WebAuthn authenticator with user verification. AAL3 when the attestation policy
    /// trusted it at registration (hardware-bound, attested, not synced); otherwise AAL2.
    Fido2 { aal: u8 },
}

impl Method {
    /// The `amr` value.
    pub fn amr(self) -> &'static str {
        match self {
            Method::Smartcard => "N3_SMARTCARD",
            Method::Fido2 { .. } => "FIDO2",
        }
    }
    /// The AAL this method reached.
    pub fn aal(self) -> u8 {
        match self {
            Method::Smartcard => 3,
            Method::Fido2 { aal } => aal,
        }
    }
    pub fn kind(self) -> MethodKind {
        match self {
            Method::Smartcard => MethodKind::Smartcard,
            Method::Fido2 { .. } => MethodKind::Fido2,
        }
    }
    /// The method a session records (its `amr` and AAL).
    pub fn from_session(amr: &str, aal: i64) -> Option<Method> {
        match amr {
            "N3_SMARTCARD" => Some(Method::Smartcard),
            "FIDO2" if (2..=3).contains(&aal) => Some(Method::Fido2 { aal: aal as u8 }),
            _ => None,
        }
    }
}

/// The `acr_values` of a request, in the relying party's order of preference. Unknown values are
/// dropped (they are voluntary claims); none left means [`DEFAULT_ACR`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcrRequest(pub Vec<String>);

impl AcrRequest {
    pub fn parse(acr_values: Option<&str>) -> AcrRequest {
        let known: Vec<String> = acr_values
            .unwrap_or("")
            .split(' ')
            .filter(|v| ACR_TABLE.iter().any(|(k, _, _)| k == v))
            .map(String::from)
            .collect();
        if known.is_empty() {
            AcrRequest(vec![DEFAULT_ACR.to_string()])
        } else {
            AcrRequest(known)
        }
    }

    /// The first requested class this method meets: the `acr` to put in the ID token.
    pub fn satisfied_by(&self, method: Method) -> Option<&str> {
        self.0
            .iter()
            .find(|v| {
                ACR_TABLE.iter().any(|(k, aal, kinds)| {
                    k == v && method.aal() >= *aal && kinds.contains(&method.kind())
                })
            })
            .map(String::as_str)
    }

    /// Whether any method careid offers could meet the request.
    pub fn satisfiable(&self) -> bool {
        [Method::Smartcard, Method::Fido2 { aal: 3 }]
            .into_iter()
            .any(|m| self.satisfied_by(m).is_some())
    }

    /// The lowest AAL that meets some requested class: what the sign-in page must reach.
    pub fn minimum_aal(&self) -> u8 {
        self.0
            .iter()
            .filter_map(|v| ACR_TABLE.iter().find(|(k, _, _)| k == v))
            .map(|(_, aal, _)| *aal)
            .min()
            .unwrap_or(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_acr_values_means_aal3_any() {
        assert_eq!(AcrRequest::parse(None).0, vec!["AAL3_ANY"]);
        assert_eq!(AcrRequest::parse(Some("made_up")).0, vec!["AAL3_ANY"]);
    }

    #[test]
    fn smartcard_answers_the_requested_class() {
        assert_eq!(
            AcrRequest::parse(Some("AAL2_OR_AAL3_ANY")).satisfied_by(Method::Smartcard),
            Some("AAL2_OR_AAL3_ANY")
        );
        assert_eq!(
            AcrRequest::parse(Some("AAL3_FIDO2 AAL3_CIS2_SMARTCARD"))
                .satisfied_by(Method::Smartcard),
            Some("AAL3_CIS2_SMARTCARD")
        );
        assert_eq!(
            AcrRequest::parse(Some("AAL3_FIDO2")).satisfied_by(Method::Smartcard),
            None
        );
        assert!(!AcrRequest::parse(Some("AAL2_TOTP")).satisfiable());
    }

    #[test]
    fn an_aal2_authenticator_never_meets_an_aal3_class() {
        let aal2 = Method::Fido2 { aal: 2 };
        let aal3 = Method::Fido2 { aal: 3 };
        assert_eq!(AcrRequest::parse(Some("AAL3_ANY")).satisfied_by(aal2), None);
        assert_eq!(
            AcrRequest::parse(Some("AAL3_FIDO2")).satisfied_by(aal2),
            None
        );
        assert_eq!(AcrRequest::parse(None).satisfied_by(aal2), None);
        assert_eq!(
            AcrRequest::parse(Some("AAL3_ANY AAL2_OR_AAL3_ANY")).satisfied_by(aal2),
            Some("AAL2_OR_AAL3_ANY")
        );
        assert_eq!(
            AcrRequest::parse(Some("AAL3_FIDO2")).satisfied_by(aal3),
            Some("AAL3_FIDO2")
        );
        assert_eq!(
            AcrRequest::parse(Some("AAL3_SMARTCARD")).satisfied_by(aal3),
            None
        );
        assert!(AcrRequest::parse(Some("AAL2_ANY")).satisfiable());
        assert_eq!(
            AcrRequest::parse(Some("AAL2_ANY AAL3_ANY")).minimum_aal(),
            2
        );
        assert_eq!(AcrRequest::parse(None).minimum_aal(), 3);
    }

    #[test]
    fn a_session_records_its_method() {
        assert_eq!(
            Method::from_session("FIDO2", 2),
            Some(Method::Fido2 { aal: 2 })
        );
        assert_eq!(
            Method::from_session("N3_SMARTCARD", 3),
            Some(Method::Smartcard)
        );
        assert_eq!(Method::from_session("FIDO2", 1), None);
        assert_eq!(Method::from_session("PWD", 1), None);
    }

    #[test]
    fn smartcard_is_aal3_n3_smartcard() {
        assert_eq!(
            (Method::Smartcard.amr(), Method::Smartcard.aal()),
            ("N3_SMARTCARD", 3)
        );
    }
}
