//! National RBAC reference data (`rbac_roles`, `rbac_activities`, `rbac_workgroups`,
//! `organisations`), `positions`, `person_orgs` and `role_assignments`.

use std::collections::HashMap;

use sqlx::Row;

use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::rbac::{Assignment, JobRole, Position, PositionRecord, Profile};

/// `$1, $2, …` for an IN list of `n` values.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn position_from(r: &sqlx::any::AnyRow) -> Result<Position, StoreError> {
    Ok(Position {
        id: r.try_get("id")?,
        org_code: r.try_get("org_code")?,
        name: r.try_get("name")?,
        esr_position: r.try_get("esr_position")?,
        profiles: from_json::<Vec<Profile>>(&r.try_get::<String, _>("profiles")?)?,
    })
}

impl Db {
    pub async fn upsert_organisation(&self, code: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO organisations (org_code, org_name) VALUES ($1, $2) ON CONFLICT (org_code) DO UPDATE SET org_name = excluded.org_name").bind(code).bind(name).execute(self.writer()).await?;
        Ok(())
    }

    pub async fn upsert_job_role(&self, r: &JobRole) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rbac_roles (code, name, role_code, role_name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, role_code = excluded.role_code, role_name = excluded.role_name",
        )
        .bind(&r.code)
        .bind(&r.name)
        .bind(r.role_code.clone())
        .bind(r.role_name.clone())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn upsert_activity(&self, code: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO rbac_activities (code, name) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET name = excluded.name").bind(code).bind(name).execute(self.writer()).await?;
        Ok(())
    }

    pub async fn upsert_area_of_work(&self, code: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO rbac_areas_of_work (code, name) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET name = excluded.name").bind(code).bind(name).execute(self.writer()).await?;
        Ok(())
    }

    pub async fn upsert_workgroup(
        &self,
        code: &str,
        name: &str,
        org_code: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO rbac_workgroups (code, name, org_code) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE SET name = excluded.name, org_code = excluded.org_code")
            .bind(code)
            .bind(name)
            .bind(org_code)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Creates or replaces an organisation's position of that name; returns its id.
    pub async fn upsert_position(&self, p: &Position, now: UnixTime) -> Result<String, StoreError> {
        let row = sqlx::query(
            "INSERT INTO positions (id, org_code, name, esr_position, profiles, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (org_code, name) DO UPDATE SET esr_position = excluded.esr_position, profiles = excluded.profiles RETURNING id",
        )
        .bind(&p.id)
        .bind(&p.org_code)
        .bind(&p.name)
        .bind(p.esr_position.clone())
        .bind(serde_json::to_string(&p.profiles)?)
        .bind(now)
        .fetch_one(self.writer())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn position(&self, id: &str) -> Result<Option<Position>, StoreError> {
        Ok(self.positions(&[id.to_string()]).await?.remove(id))
    }

    /// Several positions in one query, by id.
    pub async fn positions(&self, ids: &[String]) -> Result<HashMap<String, Position>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT * FROM positions WHERE id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let p = position_from(r)?;
                Ok((p.id.clone(), p))
            })
            .collect()
    }

    /// The job roles held now at an organisation by active identities: (person, job role code).
    pub async fn current_job_roles_at(
        &self,
        org_code: &str,
        now: UnixTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.user_uuid, a.profile_index, p.profiles FROM role_assignments a \
             JOIN positions p ON p.id = a.position_id JOIN users u ON u.uuid = a.user_uuid \
             WHERE a.org_code = $1 AND u.status = 'active' AND a.starts_at <= $2 AND (a.ends_at IS NULL OR a.ends_at > $2)",
        )
        .bind(org_code)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let profiles: Vec<Profile> = from_json(&r.try_get::<String, _>("profiles")?)?;
            let index: i64 = r.try_get("profile_index")?;
            if let Some(p) = usize::try_from(index).ok().and_then(|i| profiles.get(i)) {
                out.push((r.try_get("user_uuid")?, p.job_role.clone()));
            }
        }
        Ok(out)
    }

    /// Who approved a position as it stands, and when it was retired.
    pub async fn position_standing(
        &self,
        id: &str,
    ) -> Result<(Option<String>, Option<UnixTime>), StoreError> {
        let row = sqlx::query("SELECT approved_by, retired_at FROM positions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => (r.try_get("approved_by")?, r.try_get("retired_at")?),
            None => (None, None),
        })
    }

    /// Corrects a position's name, ESR position and profiles, with who approved it.
    pub async fn correct_position(
        &self,
        p: &Position,
        approved_by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE positions SET name = $1, esr_position = $2, profiles = $3, approved_by = $4 WHERE id = $5")
            .bind(&p.name)
            .bind(p.esr_position.clone())
            .bind(serde_json::to_string(&p.profiles)?)
            .bind(approved_by)
            .bind(&p.id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Records who approved a position (at creation).
    pub async fn set_position_approval(
        &self,
        id: &str,
        approved_by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE positions SET approved_by = $1 WHERE id = $2")
            .bind(approved_by)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Retires a position once: false when it was already retired.
    pub async fn retire_position(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE positions SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many people hold a position now.
    pub async fn current_holders(
        &self,
        position_id: &str,
        now: UnixTime,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(DISTINCT user_uuid) AS n FROM role_assignments WHERE position_id = $1 AND starts_at <= $2 AND (ends_at IS NULL OR ends_at > $2)")
            .bind(position_id)
            .bind(now)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// An organisation's positions, by name.
    /// With who approved each, when it was retired and how many hold it at `now`: one query.
    pub async fn positions_at(
        &self,
        org_code: &str,
        now: UnixTime,
    ) -> Result<Vec<PositionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.*, (SELECT COUNT(DISTINCT a.user_uuid) FROM role_assignments a WHERE a.position_id = p.id \
             AND a.starts_at <= $2 AND (a.ends_at IS NULL OR a.ends_at > $2)) AS holders \
             FROM positions p WHERE p.org_code = $1 ORDER BY p.name, p.id",
        )
        .bind(org_code)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PositionRecord {
                    position: position_from(r)?,
                    approved_by: r.try_get("approved_by")?,
                    retired_at: r.try_get("retired_at")?,
                    holders: r.try_get("holders")?,
                })
            })
            .collect()
    }

    pub async fn position_by_name(
        &self,
        org_code: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT id FROM positions WHERE org_code = $1 AND name = $2")
            .bind(org_code)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok(r.try_get("id")?)).transpose()
    }

    /// The person's membership id at an organisation, created with `candidate` when missing.
    pub async fn person_orgid(
        &self,
        user_uuid: &str,
        org_code: &str,
        candidate: &str,
    ) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO person_orgs (user_uuid, org_code, person_orgid) VALUES ($1, $2, $3) ON CONFLICT (user_uuid, org_code) DO NOTHING")
            .bind(user_uuid)
            .bind(org_code)
            .bind(candidate)
            .execute(self.writer())
            .await?;
        let row = sqlx::query(
            "SELECT person_orgid FROM person_orgs WHERE user_uuid = $1 AND org_code = $2",
        )
        .bind(user_uuid)
        .bind(org_code)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("person_orgid")?)
    }

    pub async fn insert_assignment(&self, a: &Assignment, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO role_assignments (person_roleid, user_uuid, position_id, profile_index, org_code, starts_at, ends_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.person_roleid)
        .bind(&a.user_uuid)
        .bind(&a.position_id)
        .bind(a.profile_index)
        .bind(&a.org_code)
        .bind(a.starts_at)
        .bind(a.ends_at)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Assignments not ended at `now`: current ones and those starting later.
    pub async fn live_assignments(
        &self,
        user_uuid: &str,
        now: UnixTime,
    ) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM role_assignments WHERE user_uuid = $1 AND (ends_at IS NULL OR ends_at > $2) \
             ORDER BY created_at, person_roleid",
        )
        .bind(user_uuid)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(assignment_from).collect()
    }

    /// One assignment, ended or not.
    pub async fn assignment(&self, person_roleid: &str) -> Result<Option<Assignment>, StoreError> {
        let row = sqlx::query("SELECT * FROM role_assignments WHERE person_roleid = $1")
            .bind(person_roleid)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(assignment_from).transpose()
    }

    /// Assignments that give access at `now`: started, and not ended.
    pub async fn current_assignments(
        &self,
        user_uuid: &str,
        now: UnixTime,
    ) -> Result<Vec<(Assignment, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.*, p.person_orgid FROM role_assignments a JOIN person_orgs p ON p.user_uuid = a.user_uuid AND p.org_code = a.org_code \
             WHERE a.user_uuid = $1 AND a.starts_at <= $2 AND (a.ends_at IS NULL OR a.ends_at > $2) ORDER BY a.created_at, a.person_roleid",
        )
        .bind(user_uuid)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((assignment_from(r)?, r.try_get("person_orgid")?)))
            .collect()
    }

    /// Ends an assignment at `at`; false if there is no such open assignment.
    pub async fn end_assignment(
        &self,
        person_roleid: &str,
        at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE role_assignments SET ends_at = $1 WHERE person_roleid = $2 AND (ends_at IS NULL OR ends_at > $1)").bind(at).bind(person_roleid).execute(self.writer()).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn names(
        &self,
        table: &str,
        codes: &[String],
    ) -> Result<HashMap<String, (String, Option<String>, Option<String>)>, StoreError> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = match table {
            "rbac_roles" => format!("SELECT code, name, role_code, role_name FROM rbac_roles WHERE code IN ({})", placeholders(codes.len())),
            "rbac_activities" => format!("SELECT code, name, NULL AS role_code, NULL AS role_name FROM rbac_activities WHERE code IN ({})", placeholders(codes.len())),
            "rbac_workgroups" => format!("SELECT code, name, NULL AS role_code, NULL AS role_name FROM rbac_workgroups WHERE code IN ({})", placeholders(codes.len())),
            "rbac_areas_of_work" => format!("SELECT code, name, NULL AS role_code, NULL AS role_name FROM rbac_areas_of_work WHERE code IN ({})", placeholders(codes.len())),
            _ => format!("SELECT org_code AS code, org_name AS name, NULL AS role_code, NULL AS role_name FROM organisations WHERE org_code IN ({})", placeholders(codes.len())),
        };
        let mut q = sqlx::query(&sql);
        for c in codes {
            q = q.bind(c);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("code")?,
                    (
                        r.try_get("name")?,
                        r.try_get("role_code")?,
                        r.try_get("role_name")?,
                    ),
                ))
            })
            .collect()
    }

    pub async fn job_roles(
        &self,
        codes: &[String],
    ) -> Result<HashMap<String, JobRole>, StoreError> {
        Ok(self
            .names("rbac_roles", codes)
            .await?
            .into_iter()
            .map(|(code, (name, role_code, role_name))| {
                (
                    code.clone(),
                    JobRole {
                        code,
                        name,
                        role_code,
                        role_name,
                    },
                )
            })
            .collect())
    }

    /// Names by code for activities, workgroups or organisations.
    pub async fn names_of(
        &self,
        kind: &str,
        codes: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let table = match kind {
            "activity" => "rbac_activities",
            "workgroup" => "rbac_workgroups",
            "area_of_work" => "rbac_areas_of_work",
            _ => "organisations",
        };
        Ok(self
            .names(table, codes)
            .await?
            .into_iter()
            .map(|(code, (name, _, _))| (code, name))
            .collect())
    }

    pub async fn selected_role(&self, sid: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT selected_roleid FROM sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("selected_roleid"))
            .transpose()?
            .flatten())
    }
}

impl WriteSet {
    /// The role a session acts in, reused by later sign-ins in it (after the session's own
    /// insert when both are in one set).
    pub fn set_selected_role(&mut self, sid: &str, person_roleid: &str) {
        self.execute(
            "UPDATE sessions SET selected_roleid = $1 WHERE sid = $2",
            vec![person_roleid.into(), sid.into()],
        );
    }
}

pub(super) fn assignment_from(r: &sqlx::any::AnyRow) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        person_roleid: r.try_get("person_roleid")?,
        user_uuid: r.try_get("user_uuid")?,
        position_id: r.try_get("position_id")?,
        profile_index: r.try_get("profile_index")?,
        org_code: r.try_get("org_code")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
    })
}
