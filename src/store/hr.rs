//! The HR feed's tables: `hr_inbox` (every event, before it is applied), `hr_people` (HR person
//! records, their Care Identity link and version), `hr_assignment_roles` (what each HR
//! assignment gave), `hr_position_maps` and `hr_detail_changes`; and the scheduler's reads of
//! ended assignments and due leavers.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::write_set::Arg;
use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::hr::{
    DetailChangeRequest, HrPerson, HrRoleLink, InboxEvent, InboxState, PositionMap, RawEvent,
};
use crate::model::rbac::Assignment;

/// Rows per multi-row INSERT. Small on purpose: SQLite looks a `$n` parameter's name up by a
/// linear scan, so binding costs grow with the square of a statement's parameters (measured:
/// 200 rows of 12 spent a sixth of an import in `sqlite3_bind_parameter_name`).
const ROWS_PER_INSERT: usize = 25;
/// Keys per `IN (...)` list, for the same reason.
const IN_LIST: usize = 100;

/// An event ready for the inbox.
#[derive(Debug, Clone)]
pub struct NewInboxEvent {
    pub raw: RawEvent,
    pub recorded_at: UnixTime,
    pub digest: String,
    pub source: String,
}

fn person_from(r: &AnyRow) -> Result<HrPerson, StoreError> {
    let details: Option<String> = r.try_get("details")?;
    Ok(HrPerson {
        org_code: r.try_get("org_code")?,
        person_id: r.try_get("person_id")?,
        user_uuid: r.try_get("user_uuid")?,
        version: r.try_get("version")?,
        left_at: r.try_get("left_at")?,
        leaver_enforced_at: r.try_get("leaver_enforced_at")?,
        suspended_identity: r.try_get::<i64, _>("suspended_identity")? != 0,
        details: details.map(|d| from_json(&d)).transpose()?,
    })
}

fn inbox_from(r: &AnyRow) -> Result<InboxEvent, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(InboxEvent {
        raw: from_json(&r.try_get::<String, _>("body")?)?,
        state: InboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("inbox state {state}")))?,
        reason: r.try_get("reason")?,
        received_at: r.try_get("received_at")?,
        source: r.try_get("source")?,
    })
}

fn link_from(r: &AnyRow) -> Result<HrRoleLink, StoreError> {
    Ok(HrRoleLink {
        assignment_id: r.try_get("assignment_id")?,
        starts_at: r.try_get("starts_at")?,
        position_id: r.try_get("position_id")?,
        user_uuid: r.try_get("user_uuid")?,
        ends_at: r.try_get("ends_at")?,
        person_roleids: from_json(&r.try_get::<String, _>("person_roleids")?)?,
    })
}

fn map_from(r: &AnyRow) -> Result<PositionMap, StoreError> {
    Ok(PositionMap {
        org_code: r.try_get("org_code")?,
        hr_position: r.try_get("hr_position")?,
        position_id: r.try_get("position_id")?,
        approved_by: r.try_get("approved_by")?,
        mapped_by: r.try_get("mapped_by")?,
        mapped_at: r.try_get("mapped_at")?,
    })
}

fn detail_change_from(r: &AnyRow) -> Result<DetailChangeRequest, StoreError> {
    Ok(DetailChangeRequest {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        org_code: r.try_get("org_code")?,
        person_id: r.try_get("person_id")?,
        user_uuid: r.try_get("user_uuid")?,
        changes: from_json(&r.try_get::<String, _>("changes")?)?,
        core: r.try_get::<i64, _>("core")? != 0,
        state: r.try_get("state")?,
        received_at: r.try_get("received_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        note: r.try_get("note")?,
    })
}

/// `($1, ..., $w), ($w+1, ...)` for `n` rows of `width` values.
fn values(n: usize, width: usize) -> String {
    (0..n)
        .map(|row| {
            let cols: Vec<String> = (1..=width)
                .map(|c| format!("${}", row * width + c))
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// Records events in the inbox (state `pending`), creating their HR people; returns the ids
    /// of those recorded now. An id already in the inbox is left as it was.
    pub async fn insert_hr_events(
        &self,
        events: &[NewInboxEvent],
        now: UnixTime,
    ) -> Result<Vec<String>, StoreError> {
        let mut inserted = Vec::new();
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut people: Vec<(&str, &str)> = chunk
                .iter()
                .map(|e| (e.raw.org_code.as_str(), e.raw.person_id.as_str()))
                .collect();
            people.sort();
            people.dedup();
            let sql = format!(
                "INSERT INTO hr_people (org_code, person_id, version, suspended_identity, updated_at) VALUES {} ON CONFLICT DO NOTHING",
                values(people.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for (org, person) in &people {
                q = q.bind(*org).bind(*person).bind(0i64).bind(0i64).bind(now);
            }
            q.execute(self.writer()).await?;
            let sql = format!(
                "INSERT INTO hr_inbox (event_id, org_code, person_id, kind, recorded_at, body, digest, source, received_at, state, reason, applied_at) \
                 VALUES {} ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                values(chunk.len(), 12)
            );
            let bodies: Vec<String> = chunk
                .iter()
                .map(|e| serde_json::to_string(&e.raw))
                .collect::<Result<_, _>>()?;
            let mut q = sqlx::query(&sql);
            for (e, body) in chunk.iter().zip(&bodies) {
                q = q
                    .bind(&e.raw.event_id)
                    .bind(&e.raw.org_code)
                    .bind(&e.raw.person_id)
                    .bind(&e.raw.kind)
                    .bind(e.recorded_at)
                    .bind(body)
                    .bind(&e.digest)
                    .bind(&e.source)
                    .bind(now)
                    .bind(InboxState::Pending.as_str())
                    .bind(None::<String>)
                    .bind(None::<i64>);
            }
            for row in q.fetch_all(self.writer()).await? {
                inserted.push(row.try_get("event_id")?);
            }
        }
        Ok(inserted)
    }

    /// The stored digests of events already in the inbox, by id.
    pub async fn hr_event_digests(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut found = HashMap::new();
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT event_id, digest FROM hr_inbox WHERE event_id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(self.pool()).await? {
                found.insert(row.try_get("event_id")?, row.try_get("digest")?);
            }
        }
        Ok(found)
    }

    /// Where one event stands: its state and reason.
    pub async fn hr_event(&self, event_id: &str) -> Result<Option<InboxEvent>, StoreError> {
        let row = sqlx::query("SELECT * FROM hr_inbox WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(inbox_from).transpose()
    }

    pub async fn hr_person(
        &self,
        org_code: &str,
        person_id: &str,
    ) -> Result<Option<HrPerson>, StoreError> {
        let row = sqlx::query("SELECT * FROM hr_people WHERE org_code = $1 AND person_id = $2")
            .bind(org_code)
            .bind(person_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(person_from).transpose()
    }

    /// Every HR person record, in key order, `limit` after `after` (keyset paging).
    pub async fn hr_people_page(
        &self,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<HrPerson>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM hr_people WHERE org_code > $1 OR (org_code = $1 AND person_id > $2) \
             ORDER BY org_code, person_id LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(person_from).collect()
    }

    /// A person's events in the order they apply: recorded time, then event id.
    pub async fn hr_events_of(
        &self,
        org_code: &str,
        person_id: &str,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM hr_inbox WHERE org_code = $1 AND person_id = $2 ORDER BY recorded_at, event_id",
        )
        .bind(org_code)
        .bind(person_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(inbox_from).collect()
    }

    /// What a person's HR assignments gave.
    pub async fn hr_links_of(
        &self,
        org_code: &str,
        person_id: &str,
    ) -> Result<Vec<HrRoleLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM hr_assignment_roles WHERE org_code = $1 AND person_id = $2 ORDER BY assignment_id, starts_at",
        )
        .bind(org_code)
        .bind(person_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(link_from).collect()
    }

    /// HR people of one organisation, their events (in recorded order) and their links: what
    /// applying a page of people reads, in three queries per hundred people.
    pub async fn hr_people_in(
        &self,
        org_code: &str,
        person_ids: &[String],
    ) -> Result<(Vec<HrPerson>, Vec<InboxEvent>, Vec<(String, HrRoleLink)>), StoreError> {
        let (mut people, mut events, mut links) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in person_ids.chunks(IN_LIST) {
            let list = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let run = |sql: String| async move {
                let mut q = sqlx::query(&sql).bind(org_code);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(self.pool()).await
            };
            for r in run(format!(
                "SELECT * FROM hr_people WHERE org_code = $1 AND person_id IN ({list})"
            ))
            .await?
            {
                people.push(person_from(&r)?);
            }
            for r in run(format!("SELECT * FROM hr_inbox WHERE org_code = $1 AND person_id IN ({list}) ORDER BY person_id, recorded_at, event_id")).await? {
                events.push(inbox_from(&r)?);
            }
            for r in run(format!("SELECT * FROM hr_assignment_roles WHERE org_code = $1 AND person_id IN ({list}) ORDER BY person_id, assignment_id, starts_at")).await? {
                links.push((r.try_get("person_id")?, link_from(&r)?));
            }
        }
        Ok((people, events, links))
    }

    /// People with events waiting to be applied (at most `limit`).
    pub async fn hr_people_pending(&self, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT org_code, person_id FROM hr_inbox WHERE state = 'pending' ORDER BY org_code, person_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("org_code")?, r.try_get("person_id")?)))
            .collect()
    }

    /// Puts an organisation's events that need attention back to pending (their cause may be
    /// fixed: a position mapped). Returns how many.
    pub async fn retry_hr_attention(&self, org_code: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE hr_inbox SET state = 'pending' WHERE state = 'attention' AND org_code = $1",
        )
        .bind(org_code)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Events that need attention at organisations `orgs` accepts (oldest first).
    pub async fn hr_attention(&self, limit: i64) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM hr_inbox WHERE state = 'attention' ORDER BY received_at, event_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(inbox_from).collect()
    }

    /// Counts of inbox events by state.
    pub async fn hr_inbox_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM hr_inbox GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    pub async fn position_map(
        &self,
        org_code: &str,
        hr_position: &str,
    ) -> Result<Option<PositionMap>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM hr_position_maps WHERE org_code = $1 AND hr_position = $2")
                .bind(org_code)
                .bind(hr_position)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(map_from).transpose()
    }

    /// Every map, by organisation and HR position.
    pub async fn position_maps(&self) -> Result<Vec<PositionMap>, StoreError> {
        let rows = sqlx::query("SELECT * FROM hr_position_maps ORDER BY org_code, hr_position")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(map_from).collect()
    }

    pub async fn set_position_map(&self, m: &PositionMap) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hr_position_maps (org_code, hr_position, position_id, approved_by, mapped_by, mapped_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (org_code, hr_position) DO UPDATE SET position_id = excluded.position_id, approved_by = excluded.approved_by, mapped_by = excluded.mapped_by, mapped_at = excluded.mapped_at",
        )
        .bind(&m.org_code)
        .bind(&m.hr_position)
        .bind(&m.position_id)
        .bind(&m.approved_by)
        .bind(&m.mapped_by)
        .bind(m.mapped_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn delete_position_map(
        &self,
        org_code: &str,
        hr_position: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM hr_position_maps WHERE org_code = $1 AND hr_position = $2")
                .bind(org_code)
                .bind(hr_position)
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// People whose leaving time has come and whose sessions the feed has not yet ended.
    pub async fn hr_leavers_due(
        &self,
        now: UnixTime,
        limit: i64,
    ) -> Result<Vec<HrPerson>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM hr_people WHERE left_at <= $1 AND leaver_enforced_at IS NULL AND user_uuid IS NOT NULL \
             ORDER BY left_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(person_from).collect()
    }

    /// Claims a due leaver for this process: true for exactly one caller.
    pub async fn claim_hr_leaver(
        &self,
        org_code: &str,
        person_id: &str,
        left_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE hr_people SET leaver_enforced_at = $1 WHERE org_code = $2 AND person_id = $3 AND left_at = $4 AND leaver_enforced_at IS NULL",
        )
        .bind(now)
        .bind(org_code)
        .bind(person_id)
        .bind(left_at)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_hr_suspended_identity(
        &self,
        org_code: &str,
        person_id: &str,
        suspended: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE hr_people SET suspended_identity = $1 WHERE org_code = $2 AND person_id = $3",
        )
        .bind(suspended as i64)
        .bind(org_code)
        .bind(person_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Assignments that ended by `now` and whose sessions the scheduler has not yet handled.
    pub async fn ended_unhandled_assignments(
        &self,
        now: UnixTime,
        limit: i64,
    ) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM role_assignments WHERE expiry_handled_at IS NULL AND ends_at IS NOT NULL AND ends_at <= $1 ORDER BY ends_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(super::rbac::assignment_from).collect()
    }

    /// Claims an ended assignment for handling: true for exactly one caller, and only while it
    /// is still ended (a later change may have reopened it).
    pub async fn claim_ended_assignment(
        &self,
        person_roleid: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE role_assignments SET expiry_handled_at = $1 WHERE person_roleid = $2 AND expiry_handled_at IS NULL AND ends_at IS NOT NULL AND ends_at <= $1",
        )
        .bind(now)
        .bind(person_roleid)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Open sessions acting in the role `person_roleid`.
    pub async fn sessions_in_role(&self, person_roleid: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT sid FROM sessions WHERE selected_roleid = $1 AND ended_at IS NULL")
                .bind(person_roleid)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok(r.try_get("sid")?)).collect()
    }

    /// Ends a user's live assignments at an organisation and its sites (an ODS code two
    /// characters longer, as `model::rbac::within` reads them) at `at`: a leaver's.
    pub async fn end_assignments_at_org(
        &self,
        user_uuid: &str,
        org_code: &str,
        at: UnixTime,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "UPDATE role_assignments SET ends_at = $1, expiry_handled_at = NULL WHERE user_uuid = $2 \
             AND (org_code = $3 OR org_code LIKE $4) AND (ends_at IS NULL OR ends_at > $1) RETURNING person_roleid",
        )
        .bind(at)
        .bind(user_uuid)
        .bind(org_code)
        .bind(format!("{org_code}__"))
        .fetch_all(self.writer())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("person_roleid")?))
            .collect()
    }

    pub async fn detail_change(&self, id: &str) -> Result<Option<DetailChangeRequest>, StoreError> {
        let row = sqlx::query("SELECT * FROM hr_detail_changes WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(detail_change_from).transpose()
    }

    /// Detail changes in a state, oldest first.
    pub async fn detail_changes(
        &self,
        state: &str,
        limit: i64,
    ) -> Result<Vec<DetailChangeRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM hr_detail_changes WHERE state = $1 ORDER BY received_at, id LIMIT $2",
        )
        .bind(state)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(detail_change_from).collect()
    }

    /// Decides a pending change: true for exactly one decision.
    pub async fn decide_detail_change(
        &self,
        id: &str,
        state: &str,
        by: &str,
        at: UnixTime,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE hr_detail_changes SET state = $1, decided_by = $2, decided_at = $3, note = $4 WHERE id = $5 AND state = 'pending'",
        )
        .bind(state)
        .bind(by)
        .bind(at)
        .bind(note)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Users holding a current assignment at `org_code` that no HR assignment gave.
    pub async fn access_without_hr(
        &self,
        org_code: &str,
        now: UnixTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.user_uuid, a.person_roleid FROM role_assignments a \
             WHERE a.org_code = $1 AND a.starts_at <= $2 AND (a.ends_at IS NULL OR a.ends_at > $2) \
             AND NOT EXISTS (SELECT 1 FROM hr_assignment_roles l WHERE l.org_code = $1 AND l.user_uuid = a.user_uuid \
                 AND l.person_roleids LIKE '%' || a.person_roleid || '%') \
             ORDER BY a.user_uuid, a.person_roleid",
        )
        .bind(org_code)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_uuid")?, r.try_get("person_roleid")?)))
            .collect()
    }

    /// Organisations with HR people.
    pub async fn hr_organisations(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT org_code FROM hr_people ORDER BY org_code")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("org_code")?)).collect()
    }
}

/// What one application of a person's events writes, beside the role assignments.
impl WriteSet {
    /// A set that is written only if the person is still at `version` (nobody applied their
    /// events in between); it moves them to the next version.
    pub fn hr_person_claim(org_code: &str, person_id: &str, version: i64) -> WriteSet {
        WriteSet::guarded(
            "UPDATE hr_people SET version = version + 1 WHERE org_code = $1 AND person_id = $2 AND version = $3",
            vec![org_code.to_string().into(), person_id.to_string().into(), Arg::Int(version)],
        )
    }

    pub fn update_hr_person(&mut self, p: &HrPerson, now: UnixTime) {
        let details = p
            .details
            .as_ref()
            .map(|d| serde_json::to_string(d).unwrap_or_default());
        self.execute(
            "UPDATE hr_people SET user_uuid = $1, left_at = $2, leaver_enforced_at = $3, details = $4, updated_at = $5 WHERE org_code = $6 AND person_id = $7",
            vec![
                p.user_uuid.clone().into(),
                Arg::OptInt(p.left_at),
                Arg::OptInt(p.leaver_enforced_at),
                details.into(),
                Arg::Int(now),
                p.org_code.clone().into(),
                p.person_id.clone().into(),
            ],
        );
    }

    pub fn set_hr_event_state(
        &mut self,
        event_id: &str,
        state: InboxState,
        reason: Option<&str>,
        now: UnixTime,
    ) {
        self.execute(
            "UPDATE hr_inbox SET state = $1, reason = $2, applied_at = $3 WHERE event_id = $4",
            vec![
                state.as_str().to_string().into(),
                reason.map(String::from).into(),
                Arg::OptInt((state == InboxState::Applied).then_some(now)),
                event_id.to_string().into(),
            ],
        );
    }

    /// The person's membership of an organisation (`person_orgid`), unless they have one.
    pub fn ensure_person_org(&mut self, user_uuid: &str, org_code: &str, candidate: &str) {
        self.execute(
            "INSERT INTO person_orgs (user_uuid, org_code, person_orgid) VALUES ($1, $2, $3) ON CONFLICT (user_uuid, org_code) DO NOTHING",
            vec![user_uuid.to_string().into(), org_code.to_string().into(), candidate.to_string().into()],
        );
    }

    pub fn insert_role_assignment(&mut self, a: &Assignment, now: UnixTime) {
        self.insert(
            "role_assignments (person_roleid, user_uuid, position_id, profile_index, org_code, starts_at, ends_at, created_at, expiry_handled_at)",
            vec![
                a.person_roleid.clone().into(),
                a.user_uuid.clone().into(),
                a.position_id.clone().into(),
                Arg::Int(a.profile_index),
                a.org_code.clone().into(),
                Arg::Int(a.starts_at),
                Arg::OptInt(a.ends_at),
                Arg::Int(now),
                Arg::OptInt(None),
            ],
        );
    }

    /// Moves the end of assignments (earlier or later); a moved end is handled again when due.
    pub fn set_role_assignment_end(&mut self, person_roleid: &str, ends_at: Option<UnixTime>) {
        self.execute(
            "UPDATE role_assignments SET ends_at = $1, expiry_handled_at = NULL WHERE person_roleid = $2",
            vec![Arg::OptInt(ends_at), person_roleid.to_string().into()],
        );
    }

    pub fn insert_hr_link(&mut self, org_code: &str, person_id: &str, l: &HrRoleLink) {
        self.insert(
            "hr_assignment_roles (org_code, person_id, assignment_id, starts_at, position_id, user_uuid, ends_at, person_roleids)",
            vec![
                org_code.to_string().into(),
                person_id.to_string().into(),
                l.assignment_id.clone().into(),
                Arg::Int(l.starts_at),
                l.position_id.clone().into(),
                l.user_uuid.clone().into(),
                Arg::OptInt(l.ends_at),
                serde_json::to_string(&l.person_roleids)
                    .unwrap_or_default()
                    .into(),
            ],
        );
    }

    pub fn set_hr_link_end(&mut self, org_code: &str, person_id: &str, l: &HrRoleLink) {
        self.execute(
            "UPDATE hr_assignment_roles SET ends_at = $1 WHERE org_code = $2 AND person_id = $3 AND assignment_id = $4 AND starts_at = $5 AND position_id = $6 AND user_uuid = $7",
            vec![
                Arg::OptInt(l.ends_at),
                org_code.to_string().into(),
                person_id.to_string().into(),
                l.assignment_id.clone().into(),
                Arg::Int(l.starts_at),
                l.position_id.clone().into(),
                l.user_uuid.clone().into(),
            ],
        );
    }

    pub fn insert_detail_change(&mut self, d: &DetailChangeRequest) {
        self.insert(
            "hr_detail_changes (id, event_id, org_code, person_id, user_uuid, changes, core, state, received_at, decided_by, decided_at, note)",
            vec![
                d.id.clone().into(),
                d.event_id.clone().into(),
                d.org_code.clone().into(),
                d.person_id.clone().into(),
                d.user_uuid.clone().into(),
                serde_json::to_string(&d.changes).unwrap_or_default().into(),
                Arg::Int(d.core as i64),
                d.state.clone().into(),
                Arg::Int(d.received_at),
                d.decided_by.clone().into(),
                Arg::OptInt(d.decided_at),
                d.note.clone().into(),
            ],
        );
    }
}
