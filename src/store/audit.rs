//! The `audit_events` table: an append-only record of authentications, token issuance and
//! administrative actions. Rows are only ever inserted.

use serde_json::Value;
use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: UnixTime,
    /// What happened, e.g. `login.smartcard`, `token.issued`, `client.registered`.
    pub kind: String,
    /// `success`, or the reason it failed.
    pub outcome: String,
    /// The user or operator responsible, when known.
    pub actor: Option<String>,
    pub client_id: Option<String>,
    pub detail: Value,
}

impl Db {
    pub async fn append_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_events (at, kind, outcome, actor, client_id, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(e.at)
            .bind(&e.kind)
            .bind(&e.outcome)
            .bind(e.actor.clone())
            .bind(e.client_id.clone())
            .bind(e.detail.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The most recent events, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, outcome, actor, client_id, detail FROM audit_events ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    outcome: r.try_get("outcome")?,
                    actor: r.try_get("actor")?,
                    client_id: r.try_get("client_id")?,
                    detail: serde_json::from_str(&r.try_get::<String, _>("detail")?)?,
                })
            })
            .collect()
    }
}
