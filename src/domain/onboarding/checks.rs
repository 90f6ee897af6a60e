//! Conformance checks careid runs against a supplier's relying party, kept as evidence
//! (`conformance_reports`). Each says what was seen and, when it fails, what to fix:
//!
//! - `redirect_uris`: exact, `https` (loopback `http` only in integration), no fragment;
//! - `backchannel_logout`: the endpoint answers 200 to a correctly signed logout token and 400
//!   to a forged one (signed by another key under careid's `kid`) and to an expired one;
//! - `jwks_uri`: for `private_key_jwt` by URI, reachable with a usable signing key;
//! - `test_sign_in`: a test identity completed a sign-in (code exchanged, userinfo called)
//!   within `onboarding.test_sign_in_max_age_secs`;
//! - `scope_justification`: scopes beyond `openid` are explained.

use std::time::Duration;

use josekit::jws::{JwsHeader, RS256};
use serde_json::{json, Map, Value};

use super::{OnboardingError, Provider};
use crate::domain::backchannel::{logout_claims, LOGOUT_EVENT};
use crate::domain::client::{AuthMethod, Stage};
use crate::model::audit::AuditKind;
use crate::model::client::{Client, SigningAlg};
use crate::model::onboarding::{Check, ConformanceReport, SupplierClient};
use crate::store::LogoutDelivery;

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed,
        detail: detail.into(),
    }
}

fn redirect_uris(client: &Client) -> Check {
    let integration = client.in_integration();
    for uri in &client.metadata.redirect_uris {
        let Ok(url) = url::Url::parse(uri) else {
            return check("redirect_uris", false, format!("{uri} is not a URL"));
        };
        if url.fragment().is_some() || uri.contains('*') {
            return check(
                "redirect_uris",
                false,
                format!("{uri}: register exact URIs, without fragments or wildcards"),
            );
        }
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(integration && loopback && url.scheme() == "http") {
            return check(
                "redirect_uris",
                false,
                format!("{uri}: use https (plain http only on loopback, and only in integration)"),
            );
        }
    }
    check(
        "redirect_uris",
        true,
        format!("{} exact URI(s)", client.metadata.redirect_uris.len()),
    )
}

fn scope_justification(client: &Client, onboarding: &SupplierClient) -> Check {
    let beyond: Vec<&str> = client
        .metadata
        .scope
        .split(' ')
        .filter(|s| *s != "openid")
        .collect();
    if beyond.is_empty() {
        return check("scope_justification", true, "only openid");
    }
    if onboarding.scope_justification.trim().len() < 10 {
        return check(
            "scope_justification",
            false,
            format!(
                "say in scope_justification why the application needs {}",
                beyond.join(", ")
            ),
        );
    }
    check("scope_justification", true, "given")
}

impl Provider {
    /// Runs every check now and stores the report.
    pub async fn run_conformance(
        &self,
        client_id: &str,
        registration_token: Option<&str>,
    ) -> Result<ConformanceReport, OnboardingError> {
        let (client, onboarding) = self
            .registered_client(client_id, registration_token)
            .await?;
        self.check_client(&client, &onboarding).await
    }

    /// Runs every check on a supplier's client now and stores the report.
    pub async fn check_client(
        &self,
        client: &Client,
        onboarding: &SupplierClient,
    ) -> Result<ConformanceReport, OnboardingError> {
        let client_id = client.metadata.client_id.as_str();
        let now = self.now();
        let max_age = self.config.onboarding.test_sign_in_max_age_secs;
        let test_sign_in = match onboarding.last_test_sign_in_at {
            Some(at) if now - at <= max_age => check("test_sign_in", true, format!("a test identity signed in {} s ago", now - at)),
            Some(_) => check("test_sign_in", false, "the last test sign-in is too old: sign a test identity in again, exchange the code and call userinfo"),
            None => check("test_sign_in", false, "sign a test identity in, exchange the code and call userinfo"),
        };
        let checks = vec![
            redirect_uris(client),
            self.check_backchannel(client).await,
            self.check_jwks_uri(client).await,
            test_sign_in,
            scope_justification(client, onboarding),
        ];
        let report = ConformanceReport {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client_id.to_string(),
            created_at: now,
            passed: checks.iter().all(|c| c.passed),
            checks,
        };
        self.db.insert_conformance_report(&report).await?;
        self.audit(
            AuditKind::OnboardingConformance,
            if report.passed { "passed" } else { "failed" },
            None,
            Some(client_id),
            json!({ "report": report.id, "failed": report.checks.iter().filter(|c| !c.passed).map(|c| &c.name).collect::<Vec<_>>() }),
        )
        .await?;
        Ok(report)
    }

    /// POSTs a logout token to the client's back-channel endpoint: the status it answered.
    async fn post_logout_token(&self, uri: &str, token: &str) -> Result<u16, String> {
        self.outbound_policy.check_uri(uri)?;
        self.outbound
            .post(uri)
            .timeout(Duration::from_secs(10))
            .form(&[("logout_token", token)])
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("no answer from {uri}: {e}"))
    }

    fn conformance_logout_claims(&self, client: &Client, at: i64) -> Map<String, Value> {
        let delivery = LogoutDelivery {
            id: String::new(),
            client_id: client.metadata.client_id.clone(),
            sid: format!("conformance-{}", uuid::Uuid::new_v4()),
            user_uuid: format!("{}0000000000", super::TEST_UUID_PREFIX),
            uri: String::new(),
            created_at: at,
            attempts: 0,
            delivered_at: None,
            failed_at: None,
            last_error: None,
        };
        logout_claims(&self.config.issuer, &delivery, at)
    }

    /// A logout token signed by a key careid does not hold, under careid's own `kid`.
    fn forged_logout_token(&self, claims: Map<String, Value>) -> Option<String> {
        let pair = RS256.generate_key_pair(2048).ok()?;
        let signer = RS256.signer_from_der(pair.to_der_private_key()).ok()?;
        let mut header = JwsHeader::new();
        header.set_token_type("logout+jwt");
        if let Some(kid) = self.keys.signing_kid(SigningAlg::RS256) {
            header.set_key_id(kid);
        }
        let payload = josekit::jwt::JwtPayload::from_map(claims).ok()?;
        josekit::jwt::encode_with_signer(&payload, &header, &signer).ok()
    }

    async fn check_backchannel(&self, client: &Client) -> Check {
        const NAME: &str = "backchannel_logout";
        let Some(uri) = client.metadata.backchannel_logout_uri.clone() else {
            return check(NAME, false, "register a backchannel_logout_uri: careid tells the application there when a session ends (sign-out, card removal, leavers)");
        };
        let now = self.now();
        let good = match self.keys.sign(
            SigningAlg::RS256,
            "logout+jwt",
            self.conformance_logout_claims(client, now),
        ) {
            Ok(t) => t,
            Err(e) => {
                return check(
                    NAME,
                    false,
                    format!("careid could not sign a logout token: {e}"),
                )
            }
        };
        let Some(forged) = self.forged_logout_token(self.conformance_logout_claims(client, now))
        else {
            return check(NAME, false, "careid could not make the forged token");
        };
        // Issued twenty minutes ago, expired fifteen minutes ago.
        let expired = match self.keys.sign(
            SigningAlg::RS256,
            "logout+jwt",
            self.conformance_logout_claims(client, now - 1200),
        ) {
            Ok(t) => t,
            Err(e) => {
                return check(
                    NAME,
                    false,
                    format!("careid could not sign a logout token: {e}"),
                )
            }
        };
        let mut seen = Vec::new();
        for (what, token, want) in [
            ("a correctly signed logout token", good, 200),
            ("a logout token signed by another key", forged, 400),
            ("an expired logout token", expired, 400),
        ] {
            match self.post_logout_token(&uri, &token).await {
                Ok(status) if status == want => seen.push(format!("{what}: {status}")),
                Ok(status) => {
                    return check(NAME, false, format!(
                        "{uri} answered {status} to {what}; it must answer {want} (verify the signature with careid's JWKS, the iss, aud, iat/exp and the {LOGOUT_EVENT} event)"
                    ))
                }
                Err(e) => return check(NAME, false, e),
            }
        }
        check(NAME, true, seen.join("; "))
    }

    async fn check_jwks_uri(&self, client: &Client) -> Check {
        const NAME: &str = "jwks_uri";
        let m = &client.metadata;
        if m.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt || m.jwks_uri.is_none() {
            return check(NAME, true, "not used");
        }
        match self.client_jwks(client, None).await {
            Some(set) if set.keys().iter().any(|k| matches!(k.key_type(), "RSA" | "EC") && k.parameter("d").is_none()) => {
                check(NAME, true, format!("{} key(s)", set.keys().len()))
            }
            Some(_) => check(NAME, false, "the JWK set at jwks_uri holds no public RSA or EC key"),
            None => check(NAME, false, "jwks_uri could not be fetched or is not a JWK set (https, reachable from careid, a JSON {\"keys\": [...]})"),
        }
    }
}

/// Whether `client` is a supplier client at `stage`.
pub fn at_stage(client: &Client, stage: Stage) -> bool {
    client.metadata.careid_stage == Some(stage)
}
