//! The `clients` table: registered relying parties. Metadata is kept as its RFC 7591 JSON.

use sqlx::Row;

use super::{from_json, Db, StoreError};
use crate::model::client::{Client, ClientMetadata};

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
            sqlx::query("SELECT secret_hash, status, metadata FROM clients WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| {
            let metadata: ClientMetadata = from_json(&r.try_get::<String, _>("metadata")?)?;
            Ok(Client {
                metadata,
                secret_digest: r.try_get("secret_hash")?,
                active: r.try_get::<String, _>("status")? == "active",
            })
        })
        .transpose()
    }

    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(
            "SELECT secret_hash, status, metadata FROM clients ORDER BY created_at, client_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let metadata: ClientMetadata = from_json(&r.try_get::<String, _>("metadata")?)?;
                Ok(Client {
                    metadata,
                    secret_digest: r.try_get("secret_hash")?,
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
    /// Replaces a client's metadata (careid's own console client, when the issuer moves).
    pub async fn set_client_metadata(&self, metadata: &ClientMetadata) -> Result<(), StoreError> {
        sqlx::query("UPDATE clients SET metadata = $1 WHERE client_id = $2")
            .bind(serde_json::to_string(metadata)?)
            .bind(&metadata.client_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
