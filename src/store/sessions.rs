//! The `sessions` and `login_flows` tables: sign-in sessions behind the cookie (stored by the
//! SHA-256 of the cookie secret) and authorization requests waiting for the user.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::grant::{FlowStep, PendingFlow};
use crate::model::session::Session;

fn session_from(r: &AnyRow) -> Result<Session, StoreError> {
    Ok(Session {
        sid: r.try_get("sid")?,
        user_uuid: r.try_get("user_uuid")?,
        authenticator_id: r.try_get("authenticator_id")?,
        amr: r.try_get("amr")?,
        aal: r.try_get("aal")?,
        auth_time: r.try_get("auth_time")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        absolute_expiry: r.try_get("absolute_expiry")?,
        ended_at: r.try_get("ended_at")?,
    })
}

impl WriteSet {
    /// A set written only if it removes the pending flow: a flow completes once, and of two
    /// concurrent completions the second writes nothing ([`StoreError::GuardFailed`]).
    pub fn taking_login_flow(id: &str) -> WriteSet {
        WriteSet::guarded("DELETE FROM login_flows WHERE id = $1", vec![id.into()])
    }
}

impl Db {
    pub async fn insert_session(&self, secret_hash: &str, s: &Session) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.insert_session(secret_hash, s);
        self.commit(set).await?;
        Ok(())
    }

    pub async fn session_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from).transpose()
    }

    pub async fn session_by_sid(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from).transpose()
    }

    pub async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.touch_session(sid, now);
        self.commit(set).await?;
        Ok(())
    }

    /// The sids of a user's sessions that have not ended.
    pub async fn open_sessions_of_user(&self, user_uuid: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT sid FROM sessions WHERE user_uuid = $1 AND ended_at IS NULL")
                .bind(user_uuid)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok(r.try_get("sid")?)).collect()
    }

    /// Open sessions that an authenticator signed in.
    pub async fn open_sessions_of_authenticator(
        &self,
        authenticator_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT sid FROM sessions WHERE authenticator_id = $1 AND ended_at IS NULL",
        )
        .bind(authenticator_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("sid")?)).collect()
    }

    /// Ends a session; false if it had already ended.
    pub async fn end_session(
        &self,
        sid: &str,
        reason: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE sid = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(sid)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A pending flow, stored under `key` (the digest of its id), that has not expired at `now`.
    pub async fn login_flow(
        &self,
        key: &str,
        now: UnixTime,
    ) -> Result<Option<PendingFlow>, StoreError> {
        let row = sqlx::query(
            "SELECT request, step, browser_hash, sid, auth_time, created_at FROM login_flows WHERE id = $1 AND expires_at > $2",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let step: String = r.try_get("step")?;
            Ok(PendingFlow {
                request: from_json(&r.try_get::<String, _>("request")?)?,
                step: FlowStep::parse(&step)
                    .ok_or_else(|| StoreError::Corrupt(format!("login flow step {step}")))?,
                browser_hash: r.try_get("browser_hash")?,
                sid: r.try_get("sid")?,
                auth_time: r.try_get("auth_time")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Removes a flow on its own; true if this call removed it.
    pub async fn take_login_flow(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .commit_guarded(WriteSet::taking_login_flow(id))
            .await?
            .is_some())
    }
}

impl WriteSet {
    /// Re-authentication of the same user: new cookie secret (no fixation), same `sid`. (If the
    /// session ends before the set commits, this changes nothing, and the code issued with it is
    /// refused at `/token`, since its session has ended.)
    pub fn reauthenticate_session(&mut self, sid: &str, new_secret_hash: &str, s: &Session) {
        self.execute(
            "UPDATE sessions SET secret_hash = $1, authenticator_id = $2, amr = $3, aal = $4, auth_time = $5, last_seen_at = $6, absolute_expiry = $7 \
             WHERE sid = $8 AND ended_at IS NULL",
            vec![
                new_secret_hash.into(),
                (&s.authenticator_id).into(),
                (&s.amr).into(),
                s.aal.into(),
                s.auth_time.into(),
                s.last_seen_at.into(),
                s.absolute_expiry.into(),
                sid.into(),
            ],
        );
    }

    /// Notes that an open session was used (the idle timeout restarts).
    pub fn touch_session(&mut self, sid: &str, now: UnixTime) {
        self.execute(
            "UPDATE sessions SET last_seen_at = $1 WHERE sid = $2 AND ended_at IS NULL",
            vec![now.into(), sid.into()],
        );
    }

    pub fn insert_session(&mut self, secret_hash: &str, s: &Session) {
        self.insert(
            "sessions (secret_hash, sid, user_uuid, authenticator_id, amr, aal, auth_time, created_at, last_seen_at, absolute_expiry)",
            vec![
                secret_hash.into(),
                (&s.sid).into(),
                (&s.user_uuid).into(),
                (&s.authenticator_id).into(),
                (&s.amr).into(),
                s.aal.into(),
                s.auth_time.into(),
                s.created_at.into(),
                s.last_seen_at.into(),
                s.absolute_expiry.into(),
            ],
        );
    }

    /// A started sign-in (or its role or terms step), waiting for the user, under `key`.
    pub fn insert_login_flow(
        &mut self,
        key: &str,
        flow: &PendingFlow,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.insert(
            "login_flows (id, client_id, request, created_at, expires_at, step, browser_hash, sid, auth_time)",
            vec![
                key.into(),
                (&flow.request.client_id).into(),
                serde_json::to_string(&flow.request)?.into(),
                flow.created_at.into(),
                expires_at.into(),
                flow.step.as_str().into(),
                flow.browser_hash.clone().into(),
                flow.sid.clone().into(),
                flow.auth_time.into(),
            ],
        );
        Ok(())
    }
}
