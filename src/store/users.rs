//! The `users` and `authenticators` tables: Care Identities and what they sign in with.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::identity::{
    Authenticator, AuthenticatorKind, AuthenticatorStatus, PersonalDetails, Photo, User, UserStatus,
};

/// When a session ends: `ended_at` once it has, and its absolute expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd {
    pub ended_at: Option<UnixTime>,
    pub absolute_expiry: UnixTime,
}

fn user_from(r: &AnyRow) -> Result<User, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(User {
        uuid: r.try_get("uuid")?,
        title: r.try_get("title")?,
        given_name: r.try_get("given_name")?,
        middle_names: r.try_get("middle_names")?,
        family_name: r.try_get("family_name")?,
        email: r.try_get("email")?,
        id_assurance_level: r.try_get("id_assurance_level")?,
        status: UserStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("user status {status}")))?,
    })
}

/// A `personal_details` row (work phones are a JSON array).
fn details_from(r: &AnyRow) -> Result<PersonalDetails, StoreError> {
    let phones: String = r.try_get("work_phones")?;
    Ok(PersonalDetails {
        date_of_birth: r.try_get("date_of_birth")?,
        ni_number: r.try_get("ni_number")?,
        work_phones: serde_json::from_str(&phones)?,
    })
}

/// A column holding an enum's name; a name the code does not know is corrupt data.
fn parsed<T>(r: &AnyRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text: String = r.try_get(column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("authenticators.{column} = {text}")))
}

pub(super) fn authenticator_from(r: &AnyRow) -> Result<Authenticator, StoreError> {
    Ok(Authenticator {
        id: r.try_get("id")?,
        user_uuid: r.try_get("user_uuid")?,
        kind: parsed(r, "kind", AuthenticatorKind::parse)?,
        cert_issuer: r.try_get("cert_issuer")?,
        cert_serial: r.try_get("cert_serial")?,
        status: parsed(r, "status", AuthenticatorStatus::parse)?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// An authenticator row joined with its user's `status AS user_status`.
pub(super) fn with_user_status(
    r: &AnyRow,
) -> Result<(Authenticator, Option<UserStatus>), StoreError> {
    let user_status = r
        .try_get::<Option<String>, _>("user_status")?
        .map(|s| {
            UserStatus::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("user status {s}")))
        })
        .transpose()?;
    Ok((authenticator_from(r)?, user_status))
}

/// The `authenticators` row of any kind, on a connection or inside a caller's transaction
/// (TACs and WebAuthn credentials are stored with their own row in one transaction).
pub(super) async fn insert_authenticator_row(
    conn: &mut sqlx::AnyConnection,
    a: &Authenticator,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO authenticators (id, user_uuid, kind, cert_issuer, cert_serial, status, created_at, last_used_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(&a.user_uuid)
    .bind(a.kind.as_str())
    .bind(a.cert_issuer.clone())
    .bind(a.cert_serial.clone())
    .bind(a.status.as_str())
    .bind(a.created_at)
    .bind(a.last_used_at)
    .bind(a.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Db {
    pub async fn insert_user(&self, user: &User, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (uuid, title, given_name, middle_names, family_name, email, id_assurance_level, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&user.uuid)
        .bind(user.title.clone())
        .bind(&user.given_name)
        .bind(user.middle_names.clone())
        .bind(&user.family_name)
        .bind(user.email.clone())
        .bind(user.id_assurance_level)
        .bind(user.status.as_str())
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Records the organisation whose RA registered the identity.
    pub async fn set_registered_org(&self, uuid: &str, org_code: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET registered_org = $1 WHERE uuid = $2")
            .bind(org_code)
            .bind(uuid)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Records which RA registered an identity.
    pub async fn set_registered_by(&self, uuid: &str, ra: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET registered_by = $1 WHERE uuid = $2")
            .bind(ra)
            .bind(uuid)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The RA who registered an identity through the RA rules (None for older or imported ones).
    pub async fn registered_by(&self, uuid: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT registered_by FROM users WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get("registered_by")?,
            None => None,
        })
    }

    /// The organisation whose RA registered the identity, if recorded.
    pub async fn registered_org(&self, uuid: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT registered_org FROM users WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("registered_org"))
            .transpose()?
            .flatten())
    }

    pub async fn user(&self, uuid: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn set_user_status(
        &self,
        uuid: &str,
        status: UserStatus,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET status = $1 WHERE uuid = $2")
            .bind(status.as_str())
            .bind(uuid)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_authenticator(&self, a: &Authenticator) -> Result<(), StoreError> {
        let mut conn = self.writer().acquire().await?;
        insert_authenticator_row(&mut conn, a).await
    }

    /// The smartcard authenticator bound to a certificate (issuer DN + serial), in any status.
    pub async fn authenticator_by_certificate(
        &self,
        issuer: &str,
        serial: &str,
    ) -> Result<Option<Authenticator>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM authenticators WHERE cert_issuer = $1 AND cert_serial = $2")
                .bind(issuer)
                .bind(serial)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(authenticator_from).transpose()
    }

    /// A card's binding and the status of the user it belongs to, in one query (the card step
    /// needs both). None when no authenticator has this issuer and serial.
    pub async fn card_binding(
        &self,
        issuer: &str,
        serial: &str,
    ) -> Result<Option<(Authenticator, Option<UserStatus>)>, StoreError> {
        let row = sqlx::query("SELECT a.*, u.status AS user_status FROM authenticators a LEFT JOIN users u ON u.uuid = a.user_uuid WHERE a.cert_issuer = $1 AND a.cert_serial = $2")
            .bind(issuer)
            .bind(serial)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(with_user_status).transpose()
    }

    /// A user with the state of one of their sessions (None when it does not exist), in one
    /// query (the token endpoint checks both for every code).
    pub async fn user_and_session(
        &self,
        uuid: &str,
        sid: &str,
    ) -> Result<Option<(User, Option<SessionEnd>)>, StoreError> {
        let row = sqlx::query("SELECT u.*, s.sid AS session_sid, s.ended_at AS session_ended_at, s.absolute_expiry AS session_absolute_expiry FROM users u LEFT JOIN sessions s ON s.sid = $1 AND s.user_uuid = u.uuid WHERE u.uuid = $2")
            .bind(sid)
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let session = match r.try_get::<Option<String>, _>("session_sid")? {
            Some(_) => Some(SessionEnd {
                ended_at: r.try_get("session_ended_at")?,
                absolute_expiry: r.try_get("session_absolute_expiry")?,
            }),
            None => None,
        };
        Ok(Some((user_from(&r)?, session)))
    }

    pub async fn set_authenticator_status(
        &self,
        id: &str,
        status: AuthenticatorStatus,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE authenticators SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_authenticator(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.touch_authenticator(id, now);
        self.commit(set).await?;
        Ok(())
    }

    /// Identities whose UUID starts with, or whose family or given name contains, `q`.
    /// People with this date of birth (`YYYY-MM-DD`).
    pub async fn users_born_on(&self, date: &str, limit: i64) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT u.* FROM users u JOIN personal_details d ON d.user_uuid = u.uuid WHERE d.date_of_birth = $1 ORDER BY u.family_name, u.given_name, u.uuid LIMIT $2")
            .bind(date)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn search_users(&self, q: &str, limit: i64) -> Result<Vec<User>, StoreError> {
        let like = format!("%{}%", q.to_lowercase().replace(['%', '_'], ""));
        let prefix = format!("{}%", q.replace(['%', '_'], ""));
        let rows = sqlx::query("SELECT * FROM users WHERE uuid LIKE $1 OR LOWER(family_name) LIKE $2 OR LOWER(given_name) LIKE $2 ORDER BY family_name, given_name, uuid LIMIT $3")
            .bind(prefix)
            .bind(like)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from).collect()
    }

    /// Identities that may be the same person as a new one: the same National Insurance
    /// number, or the same given and family name (any case) with the same or an unknown date of
    /// birth.
    pub async fn likely_duplicates(
        &self,
        given_name: &str,
        family_name: &str,
        date_of_birth: Option<&str>,
        ni_number: Option<&str>,
    ) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.* FROM users u LEFT JOIN personal_details d ON d.user_uuid = u.uuid \
             WHERE (d.ni_number IS NOT NULL AND d.ni_number = $1) \
             OR (LOWER(u.given_name) = $2 AND LOWER(u.family_name) = $3 \
                 AND ($4 = '' OR d.date_of_birth IS NULL OR d.date_of_birth = $4)) \
             ORDER BY u.family_name, u.given_name, u.uuid LIMIT 20",
        )
        .bind(ni_number.unwrap_or(""))
        .bind(given_name.trim().to_lowercase())
        .bind(family_name.trim().to_lowercase())
        .bind(date_of_birth.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn authenticators_of(
        &self,
        user_uuid: &str,
    ) -> Result<Vec<Authenticator>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM authenticators WHERE user_uuid = $1 ORDER BY created_at, id",
        )
        .bind(user_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(authenticator_from).collect()
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn set_id_assurance_level(&self, uuid: &str, level: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET id_assurance_level = $1 WHERE uuid = $2")
            .bind(level)
            .bind(uuid)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn update_user_details(&self, u: &User) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET title = $1, given_name = $2, middle_names = $3, family_name = $4, email = $5 WHERE uuid = $6")
            .bind(u.title.clone())
            .bind(&u.given_name)
            .bind(u.middle_names.clone())
            .bind(&u.family_name)
            .bind(u.email.clone())
            .bind(&u.uuid)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The identities among `uuids` that exist, and their personal details (none recorded:
    /// the default), in two queries per hundred.
    pub async fn users_with_details(
        &self,
        uuids: &[String],
    ) -> Result<(Vec<User>, Vec<(String, PersonalDetails)>), StoreError> {
        let (mut users, mut details) = (Vec::new(), Vec::new());
        for chunk in uuids.chunks(100) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let run = |sql: String| async move {
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(self.pool()).await
            };
            for r in run(format!("SELECT * FROM users WHERE uuid IN ({list})")).await? {
                users.push(user_from(&r)?);
            }
            for r in run(format!("SELECT user_uuid, date_of_birth, ni_number, work_phones FROM personal_details WHERE user_uuid IN ({list})")).await? {
                details.push((r.try_get("user_uuid")?, details_from(&r)?));
            }
        }
        Ok((users, details))
    }

    pub async fn personal_details(&self, uuid: &str) -> Result<PersonalDetails, StoreError> {
        let row = sqlx::query("SELECT date_of_birth, ni_number, work_phones FROM personal_details WHERE user_uuid = $1")
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else {
            return Ok(PersonalDetails::default());
        };
        details_from(&r)
    }

    /// A person's photograph, if one is recorded.
    pub async fn photo(&self, uuid: &str) -> Result<Option<Photo>, StoreError> {
        use base64::Engine;
        let row = sqlx::query("SELECT content_type, image, recorded_by, recorded_at FROM identity_photos WHERE user_uuid = $1")
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(r.try_get::<String, _>("image")?)
            .map_err(|e| StoreError::Corrupt(format!("identity_photos.image: {e}")))?;
        Ok(Some(Photo {
            content_type: r.try_get("content_type")?,
            bytes,
            recorded_by: r.try_get("recorded_by")?,
            recorded_at: r.try_get("recorded_at")?,
        }))
    }

    /// Records or replaces a person's photograph.
    pub async fn set_photo(&self, uuid: &str, p: &Photo) -> Result<(), StoreError> {
        use base64::Engine;
        sqlx::query(
            "INSERT INTO identity_photos (user_uuid, content_type, image, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_uuid) DO UPDATE SET content_type = excluded.content_type, image = excluded.image, recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
        )
        .bind(uuid)
        .bind(&p.content_type)
        .bind(base64::engine::general_purpose::STANDARD.encode(&p.bytes))
        .bind(&p.recorded_by)
        .bind(p.recorded_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A person's professional registrations: body → number.
    pub async fn professional_registrations(
        &self,
        uuid: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        let rows =
            sqlx::query("SELECT body, number FROM professional_registrations WHERE user_uuid = $1")
                .bind(uuid)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("body")?, r.try_get("number")?)))
            .collect()
    }

    /// Replaces a person's professional registrations.
    pub async fn set_professional_registrations(
        &self,
        uuid: &str,
        registrations: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM professional_registrations WHERE user_uuid = $1")
            .bind(uuid)
            .execute(&mut *tx)
            .await?;
        for (body, number) in registrations {
            sqlx::query("INSERT INTO professional_registrations (user_uuid, body, number) VALUES ($1, $2, $3)")
                .bind(uuid)
                .bind(body)
                .bind(number)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_personal_details(
        &self,
        uuid: &str,
        d: &PersonalDetails,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO personal_details (user_uuid, date_of_birth, ni_number, work_phones) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_uuid) DO UPDATE SET date_of_birth = excluded.date_of_birth, ni_number = excluded.ni_number, work_phones = excluded.work_phones",
        )
        .bind(uuid)
        .bind(d.date_of_birth.clone())
        .bind(d.ni_number.clone())
        .bind(serde_json::to_string(&d.work_phones)?)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Sets the status with its reason and time.
    pub async fn change_user_status(
        &self,
        uuid: &str,
        status: UserStatus,
        reason: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET status = $1, status_reason = $2, status_changed_at = $3 WHERE uuid = $4")
            .bind(status.as_str())
            .bind(reason)
            .bind(now)
            .bind(uuid)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Why and when the status last changed through the RA API.
    pub async fn status_change(
        &self,
        uuid: &str,
    ) -> Result<(Option<String>, Option<UnixTime>), StoreError> {
        let row = sqlx::query("SELECT status_reason, status_changed_at FROM users WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => (r.try_get("status_reason")?, r.try_get("status_changed_at")?),
            None => (None, None),
        })
    }
}

impl WriteSet {
    /// Notes when an authenticator was last used to sign in.
    pub fn touch_authenticator(&mut self, id: &str, now: UnixTime) {
        self.execute(
            "UPDATE authenticators SET last_used_at = $1 WHERE id = $2",
            vec![now.into(), id.into()],
        );
    }
}
