//! The `terms_acceptances` table: which version of the terms each user accepted, and when.

use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;

impl Db {
    pub async fn terms_accepted(
        &self,
        user_uuid: &str,
        version: &str,
    ) -> Result<Option<UnixTime>, StoreError> {
        let row = sqlx::query(
            "SELECT accepted_at FROM terms_acceptances WHERE user_uuid = $1 AND version = $2",
        )
        .bind(user_uuid)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok(r.try_get("accepted_at")?)).transpose()
    }

    pub async fn record_terms_acceptance(
        &self,
        user_uuid: &str,
        version: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO terms_acceptances (user_uuid, version, accepted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING").bind(user_uuid).bind(version).bind(now).execute(self.writer()).await?;
        Ok(())
    }

    /// Removes a user's acceptances (tests, and an RA asking a user to accept again).
    pub async fn forget_terms_acceptances(&self, user_uuid: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM terms_acceptances WHERE user_uuid = $1")
                .bind(user_uuid)
                .execute(self.writer())
                .await?
                .rows_affected(),
        )
    }
}
