//! Authentication assurance in CIS2's terms (`../shared/reference/cis2.md` §7): which `acr`
//! values a request asks for, whether an authentication satisfies them, and what the ID token
//! then says. `acr` names the requested class that was met; `amr` names the method actually used;
//! `authentication_assurance_level` is the AAL that method reached. All three always agree with
//! what really happened.

use serde::{Deserialize, Serialize};

/// The default when a relying party sends no `acr_values`: CIS2 relying parties expect AAL3.
pub const DEFAULT_ACR: &str = "AAL3_ANY";

/// Every `acr` value careid understands, with the lowest AAL it needs and the methods that meet it.
const ACR_TABLE: &[(&str, u8, &[Method])] = &[
    ("AAL3_ANY", 3, &[Method::Smartcard]),
    ("AAL2_OR_AAL3_ANY", 2, &[Method::Smartcard]),
    ("AAL2_ANY", 2, &[]),
    ("AAL3_N3_SMARTCARD", 3, &[Method::Smartcard]),
    ("AAL3_CIS2_SMARTCARD", 3, &[Method::Smartcard]),
    ("AAL3_SMARTCARD", 3, &[Method::Smartcard]),
    ("AAL3_FIDO2", 3, &[]),
    ("AAL3_IOS", 3, &[]),
    ("AAL2_TOTP", 2, &[]),
    ("AAL2_NHSMAIL", 2, &[]),
    ("AAL1_USERPASS", 1, &[]),
];

/// Published in discovery.
pub fn supported_acr_values() -> Vec<&'static str> {
    ACR_TABLE.iter().map(|(v, _, _)| *v).collect()
}

/// How the user authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// NHS-style smartcard: X.509 certificate on a PIN-protected card, over mutual TLS.
    Smartcard,
}

impl Method {
    /// The `amr` value.
    pub fn amr(self) -> &'static str {
        match self {
            Method::Smartcard => "N3_SMARTCARD",
        }
    }
    /// The AAL this method reaches.
    pub fn aal(self) -> u8 {
        match self {
            Method::Smartcard => 3,
        }
    }
    pub fn from_amr(amr: &str) -> Option<Method> {
        (amr == "N3_SMARTCARD").then_some(Method::Smartcard)
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
                ACR_TABLE.iter().any(|(k, aal, methods)| {
                    k == v && method.aal() >= *aal && methods.contains(&method)
                })
            })
            .map(String::as_str)
    }

    /// Whether any method careid offers could meet the request.
    pub fn satisfiable(&self) -> bool {
        self.satisfied_by(Method::Smartcard).is_some()
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
    fn smartcard_is_aal3_n3_smartcard() {
        assert_eq!(
            (Method::Smartcard.amr(), Method::Smartcard.aal()),
            ("N3_SMARTCARD", 3)
        );
    }
}
