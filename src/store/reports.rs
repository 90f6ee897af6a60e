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
}
