//! The `refresh_tokens` table. A token is stored by its SHA-256. Rotating marks it used in the
//! commit that writes its successor, guarded by `used_at IS NULL AND revoked_at IS NULL`, so a
//! token rotates once, a second presentation is detected, and a reuse that revokes the family
//! always finds the successor.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::grant::CodeGrant;

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub family_id: String,
    pub client_id: String,
    pub user_uuid: String,
    pub sid: Option<String>,
    pub grant: CodeGrant,
    pub offline: bool,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub family_expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
}

fn record_from(r: &AnyRow) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        family_id: r.try_get("family_id")?,
        client_id: r.try_get("client_id")?,
        user_uuid: r.try_get("user_uuid")?,
        sid: r.try_get("sid")?,
        grant: from_json(&r.try_get::<String, _>("grant_json")?)?,
        offline: r.try_get::<i64, _>("offline")? == 1,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        family_expires_at: r.try_get("family_expires_at")?,
        used_at: r.try_get("used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Db {
    pub async fn insert_refresh_token(
        &self,
        token_hash: &str,
        r: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.insert_refresh_token(token_hash, r)?;
        self.commit(set).await?;
        Ok(())
    }

    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record_from).transpose()
    }

    pub async fn revoke_refresh_family(
        &self,
        family_id: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Revokes the session-bound refresh tokens of a session (offline ones outlive it).
    pub async fn revoke_refresh_tokens_of_session(
        &self,
        sid: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE sid = $2 AND offline = 0 AND revoked_at IS NULL").bind(now).bind(sid).execute(self.writer()).await?;
        Ok(done.rows_affected())
    }

    pub async fn revoke_refresh_tokens_of_user(
        &self,
        user_uuid: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_uuid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_uuid)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }
}

impl WriteSet {
    /// A set written only if it marks the refresh token used (rotated) while it is neither used
    /// nor revoked: of concurrent presentations one rotates, the others get
    /// [`StoreError::GuardFailed`] and write nothing.
    pub fn rotating_refresh_token(token_hash: &str, now: UnixTime) -> WriteSet {
        WriteSet::guarded(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
            vec![now.into(), token_hash.into()],
        )
    }

    pub fn insert_refresh_token(
        &mut self,
        token_hash: &str,
        r: &RefreshRecord,
    ) -> Result<(), StoreError> {
        self.insert(
            "refresh_tokens (token_hash, family_id, client_id, user_uuid, sid, grant_json, offline, issued_at, expires_at, family_expires_at)",
            vec![
                token_hash.into(),
                (&r.family_id).into(),
                (&r.client_id).into(),
                (&r.user_uuid).into(),
                r.sid.clone().into(),
                serde_json::to_string(&r.grant)?.into(),
                i64::from(r.offline).into(),
                r.issued_at.into(),
                r.expires_at.into(),
                r.family_expires_at.into(),
            ],
        );
        Ok(())
    }
}
