//! The `console_sessions` table: RA console sign-ins, keyed by the digest of their cookie.

use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;
use crate::model::console::ConsoleSession;

impl Db {
    pub async fn insert_console_session(
        &self,
        id_hash: &str,
        s: &ConsoleSession,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, access_token, user_uuid, auth_time, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash)
        .bind(&s.access_token)
        .bind(&s.user_uuid)
        .bind(s.auth_time)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn console_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query("SELECT * FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ConsoleSession {
            access_token: r.try_get("access_token")?,
            user_uuid: r.try_get("user_uuid")?,
            auth_time: r.try_get("auth_time")?,
            created_at: r.try_get("created_at")?,
            last_seen_at: r.try_get("last_seen_at")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }

    /// Records activity, only while the session is still within its idle window (`seen_after`):
    /// false when it had already lapsed, so a lapsed session cannot be revived by a late request.
    pub async fn touch_console_session(
        &self,
        id_hash: &str,
        now: UnixTime,
        seen_after: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at >= $3 AND expires_at > $1")
            .bind(now)
            .bind(id_hash)
            .bind(seen_after)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
