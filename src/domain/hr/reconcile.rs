//! The reconciliation report: HR records against identities. One row per discrepancy, with
//! the same columns for every kind so it reads as CSV too:
//! - `unlinked`: an HR person with no Care Identity (their events wait);
//! - `link_broken`: linked to a UUID that does not exist or is closed;
//! - `access_without_hr_assignment`: a current role at an organisation the feed covers that no
//!   HR assignment gave (an RA's own assignment: check it is still wanted);
//! - `left_with_access`: a leaver who still holds a current role at that organisation;
//! - `details_mismatch`: HR's personal details differ from the identity's.

use serde_json::{json, Value};

use super::apply::differences;
use crate::clock::UnixTime;
use crate::model::identity::UserStatus;
use crate::model::rbac::within;
use crate::store::{Db, StoreError};

const PAGE: i64 = 500;

fn row(
    issue: &str,
    org: &str,
    person: Option<&str>,
    uuid: Option<&str>,
    role: Option<&str>,
    detail: String,
) -> Value {
    json!({ "issue": issue, "org_code": org, "person_id": person, "uuid": uuid, "person_roleid": role, "detail": detail })
}

/// Every discrepancy at `now`.
pub async fn reconciliation(db: &Db, now: UnixTime) -> Result<Vec<Value>, StoreError> {
    let mut rows = Vec::new();
    let mut after = (String::new(), String::new());
    loop {
        let page = db.hr_people_page((&after.0, &after.1), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = (last.org_code.clone(), last.person_id.clone());
        for p in &page {
            let (org, person) = (p.org_code.as_str(), Some(p.person_id.as_str()));
            let Some(uuid) = &p.user_uuid else {
                rows.push(row(
                    "unlinked",
                    org,
                    person,
                    None,
                    None,
                    "no identity_link event has linked this HR person to a Care Identity".into(),
                ));
                continue;
            };
            let user = match db.user(uuid).await? {
                Some(u) if u.status != UserStatus::Closed => u,
                _ => {
                    rows.push(row(
                        "link_broken",
                        org,
                        person,
                        Some(uuid),
                        None,
                        "the linked Care Identity does not exist or is closed".into(),
                    ));
                    continue;
                }
            };
            if p.left_at.is_some_and(|l| l <= now) {
                for (a, _) in db.current_assignments(uuid, now).await? {
                    if within(&a.org_code, org) {
                        rows.push(row(
                            "left_with_access",
                            org,
                            person,
                            Some(uuid),
                            Some(&a.person_roleid),
                            "left, but still holds this role".into(),
                        ));
                    }
                }
            }
            if let Some(hr) = &p.details {
                let fields: Vec<String> = differences(&user, &db.personal_details(uuid).await?, hr)
                    .into_iter()
                    .map(|c| c.field)
                    .collect();
                if !fields.is_empty() {
                    rows.push(row(
                        "details_mismatch",
                        org,
                        person,
                        Some(uuid),
                        None,
                        format!("differs in {}", fields.join(", ")),
                    ));
                }
            }
        }
    }
    for org in db.hr_organisations().await? {
        for (uuid, role) in db.access_without_hr(&org, now).await? {
            rows.push(row(
                "access_without_hr_assignment",
                &org,
                None,
                Some(&uuid),
                Some(&role),
                "a current role that no HR assignment gave".into(),
            ));
        }
    }
    Ok(rows)
}
