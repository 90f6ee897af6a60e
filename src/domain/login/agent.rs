//! Signing in through the card agent (`docs/agent.md`). The browser's sign-in page asks for a
//! short code; `careid-agent` trades the code for a single-use challenge, has the card sign it
//! (PIN on the card), and sends the signature with the card's certificate. careid checks the
//! certificate exactly as for mutual TLS (chain, validity, CRL, bound active card of an active
//! person) and the signature over its own challenge, then records a binding. The browser that
//! started the sign-in, and only it, finishes it: the session it gets is bound to the card.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;

use super::card::card_usable;
use super::*;
use crate::domain::card_agent::AgentError;
use crate::model::audit::AuditKind;
use crate::model::card_agent::{
    self as wire, AgentBinding, AgentLoginRequest, AgentLoginResponse, ChallengeResponse,
};
use crate::store::AgentRequest;

/// Where a browser's agent sign-in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentFlowState {
    /// No card has signed for it yet.
    Waiting,
    /// A card has signed: the browser can finish.
    Ready,
    /// The sign-in request is unknown, finished or expired.
    Expired,
}

/// What the agent page shows: the code, the application, and where its form may end.
#[derive(Debug, Clone)]
pub struct AgentCode {
    pub code: String,
    pub client_name: String,
    pub return_to: String,
}

fn new_code() -> String {
    let alphabet = wire::CODE_ALPHABET.as_bytes();
    let mut rng = rand::thread_rng();
    (0..wire::CODE_LENGTH)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

impl Provider {
    /// A new code for the agent, for the pending sign-in `flow_id` of this browser (None when
    /// the flow has expired or belongs to another browser). It lives no longer than the flow.
    pub async fn agent_code(
        &self,
        flow_id: &str,
        browser: Option<&str>,
    ) -> Result<Option<AgentCode>, ServiceError> {
        let Some(flow) = self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
        else {
            return Ok(None);
        };
        let now = self.now();
        let code = new_code();
        let request = AgentRequest {
            code_hash: secrets::digest(&code),
            flow_key: flow_key(flow_id),
            expires_at: now + self.config.tokens.login_flow_ttl_secs,
            binding_id: None,
        };
        self.db.insert_agent_request(&request, now).await?;
        Ok(Some(self.code_for_page(&flow, &code).await?))
    }

    /// The code this browser was given for `flow_id` (to show it again while it waits), if it is
    /// that flow's.
    pub async fn agent_code_again(
        &self,
        flow_id: &str,
        browser: Option<&str>,
        code: &str,
    ) -> Result<Option<AgentCode>, ServiceError> {
        let Some(flow) = self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
        else {
            return Ok(None);
        };
        let Some(code) = wire::normalise_code(code) else {
            return Ok(None);
        };
        let request = self
            .db
            .agent_request(&secrets::digest(&code), self.now())
            .await?;
        if request.is_none_or(|r| r.flow_key != flow_key(flow_id)) {
            return Ok(None);
        }
        Ok(Some(self.code_for_page(&flow, &code).await?))
    }

    async fn code_for_page(
        &self,
        flow: &PendingFlow,
        code: &str,
    ) -> Result<AgentCode, ServiceError> {
        let client_name = self
            .db
            .client(&flow.request.client_id)
            .await?
            .map(|c| c.metadata.client_name)
            .unwrap_or_default();
        Ok(AgentCode {
            code: wire::display_code(code),
            client_name,
            return_to: origin_of(&flow.request.redirect_uri),
        })
    }

    /// The agent's first step: a challenge for the sign-in a code names.
    pub async fn agent_challenge(&self, code: &str) -> Result<ChallengeResponse, AgentError> {
        let now = self.now();
        let code = wire::normalise_code(code).ok_or(AgentError::UnknownCode)?;
        let code_hash = secrets::digest(&code);
        let request = self
            .db
            .agent_request(&code_hash, now)
            .await?
            .filter(|r| r.binding_id.is_none())
            .ok_or(AgentError::UnknownCode)?;
        let flow = self
            .db
            .login_flow(&request.flow_key, now)
            .await?
            .ok_or(AgentError::UnknownCode)?;
        let client_name = self
            .db
            .client(&flow.request.client_id)
            .await?
            .map(|c| c.metadata.client_name)
            .unwrap_or_default();
        let ttl = self.config.card_agent.challenge_ttl_secs;
        let challenge_id = uuid::Uuid::new_v4().to_string();
        let nonce = secrets::random_token();
        self.db
            .insert_agent_challenge(&challenge_id, &code_hash, &nonce, now + ttl)
            .await?;
        Ok(ChallengeResponse {
            challenge_id,
            nonce,
            client_name,
            expires_in: ttl,
        })
    }

    /// The agent's second step: the card's certificate and signature over the challenge. On
    /// success the sign-in waits for its browser, and the agent gets its token.
    pub async fn agent_login(
        &self,
        login: &AgentLoginRequest,
    ) -> Result<AgentLoginResponse, AgentError> {
        let now = self.now();
        let (code_hash, nonce) = self
            .db
            .take_agent_challenge(&login.challenge_id, now)
            .await?
            .ok_or(AgentError::ChallengeInvalid)?;
        let chain = decode_chain(&login.certificates)?;
        let signature = URL_SAFE_NO_PAD
            .decode(&login.signature)
            .map_err(|_| AgentError::BadRequest("signature is not base64url"))?;
        let authenticator = match self.check_card(&chain).await? {
            Ok(a) => a,
            Err(rejection) => {
                self.refused_agent_login(rejection.code(), None).await?;
                return Err(AgentError::Card(rejection));
            }
        };
        let message = wire::to_be_signed(&self.config.issuer, &login.challenge_id, &nonce);
        if !crate::domain::smartcard::signed_by(&chain[0], &message, &signature) {
            self.refused_agent_login("bad_signature", Some(&authenticator.user_uuid))
                .await?;
            return Err(AgentError::BadSignature);
        }
        let token = secrets::random_token();
        let binding = AgentBinding {
            id: uuid::Uuid::new_v4().to_string(),
            authenticator_id: authenticator.id.clone(),
            user_uuid: authenticator.user_uuid.clone(),
            sid: None,
            created_at: now,
            last_heartbeat_at: now,
            ended_at: None,
        };
        let writes =
            WriteSet::bind_agent_request(&code_hash, &binding, &secrets::digest(&token), now);
        if self.db.commit_guarded(writes).await?.is_none() {
            return Err(AgentError::UnknownCode);
        }
        metrics::counter!("careid_card_agent_events_total", "event" => "card_signed").increment(1);
        Ok(AgentLoginResponse {
            agent_token: token,
            binding_id: binding.id,
            heartbeat_interval_secs: self.config.card_agent.heartbeat_interval_secs,
        })
    }

    async fn refused_agent_login(
        &self,
        reason: &str,
        user: Option<&str>,
    ) -> Result<(), ServiceError> {
        metrics::counter!("careid_logins_total", "method" => "card_agent", "outcome" => reason.to_string()).increment(1);
        self.audit(
            AuditKind::LoginSmartcard,
            reason,
            user,
            None,
            json!({ "via": "card_agent" }),
        )
        .await
    }

    /// Where this browser's agent sign-in stands (the page polls it).
    pub async fn agent_flow_state(
        &self,
        flow_id: &str,
        browser: Option<&str>,
    ) -> Result<AgentFlowState, ServiceError> {
        if self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
            .is_none()
        {
            return Ok(AgentFlowState::Expired);
        }
        let signed = self
            .db
            .signed_agent_request_of_flow(&flow_key(flow_id), self.now())
            .await?;
        Ok(match signed {
            Some(_) => AgentFlowState::Ready,
            None => AgentFlowState::Waiting,
        })
    }

    /// The browser finishes a sign-in a card has signed for: its session is bound to the card.
    /// `Ok(None)`: no card has signed yet.
    pub async fn complete_agent_login(
        &self,
        flow_id: &str,
        previous_secret: Option<&str>,
        browser: Option<&str>,
    ) -> Result<Option<CardLoginOutcome>, ServiceError> {
        let Some(flow) = self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
        else {
            return Ok(Some(CardLoginOutcome::FlowExpired));
        };
        let now = self.now();
        let Some(binding_id) = self
            .db
            .signed_agent_request_of_flow(&flow_key(flow_id), now)
            .await?
            .and_then(|r| r.binding_id)
        else {
            return Ok(None);
        };
        let binding = self.db.agent_binding(&binding_id).await?;
        let Some(binding) = binding.filter(|b| b.ended_at.is_none()) else {
            // The card was taken out before the browser got here.
            return Ok(Some(CardLoginOutcome::Rejected(
                CardRejection::NoCertificate,
            )));
        };
        let Some((authenticator, user_status)) = self
            .db
            .authenticator_with_user_status(&binding.authenticator_id)
            .await?
        else {
            return Ok(Some(CardLoginOutcome::Rejected(CardRejection::NotBound)));
        };
        // The card or its person may have been suspended since the card signed.
        if let Err(r) = card_usable(&authenticator, user_status, now) {
            return Ok(Some(CardLoginOutcome::Rejected(r)));
        }
        Ok(Some(
            match self
                .sign_in_verified(
                    &flow,
                    &flow_key(flow_id),
                    &authenticator,
                    Method::Smartcard,
                    previous_secret,
                    Some(&binding.id),
                )
                .await?
            {
                Some((next, session_secret)) => CardLoginOutcome::SignedIn {
                    next,
                    session_secret,
                },
                None => CardLoginOutcome::FlowExpired,
            },
        ))
    }
}

/// The certificates the agent sent: base64 DER, the card's first. At most four.
fn decode_chain(certificates: &[String]) -> Result<Vec<CertificateDer<'static>>, AgentError> {
    if certificates.is_empty() || certificates.len() > 4 {
        return Err(AgentError::BadRequest("certificates: one to four"));
    }
    certificates
        .iter()
        .map(|c| {
            STANDARD
                .decode(c)
                .map(CertificateDer::from)
                .map_err(|_| AgentError::BadRequest("certificates: base64 DER"))
        })
        .collect()
}
