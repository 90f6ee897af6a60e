//! The `access_requests` table: sponsor approval before RA staff assign a position.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;
use crate::model::access_request::AccessRequest;

fn request_from(r: &AnyRow) -> Result<AccessRequest, StoreError> {
    let ids: Option<String> = r.try_get("person_roleids")?;
    Ok(AccessRequest {
        id: r.try_get("id")?,
        user_uuid: r.try_get("user_uuid")?,
        position_id: r.try_get("position_id")?,
        reason: r.try_get("reason")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        status: r.try_get("status")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        decision_note: r.try_get("decision_note")?,
        fulfilled_by: r.try_get("fulfilled_by")?,
        fulfilled_at: r.try_get("fulfilled_at")?,
        person_roleids: ids
            .map(|s| serde_json::from_str(&s))
            .transpose()?
            .unwrap_or_default(),
    })
}

impl Db {
    pub async fn insert_access_request(&self, a: &AccessRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_requests (id, user_uuid, position_id, reason, requested_by, requested_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(&a.user_uuid)
        .bind(&a.position_id)
        .bind(&a.reason)
        .bind(&a.requested_by)
        .bind(a.requested_at)
        .bind(&a.status)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn access_request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(request_from).transpose()
    }

    /// Requests in a status (all when None), oldest first, at most `limit`.
    pub async fn access_requests(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let rows = match status {
            Some(status) => {
                sqlx::query("SELECT * FROM access_requests WHERE status = $1 ORDER BY requested_at, id LIMIT $2")
                    .bind(status)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM access_requests ORDER BY requested_at, id LIMIT $1")
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(request_from).collect()
    }

    /// Approves or rejects a pending request; false if it was not pending any more.
    pub async fn decide_access_request(
        &self,
        id: &str,
        status: &str,
        by: &str,
        note: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE access_requests SET status = $1, decided_by = $2, decided_at = $3, decision_note = $4 \
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(status)
        .bind(by)
        .bind(now)
        .bind(note)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims an approved request for carrying out (one caller wins); false if it was not approved.
    pub async fn claim_access_request(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE access_requests SET status = 'fulfilled', fulfilled_by = $1, fulfilled_at = $2 \
             WHERE id = $3 AND status = 'approved'",
        )
        .bind(by)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// After the assignment: the roles it made; or, when it failed, the request is approved again.
    pub async fn finish_access_request(
        &self,
        id: &str,
        person_roleids: Option<&[String]>,
    ) -> Result<(), StoreError> {
        match person_roleids {
            Some(ids) => {
                sqlx::query("UPDATE access_requests SET person_roleids = $1 WHERE id = $2")
                    .bind(serde_json::to_string(ids)?)
                    .bind(id)
                    .execute(self.writer())
                    .await?;
            }
            None => {
                sqlx::query("UPDATE access_requests SET status = 'approved', fulfilled_by = NULL, fulfilled_at = NULL WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
            }
        }
        Ok(())
    }
}
