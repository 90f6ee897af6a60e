//! Relying parties as registered: their metadata under RFC 7591 names, and the stored record.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<AuthMethod> {
        [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
            AuthMethod::None,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

/// Algorithms careid signs ID tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    PS256,
    ES256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::PS256, SigningAlg::ES256];
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::PS256 => "PS256",
            SigningAlg::ES256 => "ES256",
        }
    }
    pub fn parse(s: &str) -> Option<SigningAlg> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The scope that carries registration-authority power to the admin API. Only clients
/// registered as admin clients (`careid clients add --admin`) may be granted it, and only in a
/// user's sign-in; an access token without it is refused by the admin API, whatever its user holds.
pub const ADMIN_SCOPE: &str = "careid:admin";

/// The scope of an HR feed client's own tokens (client credentials): the only tokens the HR
/// API (`/hr/api/v1`) accepts. Only clients registered with HR organisations
/// (`careid clients add --hr-feed ORG`) may be granted it.
pub const HR_FEED_SCOPE: &str = "careid:hr-feed";

/// A client's registered metadata, serialised with RFC 7591 names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientMetadata {
    pub client_id: String,
    pub client_name: String,
    pub client_id_issued_at: UnixTime,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    pub token_endpoint_auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// Space-separated scopes the client may be granted.
    pub scope: String,
    pub id_token_signed_response_alg: SigningAlg,
    /// careid extension: PKCE S256 required on every authorization request. Only a confidential
    /// client may have it off (relying parties built for CIS2 send no PKCE).
    pub require_pkce: bool,
    /// careid extension: a refresh token unused this long expires (default from configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_idle_ttl: Option<i64>,
    /// careid extension: a refresh-token family ends this long after sign-in at the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_absolute_ttl: Option<i64>,
    /// careid extension: an admin client (RA tooling, the RA console). Only its users' tokens,
    /// with [`ADMIN_SCOPE`], are accepted by the admin API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub careid_admin: bool,
    /// careid extension: an HR feed (the ESR interface) for these organisations (ODS codes; an
    /// organisation's sites are included). Its client-credentials tokens, with
    /// [`HR_FEED_SCOPE`], may send HR events for people at them, and nowhere else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub careid_hr_feed_orgs: Vec<String>,
    /// careid extension: a supplier's client (`docs/onboarding.md`) in `integration` (only test
    /// identities sign in) or `production`. Absent: registered by an operator, production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub careid_stage: Option<Stage>,
}

/// Where a supplier's client is in onboarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Integration,
    Production,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Integration => "integration",
            Stage::Production => "production",
        }
    }
}

impl ClientMetadata {
    /// Whether the client may be granted `scope`. The admin scope needs an admin client, even
    /// if a registration (or a hand-edited row) lists it.
    pub fn allows_scope(&self, scope: &str) -> bool {
        (scope != ADMIN_SCOPE || self.careid_admin)
            && (scope != HR_FEED_SCOPE || !self.careid_hr_feed_orgs.is_empty())
            && self.scope.split(' ').any(|s| s == scope)
    }
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }
}

/// A stored client.
#[derive(Debug, Clone)]
pub struct Client {
    pub metadata: ClientMetadata,
    pub secret_digest: Option<String>,
    /// A rotated secret's digest and the end of its overlap window, during which it still
    /// authenticates the client.
    pub previous_secret: Option<(String, UnixTime)>,
    pub active: bool,
}

impl Client {
    /// Whether this client is in the integration stage (only test identities sign in).
    pub fn in_integration(&self) -> bool {
        self.metadata.careid_stage == Some(Stage::Integration)
    }
}
