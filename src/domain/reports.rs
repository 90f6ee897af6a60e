//! Reports for RA Managers and operators: active users by organisation, positions in use,
//! authenticators by type, and temporary access cards issued (open, overdue, per RA member).

use super::ra::answers::Report;

use crate::clock::UnixTime;
use crate::store::{Db, StoreError};

pub const REPORTS: [&str; 4] = [
    "active-users-by-org",
    "positions-in-use",
    "authenticators-by-type",
    "tacs-issued",
];

/// The named report at `now`, or None for an unknown name.
pub async fn run(db: &Db, name: &str, now: UnixTime) -> Result<Option<Report>, StoreError> {
    let rows = match name {
        "active-users-by-org" => db.report_active_users_by_org(now).await?,
        "positions-in-use" => db.report_positions_in_use(now).await?,
        "authenticators-by-type" => db.report_authenticators_by_type().await?,
        "tacs-issued" => db.report_tacs(now).await?,
        _ => return Ok(None),
    };
    Ok(Some(Report {
        report: name.to_string(),
        generated_at: now,
        rows,
    }))
}
