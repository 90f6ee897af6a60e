//! Read-only aggregate queries behind `careid report` and `/admin/api/v1/reports`.

use serde_json::{json, Value};
use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;

/// The condition for an assignment that gives access at `$1`.
const CURRENT: &str = "a.starts_at <= $1 AND (a.ends_at IS NULL OR a.ends_at > $1)";

impl Db {
    /// Active identities holding at least one current role, per organisation.
    pub async fn report_active_users_by_org(&self, now: UnixTime) -> Result<Value, StoreError> {
        let sql = format!(
            "SELECT a.org_code, o.org_name, COUNT(DISTINCT a.user_uuid) AS users FROM role_assignments a \
             JOIN users u ON u.uuid = a.user_uuid LEFT JOIN organisations o ON o.org_code = a.org_code \
             WHERE u.status = 'active' AND {CURRENT} GROUP BY a.org_code, o.org_name ORDER BY a.org_code"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok(json!({ "org_code": r.try_get::<String, _>("org_code")?, "org_name": r.try_get::<Option<String>, _>("org_name")?, "active_users": r.try_get::<i64, _>("users")? })))
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Value::Array)
    }

    /// Positions with at least one current holder, and how many.
    pub async fn report_positions_in_use(&self, now: UnixTime) -> Result<Value, StoreError> {
        let sql = format!(
            "SELECT p.id, p.org_code, p.name, COUNT(DISTINCT a.user_uuid) AS holders FROM positions p \
             JOIN role_assignments a ON a.position_id = p.id WHERE {CURRENT} GROUP BY p.id, p.org_code, p.name ORDER BY p.org_code, p.name"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(json!({ "position_id": r.try_get::<String, _>("id")?, "org_code": r.try_get::<String, _>("org_code")?, "name": r.try_get::<String, _>("name")?, "holders": r.try_get::<i64, _>("holders")? }))
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Value::Array)
    }

    /// Bound authenticators by kind and status.
    pub async fn report_authenticators_by_type(&self) -> Result<Value, StoreError> {
        let rows = sqlx::query("SELECT kind, status, COUNT(*) AS n FROM authenticators GROUP BY kind, status ORDER BY kind, status").fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok(json!({ "kind": r.try_get::<String, _>("kind")?, "status": r.try_get::<String, _>("status")?, "count": r.try_get::<i64, _>("n")? })))
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Value::Array)
    }

    /// TACs past their expiry and not yet returned (policy 002 §6.3: each is accounted for).
    pub async fn report_tacs_overdue(&self, now: UnixTime) -> Result<Value, StoreError> {
        let rows = sqlx::query("SELECT id, tac_name, user_uuid, reason, issued_by, issued_at, expires_at FROM tac_issues WHERE returned_at IS NULL AND expires_at <= $1 ORDER BY expires_at, id")
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(json!({ "tac": r.try_get::<String, _>("id")?, "tac_name": r.try_get::<String, _>("tac_name")?, "uuid": r.try_get::<String, _>("user_uuid")?,
                    "reason": r.try_get::<String, _>("reason")?, "issued_by": r.try_get::<String, _>("issued_by")?,
                    "issued_at": r.try_get::<i64, _>("issued_at")?, "expired_at": r.try_get::<i64, _>("expires_at")? }))
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Value::Array)
    }

    /// People who held a position but hold none now (or whose identity is closed), and still
    /// have a working authenticator: leavers who can still sign in somewhere.
    pub async fn report_leavers_with_access(&self, now: UnixTime) -> Result<Value, StoreError> {
        let sql = format!(
            "SELECT u.uuid, u.given_name, u.family_name, u.status, COUNT(DISTINCT au.id) AS working FROM users u \
             JOIN authenticators au ON au.user_uuid = u.uuid AND au.status = 'active' AND (au.expires_at IS NULL OR au.expires_at > $1) \
             WHERE EXISTS (SELECT 1 FROM role_assignments a WHERE a.user_uuid = u.uuid) \
             AND (u.status = 'closed' OR NOT EXISTS (SELECT 1 FROM role_assignments a WHERE a.user_uuid = u.uuid AND {CURRENT})) \
             GROUP BY u.uuid, u.given_name, u.family_name, u.status ORDER BY u.family_name, u.given_name, u.uuid"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(json!({ "uuid": r.try_get::<String, _>("uuid")?, "given_name": r.try_get::<String, _>("given_name")?,
                    "family_name": r.try_get::<String, _>("family_name")?, "status": r.try_get::<String, _>("status")?,
                    "working_authenticators": r.try_get::<i64, _>("working")? }))
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Value::Array)
    }

    /// RA work done in a period: each `admin.*` audit event kind and how many succeeded.
    pub async fn report_ra_activity(
        &self,
        from: UnixTime,
        until: UnixTime,
    ) -> Result<Value, StoreError> {
        let rows = sqlx::query("SELECT kind, COUNT(*) AS n FROM audit_events WHERE at >= $1 AND at < $2 AND kind LIKE 'admin.%' AND outcome = 'success' GROUP BY kind ORDER BY kind")
            .bind(from)
            .bind(until)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok(json!({ "event": r.try_get::<String, _>("kind")?, "count": r.try_get::<i64, _>("n")? })))
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Value::Array)
    }
}
