//! Periodic jobs shared by several processes: a lease per job (one holder at a time) and the
//! housekeeping deletes of rows nothing can use any more.

use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;

/// How many rows each housekeeping pass removed, by table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    pub login_flows: u64,
    pub auth_codes: u64,
    pub assertion_jtis: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub logout_outbox: u64,
    pub webauthn_ceremonies: u64,
    pub webauthn_invitations: u64,
    pub console_sessions: u64,
    pub card_agent_requests: u64,
    pub card_agent_challenges: u64,
    pub card_agent_bindings: u64,
}

impl Db {
    /// Takes (or renews) the lease on `job` for `holder` until `until`; false if another holder
    /// has it. One statement each, so two processes cannot both win.
    pub async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, StoreError> {
        sqlx::query("INSERT INTO job_leases (job, holder, held_until) VALUES ($1, '', 0) ON CONFLICT DO NOTHING").bind(job).execute(self.writer()).await?;
        let done = sqlx::query("UPDATE job_leases SET holder = $1, held_until = $2 WHERE job = $3 AND (held_until < $4 OR holder = $1)")
            .bind(holder)
            .bind(until)
            .bind(job)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes what has expired. `keep` is how long expired rows stay for diagnosis and for
    /// detecting reuse (a code presented again after its expiry is still recognised as reused).
    pub async fn purge_expired(&self, now: UnixTime, keep: i64) -> Result<Purged, StoreError> {
        let before = now - keep;
        let run = |sql: &'static str| async move {
            Ok::<u64, StoreError>(
                sqlx::query(sql)
                    .bind(before)
                    .execute(self.writer())
                    .await?
                    .rows_affected(),
            )
        };
        Ok(Purged {
            login_flows: run("DELETE FROM login_flows WHERE expires_at < $1").await?,
            auth_codes: run("DELETE FROM auth_codes WHERE expires_at < $1").await?,
            assertion_jtis: run("DELETE FROM assertion_jtis WHERE expires_at < $1").await?,
            access_tokens: run("DELETE FROM access_tokens WHERE expires_at < $1").await?,
            refresh_tokens: run(
                "DELETE FROM refresh_tokens WHERE family_expires_at < $1 OR expires_at < $1",
            )
            .await?,
            sessions: run("DELETE FROM sessions WHERE absolute_expiry < $1 OR ended_at < $1")
                .await?,
            logout_outbox: run(
                "DELETE FROM logout_outbox WHERE delivered_at < $1 OR failed_at < $1",
            )
            .await?,
            webauthn_ceremonies: run("DELETE FROM webauthn_ceremonies WHERE expires_at < $1")
                .await?,
            webauthn_invitations: run("DELETE FROM webauthn_invitations WHERE expires_at < $1")
                .await?,
            console_sessions: run("DELETE FROM console_sessions WHERE expires_at < $1").await?,
            card_agent_requests: run("DELETE FROM card_agent_requests WHERE expires_at < $1")
                .await?,
            card_agent_challenges: run("DELETE FROM card_agent_challenges WHERE expires_at < $1")
                .await?,
            card_agent_bindings: run("DELETE FROM card_agent_bindings WHERE ended_at < $1").await?,
        })
    }

    /// Row counts used by tests and reports.
    pub async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        let allowed = [
            "login_flows",
            "auth_codes",
            "assertion_jtis",
            "access_tokens",
            "refresh_tokens",
            "sessions",
            "logout_outbox",
            "audit_events",
        ];
        if !allowed.contains(&table) {
            return Err(StoreError::Corrupt(format!("unknown table {table}")));
        }
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}
