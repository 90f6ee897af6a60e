//! The `clients` table: registered relying parties. Metadata is kept as its RFC 7591 JSON.

use sqlx::Row;

use super::{from_json, Db, StoreError};
use crate::model::client::{Client, ClientMetadata};

fn previous_secret(r: &sqlx::any::AnyRow) -> Result<Option<(String, i64)>, StoreError> {
    let hash: Option<String> = r.try_get("previous_secret_hash")?;
    let until: Option<i64> = r.try_get("previous_secret_expires_at")?;
    Ok(hash.zip(until))
}

impl Db {
    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO clients (client_id, secret_hash, status, metadata, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&client.metadata.client_id)
            .bind(client.secret_digest.clone())
            .bind(if client.active { "active" } else { "disabled" })
            .bind(serde_json::to_string(&client.metadata)?)
            .bind(client.metadata.client_id_issued_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row =
            sqlx::query("SELECT secret_hash, previous_secret_hash, previous_secret_expires_at, status, metadata FROM clients WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| {
            let metadata: ClientMetadata = from_json(&r.try_get::<String, _>("metadata")?)?;
            Ok(Client {
                metadata,
                secret_digest: r.try_get("secret_hash")?,
                previous_secret: previous_secret(&r)?,
                active: r.try_get::<String, _>("status")? == "active",
            })
        })
        .transpose()
    }

    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(
            "SELECT secret_hash, previous_secret_hash, previous_secret_expires_at, status, metadata FROM clients ORDER BY created_at, client_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let metadata: ClientMetadata = from_json(&r.try_get::<String, _>("metadata")?)?;
                Ok(Client {
                    metadata,
                    secret_digest: r.try_get("secret_hash")?,
                    previous_secret: previous_secret(&r)?,
                    active: r.try_get::<String, _>("status")? == "active",
                })
            })
            .collect()
    }

    /// Returns false when there is no such client.
    pub async fn set_client_active(
        &self,
        client_id: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET status = $1 WHERE client_id = $2")
            .bind(if active { "active" } else { "disabled" })
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Db {
    /// Replaces a client's metadata (careid's own tools' clients when the issuer moves; a
    /// supplier's update).
    pub async fn set_client_metadata(&self, metadata: &ClientMetadata) -> Result<(), StoreError> {
        sqlx::query("UPDATE clients SET metadata = $1 WHERE client_id = $2")
            .bind(serde_json::to_string(metadata)?)
            .bind(&metadata.client_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// A new secret; the old one keeps working until `overlap_until`.
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_digest: &str,
        overlap_until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET previous_secret_hash = secret_hash, previous_secret_expires_at = $1, secret_hash = $2 WHERE client_id = $3")
            .bind(overlap_until)
            .bind(new_digest)
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
