//! The `webauthn_credentials`, `webauthn_ceremonies` and `webauthn_invitations` tables. A
//! credential is stored with its `authenticators` row in one transaction, so the two never part.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, StoreError};
use crate::clock::UnixTime;

use crate::model::webauthn::{Ceremony, Invitation, StoredCredential};

const CREDENTIAL_COLUMNS: &str = "a.id, a.user_uuid, a.kind, a.cert_issuer, a.cert_serial, a.status, a.created_at, a.last_used_at, a.expires_at, \
     w.credential_id, w.credential, w.name, w.aaguid, w.attestation_format, w.attestation_trusted, w.transports, \
     w.backup_eligible, w.backup_state, w.discoverable, w.aal, w.sign_count";

fn credential_from(r: &AnyRow) -> Result<StoredCredential, StoreError> {
    let transports: String = r.try_get("transports")?;
    Ok(StoredCredential {
        authenticator: super::users::authenticator_from(r)?,
        credential_id: r.try_get("credential_id")?,
        credential: r.try_get("credential")?,
        name: r.try_get("name")?,
        aaguid: r.try_get("aaguid")?,
        attestation_format: r.try_get("attestation_format")?,
        attestation_trusted: r.try_get::<i64, _>("attestation_trusted")? == 1,
        transports: serde_json::from_str(&transports)?,
        backup_eligible: r.try_get::<i64, _>("backup_eligible")? == 1,
        backup_state: r.try_get::<i64, _>("backup_state")? == 1,
        discoverable: r.try_get::<i64, _>("discoverable")? == 1,
        aal: r.try_get("aal")?,
        sign_count: r.try_get("sign_count")?,
    })
}

impl Db {
    /// Stores a new credential and its authenticator row together.
    pub async fn insert_webauthn_credential(&self, c: &StoredCredential) -> Result<(), StoreError> {
        let a = &c.authenticator;
        let mut tx = self.writer().begin().await?;
        super::users::insert_authenticator_row(&mut tx, a).await?;
        sqlx::query(
            "INSERT INTO webauthn_credentials (authenticator_id, credential_id, credential, name, aaguid, attestation_format, \
             attestation_trusted, transports, backup_eligible, backup_state, discoverable, aal, sign_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&a.id)
        .bind(&c.credential_id)
        .bind(&c.credential)
        .bind(&c.name)
        .bind(&c.aaguid)
        .bind(&c.attestation_format)
        .bind(i64::from(c.attestation_trusted))
        .bind(serde_json::to_string(&c.transports)?)
        .bind(i64::from(c.backup_eligible))
        .bind(i64::from(c.backup_state))
        .bind(i64::from(c.discoverable))
        .bind(c.aal)
        .bind(c.sign_count)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The credential with this (base64url) credential id, in any status.
    pub async fn webauthn_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials w JOIN authenticators a ON a.id = w.authenticator_id \
             WHERE w.credential_id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(credential_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(credential_from).transpose()
    }

    /// A user's WebAuthn credentials in any status, oldest first.
    pub async fn webauthn_credentials_of(
        &self,
        user_uuid: &str,
    ) -> Result<Vec<StoredCredential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials w JOIN authenticators a ON a.id = w.authenticator_id \
             WHERE a.user_uuid = $1 ORDER BY a.created_at, a.id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_uuid)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(credential_from).collect()
    }

    /// Records a verified use: the new signature counter, flags and the credential as
    /// webauthn-rs updated it. Only moves the counter forwards, so two racing uses of one
    /// assertion cannot both record it.
    pub async fn record_webauthn_use(
        &self,
        authenticator_id: &str,
        credential: &str,
        sign_count: i64,
        backup_state: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE webauthn_credentials SET credential = $1, sign_count = $2, backup_state = $3 \
             WHERE authenticator_id = $4 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
        )
        .bind(credential)
        .bind(sign_count)
        .bind(i64::from(backup_state))
        .bind(authenticator_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE authenticators SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(authenticator_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn rename_webauthn_credential(
        &self,
        authenticator_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE webauthn_credentials SET name = $1 WHERE authenticator_id = $2")
                .bind(name)
                .bind(authenticator_id)
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_ceremony(
        &self,
        handle_hash: &str,
        c: &Ceremony,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (handle_hash, purpose, user_uuid, detail, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(handle_hash)
        .bind(&c.purpose)
        .bind(c.user_uuid.clone())
        .bind(c.detail.to_string())
        .bind(&c.state)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Removes and returns an unexpired ceremony: each can be finished once.
    pub async fn take_ceremony(
        &self,
        handle_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Ceremony>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT purpose, user_uuid, detail, state FROM webauthn_ceremonies WHERE handle_hash = $1 AND expires_at > $2",
        )
        .bind(handle_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let taken = sqlx::query("DELETE FROM webauthn_ceremonies WHERE handle_hash = $1")
            .bind(handle_hash)
            .execute(self.writer())
            .await?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        let detail: String = row.try_get("detail")?;
        Ok(Some(Ceremony {
            purpose: row.try_get("purpose")?,
            user_uuid: row.try_get("user_uuid")?,
            detail: serde_json::from_str(&detail)?,
            state: row.try_get("state")?,
        }))
    }

    /// An invitation waiting to be handed over: `placeholder_hash` is a digest of a secret
    /// nobody keeps, so the invitation cannot be used until [`Db::hand_over_invitation`].
    pub async fn insert_invitation(
        &self,
        placeholder_hash: &str,
        handover_hash: &str,
        i: &Invitation,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webauthn_invitations (code_hash, handover_hash, user_uuid, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(placeholder_hash)
        .bind(handover_hash)
        .bind(&i.user_uuid)
        .bind(&i.created_by)
        .bind(i.created_at)
        .bind(i.expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// An unused, unexpired invitation.
    pub async fn open_invitation(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Invitation>, StoreError> {
        let row = sqlx::query(
            "SELECT user_uuid, created_by, created_at, expires_at FROM webauthn_invitations \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Invitation {
                user_uuid: r.try_get("user_uuid")?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Hands an invitation over once: its code becomes the one whose digest is `code_hash`.
    /// The invitation, or None if the handover is unknown, used or expired.
    pub async fn hand_over_invitation(
        &self,
        handover_hash: &str,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Invitation>, StoreError> {
        let done = sqlx::query(
            "UPDATE webauthn_invitations SET code_hash = $1, handed_over_at = $2 \
             WHERE handover_hash = $3 AND handed_over_at IS NULL AND used_at IS NULL AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .bind(handover_hash)
        .execute(self.writer())
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.open_invitation(code_hash, now).await
    }

    /// Marks an invitation used; false if it was used (or expired) meanwhile.
    pub async fn use_invitation(&self, code_hash: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webauthn_invitations SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(code_hash)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
