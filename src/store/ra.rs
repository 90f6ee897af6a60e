//! The `ra_role_grants` and `tac_issues` tables: RA roles granted by RA Managers, and the
//! temporary-access-card issue log (the TAC itself is an `authenticators` row with `expires_at`).

use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;
use crate::model::identity::Authenticator;
use crate::model::ra::{RaGrant, TacIssue};

fn grant_from(r: &AnyRow) -> Result<RaGrant, StoreError> {
    Ok(RaGrant {
        id: r.try_get("id")?,
        user_uuid: r.try_get("user_uuid")?,
        org_code: r.try_get("org_code")?,
        role: r.try_get("role")?,
        evidence: r.try_get("evidence")?,
        granted_by: r.try_get("granted_by")?,
        granted_at: r.try_get("granted_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

fn tac_from(r: &AnyRow) -> Result<TacIssue, StoreError> {
    Ok(TacIssue {
        id: r.try_get("id")?,
        authenticator_id: r.try_get("authenticator_id")?,
        user_uuid: r.try_get("user_uuid")?,
        tac_name: r.try_get("tac_name")?,
        reason: r.try_get("reason")?,
        issued_by: r.try_get("issued_by")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        returned_at: r.try_get("returned_at")?,
        returned_to: r.try_get("returned_to")?,
        person_roleids: r
            .try_get::<Option<String>, _>("person_roleids")?
            .map(|s| serde_json::from_str(&s))
            .transpose()?
            .unwrap_or_default(),
    })
}

impl Db {
    pub async fn insert_ra_grant(&self, g: &RaGrant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ra_role_grants (id, user_uuid, org_code, role, evidence, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&g.id)
        .bind(&g.user_uuid)
        .bind(&g.org_code)
        .bind(&g.role)
        .bind(g.evidence.clone())
        .bind(&g.granted_by)
        .bind(g.granted_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A user's grants that have not ended.
    pub async fn current_ra_grants(&self, user_uuid: &str) -> Result<Vec<RaGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM ra_role_grants WHERE user_uuid = $1 AND ended_at IS NULL ORDER BY granted_at, id",
        )
        .bind(user_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_from).collect()
    }

    pub async fn ra_grant(&self, id: &str) -> Result<Option<RaGrant>, StoreError> {
        let row = sqlx::query("SELECT * FROM ra_role_grants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(grant_from).transpose()
    }

    pub async fn end_ra_grant(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE ra_role_grants SET ended_at = $1, ended_by = $2 WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Binds the TAC's certificate (an authenticator that expires) and logs the issue, together.
    pub async fn insert_tac(&self, a: &Authenticator, issue: &TacIssue) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        super::users::insert_authenticator_row(&mut tx, a).await?;
        sqlx::query(
            "INSERT INTO tac_issues (id, authenticator_id, user_uuid, tac_name, reason, issued_by, issued_at, expires_at, person_roleids) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&issue.id)
        .bind(&issue.authenticator_id)
        .bind(&issue.user_uuid)
        .bind(&issue.tac_name)
        .bind(&issue.reason)
        .bind(&issue.issued_by)
        .bind(issue.issued_at)
        .bind(issue.expires_at)
        .bind(serde_json::to_string(&issue.person_roleids)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The issue of the TAC behind an authenticator, if it is one.
    pub async fn tac_issue_of_authenticator(
        &self,
        authenticator_id: &str,
    ) -> Result<Option<TacIssue>, StoreError> {
        let row = sqlx::query("SELECT * FROM tac_issues WHERE authenticator_id = $1")
            .bind(authenticator_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tac_from).transpose()
    }

    /// A person's TAC issues, newest first.
    pub async fn tac_issues_of(&self, user_uuid: &str) -> Result<Vec<TacIssue>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tac_issues WHERE user_uuid = $1 ORDER BY issued_at DESC, id",
        )
        .bind(user_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tac_from).collect()
    }

    pub async fn tac_issue(&self, id: &str) -> Result<Option<TacIssue>, StoreError> {
        let row = sqlx::query("SELECT * FROM tac_issues WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tac_from).transpose()
    }

    /// Records the return and locks the card, together; false if it was returned already.
    pub async fn return_tac(
        &self,
        issue: &TacIssue,
        by: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE tac_issues SET returned_at = $1, returned_to = $2 WHERE id = $3 AND returned_at IS NULL",
        )
        .bind(now)
        .bind(by)
        .bind(&issue.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE authenticators SET status = 'returned' WHERE id = $1")
            .bind(&issue.authenticator_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The TAC report: every issue (newest first) with its state at `now`, and issues per RA member.
    pub async fn report_tacs(&self, now: UnixTime) -> Result<Value, StoreError> {
        let rows = sqlx::query("SELECT * FROM tac_issues ORDER BY issued_at DESC, id")
            .fetch_all(self.pool())
            .await?;
        let issues: Vec<TacIssue> = rows.iter().map(tac_from).collect::<Result<_, _>>()?;
        let state = |t: &TacIssue| match (t.returned_at, t.expires_at <= now) {
            (Some(_), _) => "returned",
            (None, false) => "open",
            (None, true) => "overdue",
        };
        let mut per_issuer = std::collections::BTreeMap::<&str, i64>::new();
        for t in &issues {
            *per_issuer.entry(t.issued_by.as_str()).or_default() += 1;
        }
        Ok(json!({
            "open": issues.iter().filter(|t| state(t) == "open").count(),
            "overdue": issues.iter().filter(|t| state(t) == "overdue").count(),
            "issues_per_ra_member": per_issuer,
            "issues": issues.iter().map(|t| json!({
                "id": t.id, "tac_name": t.tac_name, "authenticator_id": t.authenticator_id,
                "uuid": t.user_uuid, "reason": t.reason, "issued_by": t.issued_by,
                "issued_at": t.issued_at, "expires_at": t.expires_at,
                "returned_at": t.returned_at, "returned_to": t.returned_to, "state": state(t),
            })).collect::<Vec<_>>(),
        }))
    }
}
