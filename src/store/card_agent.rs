//! The card agent's tables: `card_agent_requests` (codes shown on sign-in pages),
//! `card_agent_challenges` (single-use nonces) and `card_agent_bindings` (a card's sign-in, the
//! session it made and the agent's heartbeats). Secrets are stored as digests.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::card_agent::AgentBinding;
use crate::model::identity::{Authenticator, UserStatus};

/// A code's request: the flow it finishes and the binding a card made for it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRequest {
    pub code_hash: String,
    pub flow_key: String,
    pub expires_at: UnixTime,
    pub binding_id: Option<String>,
}

fn binding_from(r: &AnyRow) -> Result<AgentBinding, StoreError> {
    Ok(AgentBinding {
        id: r.try_get("id")?,
        authenticator_id: r.try_get("authenticator_id")?,
        user_uuid: r.try_get("user_uuid")?,
        sid: r.try_get("sid")?,
        created_at: r.try_get("created_at")?,
        last_heartbeat_at: r.try_get("last_heartbeat_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

fn request_from(r: &AnyRow) -> Result<AgentRequest, StoreError> {
    Ok(AgentRequest {
        code_hash: r.try_get("code_hash")?,
        flow_key: r.try_get("flow_key")?,
        expires_at: r.try_get("expires_at")?,
        binding_id: r.try_get("binding_id")?,
    })
}

impl Db {
    pub async fn insert_agent_request(
        &self,
        r: &AgentRequest,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO card_agent_requests (code_hash, flow_key, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&r.code_hash)
            .bind(&r.flow_key)
            .bind(now)
            .bind(r.expires_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The unexpired request with this code.
    pub async fn agent_request(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<AgentRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM card_agent_requests WHERE code_hash = $1 AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_from).transpose()
    }

    /// The unexpired request of a flow that a card has signed for, if any.
    pub async fn signed_agent_request_of_flow(
        &self,
        flow_key: &str,
        now: UnixTime,
    ) -> Result<Option<AgentRequest>, StoreError> {
        let row = sqlx::query("SELECT * FROM card_agent_requests WHERE flow_key = $1 AND expires_at > $2 AND binding_id IS NOT NULL")
            .bind(flow_key)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(request_from).transpose()
    }

    pub async fn insert_agent_challenge(
        &self,
        id: &str,
        code_hash: &str,
        nonce: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO card_agent_challenges (id, code_hash, nonce, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(code_hash)
            .bind(nonce)
            .bind(expires_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Takes a challenge: `(code_hash, nonce)` if it existed and had not expired, and it is gone
    /// either way. Of two concurrent takes, one gets it.
    pub async fn take_agent_challenge(
        &self,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT code_hash, nonce, expires_at FROM card_agent_challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let taken = sqlx::query("DELETE FROM card_agent_challenges WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        let expires_at: i64 = r.try_get("expires_at")?;
        if taken.rows_affected() != 1 || expires_at <= now {
            return Ok(None);
        }
        Ok(Some((r.try_get("code_hash")?, r.try_get("nonce")?)))
    }

    pub async fn agent_binding(&self, id: &str) -> Result<Option<AgentBinding>, StoreError> {
        let row = sqlx::query("SELECT * FROM card_agent_bindings WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(binding_from).transpose()
    }

    pub async fn agent_binding_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<AgentBinding>, StoreError> {
        let row = sqlx::query("SELECT * FROM card_agent_bindings WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(binding_from).transpose()
    }

    /// The binding that made session `sid`, if it was made through the agent.
    pub async fn agent_binding_of_session(
        &self,
        sid: &str,
    ) -> Result<Option<AgentBinding>, StoreError> {
        let row = sqlx::query("SELECT * FROM card_agent_bindings WHERE sid = $1")
            .bind(sid)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(binding_from).transpose()
    }

    /// Records a heartbeat of an open binding; false if it has ended.
    pub async fn agent_heartbeat(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE card_agent_bindings SET last_heartbeat_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a binding; true if this call ended it.
    pub async fn end_agent_binding(
        &self,
        id: &str,
        reason: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE card_agent_bindings SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Open bindings whose agent has not been heard since `silent_since`, and open bindings that
    /// never made a session and were made before `unused_since` (their sign-in was abandoned).
    pub async fn lapsed_agent_bindings(
        &self,
        silent_since: UnixTime,
        unused_since: UnixTime,
    ) -> Result<Vec<AgentBinding>, StoreError> {
        let rows = sqlx::query("SELECT * FROM card_agent_bindings WHERE ended_at IS NULL AND (last_heartbeat_at < $1 OR (sid IS NULL AND created_at < $2)) LIMIT 500")
            .bind(silent_since)
            .bind(unused_since)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(binding_from).collect()
    }

    /// An authenticator by id with its user's status (None when the user does not exist).
    pub async fn authenticator_with_user_status(
        &self,
        id: &str,
    ) -> Result<Option<(Authenticator, Option<UserStatus>)>, StoreError> {
        let row = sqlx::query("SELECT a.*, u.status AS user_status FROM authenticators a LEFT JOIN users u ON u.uuid = a.user_uuid WHERE a.id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(super::users::with_user_status).transpose()
    }
}

impl WriteSet {
    /// A card's signature for a request: the binding, written only if the request is still
    /// waiting (the guard: one card, once).
    pub fn bind_agent_request(
        code_hash: &str,
        b: &AgentBinding,
        token_hash: &str,
        now: UnixTime,
    ) -> WriteSet {
        let mut set = WriteSet::guarded(
            "UPDATE card_agent_requests SET binding_id = $1 WHERE code_hash = $2 AND binding_id IS NULL AND expires_at > $3",
            vec![b.id.clone().into(), code_hash.to_string().into(), now.into()],
        );
        set.insert(
            "card_agent_bindings (id, token_hash, authenticator_id, user_uuid, created_at, last_heartbeat_at)",
            vec![
                b.id.clone().into(),
                token_hash.to_string().into(),
                b.authenticator_id.clone().into(),
                b.user_uuid.clone().into(),
                b.created_at.into(),
                b.last_heartbeat_at.into(),
            ],
        );
        set
    }

    /// The session a binding's sign-in made (or refreshed).
    pub fn bind_agent_session(&mut self, binding_id: &str, sid: &str) {
        self.execute(
            "UPDATE card_agent_bindings SET sid = $1 WHERE id = $2 AND ended_at IS NULL",
            vec![sid.to_string().into(), binding_id.to_string().into()],
        );
    }
}
