//! The `logout_outbox` table: back-channel logouts waiting to be delivered. Any number of
//! processes poll it; a row is claimed with one conditional UPDATE, so only one process holds it
//! at a time, and a crashed holder's claim lapses after its lease.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub sid: String,
    pub user_uuid: String,
    pub uri: String,
    pub created_at: UnixTime,
    pub attempts: i64,
    pub delivered_at: Option<UnixTime>,
    pub failed_at: Option<UnixTime>,
    pub last_error: Option<String>,
}

fn delivery_from(r: &AnyRow) -> Result<LogoutDelivery, StoreError> {
    Ok(LogoutDelivery {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        sid: r.try_get("sid")?,
        user_uuid: r.try_get("user_uuid")?,
        uri: r.try_get("uri")?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        delivered_at: r.try_get("delivered_at")?,
        failed_at: r.try_get("failed_at")?,
        last_error: r.try_get("last_error")?,
    })
}

impl Db {
    pub async fn enqueue_logout(
        &self,
        d: &LogoutDelivery,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO logout_outbox (id, client_id, sid, user_uuid, uri, created_at, next_attempt_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)")
            .bind(&d.id)
            .bind(&d.client_id)
            .bind(&d.sid)
            .bind(&d.user_uuid)
            .bind(&d.uri)
            .bind(now)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Claims the next due delivery for `owner` until `now + lease`, or None.
    /// Claims the next due delivery, for none of the `busy` clients (those already at their
    /// limit of deliveries in flight here).
    pub async fn claim_logout(
        &self,
        owner: &str,
        now: UnixTime,
        lease: i64,
        busy: &[String],
    ) -> Result<Option<LogoutDelivery>, StoreError> {
        let not_busy = if busy.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = (0..busy.len()).map(|i| format!("${}", i + 4)).collect();
            format!("AND client_id NOT IN ({}) ", list.join(", "))
        };
        let sql = format!(
            "UPDATE logout_outbox SET locked_until = $1, lock_owner = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM logout_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3 \
                         AND (locked_until IS NULL OR locked_until < $3) {not_busy}ORDER BY next_attempt_at LIMIT 1) \
             AND delivered_at IS NULL AND failed_at IS NULL AND (locked_until IS NULL OR locked_until < $3) RETURNING *"
        );
        let mut query = sqlx::query(&sql).bind(now + lease).bind(owner).bind(now);
        for client in busy {
            query = query.bind(client);
        }
        let row = query.fetch_optional(self.writer()).await?;
        row.as_ref().map(delivery_from).transpose()
    }

    /// Hands back what `owner` claimed and did not finish (at shutdown); how many.
    pub async fn release_logout_claims(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE logout_outbox SET locked_until = NULL WHERE lock_owner = $1 AND locked_until IS NOT NULL AND delivered_at IS NULL AND failed_at IS NULL")
            .bind(owner)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn logout_delivered(
        &self,
        id: &str,
        owner: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE logout_outbox SET delivered_at = $1, locked_until = NULL, last_error = NULL WHERE id = $2 AND lock_owner = $3").bind(now).bind(id).bind(owner).execute(self.writer()).await?;
        Ok(())
    }

    pub async fn logout_failed(
        &self,
        id: &str,
        owner: &str,
        now: UnixTime,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE logout_outbox SET failed_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3 AND lock_owner = $4").bind(now).bind(error).bind(id).bind(owner).execute(self.writer()).await?;
        Ok(())
    }

    pub async fn logout_retry_at(
        &self,
        id: &str,
        owner: &str,
        next_attempt_at: UnixTime,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE logout_outbox SET next_attempt_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3 AND lock_owner = $4")
            .bind(next_attempt_at)
            .bind(error)
            .bind(id)
            .bind(owner)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Every delivery of a session (for tests and operators).
    pub async fn logouts_of_session(&self, sid: &str) -> Result<Vec<LogoutDelivery>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM logout_outbox WHERE sid = $1 ORDER BY created_at, id")
                .bind(sid)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(delivery_from).collect()
    }
}
