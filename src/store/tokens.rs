//! The `access_tokens` and `assertion_jtis` tables: a record of every access token issued (so it
//! can be revoked before it expires) and the replay store for client-assertion `jti`s.

use sqlx::Row;

use super::{Db, StoreError, WriteSet};
use crate::clock::UnixTime;

#[derive(Debug, Clone)]
pub struct AccessTokenRecord {
    pub jti: String,
    pub client_id: String,
    pub user_uuid: Option<String>,
    pub sid: Option<String>,
    pub code_hash: Option<String>,
    pub scope: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// The refresh-token family it was issued with, if any: revoking the family revokes it.
    pub family_id: Option<String>,
}

impl WriteSet {
    /// Records an issued access token.
    pub fn insert_access_token(&mut self, t: &AccessTokenRecord) {
        self.insert(
            "access_tokens (jti, client_id, user_uuid, sid, code_hash, scope, issued_at, expires_at, family_id)",
            vec![
                (&t.jti).into(),
                (&t.client_id).into(),
                t.user_uuid.clone().into(),
                t.sid.clone().into(),
                t.code_hash.clone().into(),
                (&t.scope).into(),
                t.issued_at.into(),
                t.expires_at.into(),
                t.family_id.clone().into(),
            ],
        );
    }
}

impl Db {
    pub async fn insert_access_token(&self, t: &AccessTokenRecord) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.insert_access_token(t);
        self.commit(set).await?;
        Ok(())
    }

    /// True when the token is on record and not revoked.
    pub async fn access_token_active(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT revoked_at FROM access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>("revoked_at")?.is_none(),
            None => false,
        })
    }

    /// After a code was presented twice: marks the code as replayed and revokes every token
    /// issued from it. (Tokens are written in the commit that marks their code used, so once a
    /// replay is seen they are all there; and a code marked replayed is never redeemed: see
    /// [`WriteSet::redeeming_code`].) Returns how many were revoked.
    pub async fn revoke_tokens_of_code(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let mut set = WriteSet::new();
        set.execute(
            "UPDATE auth_codes SET replayed_at = $1 WHERE code_hash = $2 AND replayed_at IS NULL",
            vec![now.into(), code_hash.into()],
        );
        let revoke = set.execute(
            "UPDATE access_tokens SET revoked_at = $1 WHERE code_hash = $2 AND revoked_at IS NULL",
            vec![now.into(), code_hash.into()],
        );
        let written = self.commit(set).await?;
        Ok(written.get(revoke).map_or(0, |w| w.rows_affected))
    }

    /// The record of an unrevoked access token.
    pub async fn active_access_token(
        &self,
        jti: &str,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE jti = $1 AND revoked_at IS NULL")
            .bind(jti)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(AccessTokenRecord {
                jti: r.try_get("jti")?,
                client_id: r.try_get("client_id")?,
                user_uuid: r.try_get("user_uuid")?,
                sid: r.try_get("sid")?,
                code_hash: r.try_get("code_hash")?,
                scope: r.try_get("scope")?,
                issued_at: r.try_get("issued_at")?,
                expires_at: r.try_get("expires_at")?,
                family_id: r.try_get("family_id")?,
            })
        })
        .transpose()
    }

    pub async fn revoke_access_token(&self, jti: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(jti)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes the access tokens issued with a refresh-token family.
    pub async fn revoke_access_tokens_of_family(
        &self,
        family_id: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Revokes every access token of a user (suspension, leaver).
    pub async fn revoke_access_tokens_of_user(
        &self,
        user_uuid: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE user_uuid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_uuid)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// The clients that were issued tokens in a session: who must hear of its end.
    pub async fn clients_of_session(&self, sid: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT client_id FROM access_tokens WHERE sid = $1")
            .bind(sid)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("client_id")?)).collect()
    }

    /// Revokes every token of a session.
    pub async fn revoke_tokens_of_session(
        &self,
        sid: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(sid)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Records a client-assertion `jti`; false if it was already seen (a replay).
    pub async fn record_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
