//! The card agent after a card has signed (`docs/agent.md`): heartbeats, the removal notice,
//! and the sweep that ends card-bound sessions whose agent has gone silent. Every end goes
//! through [`Provider::end_session`], the lifecycle's one revocation path, so relying parties
//! get back-channel logouts. The agent's token names one binding: nobody holding it can end
//! anything but the session that card made. (Signing in is in `domain/login/agent.rs`.)

use super::provider::{Provider, ServiceError};
use super::secrets;
use super::smartcard::CardRejection;
use crate::model::card_agent::{AgentBinding, BindingStatus};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the code is unknown, used or expired: start again from the sign-in page")]
    UnknownCode,
    #[error("the challenge is unknown, used or expired")]
    ChallengeInvalid,
    #[error("{0}")]
    Card(CardRejection),
    #[error("the signature does not verify with the card's certificate")]
    BadSignature,
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("the agent token is not valid")]
    InvalidToken,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        AgentError::Service(e.into())
    }
}

/// Why a binding ended, as sessions and the audit trail record it.
pub const CARD_REMOVED: &str = "card_removed";
pub const AGENT_SILENT: &str = "card_agent_silent";

impl Provider {
    async fn binding_for(&self, token: &str) -> Result<AgentBinding, AgentError> {
        self.db
            .agent_binding_by_token(&secrets::digest(token))
            .await?
            .ok_or(AgentError::InvalidToken)
    }

    /// The agent is still watching the card. Inactive once the sign-in has ended for any reason
    /// (the agent then stops); a session ended elsewhere (sign-out, suspension) ends the binding.
    pub async fn agent_heartbeat(&self, token: &str) -> Result<BindingStatus, AgentError> {
        let binding = self.binding_for(token).await?;
        if binding.ended_at.is_some() {
            return Ok(BindingStatus { active: false });
        }
        if let Some(sid) = &binding.sid {
            let session = self
                .db
                .session_by_sid(sid)
                .await
                .map_err(AgentError::from)?;
            if session.is_none_or(|s| s.ended_at.is_some()) {
                self.db
                    .end_agent_binding(&binding.id, "session_ended", self.now())
                    .await?;
                return Ok(BindingStatus { active: false });
            }
        }
        let active = self.db.agent_heartbeat(&binding.id, self.now()).await?;
        Ok(BindingStatus { active })
    }

    /// The card left the reader: its binding and the session it made end now.
    pub async fn agent_card_removed(&self, token: &str) -> Result<BindingStatus, AgentError> {
        let binding = self.binding_for(token).await?;
        self.end_binding(&binding, CARD_REMOVED).await?;
        metrics::counter!("careid_card_agent_events_total", "event" => "card_removed").increment(1);
        Ok(BindingStatus { active: false })
    }

    /// Ends a binding and (once, whoever gets there first) the session it made.
    async fn end_binding(&self, binding: &AgentBinding, reason: &str) -> Result<(), ServiceError> {
        let now = self.now();
        let ended = self.db.end_agent_binding(&binding.id, reason, now).await?;
        if let (true, Some(sid)) = (ended, &binding.sid) {
            self.end_session(sid, reason).await?;
        }
        Ok(())
    }

    /// Ends the sessions of agents silent for `card_agent.heartbeat_timeout_secs`, and bindings
    /// whose browser never finished. Returns how many bindings ended.
    pub async fn end_silent_agents(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let c = &self.config;
        let lapsed = self
            .db
            .lapsed_agent_bindings(
                now - c.card_agent.heartbeat_timeout_secs,
                now - c.tokens.login_flow_ttl_secs,
            )
            .await?;
        for binding in &lapsed {
            self.end_binding(binding, AGENT_SILENT).await?;
        }
        if !lapsed.is_empty() {
            metrics::counter!("careid_card_agent_events_total", "event" => "agent_silent")
                .increment(lapsed.len() as u64);
        }
        Ok(lapsed.len())
    }

    /// Whether session `sid` was made through the agent with a card (and so ends when the card
    /// leaves the reader).
    pub async fn session_is_card_bound(&self, sid: &str) -> Result<bool, ServiceError> {
        Ok(self.db.agent_binding_of_session(sid).await?.is_some())
    }
}
