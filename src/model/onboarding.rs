//! Supplier onboarding (`docs/onboarding.md`): suppliers and their clients, the registration
//! request a supplier sends (RFC 7591 metadata), the conformance checks careid runs against the
//! relying party, and promotion requests.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Supplier {
    pub id: String,
    pub name: String,
}

/// What careid keeps about a client a supplier registered (its stage is in its metadata).
#[derive(Debug, Clone, PartialEq)]
pub struct SupplierClient {
    pub client_id: String,
    pub supplier_id: String,
    pub scope_justification: String,
    /// When a test identity last completed a sign-in to it (code exchanged, userinfo called).
    pub last_test_sign_in_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub promoted_at: Option<UnixTime>,
    pub promoted_by: Option<String>,
}

/// RFC 7591 client metadata as a supplier sends it (`POST /connect/register`, and the body of
/// an RFC 7592 update). Unknown members are ignored, as RFC 7591 §2 asks; careid's own
/// extensions (admin, HR feed, stage) cannot be set this way.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    /// Space-separated, as in RFC 7591.
    #[serde(default)]
    pub scope: Option<String>,
    /// careid: why the client needs each scope beyond `openid` (a conformance check).
    #[serde(default)]
    pub scope_justification: Option<String>,
}

/// One conformance check: its name, whether it passed, and what was seen or what to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A conformance run, kept as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformanceReport {
    pub id: String,
    pub client_id: String,
    pub created_at: UnixTime,
    pub passed: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionRequest {
    pub id: String,
    pub client_id: String,
    pub report_id: String,
    pub requested_by: String,
    pub requested_at: UnixTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<UnixTime>,
    /// `approved` or `refused`, once decided.
    pub outcome: Option<String>,
    pub reason: Option<String>,
}
