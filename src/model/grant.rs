//! What a sign-in is waiting for and what it grants: the validated authorization request, the
//! pending flow that holds it between steps, and the code grant it ends in.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::model::assurance::AcrRequest;

/// What an authorization code stands for: everything needed to issue tokens later, bound to the
/// client, redirect URI and PKCE challenge it was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_uuid: String,
    pub sid: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub acr: String,
    pub amr: String,
    pub aal: i64,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    /// The `person_roleid` chosen at sign-in (scope `selectedrole` / `changedrole`).
    #[serde(default)]
    pub selected_roleid: Option<String>,
}

impl CodeGrant {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes.iter().any(|x| x == s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
}

/// A validated authorization request, as stored while the user signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Granted scopes: those asked for that the client is registered for, in request order.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub acr: AcrRequest,
    /// The relying party's suggestion for role selection: a `person_roleid`, or a national job
    /// role code (`R8001`). The picker starts on the first current role it names; the person
    /// still chooses.
    #[serde(default)]
    pub role_hint: Option<String>,
}

impl AuthorizationRequest {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes.iter().any(|x| x == s)
    }
}

/// The step a pending flow waits for. A flow is finished only by its own step: the card or
/// WebAuthn step finishes a sign-in, the picker a role choice, the terms page the terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStep {
    SignIn,
    ChooseRole,
    AcceptTerms,
}

impl FlowStep {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStep::SignIn => "sign_in",
            FlowStep::ChooseRole => "choose_role",
            FlowStep::AcceptTerms => "accept_terms",
        }
    }
    pub fn parse(s: &str) -> Option<FlowStep> {
        [
            FlowStep::SignIn,
            FlowStep::ChooseRole,
            FlowStep::AcceptTerms,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// A stored pending flow: the authorization request, the step it waits for, the browser that
/// started it (digest of its binding cookie) and, after authentication, the session and the
/// `auth_time` it continues. Stored under [`flow_key`], never under the id itself.
#[derive(Debug, Clone)]
pub struct PendingFlow {
    pub request: AuthorizationRequest,
    pub step: FlowStep,
    pub browser_hash: Option<String>,
    pub sid: Option<String>,
    pub auth_time: Option<UnixTime>,
    pub created_at: UnixTime,
}
